"""`convsim serve` (start a real vLLM server) and `convsim doctor` (check an endpoint)."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.table import Table

from simulator.backends.base import redact
from simulator.cli._errors import fail
from simulator.cli._progress import progress_bar
from simulator.config import replica_urls
from simulator.serving.doctor import CHECKS, Check, diagnose_replicas

console = Console(stderr=True, soft_wrap=True)
MARKS = {True: "[green]ok[/green]", False: "[red]no[/red]", None: "[yellow]?[/yellow]"}
"""How a check that works, fails, or could not be told is shown."""


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model folder, or `default` for the tiny demo model.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8000,
    name: Annotated[str | None, typer.Option(help="Served model name; default: the folder name.")] = None,
    lora: Annotated[list[str] | None, typer.Option(help="A LoRA adapter NAME=FOLDER (repeatable).")] = None,
    max_model_len: Annotated[int, typer.Option(help="Context length vLLM allocates for.")] = 4096,
    dtype: Annotated[str, typer.Option(help="Weights' dtype: float32 suits CPUs; auto/bfloat16 for GPUs.")] = "float32",
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait until healthy.")] = 600.0,
) -> None:
    """Start a vLLM server, wait until it is healthy, print its base URL; Ctrl-C stops it and its children.

    Arguments after `--` go to vLLM unchanged: `convsim serve MODEL -- --tensor-parallel-size 2`.
    """
    from simulator.serving.models import ModelUnavailable, default_model_dir
    from simulator.serving.vllm_server import VllmNotInstalled, VllmServer, VllmStartError

    adapters = {}
    for item in lora or []:
        adapter, sep, adapter_folder = item.partition("=")
        if not sep or not adapter or not adapter_folder:
            raise fail(f"--lora takes NAME=FOLDER, not {item!r}")
        adapters[adapter] = adapter_folder
    try:
        folder = default_model_dir() if model == "default" else Path(model)
    except ModelUnavailable as exc:
        raise fail(str(exc)) from None
    served = name or ("smollm2" if model == "default" else folder.name)
    server = VllmServer(
        folder, served_model_name=served, port=port, max_model_len=max_model_len, dtype=dtype,
        lora_modules=adapters, extra_args=list(ctx.args), startup_timeout=startup_timeout,
    )  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        console.print(f"starting vLLM for {folder} (log: see below if it fails) ...")
        server.start()
    except VllmNotInstalled as exc:
        raise fail(f"vLLM is not installed: {exc}") from None
    except VllmStartError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        server.stop()
        raise typer.Exit(130) from None
    console.print(f"vLLM healthy after {server.startup_seconds:.0f} s (pid {server.pid}, log {server.log_path})")
    served_names = ", ".join([served, *adapters])
    console.print(f"models: {served_names}; try: convsim doctor --target {server.base_url} --model {served}")
    print(server.base_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping vLLM ...")
        server.stop()


def doctor(
    target: Annotated[
        str, typer.Option(help="Base URL of the server, e.g. http://127.0.0.1:8000/v1; URL1,URL2 for replicas.")
    ],
    model: Annotated[str | None, typer.Option(help="The model to check; default: the first served.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the API key.")] = None,
) -> None:
    """Check what an endpoint (each of its replicas) can do for convsim.

    Exit status: 0 if everything convsim needs works on every replica, 1 if something it needs does
    not or a replica is down, 2 if no replica can be reached.
    """
    try:
        urls = replica_urls(target)
    except ValueError as exc:
        raise fail(f"--target: {exc}") from None
    with progress_bar(console, TextColumn("{task.fields[check]}"), transient=True) as progress:
        tasks = {url: progress.add_task(redact(url), total=len(CHECKS), check="") for url in urls}

        def told(url: str, check: Check) -> None:
            progress.update(tasks[url], advance=1, check=f"{check.name}: {MARKS[check.ok]}")

        found = asyncio.run(diagnose_replicas(target, model, api_key_env, told))
    for url, checks in found.items():
        table = Table("check", "", "detail", "needed", title=f"convsim doctor: {redact(url)}")
        for check in checks:
            table.add_row(check.name, MARKS[check.ok], check.detail, "yes" if check.required else "")
        Console().print(table)
    down = {url: checks[0].detail for url, checks in found.items() if not checks[0].ok}
    if len(found) > 1:
        console.print(f"replicas: {len(found) - len(down)} of {len(found)} reachable")
    if len(down) == len(found):
        raise fail("; ".join(f"cannot reach {url}: {detail}" for url, detail in down.items()))
    missing = sorted({c.name for checks in found.values() if checks[0].ok for c in checks if c.required and not c.ok})
    if missing or down:
        lacks = [f"convsim needs what this endpoint lacks: {', '.join(missing)}"] if missing else []
        console.print("error: " + redact("; ".join([*lacks, *(f"cannot reach {url}: {d}" for url, d in down.items())])))
        raise typer.Exit(1)
