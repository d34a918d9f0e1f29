"""The synthetic study of ``tests.helpers`` round-trips through a run folder."""

from __future__ import annotations

from pathlib import Path

from scenarios import Transcript
from tests.helpers import write_run


def test_the_synthetic_run_round_trips(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run")
    lines = (folder / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 16 + 1 + 1 + 2  # conversations, the failure, its older retry, knowledge checks
    parsed = [Transcript.model_validate_json(line) for line in lines]
    assert {t.kind for t in parsed} == {"conversation", "knowledge_check"}
