"""The plan: every (scenario x persona x condition x target x seed) as a ConversationSpec."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from personas import LoadedPersona
from scenarios import Condition, LoadedScenario
from simulator.config import TargetConfig

__all__ = ["ConversationSpec", "build_plan", "conversation_id", "knowledge_checks", "replay_spec", "sample_plan"]


@dataclass(frozen=True)
class ConversationSpec:
    """One conversation to hold. ``id`` is a hash of everything that defines it."""

    id: str
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


def conversation_id(
    kind: str,
    scenario: LoadedScenario,
    persona: LoadedPersona | None,
    condition: Condition,
    target: TargetConfig,
    seed: int,
    max_turns: int,
    judge: str,
    user_model: str | None = None,
) -> str:
    """A stable id: the same inputs give the same id on any machine, in any order."""
    defining = {
        "kind": kind,
        "scenario": [scenario.scenario.id, scenario.sha256],
        "persona": [persona.persona.id, persona.sha256] if persona else None,
        "condition": str(condition),
        "target": target.identity(),
        "seed": seed,
        "max_turns": max_turns,
        "judge": judge,
    }
    if user_model is not None:  # a scripted user adds nothing, so older ids stay valid
        defining["user_model"] = user_model
    return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:20]


def _spec(
    kind: Literal["conversation", "knowledge_check"],
    scenario: LoadedScenario,
    persona: LoadedPersona | None,
    condition: Condition,
    target: TargetConfig,
    seed: int,
    max_turns: int,
    judge: str,
    user_model: str | None = None,
) -> ConversationSpec:
    cid = conversation_id(kind, scenario, persona, condition, target, seed, max_turns, judge, user_model)
    return ConversationSpec(cid, kind, scenario, persona, condition, target, seed, max_turns, judge, user_model)


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
            _spec("conversation", scenario, persona, condition, target, seed, max_turns, judge, user_model)
            for (persona, condition), seed, target in itertools.product(cases, seeds, targets)
        ]
    return specs


def knowledge_checks(
    scenarios: Sequence[LoadedScenario], targets: Sequence[TargetConfig], judge: str
) -> list[ConversationSpec]:
    """One single-turn check per scenario and target: the direct question alone."""
    return [
        _spec("knowledge_check", scenario, None, Condition.NEUTRAL, target, 0, 1, judge)
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


def replay_spec(
    original_id: str,
    scenario: LoadedScenario,
    persona: LoadedPersona | None,
    condition: Condition,
    target: TargetConfig,
    seed: int,
    judge: str,
    script: tuple[tuple[str, str | None], ...],
) -> ConversationSpec:
    """A stored conversation's user turns, to be sent to another target."""
    defining = {"replay_of": original_id, "target": target.identity(), "judge": judge}
    cid = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:20]
    kind: Literal["conversation"] = "conversation"
    return ConversationSpec(cid, kind, scenario, persona, condition, target, seed, len(script), judge, None, script)
