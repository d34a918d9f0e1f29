"""The turn journal: every finished exchange of a conversation in flight, so that it resumes where it was.

A conversation killed mid-way (SIGKILL, Ctrl-C, a lost node), or retried after an error, goes on
from its last finished exchange (a user turn and its labelled reply) instead of its first: the
finished exchanges are taken as they were, the scripted user's choices are replayed, and the
next request has the same messages and seed as in an uninterrupted run.

One file per run, ``OUT/journal.jsonl``, appended and flushed like ``transcripts.jsonl`` (a torn
last line is cut back when it is opened). Each line is one finished exchange,
``{"id", "n", "user", "reply"}`` (``n`` counts exchanges from 0), or ``{"id", "done": true}`` once
the conversation's line is in ``transcripts.jsonl``, which makes its exchanges obsolete. One
append-only file rather than one file per conversation: a run has hundreds of conversations in
flight and thousands in all; one file costs one write per turn and no file to create or delete
per conversation, and a kill can leave nothing worse than a torn last line. Obsolete lines are
dropped when the journal is opened and closed (compaction); the file goes when nothing is left.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from scenarios import Status, Turn
from simulator.store import StoreError, append_line, cut_torn_tail

__all__ = ["Exchange", "Journal", "finished_exchanges"]

JOURNAL = "journal.jsonl"

Exchange = tuple[Turn, Turn]
"""A user turn and the labelled reply it got."""


def finished_exchanges(turns: Sequence[Turn]) -> list[Exchange]:
    """The exchanges at the start of ``turns`` that finished: a user turn, then a labelled reply."""
    finished: list[Exchange] = []
    for user, reply in zip(turns[::2], turns[1::2], strict=False):
        if user.role != "user" or reply.role != "assistant" or reply.label is None:
            break
        finished.append((user, reply))
    return finished


class Journal:
    """Appends finished exchanges to ``DIR/journal.jsonl`` and gives them back to a resumed run."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL
        self._handle: BinaryIO | None = None
        self._resume: dict[str, list[bytes]] = {}  # the exchange lines of unfinished conversations, as read
        self._journalled: set[str] = set()  # conversations with exchanges in the file, not done

    def open(self, statuses: Mapping[str, Status]) -> Journal:
        """Read what earlier runs left, keep the exchanges of conversations not finished yet (those without a
        transcript line, or whose line is an error), and compact the file to them.

        Raises:
            StoreError: the file cannot be read or written.
        """
        try:
            self._read(cut_torn_tail(self.path).splitlines())
            for conversation in [c for c, status in statuses.items() if status is not Status.ERROR]:
                self._resume.pop(conversation, None)
            self._compact()
            self._handle = self.path.open("ab", buffering=0)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._journalled = set(self._resume)
        return self

    def _read(self, lines: Iterable[bytes]) -> None:
        for line in (line.rstrip(b"\n") for line in lines):
            try:
                record = json.loads(line)
                conversation = record["id"]
                if record.get("done"):
                    self._resume.pop(conversation, None)
                    continue
                kept = self._resume.setdefault(conversation, [])
                if record["n"] <= len(kept):  # a line for an exchange already there replaces it and what followed
                    kept[record["n"] :] = [line]
            except (ValueError, KeyError, TypeError):
                continue  # not a journal line: its exchange is done again

    def _compact(self) -> None:
        lines = [line for conversation in self._resume.values() for line in conversation]
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_suffix(".jsonl.tmp")
        temporary.write_bytes(b"".join(line + b"\n" for line in lines))
        temporary.replace(self.path)

    def exchanges(self, conversation: str) -> list[Exchange]:
        """The finished exchanges journalled for a conversation, in order (given once)."""
        found = []
        for line in self._resume.pop(conversation, []):
            record = json.loads(line)
            found.append((Turn.model_validate(record["user"]), Turn.model_validate(record["reply"])))
        return found

    def record(self, conversation: str, number: int, exchange: Exchange) -> None:
        """Append a conversation's finished exchange ``number`` (from 0); it replaces any exchange journalled
        before with that number or a later one.

        Raises:
            StoreError: the write failed (disk full, folder removed).
        """
        assert self._handle is not None, "open() the journal first"
        user, reply = (turn.model_dump(mode="json", exclude_none=True) for turn in exchange)
        append_line(
            self._handle, self.path, json.dumps({"id": conversation, "n": number, "user": user, "reply": reply})
        )
        self._journalled.add(conversation)

    def finish(self, conversation: str) -> None:
        """Mark a conversation's exchanges obsolete: its line is in ``transcripts.jsonl``.

        Raises:
            StoreError: the write failed (disk full, folder removed).
        """
        assert self._handle is not None, "open() the journal first"
        if conversation in self._journalled:
            append_line(self._handle, self.path, json.dumps({"id": conversation, "done": True}))
            self._journalled.discard(conversation)

    def close(self) -> None:
        """Close, and compact the file to the conversations still unfinished (none: the file goes)."""
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        self._resume = {}
        with contextlib.suppress(OSError):  # compaction is an economy: the next open() does it too
            with self.path.open("rb") as handle:
                self._read(handle)
            self._compact()
        self._journalled = set()
