"""The transcript store: one JSON line per finished conversation, appended and flushed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from scenarios import Status, Transcript

__all__ = ["StoreError", "TranscriptStore", "read_transcripts"]

TRANSCRIPTS = "transcripts.jsonl"


class StoreError(Exception):
    """The output folder cannot be written."""


def read_transcripts(path: Path) -> Iterator[Transcript]:
    """Every conversation in a transcript file (a folder or the ``.jsonl`` itself).

    When an id appears more than once (a retried error), the last line wins.

    Raises:
        StoreError: a line is not a transcript.
    """
    file = path / TRANSCRIPTS if path.is_dir() else path
    latest: dict[str, int] = {}
    lines: list[str] = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.endswith("\n"):
                try:
                    latest[json.loads(line)["id"]] = len(lines)
                except (ValueError, KeyError, TypeError):
                    raise StoreError(f"{file}:{number}: not a transcript line") from None
                lines.append(line)
    for index in sorted(latest.values()):
        yield Transcript.model_validate_json(lines[index])


class TranscriptStore:
    """Appends transcripts to ``DIR/transcripts.jsonl``; knows which ids are already there.

    On opening, a last line cut short by a kill is removed, so the file only ever
    holds whole lines.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / TRANSCRIPTS
        self._handle: IO[str] | None = None
        self.statuses: dict[str, Status] = {}

    def open(self) -> TranscriptStore:
        """Create the folder if needed, repair a cut-off last line, read the ids done.

        Raises:
            StoreError: the folder or file cannot be created or written.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._repair()
            self._handle = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        return self

    def _repair(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                handle.truncate(keep)
        for number, line in enumerate(data[:keep].splitlines(), start=1):
            try:
                record = json.loads(line)
                self.statuses[record["id"]] = Status(record["status"])
            except (ValueError, KeyError, TypeError):
                raise StoreError(f"{self.path}:{number}: not a transcript line; move the file away or fix it") from None

    def append(self, transcript: Transcript) -> None:
        """Write one conversation as one line and flush it to the operating system.

        Raises:
            StoreError: the write failed (disk full, folder removed).
        """
        assert self._handle is not None, "open() the store first"
        line = transcript.model_dump_json(exclude_none=True) + "\n"
        try:
            self._handle.write(line)
            self._handle.flush()
        except OSError as exc:
            raise StoreError(f"cannot append to {self.path}: {exc.strerror or exc}") from None
        self.statuses[transcript.id] = transcript.status

    def close(self) -> None:
        """Flush to disk and close."""
        if self._handle is not None:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            finally:
                self._handle.close()
                self._handle = None
