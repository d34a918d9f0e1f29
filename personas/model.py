"""The Persona model: who the simulated user is and how they push back."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from personas.templates import template_fields

__all__ = [
    "PERSONA_ID",
    "Affect",
    "Emotion",
    "Persona",
    "PhraseText",
    "PlainText",
    "Pushback",
    "Style",
    "Tactic",
    "TacticPhrases",
    "uses_only",
]

PHRASE_VARIABLES = frozenset({"question", "anecdote", "authority", "they", "them", "their"})
"""Variables a persona's pushback phrases may use (``belief`` lines may also use ``{belief}``)."""
PERSONA_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Identifier = Annotated[str, StringConstraints(pattern=PERSONA_ID)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def uses_only(allowed: frozenset[str]) -> AfterValidator:
    """A check that a template uses no variable outside ``allowed``."""
    hint = f"use {', '.join(sorted(allowed))}" if allowed else "this text takes no variables"

    def check(line: str) -> str:
        unknown = sorted(set(template_fields(line)) - allowed)
        if unknown:
            raise ValueError(f"unknown variable {{{unknown[0]}}} in {line!r}; {hint}")
        return line

    return AfterValidator(check)


PhraseText = Annotated[Text, uses_only(PHRASE_VARIABLES)]
"""A line said in every condition: it may name the question, anecdote, authority and its pronouns."""
BeliefText = Annotated[Text, uses_only(PHRASE_VARIABLES | {"belief"})]
"""A line said when the user holds the false belief: it may also state it (``{belief}``)."""
PlainText = Annotated[Text, uses_only(frozenset())]
"""A line without variables."""


class Emotion(StrEnum):
    """The affect a persona brings to the conversation."""

    NEUTRAL = "neutral"
    SADNESS = "sadness"
    GRIEF = "grief"
    ANXIETY = "anxiety"
    LONELINESS = "loneliness"
    ANGER = "anger"
    HAPPINESS = "happiness"
    FEAR = "fear"
    SHAME = "shame"


class Tactic(StrEnum):
    """Ways a user pushes back on a correction (after SYCON-Bench's pushback kinds)."""

    CONFUSION = "confusion"  # "I don't get it, I always thought ..."
    RESTATE = "restate"  # repeats the belief more firmly
    ANECDOTE = "anecdote"  # "my neighbour did it and it worked"
    EMOTION = "emotion"  # appeal to emotion: "please, I really need this to be true"
    AUTHORITY = "authority"  # "my doctor / a professor told me"
    CHALLENGE = "challenge"  # "how can you be so sure?"
    DEFERENCE = "deference"  # "you're the expert, but isn't it ..."


class Affect(BaseModel):
    """An emotion and how strongly it shows, from 0 (barely) to 1 (overwhelming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    emotion: Emotion
    intensity: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _neutral_is_calm(self) -> Affect:
        if self.emotion is Emotion.NEUTRAL and self.intensity > 0.3:
            raise ValueError("a neutral affect cannot have an intensity above 0.3")
        return self


class Style(BaseModel):
    """How the persona writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tone: Annotated[str, StringConstraints(pattern=r"^(casual|formal|plain)$")] = "plain"
    verbosity: Annotated[str, StringConstraints(pattern=r"^(terse|short|long)$")] = "short"
    notes: str = ""


class TacticPhrases(BaseModel):
    """Wordings of one tactic: when the user states the false belief, and as plain doubt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    belief: list[BeliefText] = Field(min_length=1)
    doubt: list[PhraseText] = Field(min_length=1)


class Pushback(BaseModel):
    """How the persona reacts when the target corrects it.

    Attributes:
        tactics: used in order, cycling, one per pushback turn.
        persistence: how many times the persona pushes back before it yields (0: yields at once).
        phrases: the persona's own wordings per tactic, said before the built-in ones of its voice.
            Templates may use ``{question}``, ``{anecdote}``, ``{authority}``, the authority's pronouns
            ``{they}``, ``{them}``, ``{their}``, and in ``belief`` lines ``{belief}``.
        concession: what the persona says when it yields; without it, one of its voice's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tactics: list[Tactic] = Field(min_length=1)
    persistence: int = Field(ge=0, le=20)
    phrases: dict[Tactic, TacticPhrases] = Field(default_factory=dict)
    concession: PhraseText | None = None

    @model_validator(mode="after")
    def _phrases_for_used_tactics(self) -> Pushback:
        unused = sorted(set(self.phrases) - set(self.tactics))
        if unused:
            raise ValueError(f"phrases given for tactics not in `tactics`: {', '.join(unused)}")
        return self


class Persona(BaseModel):
    """A simulated user: their state, what they disclose, how they talk and push back.

    Attributes:
        disclosures: sentences the persona says about its state; one opens the
            conversation in the emotional conditions (the interpersonal context).
        instructions: extra guidance for a model-driven user (not used by the scripted user).
        replaces_frame: the disclosure takes the place of the neutral frame sentence instead of
            preceding it (the warm-model paper's stakes contexts).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: Text
    description: Text
    affect: Affect
    disclosures: list[Text] = Field(min_length=1)
    style: Style = Style()
    pushback: Pushback
    instructions: str = ""
    replaces_frame: bool = False
