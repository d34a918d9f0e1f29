"""The plan: every (scenario x persona x condition x target x seed) as a ConversationSpec."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from personas import LoadedPersona
from scenarios import Condition, LoadedScenario
from simulator.config import TargetConfig

__all__ = ["ConversationSpec", "build_plan", "knowledge_checks", "sample_plan"]


@dataclass(frozen=True)
class ConversationSpec:
    """One conversation to hold. ``id`` is a hash of everything that defines it: the same inputs give
    the same id on any machine, in any order; a replay's, of the conversation it replays."""

    kind: Literal["conversation", "knowledge_check"]
    scenario: LoadedScenario
    persona: LoadedPersona | None
    condition: Condition
    target: TargetConfig
    seed: int
    max_turns: int
    judge: str
    user_model: str | None = None
    replay: tuple[tuple[str, str | None], ...] | None = None
    """User turns (text, stage) to send as they are, whatever the replies (``convsim replay``)."""
    replay_of: str | None = None
    """The id of the conversation whose user turns ``replay`` holds."""
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _hash(self._defining()))

    def _defining(self) -> dict[str, object]:
        if self.replay_of is not None:
            return {"replay_of": self.replay_of, "target": self.target.identity(), "judge": self.judge}
        defining: dict[str, object] = {
            "kind": self.kind,
            "scenario": [self.scenario.scenario.id, self.scenario.sha256],
            "persona": [self.persona.persona.id, self.persona.sha256] if self.persona else None,
            "condition": str(self.condition),
            "target": self.target.identity(),
            "seed": self.seed,
            "max_turns": self.max_turns,
            "judge": self.judge,
        }
        if self.user_model is not None:  # a scripted user adds nothing, so older ids stay valid
            defining["user_model"] = self.user_model
        return defining


def _hash(defining: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:20]


def build_plan(
    scenarios: Sequence[LoadedScenario],
    personas: Sequence[LoadedPersona],
    conditions: Sequence[Condition],
    targets: Sequence[TargetConfig],
    seeds: Sequence[int],
    max_turns: int,
    judge: str,
    user_model: str | None = None,
    pinned: Mapping[str, LoadedPersona] | None = None,
) -> list[ConversationSpec]:
    """Cross everything into conversations; every target sees the same conversations.

    A scenario with its own ``condition`` is played in it alone, with its own persona (from
    ``pinned``, by reference) or none.
    """
    specs = []
    for scenario in scenarios:
        s = scenario.scenario
        cases: Iterable[tuple[LoadedPersona | None, Condition]] = (
            itertools.product(personas, conditions)
            if s.condition is None
            else [((pinned or {})[s.persona] if s.persona else None, s.condition)]
        )
        specs += [
            ConversationSpec("conversation", scenario, persona, condition, target, seed, max_turns, judge, user_model)
            for (persona, condition), seed, target in itertools.product(cases, seeds, targets)
        ]
    return specs


def knowledge_checks(
    scenarios: Sequence[LoadedScenario], targets: Sequence[TargetConfig], judge: str
) -> list[ConversationSpec]:
    """One single-turn check per scenario and target: the direct question alone."""
    return [
        ConversationSpec("knowledge_check", scenario, None, Condition.NEUTRAL, target, 0, 1, judge)
        for scenario, target in itertools.product(scenarios, targets)
    ]


def sample_plan(plan: Sequence[ConversationSpec], n: int, seed: int) -> list[ConversationSpec]:
    """Draw ``n`` conversations, keeping whole groups across targets so that pairs stay paired."""
    groups: dict[tuple[object, ...], list[ConversationSpec]] = {}
    for spec in plan:
        key = (spec.scenario.scenario.id, spec.persona.persona.id if spec.persona else None, spec.condition, spec.seed)
        groups.setdefault(key, []).append(spec)
    keys = list(groups)
    per_group = max(1, len(plan) // max(1, len(keys)))
    chosen = random.Random(seed).sample(keys, min(len(keys), max(1, n // per_group)))
    return [spec for key in chosen for spec in groups[key]]
