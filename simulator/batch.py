"""The batch: a pool of workers holding many conversations at once, each written out as soon as it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from scenarios import Status, Transcript
from scoring import Judge, RunTotals
from scoring.structured import JsonChat
from simulator.backends.base import Backend
from simulator.engine import run_conversation
from simulator.journal import Exchange, Journal
from simulator.limiter import AdaptiveLimit
from simulator.plan import ConversationSpec
from simulator.store import StoreError, TranscriptStore
from simulator.users import user_for

__all__ = ["BatchSummary", "pending", "run_batch"]


@dataclass
class BatchSummary:
    """What a batch did: conversations by status, those skipped because they were done, and the run's totals."""

    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    totals: RunTotals | None = None  # the whole run folder's figures, once the batch has ended

    @property
    def ran(self) -> int:
        """Conversations run in this batch."""
        return sum(self.statuses.values())


def pending(
    plan: Sequence[ConversationSpec], store: TranscriptStore, *, retry_errors: bool = False
) -> list[ConversationSpec]:
    """The conversations of the plan that the store does not hold yet.

    With ``retry_errors``, also those that ended in an error; their new line supersedes the old.
    """

    def done(spec: ConversationSpec) -> bool:
        status = store.statuses.get(spec.id)
        return status is not None and not (retry_errors and status is Status.ERROR)

    return [spec for spec in plan if not done(spec)]


async def run_batch(
    specs: Sequence[ConversationSpec],
    backends: Mapping[str, Backend],
    judge: Judge,
    store: TranscriptStore,
    journal: Journal,
    *,
    concurrency: int,
    retried: Mapping[str, Sequence[Exchange]] | None = None,
    user_chat: JsonChat | None = None,
    on_done: Callable[[Transcript], None] | None = None,
    limits: Mapping[str, AdaptiveLimit] | None = None,
) -> BatchSummary:
    """Run every spec with at most ``concurrency`` conversations in flight.

    Each transcript is appended to the store the moment it ends, and each finished exchange of a
    conversation in flight to the journal, so an interruption loses only the exchanges in flight: a
    conversation goes on from its last finished exchange, journalled or (for a retried error, in
    ``retried``) kept in its transcript. ``backends`` maps target names to backends;
    ``user_chat`` is the user model, if the user is not scripted. ``limits`` (by target
    name) bound each target's conversations in flight further, by a limit that may move.

    Raises:
        StoreError: a transcript could not be written; the conversations in flight are cancelled.
    """
    summary = BatchSummary()
    queue: asyncio.Queue[ConversationSpec] = asyncio.Queue()
    for spec in specs:
        queue.put_nowait(spec)

    async def worker() -> None:
        while True:
            try:
                spec = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            limit = (limits or {}).get(spec.target.name) or contextlib.nullcontext()
            resume = journal.exchanges(spec.id)
            if not resume and retried and spec.id in retried:
                resume = list(retried[spec.id])
                for number, finished in enumerate(resume):  # journalled, in case this attempt is cut off too
                    journal.record(spec.id, number, finished)
            record = partial(journal.record, spec.id)
            async with limit:
                user = user_for(spec, user_chat)
                transcript = await run_conversation(
                    spec, user, backends[spec.target.name], judge, resume=resume, on_exchange=record
                )
            store.append(transcript)
            journal.finish(spec.id)
            summary.statuses[transcript.status] += 1
            if transcript.status is Status.ERROR and transcript.error_kind:
                summary.errors[transcript.error_kind] += 1
            if on_done is not None:
                on_done(transcript)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(specs))):
                group.create_task(worker())
    except* StoreError as failed:  # the disk is full: one clear error, not a group of tracebacks
        raise failed.exceptions[0] from None
    return summary
