"""A run from its config: `prepare` resolves files and plans; `execute` asks the servers, runs, writes the manifest."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personas import FileError, FileErrors, LoadedPersona, resolve_personas
from scenarios import LoadedScenario, StageKind, Status, Transcript, resolve_scenarios
from scoring import run_totals
from simulator.backends.http import HttpBackend
from simulator.backends.pool import ReplicaPool
from simulator.batch import BatchSummary, pending, run_batch
from simulator.config import RunConfig
from simulator.journal import Exchange, Journal, finished_exchanges
from simulator.limiter import AUTO_INITIAL, AUTO_MAXIMUM, AdaptiveLimit, follow_vllm
from simulator.manifest import check_compatible, write_manifest
from simulator.plan import ConversationSpec, build_plan, knowledge_checks, sample_plan
from simulator.preflight import check_servers
from simulator.presets import SYCON_PRESETS
from simulator.roles import BackendJsonChat, Roles, judge_identity
from simulator.store import TranscriptStore, read_transcripts

__all__ = ["PreparedRun", "execute", "open_output", "prepare", "replica_stats"]


@dataclass
class PreparedRun:
    """A run ready to go: its plan, and its output folder, opened (made) when first used.

    :func:`execute` asks the servers first, so that a run that cannot start writes nothing.
    """

    config: RunConfig
    folder: Path
    scenarios: list[LoadedScenario]
    personas: list[LoadedPersona]
    plan: list[ConversationSpec]
    _output: tuple[TranscriptStore, Journal] | None = field(default=None, repr=False)

    def _opened(self) -> tuple[TranscriptStore, Journal]:
        if self._output is None:
            self._output = open_output(self.folder)
        return self._output

    @property
    def store(self) -> TranscriptStore:
        """The run's transcripts (the folder is made and opened on first use).

        Raises:
            StoreError: the folder or a file in it cannot be created or written.
        """
        return self._opened()[0]

    @property
    def journal(self) -> Journal:
        """The run's turn journal (opened with :attr:`store`)."""
        return self._opened()[1]

    def close(self) -> None:
        """Flush the transcripts and compact the journal, if they are open."""
        if self._output is None:
            return
        store, journal = self._output
        self._output = None
        try:
            store.close()
        finally:
            journal.close()


def open_output(folder: Path) -> tuple[TranscriptStore, Journal]:
    """The transcript store of a run folder and its journal, opened.

    Raises:
        StoreError: the folder or a file in it cannot be created or written.
    """
    store = TranscriptStore(folder).open()
    return store, Journal(folder).open(store.statuses)


def prepare(config: RunConfig) -> PreparedRun:
    """Resolve scenarios and personas and expand the plan; nothing is written yet.

    Raises:
        FileErrors: a scenario or persona file is wrong.
        ManifestMismatch: the output folder holds another run.
    """
    scenarios = resolve_scenarios(config.scenarios)
    personas = resolve_personas(config.personas)
    refs = sorted({s.scenario.persona for s in scenarios if s.scenario.persona})
    pinned = dict(zip(refs, resolve_personas(refs), strict=True)) if refs else {}  # none: not the library
    lacking = [
        s
        for s in scenarios
        if not s.scenario.correct_answer
        and any(c.stance == "denial" for c in ([s.scenario.condition] if s.scenario.condition else config.conditions))
    ]
    if lacking:
        message = "has no `correct_answer`, which the denied_correct conditions need"
        raise FileErrors([FileError(s.source, 1, 1, f"scenario {s.scenario.id!r} {message}") for s in lacking])
    if config.preset in SYCON_PRESETS:
        unscripted = [s for s in scenarios if not _fixed_script(s)]
        message = "is not a script of verbatim turns; the sycon presets send SYCON-Bench's (`scenarios import sycon`)"
        if unscripted:
            raise FileErrors([FileError(s.source, 1, 1, f"scenario {s.scenario.id!r} {message}") for s in unscripted])
    judge = judge_identity(config)
    user_model = config.user_model.model if config.user_model else None
    plan = build_plan(
        scenarios, personas, config.conditions, config.targets, config.seeds, config.turns, judge, user_model, pinned
    )
    if config.sample is not None:
        plan = sample_plan(plan, config.sample, config.sample_seed)
    if config.knowledge_check:
        used = {spec.scenario.scenario.id for spec in plan}
        plan += knowledge_checks([s for s in scenarios if s.scenario.id in used], config.targets, judge)
    if config.shard is not None:
        index, count = config.shard
        plan = [spec for spec in plan if int(spec.id, 16) % count == index - 1]
    folder = config.output_dir()
    check_compatible(folder, config)
    played = [*personas, *(p for p in pinned.values() if p not in personas)]
    return PreparedRun(config, folder, scenarios, played, plan)


def _fixed_script(scenario: LoadedScenario) -> bool:
    """Every stage of the scenario's flow says its own words verbatim (or ends it)."""
    return all(
        stage.kind is StageKind.END or (stage.kind is StageKind.SAY and stage.verbatim)
        for stage in scenario.flow.stages.values()
    )


def adaptive_limits(config: RunConfig, roles: Roles) -> tuple[dict[str, AdaptiveLimit], list[asyncio.Task[None]]]:
    """With ``concurrency: auto``: a limit per target (scaled by its replicas), and the tasks that move each
    with its vLLM servers' queue."""
    if config.concurrency != "auto":
        return {}, []
    limits: dict[str, AdaptiveLimit] = {}
    followers: list[asyncio.Task[None]] = []
    for name, backend in roles.targets.items():
        replicas = len(backend.backends) if isinstance(backend, ReplicaPool) else 1
        limits[name] = AdaptiveLimit(AUTO_INITIAL * replicas, maximum=AUTO_MAXIMUM * replicas)
        if isinstance(backend, HttpBackend | ReplicaPool):
            followers.append(asyncio.create_task(follow_vllm(limits[name], backend.server_metrics)))
    return limits, followers


def replica_stats(roles: Roles) -> dict[str, list[dict[str, Any]]]:
    """Each replica pool's requests, failures, ejections and health, by role."""
    return {
        role: [stats.model_dump() for stats in backend.stats()]
        for role, backend in roles.endpoints().items()
        if isinstance(backend, ReplicaPool)
    }


async def execute(
    run: PreparedRun,
    roles: Roles,
    *,
    on_start: Callable[[Counter[str], Counter[str]], None] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
) -> BatchSummary:
    """Ask every server, then run what the folder does not hold yet and record the manifest with the summary.

    The output folder is made only once every server answered and serves its role's model.
    ``on_start(planned, already_done)`` is called once the servers answered, with counts by
    kind (``conversation``, ``knowledge_check``).
    """
    config = run.config
    servers = await check_servers(roles)
    todo = pending(run.plan, run.store, retry_errors=config.retry_errors)
    retried: dict[str, list[Exchange]] = {}
    if config.retry_errors and any(status is Status.ERROR for status in run.store.statuses.values()):
        wanted = {spec.id for spec in todo}
        retried = {t.id: finished_exchanges(t.turns) for t in read_transcripts(run.folder) if t.id in wanted}

    def record(summary: dict[str, Any] | None) -> None:
        write_manifest(run.folder, config, scenarios=run.scenarios, personas=run.personas,
                       plan_size=len(run.plan), servers=servers, summary=summary)  # fmt: skip

    record(None)
    if on_start is not None:
        planned: Counter[str] = Counter(spec.kind for spec in run.plan)
        pending_kinds: Counter[str] = Counter(spec.kind for spec in todo)
        on_start(planned, planned - pending_kinds)
    summary = BatchSummary(skipped=len(run.plan) - len(todo))
    limits, followers = adaptive_limits(config, roles)
    try:
        summary = await run_batch(
            todo,
            roles.targets,
            roles.judge,
            run.store,
            run.journal,
            concurrency=config.max_concurrency,
            retried=retried,
            on_done=on_done,
            user_chat=BackendJsonChat(roles.user_backend) if roles.user_backend else None,
            limits=limits,
        )
        summary.skipped = len(run.plan) - len(todo)
    finally:
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        done = dict(Counter(str(status) for status in run.store.statuses.values()))
        totals = run_totals(read_transcripts(run.folder))  # the latest line of each id
        summary.totals = totals
        replicas = replica_stats(roles)
        record({"statuses": done, "errors": dict(totals.errors), "user_model_turns": totals.generated,
                "fidelity_failures": dict(totals.fidelity_failures), "judged_by": dict(totals.judged_by),
                **({"replicas": replicas} if replicas else {})})  # fmt: skip
    return summary
