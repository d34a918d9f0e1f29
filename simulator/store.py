"""The transcript store: one JSON line per finished conversation, appended and flushed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from scenarios import Status, Transcript

__all__ = ["StoreError", "TranscriptStore", "append_line", "cut_torn_tail", "read_transcripts"]

TRANSCRIPTS = "transcripts.jsonl"


class StoreError(Exception):
    """The output folder cannot be written."""


def cut_torn_tail(path: Path) -> bytes:
    """Remove a last line cut short by a kill from ``path`` (if it exists); its whole lines.

    Raises:
        OSError: the file cannot be read or cut.
    """
    if not path.exists():
        return b""
    with path.open("rb+") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            handle.truncate(keep)
    return data[:keep]


def append_line(handle: BinaryIO, path: Path, text: str) -> None:
    """Write ``text`` and a newline to an unbuffered handle, straight to the operating system.

    A write that fails part-way (a disk that fills mid-line) is cut back off, so the
    file still ends with the last whole line.

    Raises:
        StoreError: the write failed (disk full, folder removed).
    """
    line = memoryview((text + "\n").encode("utf-8"))
    start = None
    try:
        start = handle.seek(0, os.SEEK_END)  # where this line begins (not tell(): see below)
        while line:
            written = handle.write(line)
            if not written:
                raise OSError(f"wrote 0 of {len(line)} bytes")
            line = line[written:]
    except OSError as exc:
        if start is not None:
            with contextlib.suppress(OSError):  # best effort; the next open() repairs a cut-off line too
                handle.truncate(start)  # leaves the position past the end, hence the seek above
        raise StoreError(f"cannot append to {path}: {exc.strerror or exc}") from None


def read_transcripts(path: Path) -> Iterator[Transcript]:
    """Every conversation in a transcript file (a folder or the ``.jsonl`` itself).

    When an id appears more than once (a retried error), the last line wins.

    Raises:
        StoreError: a line is not a transcript.
    """
    file = path / TRANSCRIPTS if path.is_dir() else path
    # Two passes, so that memory holds the ids, never the whole file: which line of each id is
    # the last, then those lines, in file order.
    latest: dict[str, int] = {}
    whole = 0  # lines that end in a newline
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.endswith("\n"):
                try:
                    latest[json.loads(line)["id"]] = whole
                except (ValueError, KeyError, TypeError):
                    raise StoreError(f"{file}:{number}: not a transcript line") from None
                whole += 1
    wanted = set(latest.values())
    del latest
    index = 0
    with file.open(encoding="utf-8") as handle:
        for line in handle:
            if index >= whole:  # lines appended since the first pass
                break
            if line.endswith("\n"):
                if index in wanted:
                    yield Transcript.model_validate_json(line)
                index += 1


class TranscriptStore:
    """Appends transcripts to ``DIR/transcripts.jsonl``; knows which ids are already there.

    On opening, a last line cut short by a kill is removed, so the file only ever
    holds whole lines.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / TRANSCRIPTS
        self._handle: BinaryIO | None = None
        self.statuses: dict[str, Status] = {}

    def open(self) -> TranscriptStore:
        """Create the folder if needed, repair a cut-off last line, read the ids done.

        Raises:
            StoreError: the folder or file cannot be created or written.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._repair()
            self._handle = self.path.open("ab", buffering=0)  # unbuffered: nothing lingers in memory
        except OSError as exc:
            raise StoreError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        return self

    def _repair(self) -> None:
        for number, line in enumerate(cut_torn_tail(self.path).splitlines(), start=1):
            try:
                record = json.loads(line)
                self.statuses[record["id"]] = Status(record["status"])
            except (ValueError, KeyError, TypeError):
                raise StoreError(f"{self.path}:{number}: not a transcript line; move the file away or fix it") from None

    def append(self, transcript: Transcript) -> None:
        """Write one conversation as one line (:func:`append_line`).

        Raises:
            StoreError: the write failed (disk full, folder removed).
        """
        assert self._handle is not None, "open() the store first"
        append_line(self._handle, self.path, transcript.model_dump_json(exclude_none=True))
        self.statuses[transcript.id] = transcript.status

    def close(self) -> None:
        """Flush to disk and close."""
        if self._handle is not None:
            try:
                os.fsync(self._handle.fileno())
            finally:
                self._handle.close()
                self._handle = None
