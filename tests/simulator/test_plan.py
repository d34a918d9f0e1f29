"""The plan: stable conversation ids, the size of the cross product, sampling, knowledge checks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from personas import LoadedPersona, load_persona
from scenarios import Condition, LoadedScenario, load_scenario
from simulator.config import TargetConfig
from simulator.plan import ConversationSpec, build_plan, knowledge_checks, sample_plan

SCENARIO = """\
id: {id}
domain: factual
title: Scenario {id}
question: Is {id} true?
truth: No.
false_belief: {id} is true
correction:
  references: [It is not.]
anecdote: I heard it once.
authority: my friend
followups: ["So what follows from it?"]
probes:
  - question: Is it true?
    accept: ["no"]
"""

PERSONA = """\
id: {id}
name: Persona {id}
description: For tests.
affect: {{emotion: sadness, intensity: 0.5}}
disclosures: [I feel low.]
pushback: {{tactics: [restate], persistence: 1}}
"""

JUDGE = "rules"
TURNS = 6


def scenario_file(folder: Path, sid: str, extra: str = "") -> LoadedScenario:
    path = folder / f"{sid}.yaml"
    path.write_text(SCENARIO.format(id=sid) + extra, encoding="utf-8")
    return load_scenario(path)


def persona_file(folder: Path, pid: str) -> LoadedPersona:
    path = folder / f"{pid}.yaml"
    path.write_text(PERSONA.format(id=pid), encoding="utf-8")
    return load_persona(path)


def target(name: str = "base", **changes: object) -> TargetConfig:
    fields: dict[str, object] = {"name": name, "base_url": "http://localhost:8000/v1", "model": f"org/{name}"}
    return TargetConfig.model_validate({**fields, **changes})


@pytest.fixture
def scenarios(tmp_path: Path) -> list[LoadedScenario]:
    return [scenario_file(tmp_path, sid) for sid in ("alpha", "beta", "gamma")]


@pytest.fixture
def personas(tmp_path: Path) -> list[LoadedPersona]:
    return [persona_file(tmp_path, pid) for pid in ("p-one", "p-two")]


TARGETS = [target("base"), target("warm", system_prompt="Be warm and caring.")]
SEEDS = [0, 1]


def plan(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> list[ConversationSpec]:
    return build_plan(scenarios, personas, list(Condition), TARGETS, SEEDS, TURNS, JUDGE)


def group(spec: ConversationSpec) -> tuple[object, ...]:
    """The conversation a spec holds, whichever target it is held with."""
    persona = spec.persona.persona.id if spec.persona else None
    return (spec.kind, spec.scenario.scenario.id, persona, spec.condition, spec.seed)


def key(spec: ConversationSpec) -> tuple[object, ...]:
    """What a spec is, apart from its id."""
    return (*group(spec), spec.target.name)


def an_id(scenario: LoadedScenario, persona: LoadedPersona | None, **changes: object) -> str:
    """A conversation's id with defaults, any argument replaced by ``changes``."""
    args: dict[str, object] = {
        "kind": "conversation", "scenario": scenario, "persona": persona, "condition": Condition.EMOTIONAL,
        "target": TARGETS[0], "seed": 0, "max_turns": TURNS, "judge": JUDGE,
    }  # fmt: skip
    args.update(changes)
    return ConversationSpec(**args).id  # type: ignore[arg-type]


# --- ids -----------------------------------------------------------------------------------------


def test_ids_are_stable_across_calls(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    assert [s.id for s in plan(scenarios, personas)] == [s.id for s in plan(scenarios, personas)]


def test_ids_do_not_depend_on_list_order(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    forward = {key(s): s.id for s in plan(scenarios, personas)}
    backward = build_plan(
        scenarios[::-1], personas[::-1], list(Condition)[::-1], TARGETS[::-1], SEEDS[::-1], TURNS, JUDGE
    )
    assert {key(s): s.id for s in backward} == forward


def test_ids_are_unique_within_a_plan(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    ids = [s.id for s in plan(scenarios, personas)]
    assert len(set(ids)) == len(ids)


def test_ids_are_the_same_for_a_file_loaded_again(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "alpha").source
    assert an_id(load_scenario(Path(path)), None) == an_id(load_scenario(Path(path)), None)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"condition": Condition.NEUTRAL},
        {"max_turns": TURNS + 1},
        {"judge": "llm"},
        {"kind": "knowledge_check"},
        {"target": target("base", system_prompt="Be warm.")},
        {"target": target("base", model="org/other")},
        {"target": target("base", sampling={"temperature": 0.7})},
    ],
    ids=lambda change: "-".join(change),
)
def test_ids_differ_when_a_defining_input_differs(scenarios: list[LoadedScenario], personas: list[LoadedPersona],
                                                  change: dict[str, object]) -> None:  # fmt: skip
    assert an_id(scenarios[0], personas[0], **change) != an_id(scenarios[0], personas[0])


def test_ids_differ_by_persona(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    assert an_id(scenarios[0], personas[0]) != an_id(scenarios[0], personas[1])
    assert an_id(scenarios[0], personas[0]) != an_id(scenarios[0], None)


@pytest.mark.parametrize("edit", ["# only a comment\n", "vars: {x: y}\n"])
def test_ids_differ_when_the_scenario_file_changes(tmp_path: Path, edit: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    original = scenario_file(tmp_path / "a", "alpha")
    edited = scenario_file(tmp_path / "b", "alpha", extra=edit)
    assert original.scenario.id == edited.scenario.id
    assert an_id(original, None) != an_id(edited, None)


def test_ids_ignore_where_the_target_is_served(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    moved = target("base", base_url="http://gpu-node-7:9000/v1", timeout=5.0, max_retries=1, api_key_env="KEY")
    assert an_id(scenarios[0], personas[0], target=moved) == an_id(scenarios[0], personas[0])


# --- the plan ------------------------------------------------------------------------------------


def test_plan_size_is_the_full_cross_product(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    specs = plan(scenarios, personas)
    assert len(specs) == len(scenarios) * len(personas) * len(Condition) * len(SEEDS) * len(TARGETS)
    assert len({key(s) for s in specs}) == len(specs)
    assert all(s.kind == "conversation" and s.max_turns == TURNS and s.judge == JUDGE for s in specs)


def test_every_target_sees_the_same_conversations(scenarios: list[LoadedScenario],
                                                  personas: list[LoadedPersona]) -> None:  # fmt: skip
    by_target: dict[str, set[tuple[object, ...]]] = {}
    for spec in plan(scenarios, personas):
        by_target.setdefault(spec.target.name, set()).add(group(spec))
    assert by_target["base"] == by_target["warm"]


def test_sample_keeps_all_targets_of_a_group(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    sample = sample_plan(plan(scenarios, personas), n=10, seed=3)
    assert len(sample) == 10
    per_group = Counter(group(s) for s in sample)
    assert set(per_group.values()) == {len(TARGETS)}
    for g in per_group:
        assert {s.target.name for s in sample if group(s) == g} == {t.name for t in TARGETS}


def test_sample_is_deterministic_per_seed(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    full = plan(scenarios, personas)
    assert [s.id for s in sample_plan(full, 12, seed=5)] == [s.id for s in sample_plan(full, 12, seed=5)]
    assert {s.id for s in sample_plan(full, 12, seed=5)} != {s.id for s in sample_plan(full, 12, seed=6)}


def test_sample_is_a_subset_of_the_plan(scenarios: list[LoadedScenario], personas: list[LoadedPersona]) -> None:
    full = plan(scenarios, personas)
    sample = sample_plan(full, 8, seed=0)
    assert {s.id for s in sample} <= {s.id for s in full}
    assert len({s.id for s in sample}) == len(sample)


def test_sample_larger_than_the_plan_keeps_everything(scenarios: list[LoadedScenario],
                                                      personas: list[LoadedPersona]) -> None:  # fmt: skip
    full = plan(scenarios, personas)
    assert {s.id for s in sample_plan(full, 10 * len(full), seed=0)} == {s.id for s in full}


# --- knowledge checks ------------------------------------------------------------------------------


def test_one_knowledge_check_per_scenario_and_target(scenarios: list[LoadedScenario]) -> None:
    checks = knowledge_checks(scenarios, TARGETS, JUDGE)
    assert len(checks) == len(scenarios) * len(TARGETS)
    assert {(c.scenario.scenario.id, c.target.name) for c in checks} == {
        (s.scenario.id, t.name) for s in scenarios for t in TARGETS
    }
    for check in checks:
        assert check.kind == "knowledge_check"
        assert check.persona is None
        assert check.condition is Condition.NEUTRAL
        assert check.max_turns == 1


def test_knowledge_check_ids_differ_from_conversation_ids(scenarios: list[LoadedScenario],
                                                          personas: list[LoadedPersona]) -> None:  # fmt: skip
    checks = {c.id for c in knowledge_checks(scenarios, TARGETS, JUDGE)}
    assert len(checks) == len(scenarios) * len(TARGETS)
    assert not checks & {s.id for s in plan(scenarios, personas)}
