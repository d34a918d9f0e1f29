"""The transcript store: append and flush, resume, repair of a cut-off line, last line wins."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios import Status
from simulator.store import StoreError, TranscriptStore, read_transcripts
from tests.helpers import transcript


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TranscriptStore]:
    opened = TranscriptStore(tmp_path / "run").open()
    yield opened
    opened.close()


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_open_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "run"
    store = TranscriptStore(folder).open()
    store.close()
    assert folder.is_dir()
    assert store.statuses == {}


def test_append_writes_one_flushed_line(store: TranscriptStore) -> None:
    store.append(transcript("a"))
    lines = lines_of(store.path)  # read before close: the line is already flushed
    assert len(lines) == 1
    assert lines[0].endswith("\n")
    assert json.loads(lines[0])["id"] == "a"
    assert store.statuses == {"a": Status.COMPLETED}


def test_appended_lines_leave_out_nones(store: TranscriptStore) -> None:
    store.append(transcript("a"))
    record = json.loads(lines_of(store.path)[0])
    assert "error" not in record
    assert "judgement" not in record["turns"][1]


def test_reopen_reads_the_statuses(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("a"))
    store.append(transcript("b", Status.ERROR))
    store.append(transcript("c", Status.MAX_TURNS))
    store.close()
    reopened = TranscriptStore(tmp_path).open()
    reopened.close()
    assert reopened.statuses == {"a": Status.COMPLETED, "b": Status.ERROR, "c": Status.MAX_TURNS}


def test_reopen_appends_after_existing_lines(tmp_path: Path) -> None:
    first = TranscriptStore(tmp_path).open()
    first.append(transcript("a"))
    first.close()
    second = TranscriptStore(tmp_path).open()
    second.append(transcript("b"))
    second.close()
    assert [t.id for t in read_transcripts(tmp_path)] == ["a", "b"]


def test_a_cut_off_last_line_is_removed_on_open(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("a"))
    store.append(transcript("b"))
    store.close()
    whole = store.path.read_bytes()
    half = transcript("c").model_dump_json().encode()
    store.path.write_bytes(whole + half[: len(half) // 2])

    reopened = TranscriptStore(tmp_path).open()
    assert store.path.read_bytes() == whole
    assert reopened.statuses == {"a": Status.COMPLETED, "b": Status.COMPLETED}
    reopened.append(transcript("c"))
    reopened.close()
    assert all(json.loads(line) for line in lines_of(store.path))
    assert [t.id for t in read_transcripts(tmp_path)] == ["a", "b", "c"]


def test_a_file_holding_only_a_cut_off_line_is_emptied(tmp_path: Path) -> None:
    (tmp_path / "transcripts.jsonl").write_text('{"id": "a", "sta', encoding="utf-8")
    store = TranscriptStore(tmp_path).open()
    store.close()
    assert store.path.read_bytes() == b""
    assert store.statuses == {}


def test_read_transcripts_keeps_the_last_line_per_id(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("a", Status.ERROR))
    store.append(transcript("b"))
    store.append(transcript("a", Status.COMPLETED, reply="The retried reply."))
    store.close()
    read = list(read_transcripts(tmp_path))
    assert [t.id for t in read] == ["b", "a"]
    assert read[1].status is Status.COMPLETED
    assert read[1].replies[0].content == "The retried reply."


def test_read_transcripts_takes_the_file_or_its_folder(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("a"))
    store.close()
    assert [t.id for t in read_transcripts(tmp_path / "transcripts.jsonl")] == ["a"]
    assert [t.id for t in read_transcripts(tmp_path)] == ["a"]


def test_read_transcripts_skips_a_cut_off_last_line(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("a"))
    store.close()
    with store.path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "b", "kind": "conv')
    assert [t.id for t in read_transcripts(tmp_path)] == ["a"]


def test_transcripts_round_trip(store: TranscriptStore) -> None:
    original = transcript("a")
    store.append(original)
    store.close()
    assert list(read_transcripts(store.folder)) == [original]


def test_read_only_folder_raises_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(StoreError, match="cannot write"):
            TranscriptStore(folder).open()
        with pytest.raises(StoreError):
            TranscriptStore(folder / "sub").open()
    finally:
        folder.chmod(stat.S_IRWXU)


def test_folder_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot write"):
        TranscriptStore(blocker / "run").open()


def test_a_corrupt_whole_line_raises_store_error(tmp_path: Path) -> None:
    good = transcript("a").model_dump_json()
    (tmp_path / "transcripts.jsonl").write_text(f"{good}\nnot json at all\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"transcripts\.jsonl"):
        TranscriptStore(tmp_path).open()
