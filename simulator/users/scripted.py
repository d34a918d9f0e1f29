"""The scripted simulated user: renders persona and scenario templates for each stage."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from string import Formatter

from personas import LoadedPersona, Tactic, TacticPhrases, Voice, builtin_voices, template_fields, voice_of
from scenarios import (
    BELIEF_STATEMENT,
    DENIAL_STATEMENT,
    EXHAUSTED,
    NEUTRAL_FRAME,
    OPENING,
    Condition,
    Label,
    LoadedScenario,
    Probe,
    StageKind,
    UserText,
)
from simulator.users.move import User, UserMove

__all__ = ["ScriptedUser"]

_SPACES = re.compile(r"\s+")
_COMMA_BEFORE_STOP = re.compile(r",\s*([.?!,])")
_SENTENCE_START = re.compile(r"(^|[.?!]\s+)([a-z])")
_PRONOUNS = {"he": ("he", "him", "his"), "she": ("she", "her", "her"), "they": ("they", "them", "their")}


class ScriptedUser(User):
    """A user who says what the templates say, in the persona's voice, choosing wordings with a seeded RNG.

    Pushback follows the persona's tactics in order, cycling, until its persistence is
    used up; follow-ups and probes are taken in the scenario's order, cycling. The user
    remembers what it said: of the wordings for a move it picks one not used yet in this
    conversation (the persona's own first, then its voice's, then the neutral voice's), and it
    states the false belief in full once, then in other words (the scenario's ``belief_forms``,
    or back-references), never the same way in two turns running. The same seed and the same
    sequence of stages give the same turns, so a resumed conversation says what it said before.
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
        self._said: set[str] = set()
        self._used: set[str] = set()
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
        they, them, their = _PRONOUNS[s.authority_pronoun]
        self._variables = {
            **s.vars,
            "question": s.question,
            "belief": s.false_belief,
            "belief_statement": belief_statement,
            "disclosure": disclosure,
            "frame": NEUTRAL_FRAME if condition.framed and not replaced else "",
            "anecdote": s.anecdote,
            "authority": s.authority,
            "they": they,
            "them": them,
            "their": their,
        }
        voices = builtin_voices().voices
        own = voices[voice_of(persona.persona)] if persona is not None else voices["neutral"]
        self._voices: list[Voice] = [own] if own is voices["neutral"] else [own, voices["neutral"]]
        forms = s.belief_forms or builtin_voices().references
        self._restatements = [*self._rng.sample(forms, len(forms)), s.false_belief]
        self._beliefs_said = 0
        self._stage: str | None = None  # where the flow is; None before the first move

    def render(self, template: str | UserText, *, verbatim: bool = False) -> str:
        """Fill a template and tidy it: single spaces, sentences start with a capital.

        A two-wording text picks the wording for this condition. ``verbatim`` sends a text
        without variables exactly as written; of a template, it only strips the ends (the
        spaces an empty variable leaves there).
        """
        return self._fill(self._wording(template), self._variables["belief"], verbatim=verbatim)

    @property
    def pushbacks(self) -> int:
        """Pushback turns said so far."""
        return self._pushbacks

    def next_move(self, last_label: Label | None) -> UserMove | None:
        """The :class:`User` protocol: the move at the next stage of the flow, which the last reply's
        label chooses; a pushback stage with no pushback left takes its ``exhausted`` edge.
        ``None`` at an end stage."""
        stages = self.scenario.flow.stages
        if self._stage is None:
            self._stage = self.scenario.flow.start
        else:
            self._stage = stages[self._stage].after(str(last_label))
        while stages[self._stage].kind is not StageKind.END:
            move = self.move(self._stage)
            if move is not None:
                return move
            self._stage = stages[self._stage].next[EXHAUSTED]
        return None

    def move(self, stage: str) -> UserMove | None:
        """The user's message at ``stage``; ``None`` when a pushback stage finds no pushback left.

        A stage's own text (the flow's ``user``, or the scenario's ``templates``) is said as it is;
        when the flow comes back to it, the built-in wordings of its kind take over, if it has any.
        """
        flow_stage = self.scenario.flow.stages[stage]
        kind = flow_stage.kind
        own = self.scenario.user_text(stage)
        tactic: Tactic | None = None
        probe: Probe | None = None
        if kind is StageKind.PUSHBACK:
            if self.persona is None or self._pushbacks >= self.persona.persona.pushback.persistence:
                return None
            tactics = self.persona.persona.pushback.tactics
            tactic = tactics[self._pushbacks % len(tactics)]
            self._pushbacks += 1
        elif kind is StageKind.PROBE:
            probes = self.scenario.scenario.probes
            probe = probes[self._probes % len(probes)]
            self._probes += 1
        elif own is not None and flow_stage.verbatim:
            return UserMove(self.render(own, verbatim=True), kind, stage)
        groups = self._builtin_wordings(kind, tactic, probe)
        if own is not None:
            group, text = self._say([[self._wording(own)], *groups])
            return UserMove(text, kind, stage, probe, fixed=group == 0)
        if not groups:
            raise ValueError(f"stage {stage!r} of kind {kind} has no user text")
        _, text = self._say(groups)
        if kind is StageKind.OPEN:
            self._beliefs_said += self.condition.stance == "belief"
        fixed = kind in (StageKind.OPEN, StageKind.PROBE)
        return UserMove(text, kind, stage, probe, tactic, fixed=fixed)

    def _builtin_wordings(self, kind: StageKind, tactic: Tactic | None, probe: Probe | None) -> list[list[str]]:
        """The groups of wordings of a stage of ``kind``, by preference."""
        if tactic is not None:
            return self._tactic_wordings(tactic)
        if probe is not None:
            return [[probe.question]]
        if kind is StageKind.OPEN:
            return [[OPENING]]
        if kind is StageKind.PRESS:
            return [self._lines(v.press) for v in self._voices]
        if kind is StageKind.FOLLOWUP:
            return self._followup_wordings()
        if kind is StageKind.CONCEDE:
            own = self.persona.persona.pushback.concession if self.persona else None
            return [*([[own]] if own else []), *(v.concession for v in self._voices)]
        return []

    def _wording(self, text: str | UserText) -> str:
        """The wording of a text for this condition."""
        if isinstance(text, UserText):
            return text.belief if self.condition.false_belief else text.doubt
        return text

    def _lines(self, phrases: TacticPhrases) -> list[str]:
        """The lines of a set of wordings for this condition."""
        return phrases.belief if self.condition.false_belief else phrases.doubt

    def _tactic_wordings(self, tactic: Tactic) -> list[list[str]]:
        assert self.persona is not None
        own = self.persona.persona.pushback.phrases.get(tactic)
        return [self._lines(p) for p in [*([own] if own else []), *(v.tactics[tactic] for v in self._voices)]]

    def _followup_wordings(self) -> list[list[str]]:
        followups = self.scenario.scenario.followups
        question = followups[self._followups % len(followups)]
        leads = [v.again if self._followups >= len(followups) else v.followup for v in self._voices]
        self._followups += 1
        return [[f"{lead} {question}" for lead in group] for group in leads]

    def _fill(self, template: str, belief: str, *, verbatim: bool = False) -> str:
        variables = {**self._variables, "belief": belief}
        if verbatim:
            text = template.format_map(variables)
            return text.strip() if any(field for _, field, _, _ in Formatter().parse(template)) else text
        text = _SPACES.sub(" ", template.format_map(variables)).strip()
        text = _COMMA_BEFORE_STOP.sub(r"\1", text)  # "my neighbour, a nurse,." -> "... a nurse." (",," too)
        return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)

    def _say(self, groups: Sequence[Sequence[str]]) -> tuple[int, str]:
        """One of the templates, filled in and remembered, with the index of its group.

        Chosen with the RNG among the first group's templates not used yet in this conversation;
        when all were, among the first group's whose text was not said yet (the belief may be put
        another way); else among the first group's. The belief is stated in full the first time,
        then in the next other form.
        """
        belief = self._variables["belief"]
        if self._beliefs_said:
            belief = self._restatements[(self._beliefs_said - 1) % len(self._restatements)]
        filled = [[(template, self._fill(template, belief)) for template in group] for group in groups]
        unused = [[pair for pair in group if pair[0] not in self._used] for group in filled]
        unsaid = [[pair for pair in group if pair[1] not in self._said] for group in filled]
        index, fresh = next(((i, g) for i, g in [*enumerate(unused), *enumerate(unsaid)] if g), (0, filled[0]))
        template, text = self._rng.choice(fresh)
        self._beliefs_said += "belief" in template_fields(template)
        self._used.add(template)
        self._said.add(text)
        return index, text
