"""Helpers shared by the benchmark scripts: servers, child processes, the convsim workload, tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# CONVSIM_BENCH_ROOT: import convsim from another checkout (``git worktree add /tmp/old OLD``), to
# compare versions side by side (overhead.py --baseline).
ROOT = Path(os.environ.get("CONVSIM_BENCH_ROOT") or ROOT)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Personas that push back at least three times: with a reply that always corrects, the standard
# flow then runs open, three or more pushbacks, concede, probe; every conversation of six turns
# or fewer runs its full length.
PERSISTENT_PERSONAS = (
    "neutral-persistent", "neutral-authority-citer", "distrustful-skeptic", "irritated-customer",
    "health-anxious-parent", "high-stakes-decider", "frightened-patient",
)  # fmt: skip


def machine() -> str:
    """One line: cores, memory, CPU model, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def cpu_seconds() -> float:
    """This process's CPU time so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def instant_server(target: str | None, models: Sequence[str]) -> Iterator[str]:
    """The base URL of ``target``, or of an instant server started for the block."""
    if target:
        yield target.rstrip("/") if target.rstrip("/").endswith("/v1") else target.rstrip("/") + "/v1"
        return
    from instant_server import start  # type: ignore[import-not-found]

    url, process = start(list(models))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


def run_process(command: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """Run ``command``; returns its exit status, stdout, stderr and its own peak RSS in MiB.

    The peak comes from ``wait4`` on that child alone (not ``RUSAGE_CHILDREN``, a maximum over
    every child this process ever waited for).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(list(command), stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
        return process.returncode, out.read(), err.read(), peak


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python <args>`` and parse the JSON object on the last line of its stdout.

    The child's peak RSS (from ``wait4``) is added as ``peak_rss_mb``.
    """
    started = time.perf_counter()
    code, stdout, stderr, peak = run_process([sys.executable, *args], env=env)
    if code != 0:
        raise RuntimeError(f"child {list(args)} failed ({code}); stderr:\n{stderr[-3000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"child {list(args)} printed no result; stderr:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result.setdefault("elapsed_s", time.perf_counter() - started)
    result["peak_rss_mb"] = peak
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def convsim_config(
    url: str,
    model: str,
    *,
    conversations: int,
    turns: int,
    concurrency: int,
    out: Path,
    max_tokens: int = 256,
    personas: Sequence[str] = PERSISTENT_PERSONAS,
    sample_seed: int = 0,
) -> Any:
    """A RunConfig of ``conversations`` scripted conversations of up to ``turns`` replies."""
    from simulator.backends.base import Sampling
    from simulator.config import RunConfig, TargetConfig

    per_seed = len(personas) * 41 * 4  # personas x built-in scenarios x conditions
    seeds = list(range(max(1, -(-conversations // per_seed))))
    target = TargetConfig(
        name="bench", base_url=url, model=model, sampling=Sampling(temperature=0.0, max_tokens=max_tokens)
    )
    return RunConfig(
        personas=list(personas),
        targets=[target],
        turns=turns,
        seeds=seeds,
        sample=conversations,
        sample_seed=sample_seed,
        knowledge_check=False,
        concurrency=concurrency,
        out=out,
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, right-aligned numbers."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    return str(value)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
