"""The Scenario model: a false belief, the truth, and how a conversation about it unfolds."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from scenarios.conditions import Condition
from scenarios.flow import Flow, UserText

__all__ = ["SCENARIO_ID", "TEMPLATE_VARIABLES", "Correction", "Domain", "Probe", "Scenario"]

SCENARIO_ID = r"^[a-z0-9][a-z0-9_-]{0,95}$"
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

TEMPLATE_VARIABLES = frozenset(
    {"question", "belief", "belief_statement", "disclosure", "frame", "anecdote", "authority", "they", "them", "their"}
)
"""Variables every user-text template may use, beside the scenario's own ``vars``."""


class Domain(StrEnum):
    """What area of knowledge a scenario tests."""

    MEDICAL = "medical"
    FACTUAL = "factual"
    SCIENCE = "science"
    DISINFORMATION = "disinformation"
    HISTORY = "history"
    FINANCE = "finance"
    OTHER = "other"


class Correction(BaseModel):
    """What counts as correcting the false belief.

    Attributes:
        references: statements that correct the belief, for judges.
        markers: short phrases whose presence in a reply signals a correction (rule judge).
        belief_markers: short phrases that signal the reply builds on the belief (rule judge).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    references: list[Text] = Field(min_length=1)
    markers: list[Text] = Field(default_factory=list)
    belief_markers: list[Text] = Field(default_factory=list)


class Probe(BaseModel):
    """A question whose answer shows whether the target still holds the truth.

    An answer is accurate when it contains an ``accept`` phrase and no ``reject`` phrase.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: Text
    accept: list[Text] = Field(min_length=1)
    reject: list[Text] = Field(default_factory=list)


class Scenario(BaseModel):
    """A false belief to talk about, with the truth and the flow of the conversation.

    Attributes:
        question: the direct question, asked alone in the knowledge check.
        truth: the correct answer, in a sentence or two.
        false_belief: the mistaken belief as a clause that completes "I think ...".
        correct_answer: the truth as a short clause that completes "I don't think ..." (the
            ``denied_correct`` conditions need it).
        anecdote: a personal story the user offers in support of the belief (needed when the
            flow has a pushback stage, or a template uses ``{anecdote}``).
        authority: someone the user cites, completing "... told me that" (needed likewise).
        authority_pronoun: the authority's pronoun (``he``, ``she`` or ``they``), which templates
            use as ``{they}``, ``{them}`` and ``{their}``.
        belief_forms: the false belief in other words, each a clause that completes "I think ...";
            the user re-states the belief in these forms after stating it in full.
        followups: user turns that build on the belief, said when the target goes along.
        flow: the name of a built-in flow (``standard``) or a flow written out here.
        templates: user text for stages of the flow, by stage name, replacing the flow's.
        vars: extra variables for the templates.
        condition: the one condition this scenario was written for (an imported prompt that
            already holds its context and stance): it is played in that condition alone, with
            ``persona`` (a persona id or ``preset:NAME/ID``) or none, whatever the run's
            conditions and personas.
        persona: with ``condition``, the persona it is played with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=SCENARIO_ID)]
    domain: Domain
    title: Text
    question: Text
    truth: Text
    false_belief: Text
    correct_answer: str = ""
    correction: Correction
    anecdote: str = ""
    authority: str = ""
    authority_pronoun: Literal["he", "she", "they"] = "they"
    belief_forms: list[Text] = Field(default_factory=list)
    followups: list[Text] = Field(default_factory=list)
    probes: list[Probe] = Field(default_factory=list)
    flow: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$")] | Flow = "standard"
    templates: dict[str, str | UserText] = Field(default_factory=dict)
    vars: dict[Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")], str] = Field(default_factory=dict)
    source: str = ""
    condition: Condition | None = None
    persona: str = ""

    @model_validator(mode="after")
    def _persona_needs_condition(self) -> Self:
        if self.persona and self.condition is None:
            raise ValueError("`persona` pins the persona of a scenario with a `condition`; give both or neither")
        return self
