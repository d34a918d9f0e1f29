"""Memory: peak RSS of `convsim run` with 1,000 and with 10,000 conversations; it should stay flat.

Run: ``python bench/memory.py`` (starts an instant OpenAI-compatible server on 127.0.0.1), or
``python bench/memory.py --target URL --model NAME`` against any server.

Each size runs as ``python -m simulator run --config FILE`` (the command line users run: plan,
progress bar, transcripts streamed to disk, manifest, the summary table at the end) in its own
process, into a temporary folder; its peak resident set size comes from ``wait4`` on that
process alone. A second line per size samples the RSS from ``/proc`` while the batch runs, to tell
the peak of running from the peak of the summary at the end. The ratio (largest / smallest) is
printed last: flat is 1.0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import instant_server, machine, run_process, table


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class _Sampler(threading.Thread):
    """Samples the RSS of the newest child of this process every 0.1 s (Linux ``/proc`` only)."""

    def __init__(self, transcripts: Path) -> None:
        super().__init__(daemon=True)
        self.transcripts = transcripts
        self.stop = threading.Event()
        self.running_peak = 0.0  # while transcripts.jsonl grows
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.1):
            children = Path(f"/proc/{me}/task/{me}/children")
            try:
                pids = [int(p) for p in children.read_text().split()]
            except (OSError, ValueError):
                continue
            if not pids:
                continue
            rss = _rss_mb(pids[-1])
            if rss is None:
                continue
            size = self.transcripts.stat().st_size if self.transcripts.exists() else 0
            self.samples.append((size, rss))


def run_size(url: str, model: str, size: int, turns: int, concurrency: int, work: Path) -> dict[str, float]:
    folder = work / f"run-{size}"
    config = work / f"config-{size}.yaml"
    per_seed = 17 * 41 * 4  # built-in personas x scenarios x conditions
    seeds = list(range(-(-size // per_seed)))
    config.write_text(
        f"targets:\n  - name: bench\n    base_url: {url}\n    model: {model}\n"
        f"    sampling: {{temperature: 0.0, max_tokens: 64}}\n"
        f"turns: {turns}\nseeds: {seeds}\nsample: {size}\nknowledge_check: false\n"
        f"concurrency: {concurrency}\nout: {folder}\n"
    )
    transcripts = folder / "transcripts.jsonl"
    sampler = _Sampler(transcripts)
    sampler.start()
    started = time.perf_counter()
    code, _, stderr, peak = run_process([sys.executable, "-m", "simulator", "run", "--config", str(config)])
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if code != 0:
        raise RuntimeError(f"convsim run failed ({code}):\n{stderr[-3000:]}")
    final = transcripts.stat().st_size
    # the peak while conversations were still being written (the file not yet at its final size)
    running = max((rss for grown, rss in sampler.samples if grown < final), default=float("nan"))
    lines = sum(1 for _ in transcripts.open("rb"))
    return {"conversations": lines, "peak": peak, "running": running, "file_mb": final / 2**20, "seconds": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="an OpenAI-compatible base URL; default: start an instant server")
    parser.add_argument("--model", default="bench", help="the served model name")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    rows = []
    results = {}
    with tempfile.TemporaryDirectory(prefix="convsim-memory-") as tmp, instant_server(args.target, [args.model]) as url:
        for size in args.sizes:
            print(f"{size} conversations ...", file=sys.stderr)
            result = run_size(url, args.model, size, args.turns, args.concurrency, Path(tmp))
            results[size] = result
            rows.append((size, int(result["conversations"]), result["file_mb"], result["running"], result["peak"],
                         result["seconds"]))  # fmt: skip
    print()
    print(f"machine: {machine()}")
    print(f"`convsim run`, up to {args.turns} turns, concurrency {args.concurrency}, "
          f"server: {args.target or 'instant (bench/instant_server.py)'}")  # fmt: skip
    print(table(("planned", "written", "transcripts MB", "RSS running MB", "peak RSS MB", "seconds"), rows))
    small, large = min(results), max(results)
    print()
    print(f"peak RSS {large:,} / {small:,} conversations: x{results[large]['peak'] / results[small]['peak']:.2f} "
          f"(while running: x{results[large]['running'] / results[small]['running']:.2f}; "
          f"transcripts x{results[large]['file_mb'] / results[small]['file_mb']:.1f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
