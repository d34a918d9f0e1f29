"""Running a configured batch: resolve files, plan, check servers, run, write the manifest."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personas import FileError, FileErrors, LoadedPersona, resolve_personas
from scenarios import LoadedScenario, Transcript, resolve_scenarios
from scoring import fidelity_summary
from simulator.backends.base import BackendError, redact
from simulator.backends.http import HttpBackend
from simulator.config import RunConfig
from simulator.limiter import AdaptiveLimit, follow_vllm
from simulator.manifest import check_compatible, write_manifest
from simulator.plan import ConversationSpec, build_plan, knowledge_checks, sample_plan
from simulator.roles import BackendJsonChat, Roles, judge_identity
from simulator.runner import BatchSummary, pending, run_batch
from simulator.store import TranscriptStore, read_transcripts

__all__ = ["PreparedRun", "RunError", "execute", "prepare"]


class RunError(Exception):
    """The run cannot start: an unreachable server, or a model it does not serve."""


@dataclass
class PreparedRun:
    """A run ready to go: its plan, and what of it the output folder already holds."""

    config: RunConfig
    folder: Path
    scenarios: list[LoadedScenario]
    personas: list[LoadedPersona]
    plan: list[ConversationSpec]
    store: TranscriptStore


def prepare(config: RunConfig) -> PreparedRun:
    """Resolve scenarios and personas, expand the plan and open the output folder.

    Raises:
        FileErrors: a scenario or persona file is wrong.
        ManifestMismatch: the output folder holds another run.
        StoreError: the output folder cannot be written.
    """
    scenarios = resolve_scenarios(config.scenarios)
    personas = resolve_personas(config.personas)
    if any(condition.stance == "denial" for condition in config.conditions):
        lacking = [s for s in scenarios if not s.scenario.correct_answer]
        message = "has no `correct_answer`, which the denied_correct conditions need"
        if lacking:
            raise FileErrors([FileError(s.source, 1, 1, f"scenario {s.scenario.id!r} {message}") for s in lacking])
    judge = judge_identity(config)
    user_model = config.user_model.model if config.user_model else None
    plan = build_plan(
        scenarios, personas, config.conditions, config.targets, config.seeds, config.turns, judge, user_model
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
    store = TranscriptStore(folder).open()
    return PreparedRun(config, folder, scenarios, personas, plan, store)


async def check_servers(roles: Roles, config: RunConfig) -> dict[str, Any]:
    """Ask every HTTP endpoint which models it serves; each role's model must be one of them.

    Raises:
        RunError: a server is unreachable or does not serve the role's model.
    """
    servers: dict[str, Any] = {}
    for role, backend in roles.endpoints().items():
        if not isinstance(backend, HttpBackend):
            servers[role] = {"backend": backend.name}
            continue
        where = redact(backend.base_url)
        try:
            models = await backend.get_json("/models")
        except BackendError as exc:
            raise RunError(
                f"cannot reach {role} at {where} ({exc.reason}); "
                "is the server running? `convsim serve MODEL` starts one"
            ) from None
        served = [m.get("id") for m in models.get("data", []) if isinstance(m, dict)]
        if backend.model not in served:
            raise RunError(
                f"{where} does not serve model {backend.model!r} ({role}); it serves: {', '.join(map(str, served))}"
            )
        servers[role] = {"base_url": where, "model": backend.model, "models": models}
    return servers


def adaptive_limits(config: RunConfig, roles: Roles) -> tuple[dict[str, AdaptiveLimit], list[asyncio.Task[None]]]:
    """With ``concurrency: auto``: a limit per target, and the tasks that move each with its vLLM server's queue."""
    if config.concurrency != "auto":
        return {}, []
    limits: dict[str, AdaptiveLimit] = {}
    followers: list[asyncio.Task[None]] = []
    for name, backend in roles.targets.items():
        limits[name] = AdaptiveLimit()
        if isinstance(backend, HttpBackend):
            followers.append(asyncio.create_task(follow_vllm(limits[name], backend.server_metrics)))
    return limits, followers


async def execute(
    run: PreparedRun,
    roles: Roles,
    *,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
) -> BatchSummary:
    """Run what the folder does not hold yet, then record the manifest with the summary.

    ``on_start(total, already_done)`` is called once the servers answered.
    """
    config = run.config
    servers = await check_servers(roles, config)
    todo = pending(run.plan, run.store, retry_errors=config.retry_errors)

    def record(summary: dict[str, Any] | None) -> None:
        write_manifest(run.folder, config, scenarios=run.scenarios, personas=run.personas,
                       plan_size=len(run.plan), servers=servers, summary=summary)  # fmt: skip

    record(None)
    if on_start is not None:
        on_start(len(run.plan), len(run.plan) - len(todo))
    summary = BatchSummary(skipped=len(run.plan) - len(todo))
    limits, followers = adaptive_limits(config, roles)
    try:
        summary = await run_batch(
            todo,
            roles.targets,
            roles.judge,
            run.store,
            concurrency=config.max_concurrency,
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
        errors: Counter[str] = Counter()  # the latest line of each id

        def counted() -> Iterator[Transcript]:  # one pass over the file, one transcript in memory at a time
            for transcript in read_transcripts(run.folder):
                if transcript.error_kind:
                    errors[transcript.error_kind] += 1
                yield transcript

        generated, failures = fidelity_summary(counted())
        record({"statuses": done, "errors": dict(errors), "user_model_turns": generated,
                "fidelity_failures": dict(failures)})  # fmt: skip
    return summary
