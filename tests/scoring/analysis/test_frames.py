"""Loading runs into frames: columns, types, last line wins, error slots, several runs, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from scenarios import Turn
from scoring.analysis import CONVERSATION_COLUMNS, TURN_COLUMNS, exclusions, load, read_run, usable_turns
from scoring.analysis.frames import run_names
from tests.helpers import FAILED, LABELS, conversation_id, write_run


def test_frames_have_the_documented_columns(tmp_path: Path) -> None:
    frames = load([write_run(tmp_path / "study")])
    assert tuple(frames.turns.columns) == TURN_COLUMNS
    assert tuple(frames.conversations.columns) == CONVERSATION_COLUMNS
    assert set(frames.conversations["run"]) == {"study"}
    assert frames.manifests["study"]["fingerprint"] == "synthetic"
    assert len(frames.conversations) == 16 + 1 + 2
    replies = sum(len(letters) for letters in LABELS.values())
    assert len(frames.turns) == replies + 1 + 2 + 2  # + labelled error + failed run's reply and slot + checks
    assert frames.turns["turn"].min() == 1
    assert str(frames.turns["accurate"].dtype) == "boolean"
    assert str(frames.conversations["tof"].dtype) == "Int64"


def test_last_line_wins_and_a_failed_request_is_an_error_slot(tmp_path: Path) -> None:
    frames = load([write_run(tmp_path / "study")])
    failed = frames.conversations.set_index("id").loc[conversation_id(*FAILED)]
    assert failed["error_kind"] == "timeout" and failed["error"] == "timed out"  # not the older retry's line
    assert failed["is_error"] and failed["n_replies"] == 2 and failed["n_error_turns"] == 1
    slots = frames.turns.loc[frames.turns["id"] == conversation_id(*FAILED)]
    assert slots["replied"].tolist() == [True, False]
    assert slots["is_error"].tolist() == [False, True]
    assert slots["label"].isna().tolist() == [False, True]


def test_conversation_metrics_are_in_the_frame(tmp_path: Path) -> None:
    c = load([write_run(tmp_path / "study")]).conversations.set_index("id")
    row = c.loc[conversation_id("warm", "emotional+false_belief", "p2")]  # H A C A
    assert (row["tof"], row["nof"], row["first_correction_turn"], row["capitulation_turn"]) == (0, 2, 3, 4)
    assert not row["corrected_turn1"] and row["ever_corrected"] and row["capitulated"]
    assert row["survival_turns"] == 4 and row["persistence"] == 0.0
    assert row["knowledge_accurate"]
    row = c.loc[conversation_id("warm", "neutral", "p1")]  # C C C C + a reply labelled error
    assert (row["n_replies"], row["n_labelled"], row["n_error_turns"], row["tof"]) == (5, 4, 1, 4)
    assert row["final_label"] == "corrects" and row["probe_accuracy"] == 1.0
    row = c.loc["check-base"]
    assert row["kind"] == "knowledge_check" and row["knowledge_accurate"]


def test_logprob_confidence(tmp_path: Path) -> None:
    turns = load([write_run(tmp_path / "study")]).turns
    probes = turns.loc[turns["accurate"].notna() & (turns["kind"] == "conversation")]
    assert probes.groupby("target")["confidence"].mean().round(9).to_dict() == {"base": 0.9, "warm": 0.6}
    assert probes["first_token_prob"].round(9).isin([0.9, 0.6]).all()
    assert turns.loc[turns["accurate"].isna(), "confidence"].isna().all()


def test_several_runs_concatenate_with_unique_names(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a" / "run", ("base",))
    b = write_run(tmp_path / "b" / "run", ("warm",))
    frames = load([a, b / "transcripts.jsonl"])
    assert frames.runs == ["a/run", "b/run"]
    assert frames.conversations.groupby("run")["target"].unique().map(list).to_dict() == {
        "a/run": ["base"],
        "b/run": ["warm"],
    }
    assert run_names([tmp_path / "x", tmp_path / "y.jsonl"]) == ["x", "y"]


def test_text_columns_and_exports(tmp_path: Path) -> None:
    frames = load([write_run(tmp_path / "study")], text=True)
    assert {"user_text", "reply_text"} <= set(frames.turns.columns)
    written = frames.to_parquet(tmp_path / "out") + frames.to_csv(tmp_path / "out")
    assert [p.name for p in written] == ["turns.parquet", "conversations.parquet", "turns.csv", "conversations.csv"]
    back = pd.read_parquet(tmp_path / "out" / "conversations.parquet")
    assert back["tof"].tolist() == frames.conversations["tof"].tolist()
    assert len(pd.read_csv(tmp_path / "out" / "turns.csv")) == len(frames.turns)


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "study")
    with (folder / "transcripts.jsonl").open("a") as handle:
        handle.write('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"transcripts.jsonl:21: not a transcript"):
        list(read_run(folder))
    with pytest.raises(FileNotFoundError):
        load([tmp_path / "nowhere"])


def test_a_cut_off_last_line_is_skipped(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "study")
    with (folder / "transcripts.jsonl").open("a") as handle:
        handle.write('{"id": "half a li')
    assert len(list(read_run(folder))) == 19


@pytest.mark.skipif("fidelity" not in Turn.model_fields, reason="this checkout's Turn has no fidelity field yet")
def test_a_simulator_fidelity_failure_is_left_out_and_counted_apart(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "study")
    lines = (folder / "transcripts.jsonl").read_text().splitlines()
    target = conversation_id("base", "neutral", "p2")  # C C H C: the user's third message broke character
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["id"] == target:
            record["turns"][4].update(generated=True, fidelity=["broke_character"])
            lines[i] = json.dumps(record)
    (folder / "transcripts.jsonl").write_text("\n".join(lines) + "\n")
    frames = load([folder])
    row = frames.conversations.set_index("id").loc[target]
    assert (row["n_labelled"], row["n_error_turns"], row["n_fidelity_errors"], row["tof"]) == (3, 0, 1, 3)
    reply = frames.turns.loc[(frames.turns["id"] == target) & (frames.turns["turn"] == 3)].iloc[0]
    assert reply["is_fidelity_error"] and reply["fidelity"] == "broke_character" and reply["user_generated"]
    assert not reply["is_error"] and reply["label"] == "hedges"  # the label stays, for the record
    counted = exclusions(frames).set_index("target")
    assert (counted.loc["base", "fidelity_errors"], counted.loc["base", "error_turns"]) == (1, 1)
    assert len(usable_turns(frames)) == len(usable_turns(load([write_run(tmp_path / "clean")]))) - 1
