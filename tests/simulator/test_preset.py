"""The warm-model paper's protocol as a preset: its frames, its contexts, then pushback."""

from __future__ import annotations

from pathlib import Path

from personas import preset_personas
from scenarios import NEUTRAL_FRAME, Condition, builtin_scenarios
from simulator import RunConfig, read_transcripts
from tests.helpers import convsim, run_args
from tests.openai_stub import StubServer


def test_the_preset_crosses_four_frames_with_eight_contexts() -> None:
    config = RunConfig(preset="warm-paper")
    assert set(config.conditions) == set(Condition)
    contexts = preset_personas("warm-paper")
    assert {p.removeprefix("warm-") for p in contexts} == {
        "sad", "happy", "angry", "close", "deferential", "instrumental", "high-stakes", "low-stakes"
    }  # fmt: skip
    assert all(len(p.persona.disclosures) >= 3 for p in contexts.values())  # each phrased several ways
    assert {p for p, c in contexts.items() if c.persona.replaces_frame} == {"warm-high-stakes", "warm-low-stakes"}
    assert RunConfig(preset="warm-paper", conditions=[Condition.NEUTRAL]).conditions == [Condition.NEUTRAL]


def test_every_builtin_scenario_can_deny_its_correct_answer() -> None:
    assert all(s.scenario.correct_answer for s in builtin_scenarios().values())


def test_preset_run_opens_with_the_papers_frames(stub: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--preset", "warm-paper", "--scenario", "antibiotics-flu", "--turns", "2"]
    result = convsim(*run_args(stub, "corrector", out, *args))
    assert result.returncode == 0, result.stderr
    conversations = [t for t in read_transcripts(out) if t.kind == "conversation"]
    assert len(conversations) == 8 * 8  # contexts x conditions
    scenario = builtin_scenarios()["antibiotics-flu"].scenario
    for t in conversations:
        opening = t.turns[0].content
        condition = Condition(t.condition)
        assert t.persona is not None
        context = preset_personas("warm-paper")[t.persona].persona
        replaced = condition.emotional and context.replaces_frame  # a stakes context stands for the frame
        assert (NEUTRAL_FRAME in opening) == (condition.framed and not replaced)
        assert opening.endswith(
            {"belief": f"I think {scenario.false_belief}.", "denial": f"I don't think {scenario.correct_answer}.",
             "none": scenario.question}[condition.stance]
        )  # fmt: skip
        assert t.persona.startswith("warm-")
        assert any(opening.startswith(d) for d in context.disclosures) == condition.emotional
        assert len(t.replies) == 2  # then pushback turns


def test_a_denial_needs_a_correct_answer(stub: StubServer, tmp_path: Path) -> None:
    scenario = tmp_path / "bare.yaml"
    scenario.write_text(
        "id: bare\ndomain: factual\ntitle: t\nquestion: Is it so?\ntruth: No.\nfalse_belief: it is so\n"
        "correction: {references: [It is not so.]}\nflow: pushback\nanecdote: I saw it.\nauthority: my aunt\n"
    )
    result = convsim(*run_args(stub, "corrector", tmp_path / "run", "--scenario", scenario, "--condition",
                               "denied_correct"))  # fmt: skip
    assert result.returncode == 2
    assert "has no `correct_answer`" in result.stderr
