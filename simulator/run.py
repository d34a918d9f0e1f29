"""Running a configured batch: resolve files, plan, check servers, run, write the manifest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personas import LoadedPersona, resolve_personas
from scenarios import LoadedScenario, Transcript, resolve_scenarios
from scoring import Judge, RuleJudge
from simulator.backends.base import Backend, BackendError
from simulator.backends.http import HttpBackend
from simulator.config import RunConfig, TargetConfig
from simulator.manifest import check_compatible, write_manifest
from simulator.plan import ConversationSpec, build_plan, knowledge_checks, sample_plan
from simulator.runner import BatchSummary, pending, run_batch
from simulator.store import TranscriptStore

__all__ = ["PreparedRun", "RunError", "execute", "make_judge", "prepare"]


class RunError(Exception):
    """The run cannot start: an unreachable server, a model it does not serve, a bad judge name."""


@dataclass
class PreparedRun:
    """A run ready to go: its plan, and what of it the output folder already holds."""

    config: RunConfig
    folder: Path
    scenarios: list[LoadedScenario]
    personas: list[LoadedPersona]
    plan: list[ConversationSpec]
    store: TranscriptStore


def make_judge(spec: str) -> Judge:
    """The judge a ``--judge`` spec names.

    Raises:
        RunError: no such judge.
    """
    if spec == "rules":
        return RuleJudge()
    raise RunError(f"unknown judge {spec!r}; available: rules")


def prepare(config: RunConfig) -> PreparedRun:
    """Resolve scenarios and personas, expand the plan and open the output folder.

    Raises:
        FileErrors: a scenario or persona file is wrong.
        ManifestMismatch: the output folder holds another run.
        StoreError: the output folder cannot be written.
    """
    scenarios = resolve_scenarios(config.scenarios)
    personas = resolve_personas(config.personas)
    plan = build_plan(scenarios, personas, config.conditions, config.targets, config.seeds, config.turns, config.judge)
    if config.sample is not None:
        plan = sample_plan(plan, config.sample, config.sample_seed)
    if config.knowledge_check:
        used = {spec.scenario.scenario.id for spec in plan}
        plan += knowledge_checks([s for s in scenarios if s.scenario.id in used], config.targets, config.judge)
    folder = config.output_dir()
    check_compatible(folder, config)
    store = TranscriptStore(folder).open()
    return PreparedRun(config, folder, scenarios, personas, plan, store)


def open_backend(target: TargetConfig, config: RunConfig) -> Backend:
    """The backend that serves a target: its HTTP server, or the embedded model when it has no URL.

    Raises:
        RunError: the embedded model is wanted but not installed.
    """
    if target.base_url is None:
        from simulator.backends.embedded import EmbeddedBackend
        from simulator.models import ModelUnavailable, default_model_dir

        try:
            return EmbeddedBackend(default_model_dir())
        except ModelUnavailable as exc:
            raise RunError(str(exc)) from None
    return HttpBackend(
        target.base_url,
        target.model,
        api_key_env=target.api_key_env,
        timeout=target.timeout,
        max_retries=target.max_retries,
        concurrency=config.concurrency,
        rps=config.rps,
    )


async def check_servers(backends: dict[str, Backend], targets: list[TargetConfig]) -> dict[str, Any]:
    """Ask every HTTP target's server which models it serves; the target's model must be one.

    Raises:
        RunError: a server is unreachable or does not serve the target's model.
    """
    servers: dict[str, Any] = {}
    for target in targets:
        backend = backends[target.name]
        if not isinstance(backend, HttpBackend):
            servers[target.name] = {"backend": backend.name}
            continue
        try:
            models = await backend.get_json("/models")
        except BackendError as exc:
            raise RunError(
                f"cannot reach target {target.name!r} at {backend.base_url} ({exc.reason}); "
                "is the server running? `convsim serve MODEL` starts one"
            ) from None
        served = [m.get("id") for m in models.get("data", []) if isinstance(m, dict)]
        if target.model not in served:
            raise RunError(
                f"{backend.base_url} does not serve model {target.model!r}; it serves: {', '.join(map(str, served))}"
            )
        servers[target.name] = {"base_url": backend.base_url, "models": models}
    return servers


async def execute(
    run: PreparedRun,
    backends: dict[str, Backend],
    *,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[Transcript], None] | None = None,
) -> BatchSummary:
    """Run what the folder does not hold yet, then record the manifest with the summary.

    ``on_start(total, already_done)`` is called once the servers answered.
    """
    config = run.config
    servers = await check_servers(backends, config.targets)
    todo = pending(run.plan, run.store)

    def record(summary: dict[str, Any] | None) -> None:
        write_manifest(run.folder, config, scenarios=run.scenarios, personas=run.personas,
                       plan_size=len(run.plan), servers=servers, summary=summary)  # fmt: skip

    record(None)
    if on_start is not None:
        on_start(len(run.plan), len(run.plan) - len(todo))
    summary = BatchSummary(skipped=len(run.plan) - len(todo))
    try:
        summary = await run_batch(
            todo, backends, make_judge(config.judge), run.store, concurrency=config.concurrency, on_done=on_done
        )
        summary.skipped = len(run.plan) - len(todo)
    finally:
        done = dict(Counter(str(status) for status in run.store.statuses.values()))
        record({"statuses": done})
    return summary
