"""The Python API: run a batch from a notebook or a script, as ``convsim run`` does.

Example::

    from simulator import RunConfig, TargetConfig, run

    config = RunConfig(targets=[TargetConfig(name="base", base_url="http://127.0.0.1:8000/v1", model="base")])
    result = run(config)
    frames = result.frames()  # scoring.analysis.Frames: one row per conversation and per turn
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios import Transcript
from simulator.backends.outage import Outages
from simulator.batch import BatchSummary
from simulator.config import RunConfig
from simulator.prepared import PreparedRun, execute, prepare, replica_stats
from simulator.roles import open_roles
from simulator.store import read_transcripts

if TYPE_CHECKING:
    from scoring.analysis import Frames

__all__ = ["RunResult", "arun", "run"]


@dataclass
class RunResult:
    """What a run did and where it is.

    Attributes:
        folder: the run folder (``transcripts.jsonl``, ``manifest.json``).
        summary: conversations by status in this batch, those skipped as done, and the whole
            folder's totals (``summary.totals``: correction rates by turn, errors by kind, ...).
        replicas: each replica pool's requests, failures and ejections, by role.
    """

    folder: Path
    summary: BatchSummary
    replicas: dict[str, list[dict[str, Any]]]

    def transcripts(self) -> list[Transcript]:
        """The run's transcripts (the latest of each conversation)."""
        return list(read_transcripts(self.folder))

    def frames(self) -> Frames:
        """The run as analysis frames (:func:`scoring.analysis.load`: pandas, imported now)."""
        from scoring.analysis import load

        return load([self.folder])


async def arun(
    config: RunConfig | PreparedRun,
    *,
    outages: Outages | None = None,
    on_start: Callable[[Counter[str], Counter[str]], None] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
) -> RunResult:
    """Run a batch: plan it (from a config), open the roles' backends, run what the folder does not
    hold yet, then close the backends and the folder. Running it again resumes.

    Args:
        config: a run config, or a run :func:`~simulator.prepared.prepare` (or ``prepare_replay``) made.
        outages: told of servers that stop answering (default: a new, silent one).
        on_start: called with the counts by kind planned and already done, once the servers answered.
        on_done: called with each transcript as it is written.

    Raises:
        FileErrors: a scenario or persona file is wrong.
        ManifestMismatch: the output folder holds another run.
        RoleError: a role cannot be filled (a missing judge model, the embedded model not installed).
        RunError: a server cannot be reached or does not serve its role's model; nothing is written.
        StoreError: the run folder cannot be written.
    """
    prepared = config if isinstance(config, PreparedRun) else prepare(config)
    try:
        roles = open_roles(prepared.config, outages)
        try:
            summary = await execute(prepared, roles, on_start=on_start, on_done=on_done)
            replicas = replica_stats(roles)
        finally:
            await roles.aclose()
    finally:
        prepared.close()
    return RunResult(prepared.folder, summary, replicas)


def run(
    config: RunConfig | PreparedRun,
    *,
    outages: Outages | None = None,
    on_start: Callable[[Counter[str], Counter[str]], None] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
) -> RunResult:
    """:func:`arun`, for code that is not async. Inside a running event loop (a Jupyter notebook) it
    runs in a thread of its own; there ``await arun(...)`` works as well."""
    job = arun(config, outages=outages, on_start=on_start, on_done=on_done)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    with ThreadPoolExecutor(1, thread_name_prefix="convsim-run") as pool:
        return pool.submit(asyncio.run, job).result()
