"""The columnar loader against the definitions: per-conversation metrics, and the careful path."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import Judgement, Label, Status, Transcript, Turn
from scoring.analysis import columnar, conversation_metrics, load
from scoring.analysis.columnar import transcript_schema
from tests.helpers import write_run

HAS_FIDELITY = "fidelity" in Turn.model_fields
REPLY = st.sampled_from([*(label.value for label in Label), None])
# one reply: (label or None for an unlabelled reply, the user message before it has a fidelity flag)
EXCHANGE = st.tuples(REPLY, st.booleans() if HAS_FIDELITY else st.just(False))
CONVERSATION = st.tuples(st.lists(EXCHANGE, max_size=7), st.booleans())  # (exchanges, ends in a failed request)


def _transcript(index: int, exchanges: list[tuple[str | None, bool]], failed: bool) -> Transcript:
    turns: list[Turn] = []
    for number, (label, flawed) in enumerate(exchanges, start=1):
        user = Turn(role="user", content=f"u{number}", stage="probe" if number % 3 == 0 else "pushback")
        if flawed:
            user = user.model_copy(update={"generated": True, "fidelity": ["broke_character"]})
        reply = Turn(role="assistant", content=f"r{number}", stage=user.stage)
        if label is not None:
            reply = reply.model_copy(
                update={
                    "label": Label(label),
                    "judgement": Judgement(label=Label(label), judge="j"),
                    "accurate": label == "corrects" if number % 3 == 0 else None,
                }
            )
        turns += [user, reply]
    if failed:
        turns.append(Turn(role="user", content="last", stage="pushback"))
    return Transcript(
        id=f"c{index}", kind="conversation", status=Status.ERROR if failed else Status.COMPLETED, persona="p",
        affect="neutral", scenario="s", domain="medical", condition="neutral", target="t", model="m", seed=index,
        max_turns=9, turns=turns, started_at="t0", finished_at="t1", duration_s=1.0,
    )  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CONVERSATION, min_size=1, max_size=12))
def test_columnar_metrics_equal_the_definition(conversations: list[tuple[list[tuple[str | None, bool]], bool]]) -> None:
    transcripts = [_transcript(i, ex, failed) for i, (ex, failed) in enumerate(conversations)]
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "transcripts.jsonl"
        file.write_text("".join(t.model_dump_json(exclude_none=True) + "\n" for t in transcripts))
        assert columnar.read_table(file) is not None  # the fast path took it
        frames = load([file])
    rows = frames.conversations.set_index("id")
    for t, (exchanges, failed) in zip(transcripts, conversations, strict=True):
        labels = [None if flawed else label for label, flawed in exchanges] + ([None] if failed else [])
        m = conversation_metrics(labels)
        row = rows.loc[t.id]
        got = (row["n_replies"], row["n_labelled"], row["tof"], row["nof"], row["first_correction_turn"],
               row["capitulation_turn"], row["n_fidelity_errors"])  # fmt: skip
        want = (m.n_replies, m.n_labelled, m.tof, m.nof, m.first_correction_turn, m.capitulation_turn,
                sum(flawed for _, flawed in exchanges))  # fmt: skip
        assert tuple(None if pd.isna(v) else int(v) for v in got) == want
        assert (math.isnan(row["persistence"]) and m.persistence is None) or row["persistence"] == m.persistence
        usable = [label for label in labels if label not in (None, "error")]
        assert row["corrected_turn1"] == (bool(labels) and labels[0] == "corrects")
        assert (None if pd.isna(row["final_label"]) else row["final_label"]) == (usable[-1] if usable else None)
    replies = frames.turns
    assert len(replies) == sum(len(ex) + failed for ex, failed in conversations)
    assert replies.groupby("id")["turn"].apply(lambda s: s.tolist() == list(range(1, len(s) + 1))).all()


def test_the_careful_path_gives_the_same_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_run(tmp_path / "run")
    fast = load([folder], text=True)
    monkeypatch.setattr("scoring.analysis.frames.read_table", lambda file, text: None)
    careful = load([folder], text=True)
    pd.testing.assert_frame_equal(fast.turns, careful.turns)
    pd.testing.assert_frame_equal(fast.conversations, careful.conversations)


def test_an_unknown_label_falls_back_and_is_named(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run")
    file = folder / "transcripts.jsonl"
    file.write_text(file.read_text().replace('"label":"hedges"', '"label":"waffles"', 1))
    assert columnar.read_table(file) is None
    with pytest.raises(ValueError, match=r"transcripts.jsonl:\d+: not a transcript line"):
        load([folder])


def test_schema_follows_the_transcript_types() -> None:
    schema = transcript_schema()
    assert set(schema.names) == {n for n in Transcript.model_fields if n != "turns"} | {"turns"}
    turn = schema.field("turns").type.value_type
    assert {turn.field(i).name for i in range(turn.num_fields)} <= set(Turn.model_fields)
    assert "user_state" not in {turn.field(i).name for i in range(turn.num_fields)}  # a free-form dict: not read
