"""`convsim run`, `replay` and `merge`: run batches, send stored user turns to other targets, join shards."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

from scenarios import Condition, Transcript
from scoring import CorrectionRates
from simulator.api import RunResult, arun
from simulator.backends.base import redact
from simulator.backends.outage import Outage, Outages
from simulator.cli._errors import INTERRUPTED, SOME_FAILED, reported
from simulator.cli._progress import progress_bar
from simulator.config import EMBEDDED_TARGET, Endpoint, RunConfig, TargetConfig, load_config
from simulator.merge import merge_runs
from simulator.prepared import PreparedRun, prepare
from simulator.replay import prepare_replay
from simulator.roles import JUDGES

console = Console(stderr=True, soft_wrap=True)
PROGRESS_KINDS = {"conversation": "conversations", "knowledge_check": "knowledge checks"}
"""Progress bars, one per kind of transcript (``Transcript.kind``), counted apart."""


def _prompt_label(prompt: str) -> str:
    """A system prompt as a target name suffix: its name (``warm``), or a hash of its text."""
    if re.fullmatch(r"[A-Za-z0-9._:+-]{0,32}", prompt):
        return prompt
    return "prompt-" + hashlib.sha256(prompt.encode()).hexdigest()[:8]


def targets_from_flags(
    urls: list[str], models: list[str], prompts: list[str], sampling: dict[str, Any], *, name_prompts: bool = False
) -> list[TargetConfig]:
    """Targets from ``--target``/``--model``/``--system-prompt``: every model crossed with every prompt.

    One URL serves every model (a base model and its LoRA adapters on one vLLM server),
    or there is one URL per model. A target's name carries its system prompt's when several
    are crossed, or with ``name_prompts``.
    """
    if urls and not models:
        raise typer.BadParameter("--target needs --model NAME (the served model or adapter name)")
    if len(urls) > 1 and len(urls) != len(models):
        raise typer.BadParameter("give one --target for all models, or one --target per --model")
    servers: list[str | None] = [*urls] * len(models) if len(urls) == 1 else [*urls] or [None] * len(models)
    targets = []
    for url, model in zip(servers, models, strict=True):
        for prompt in prompts or [""]:
            named = len(prompts) > 1 or (name_prompts and bool(prompt))
            name = model.replace("/", "_")[:48] + (f"+{_prompt_label(prompt)}" if named else "")
            target = TargetConfig(name=name[:64], base_url=url, model=model, system_prompt=prompt)
            targets.append(target.with_sampling(sampling))
    return targets


def _config(
    config_file: Path | None, overrides: dict[str, Any], targets: list[TargetConfig], sampling: dict[str, Any]
) -> RunConfig:
    config = load_config(config_file) if config_file else RunConfig()
    given = {key: value for key, value in overrides.items() if value not in (None, [])}
    if targets:
        given["targets"] = targets
    elif sampling:  # sampling flags also apply to the targets of a config file, and to the embedded default
        targets = config.targets or [EMBEDDED_TARGET]
        given["targets"] = [target.with_sampling(sampling) for target in targets]
    return RunConfig.model_validate({**config.model_dump(exclude_unset=True), **given}) if given else config


def rates_table(rates: CorrectionRates) -> Table:
    """Correction rate by turn (rows: target and condition; cells: rate, Wilson interval and n)."""
    from scoring.analysis.stats import MIN_N, wilson_interval  # pandas is imported once the run is over

    turns = sorted({turn for by_turn in rates.values() for turn in by_turn})
    table = Table(title="Correction rate by turn (corrects / labelled replies, 95% Wilson interval)")
    table.add_column("target")
    table.add_column("condition")
    for turn in turns:
        table.add_column(f"turn {turn}", justify="right")
    for target, condition in sorted(rates):
        cells = []
        for turn in turns:
            corrected, labelled = rates[target, condition].get(turn, (0, 0))
            if labelled < MIN_N:
                cells.append(f"{corrected / labelled:.0%} (n={labelled}, too small)" if labelled else "-")
                continue
            low, high = wilson_interval(corrected, labelled)
            cells.append(f"{corrected / labelled:.0%} [{low:.0%}-{high:.0%}] (n={labelled})")
        table.add_row(target, condition, *cells)
    return table


class OutagesColumn(ProgressColumn):
    """The servers that are down now: since when, and the budget left for waiting."""

    def __init__(self, outages: Outages) -> None:
        super().__init__()
        self.outages = outages

    def render(self, task: Task) -> Text:
        """One line per server down."""
        return Text("\n".join(outage.describe() for outage in self.outages.current), style="yellow")


async def _go(run: PreparedRun) -> RunResult:
    """Run with progress bars (one per kind of transcript) and the servers that are down below them."""

    def told(outage: Outage) -> None:
        console.print(f"[yellow]{outage.describe()}[/yellow]")

    outages = Outages(told)
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in PROGRESS_KINDS}
    with progress_bar(console, TextColumn("{task.fields[counts]}"), OutagesColumn(outages)) as progress:
        tasks = {kind: progress.add_task(name, total=None, counts="", visible=False)
                 for kind, name in PROGRESS_KINDS.items()}  # fmt: skip

        def on_start(planned: Counter[str], done: Counter[str]) -> None:
            kinds = " and ".join(f"{planned[k]} {name}" for k, name in PROGRESS_KINDS.items() if planned[k])
            console.print(f"run folder: {run.folder}  ({kinds or 'nothing'} planned)")  # made: the servers answered
            if done.total():
                counted = [f"{done[k]} of {planned[k]} {name}" for k, name in PROGRESS_KINDS.items() if planned[k]]
                parts = ", ".join(counted)
                console.print(f"resuming: {done.total()} of {planned.total()} already in {run.folder} ({parts})")
            for kind, task in tasks.items():
                progress.update(task, total=planned[kind], completed=done[kind], visible=planned[kind] > 0)

        def on_done(transcript: Transcript) -> None:
            counts[transcript.kind][transcript.status] += 1
            summary = " ".join(f"{k}={v}" for k, v in sorted(counts[transcript.kind].items()))
            progress.update(tasks[transcript.kind], advance=1, counts=summary)

        result = await arun(run, outages=outages, on_start=on_start, on_done=on_done)
    for role, replicas in result.replicas.items():
        console.print(f"{role} replicas: " + "; ".join(
            f"{redact(r['base_url'])} {r['requests']} requests, {r['failures']} failed, "
            f"ejected {r['ejections']}x{'' if r['healthy'] else ' (out now)'}" for r in replicas))  # fmt: skip
    return result


def _finish(prepared: PreparedRun) -> None:
    """Run what is left of a prepared run, then print the summary; Ctrl-C keeps what finished.

    Raises:
        typer.Exit: 1 when a conversation of the plan ended in error; 130 on Ctrl-C.
    """
    try:
        totals = asyncio.run(_go(prepared)).summary.totals
    except KeyboardInterrupt:
        console.print(f"interrupted; finished conversations are saved in {prepared.folder}. "
                      "Run the same command again to resume.")  # fmt: skip
        raise typer.Exit(INTERRUPTED) from None
    assert totals is not None, "execute() adds up the run when the batch ends"
    console.print(rates_table(totals.rates))
    if totals.generated:
        failures = totals.fidelity_failures
        detail = ", ".join(f"{name} {count}" for name, count in sorted(failures.items())) or "none"
        console.print(f"simulated user: {totals.generated} model-written turns; fidelity failures: {detail}")
    if len(totals.judged_by) > 1:
        counts = ", ".join(f"{judge} {count}" for judge, count in totals.judged_by.most_common())
        console.print(f"replies judged by: {counts}")
    if totals.errors:
        console.print(f"[yellow]{sum(totals.errors.values())} conversation(s) ended in error: "
                      f"{dict(totals.errors)}; see `error` in the transcripts; `--retry-errors` runs them "
                      "again from their last finished turn[/yellow]")  # fmt: skip
    print(prepared.folder / "transcripts.jsonl", file=sys.stdout)
    if totals.errors:
        raise typer.Exit(SOME_FAILED)


def run(
    config_file: Annotated[Path | None, typer.Option("--config", help="A run config YAML file.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario id, file or folder (repeatable).")] = None,
    persona: Annotated[list[str] | None, typer.Option(help="Persona id or file (repeatable).")] = None,
    condition: Annotated[list[Condition] | None, typer.Option(help="Condition (repeatable); default all four.")] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="Base URL of an OpenAI-compatible server, e.g. vLLM (repeatable); URL1,URL2: replicas."),
    ] = None,
    model: Annotated[list[str] | None, typer.Option(help="Served model or LoRA adapter name (repeatable).")] = None,
    system_prompt: Annotated[
        list[str] | None, typer.Option(help="Target system prompt: neutral, warm or text (repeatable: crossed).")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Longest target reply, in tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Target sampling temperature.")] = None,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Keep each reply's token logprobs.")] = False,
    judge: Annotated[str | None, typer.Option(help=f"Online judge (default learned): {JUDGES}.")] = None,
    judge_model: Annotated[str | None, typer.Option(help="The LLM judge's model name.")] = None,
    judge_target: Annotated[str | None, typer.Option(help="The LLM judge's server; default: --target.")] = None,
    user_model: Annotated[str | None, typer.Option(help="A model that plays the user (default: scripted).")] = None,
    user_target: Annotated[str | None, typer.Option(help="The user model's server; default: --target.")] = None,
    turns: Annotated[int | None, typer.Option(help="Most target replies per conversation.")] = None,
    sample: Annotated[int | None, typer.Option(help="Draw N conversations from the plan.")] = None,
    seed: Annotated[int | None, typer.Option(help="Conversation and sampling seed.")] = None,
    concurrency: Annotated[
        str | None, typer.Option(help="Conversations in flight, or auto: as many as the (vLLM) server sustains.")
    ] = None,
    rps: Annotated[float | None, typer.Option(help="Requests per second at most.")] = None,
    outage_wait: Annotated[
        float | None, typer.Option(help="Seconds to wait for a server that stopped answering (0: fail at once).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default runs/run-<config hash>.")] = None,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="Run failed conversations again.")] = False,
    shard: Annotated[str | None, typer.Option(help="I/N: run the I-th of N disjoint parts of the plan.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="warm-paper: the warm-model paper's protocol; sycon[:gemma|:qwen|:api][:prompt1..4]: SYCON-Bench's."
        ),
    ] = None,
    knowledge_check: Annotated[
        bool | None, typer.Option("--knowledge-check/--no-knowledge-check", help="Also ask each question alone.")
    ] = None,
) -> None:
    """Hold a batch of conversations and write labelled transcripts to OUT/transcripts.jsonl.

    Running the same command again resumes: conversations already written are skipped, those cut
    off go on from their last finished turn. Exit status: 0 every conversation ended without error,
    1 some ended in error, 2 bad input or an unreachable server, 130 interrupted.
    """
    with reported():
        overrides: dict[str, Any] = {
            "scenarios": scenario, "personas": persona, "conditions": condition, "judge": judge, "turns": turns,
            "sample": sample, "concurrency": concurrency, "rps": rps, "outage_wait": outage_wait, "out": out,
            "shard": shard, "retry_errors": retry_errors or None, "preset": preset, "knowledge_check": knowledge_check,
            "seeds": [seed] if seed is not None else None, "sample_seed": seed,
        }  # fmt: skip
        default_url = target[0] if target else None
        for role, name, url in (("judge_model", judge_model, judge_target), ("user_model", user_model, user_target)):
            if name is not None:
                overrides[role] = Endpoint(base_url=url or default_url, model=name)
            elif url is not None:
                raise typer.BadParameter(f"--{role.split('_')[0]}-target needs --{role.replace('_', '-')} NAME")
        sampling = {"max_tokens": max_tokens, "temperature": temperature, "logprobs": logprobs or None}
        sampling = {key: value for key, value in sampling.items() if value is not None}
        flagged = targets_from_flags(target or [], model or [], system_prompt or [], sampling)
        config = _config(config_file, overrides, flagged, sampling)
        if not config.targets:  # validated again, so that a preset applies to it too
            config = RunConfig.model_validate({**config.model_dump(exclude_unset=True), "targets": [EMBEDDED_TARGET]})
        if any(t.base_url is None for t in config.targets):
            console.print(
                "[yellow]no --target: using the embedded SmolLM2-135M demo model, a tiny model for trying convsim "
                "out; for real results point --target at a vLLM server (convsim serve MODEL)[/yellow]"
            )
        prepared = prepare(config)
        _finish(prepared)


def replay(
    source: Annotated[Path, typer.Argument(metavar="RUN", help="The run whose user turns to send.")],
    target: Annotated[list[str], typer.Option(help="Base URL of the server (repeatable).")],
    model: Annotated[list[str], typer.Option(help="Served model or LoRA adapter name (repeatable).")],
    system_prompt: Annotated[list[str] | None, typer.Option(help="neutral, warm or text (repeatable).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Longest target reply, in tokens.")] = None,
    judge: Annotated[str, typer.Option(help=f"The judge: {JUDGES}.")] = "learned",
    judge_model: Annotated[str | None, typer.Option(help="The LLM judge's model name.")] = None,
    judge_target: Annotated[str | None, typer.Option(help="The LLM judge's server; default: --target.")] = None,
    concurrency: Annotated[int, typer.Option(help="Conversations in flight.")] = 32,
    outage_wait: Annotated[
        float, typer.Option(help="Seconds to wait for a server that stopped answering (0: fail at once).")
    ] = 600.0,
    out: Annotated[Path | None, typer.Option(help="Output folder; default RUN/replays/<targets>.")] = None,
) -> None:
    """Send the user turns of RUN's conversations, word for word, to other targets.

    Two models then answer identical user turns, whatever each replied. Resumes like `run`, and
    exits like it: 0 every conversation ended without error, 1 some ended in error.
    """
    with reported():
        sampling = {"max_tokens": max_tokens} if max_tokens is not None else {}
        targets = targets_from_flags(target, model, system_prompt or [], sampling, name_prompts=True)
        endpoint = Endpoint(base_url=judge_target or target[0], model=judge_model) if judge_model else None
        folder = out or source / "replays" / "+".join(t.name for t in targets)[:100]
        config = RunConfig(targets=targets, judge=judge, judge_model=endpoint, concurrency=concurrency,
                           outage_wait=outage_wait, out=folder)  # fmt: skip
        prepared = prepare_replay(source, config)
        console.print(f"replaying {len(prepared.plan)} conversations into {prepared.folder}")
        _finish(prepared)


def merge(
    parts: Annotated[list[Path], typer.Argument(metavar="RUN...", help="The shards' output folders.")],
    out: Annotated[Path, typer.Option(help="The merged run's folder (new).")],
) -> None:
    """Join the output folders of one plan's shards (`run --shard I/N`) into one run."""
    with reported():
        count = merge_runs(parts, out)
        console.print(f"merged {count} conversations from {len(parts)} runs into {out}")
