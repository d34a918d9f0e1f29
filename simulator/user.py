"""The scripted simulated user: renders persona and scenario templates for each stage."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Protocol

from personas import LoadedPersona, Tactic, tactic_phrases
from scenarios import (
    BELIEF_STATEMENT,
    DENIAL_STATEMENT,
    NEUTRAL_FRAME,
    OPENING,
    Condition,
    LoadedScenario,
    Probe,
    StageKind,
    Turn,
    UserText,
)

__all__ = ["ScriptedUser", "User", "UserMove"]

_SPACES = re.compile(r"\s+")
_COMMA_BEFORE_STOP = re.compile(r",\s*([.?!])")
_SENTENCE_START = re.compile(r"(^|[.?!]\s+)([a-z])")


@dataclass(frozen=True)
class UserMove:
    """What the user says at a stage.

    Attributes:
        text: the message.
        kind: the stage's kind.
        probe: the probe it asks, if any.
        tactic: the pushback tactic it uses, if any.
        fixed: the scenario fixes these words (an opening, a probe, a stage's own text), so a
            model-driven user sends them as they are.
    """

    text: str
    kind: StageKind
    probe: Probe | None = None
    tactic: Tactic | None = None
    fixed: bool = True


class User(Protocol):
    """A simulated user: the words it says for the scripted move at a stage, given the conversation so far."""

    async def write(self, move: UserMove, turns: Sequence[Turn]) -> UserMove:
        """The move as the user says it.

        Raises:
            UserModelError: a model-driven user could not produce a valid message.
        """
        ...


class ScriptedUser:
    """A user who says what the templates say, choosing among wordings with a seeded RNG.

    Pushback follows the persona's tactics in order, cycling, until its persistence is
    used up; follow-ups and probes are taken in the scenario's order, cycling.
    """

    def __init__(
        self, scenario: LoadedScenario, persona: LoadedPersona | None, condition: Condition, seed: int
    ) -> None:
        self.scenario = scenario
        self.persona = persona
        self.condition = condition
        self._rng = random.Random(seed)
        self._pushbacks = 0
        self._followups = 0
        self._probes = 0
        s = scenario.scenario
        disclosure = ""
        if condition.emotional and persona is not None:
            disclosure = self._rng.choice(persona.persona.disclosures)
        replaced = bool(disclosure) and persona is not None and persona.persona.replaces_frame
        belief_statement = {
            "belief": BELIEF_STATEMENT.format(belief=s.false_belief),
            "denial": DENIAL_STATEMENT.format(correct_answer=s.correct_answer),
            "none": "",
        }[condition.stance]
        self._variables = {
            **s.vars,
            "question": s.question,
            "belief": s.false_belief,
            "belief_statement": belief_statement,
            "disclosure": disclosure,
            "frame": NEUTRAL_FRAME if condition.framed and not replaced else "",
            "anecdote": s.anecdote,
            "authority": s.authority,
        }

    def render(self, template: str | UserText, *, verbatim: bool = False) -> str:
        """Fill a template and tidy it: single spaces, sentences start with a capital.

        A two-wording text picks the wording for this condition. ``verbatim`` sends a text
        without variables exactly as written; of a template, it only strips the ends (the
        spaces an empty variable leaves there).
        """
        if isinstance(template, UserText):
            template = template.belief if self.condition.false_belief else template.doubt
        if verbatim:
            text = template.format_map(self._variables)
            return text.strip() if any(field for _, field, _, _ in Formatter().parse(template)) else text
        text = _SPACES.sub(" ", template.format_map(self._variables)).strip()
        text = _COMMA_BEFORE_STOP.sub(r"\1", text)  # "my neighbour, a nurse,." -> "... a nurse."
        return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)

    @property
    def pushbacks(self) -> int:
        """Pushback turns said so far."""
        return self._pushbacks

    async def write(self, move: UserMove, turns: Sequence[Turn]) -> UserMove:
        """The :class:`User` protocol: the scripted move as it is."""
        return move

    def move(self, stage: str) -> UserMove | None:
        """The user's message at ``stage``; ``None`` when a pushback stage finds no pushback left."""
        kind = self.scenario.flow.stages[stage].kind
        own = self.scenario.user_text(stage)
        if kind is StageKind.PUSHBACK:
            if self.persona is None or self._pushbacks >= self.persona.persona.pushback.persistence:
                return None
            tactics = self.persona.persona.pushback.tactics
            tactic = tactics[self._pushbacks % len(tactics)]
            self._pushbacks += 1
            if own is not None:
                return UserMove(self.render(own), kind)
            return UserMove(self.render(self._tactic_text(tactic)), kind, tactic=tactic, fixed=False)
        if kind is StageKind.PROBE:
            probes = self.scenario.scenario.probes
            probe = probes[self._probes % len(probes)]
            self._probes += 1
            return UserMove(self.render(own if own is not None else probe.question), kind, probe)
        if own is not None:
            return UserMove(self.render(own, verbatim=self.scenario.flow.stages[stage].verbatim), kind)
        if kind is StageKind.OPEN:
            return UserMove(self.render(OPENING), kind)
        if kind is StageKind.FOLLOWUP:
            followups = self.scenario.scenario.followups
            self._followups += 1
            return UserMove(self.render(followups[(self._followups - 1) % len(followups)]), kind, fixed=False)
        if kind is StageKind.CONCEDE:
            concession = self.persona.persona.pushback.concession if self.persona else "Okay, thanks."
            return UserMove(self.render(concession), kind, fixed=False)
        raise ValueError(f"stage {stage!r} of kind {kind} has no user text")

    def _tactic_text(self, tactic: Tactic) -> str:
        assert self.persona is not None
        phrases = self.persona.persona.pushback.phrases.get(tactic) or tactic_phrases()[tactic]
        lines = phrases.belief if self.condition.false_belief else phrases.doubt
        return self._rng.choice(lines)
