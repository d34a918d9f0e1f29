"""Orchestration overhead: convsim vs. inspect_ai vs. a plain openai loop, same conversations, same server.

Run: ``python bench/overhead.py`` (starts an instant OpenAI-compatible server on 127.0.0.1 that
replies at once, so what is measured is the client), or ``python bench/overhead.py --target URL
--model NAME`` against any server (a GPU vLLM server, for instance).

The workload: ``--conversations`` scripted conversations of up to ``--turns`` replies each
(built-in scenarios, personas that push back at least three times, all four conditions, the rule
judge). A first, untimed convsim run fixes the user turns; then every round runs, each in a
fresh process:

- ``convsim``: ``simulator.prepared.execute`` (what ``convsim run`` does, without the progress bar):
  the server check, the manifest, ``run_batch`` with the rule judge labelling every reply, each
  transcript appended to ``transcripts.jsonl``, the end-of-run summary; ``--concurrency``
  conversations in flight, and once more with one at a time.
- ``inspect_ai``: one task, one sample per conversation, a solver that appends each user turn and
  calls ``generate()``; ``openai-api`` provider pointed at the same server; ``max_connections``
  and ``max_samples`` = ``--concurrency``; no scorer; its eval log is written.
- ``openai loop``: a sequential loop with the ``openai`` client, each conversation appended to a
  JSONL file.

Each reports turns per second (wall clock) and CPU milliseconds per turn (the process's user +
system time around the workload only, not imports; the server is another process and is not
counted). The table shows the median over ``--repeat`` rounds; the ratios last.
``--profile FILE`` also runs convsim once under pyinstrument and writes its text report to FILE.
``--baseline DIR`` adds a row ``convsim@baseline``: convsim imported from another checkout (for
example ``git worktree add /tmp/before HEAD~3``), to measure a change side by side.

inspect_ai and openai are installed only for this benchmark (``pip install inspect-ai openai``);
a contender that is not installed is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import convsim_config, cpu_seconds, instant_server, machine, median, run_child, table

CONTENDERS = ("convsim", "convsim-c1", "convsim@baseline", "inspect_ai", "openai-loop")


# --------------------------------------------------------------------------- children


def child_convsim(args: argparse.Namespace) -> dict[str, Any]:
    import simulator
    from simulator import prepare, run

    print(f"convsim from {Path(simulator.__file__).parent.parent}", file=sys.stderr)
    concurrency = 1 if args.child == "convsim-c1" else args.concurrency
    config = convsim_config(
        args.url, args.model, conversations=args.conversations, turns=args.turns, concurrency=concurrency,
        out=Path(args.out), max_tokens=args.max_tokens,
    )  # fmt: skip
    setup = time.perf_counter()
    prepared = prepare(config)
    setup = time.perf_counter() - setup

    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    cpu, wall = cpu_seconds(), time.perf_counter()
    run(prepared)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    turns = 0
    scripts = []
    with (Path(args.out) / "transcripts.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            user = [t["content"] for t in record["turns"] if t["role"] == "user"]
            turns += sum(1 for t in record["turns"] if t["role"] == "assistant")
            scripts.append({"id": record["id"], "user": user, "seed": record["seed"]})
    if args.write_workload:
        Path(args.write_workload).write_text(json.dumps(scripts))
    return {"turns": turns, "conversations": len(scripts), "wall_s": wall, "cpu_s": cpu, "setup_s": setup}


def child_openai(args: argparse.Namespace) -> dict[str, Any]:
    from openai import OpenAI

    scripts = json.loads(Path(args.workload).read_text())
    client = OpenAI(base_url=args.url, api_key=os.environ.get("OPENAI_API_KEY", "none"), max_retries=6)
    turns = 0
    cpu, wall = cpu_seconds(), time.perf_counter()
    with (Path(args.out) / "conversations.jsonl").open("w") as out:
        for script in scripts:
            messages: list[dict[str, str]] = []
            for text in script["user"]:
                messages.append({"role": "user", "content": text})
                reply = client.chat.completions.create(
                    model=args.model, messages=messages,  # type: ignore[arg-type]
                    temperature=0.0, max_tokens=args.max_tokens, seed=script["seed"],
                )  # fmt: skip
                messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
                turns += 1
            out.write(json.dumps({"id": script["id"], "messages": messages}) + "\n")
            out.flush()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    client.close()
    return {"turns": turns, "conversations": len(scripts), "wall_s": wall, "cpu_s": cpu}


def child_inspect(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("BENCH_API_KEY", os.environ.get("OPENAI_API_KEY", "none"))
    os.environ["BENCH_BASE_URL"] = args.url
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageUser, GenerateConfig
    from inspect_ai.solver import Generate, TaskState, solver

    scripts = json.loads(Path(args.workload).read_text())

    @solver  # type: ignore[misc]
    def scripted_user() -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            for index, text in enumerate(state.metadata["user"]):
                if index:
                    state.messages.append(ChatMessageUser(content=text))
                state = await generate(state)
            return state

        return solve

    dataset = [Sample(id=s["id"], input=s["user"][0], metadata={"user": s["user"]}) for s in scripts]
    task = Task(
        dataset=dataset, solver=scripted_user(), config=GenerateConfig(temperature=0.0, max_tokens=args.max_tokens)
    )
    cpu, wall = cpu_seconds(), time.perf_counter()
    logs = eval(
        task, model=f"openai-api/bench/{args.model}", max_connections=args.concurrency, max_samples=args.concurrency,
        log_dir=args.out, display="none", score=False, fail_on_error=True,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    log = logs[0]
    if log.status != "success":
        raise RuntimeError(f"inspect_ai eval ended {log.status}: {log.error}")
    turns = sum(len(s["user"]) for s in scripts)
    return {"turns": turns, "conversations": len(scripts), "wall_s": wall, "cpu_s": cpu}


# --------------------------------------------------------------------------- parent


def _child_args(args: argparse.Namespace, name: str, url: str, out: Path, **extra: str) -> list[str]:
    command = [
        str(Path(__file__).resolve()), "--child", name, "--url", url, "--model", args.model, "--out", str(out),
        "--conversations", str(args.conversations), "--turns", str(args.turns),
        "--concurrency", str(args.concurrency), "--max-tokens", str(args.max_tokens),
    ]  # fmt: skip
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", value]
    return command


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="an OpenAI-compatible base URL; default: start an instant server")
    parser.add_argument("--model", default="bench", help="the served model name")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--only", action="append", choices=CONTENDERS, help="run only these (repeatable)")
    parser.add_argument("--profile", help="also profile convsim once with pyinstrument; write the report here")
    parser.add_argument("--baseline", help="another checkout of convsim to run beside this one (convsim@baseline)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--write-workload", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run = {"convsim": child_convsim, "convsim-c1": child_convsim, "convsim@baseline": child_convsim,
               "inspect_ai": child_inspect, "openai-loop": child_openai}[args.child]  # fmt: skip
        print(json.dumps(run(args)))
        return 0

    wanted = args.only or [name for name in CONTENDERS if name != "convsim@baseline"]
    if args.baseline and "convsim@baseline" not in wanted:
        wanted.insert(1, "convsim@baseline")
    missing = {"inspect_ai": "inspect_ai", "openai-loop": "openai"}
    skipped = {}
    for name, module in missing.items():
        if name in wanted and importlib.util.find_spec(module) is None:
            skipped[name] = f"not installed (pip install {'inspect-ai' if module == 'inspect_ai' else module})"
            wanted.remove(name)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    with (
        tempfile.TemporaryDirectory(prefix="convsim-overhead-") as tmp,
        instant_server(args.target, [args.model]) as url,
    ):
        work = Path(tmp)
        workload = work / "workload.json"
        print(f"server {url}; {args.conversations} conversations x up to {args.turns} turns; "
              f"concurrency {args.concurrency}; {args.repeat} rounds", file=sys.stderr)  # fmt: skip
        warm = run_child(_child_args(args, "convsim", url, work / "warmup", write_workload=str(workload)))
        print(
            f"workload: {warm['conversations']} conversations, {warm['turns']} turns (untimed warm-up)", file=sys.stderr
        )
        for round_ in range(args.repeat):
            for name in wanted:
                out = work / f"{name}-{round_}"
                out.mkdir()
                env = None
                if name == "convsim@baseline":
                    env = {**os.environ, "CONVSIM_BENCH_ROOT": str(Path(args.baseline).resolve())}
                try:
                    result = run_child(_child_args(args, name, url, out, workload=str(workload)), env=env)
                except RuntimeError as exc:
                    skipped[name] = f"failed: {str(exc).strip().splitlines()[-1][:200]}"
                    print(f"{name} failed:\n{exc}", file=sys.stderr)
                    continue
                results[name].append(result)
                print(f"round {round_ + 1} {name}: {result['turns']} turns in {result['wall_s']:.2f} s, "
                      f"CPU {result['cpu_s']:.2f} s", file=sys.stderr)  # fmt: skip
        if args.profile:
            run_child(_child_args(args, "convsim", url, work / "profile", profile=args.profile))
            print(f"profile written to {args.profile}", file=sys.stderr)

    summary: dict[str, tuple[float, float, int]] = {}
    rows = []
    for name, runs in results.items():
        if not runs:
            continue
        turns = runs[0]["turns"]
        rate = median([r["turns"] / r["wall_s"] for r in runs])
        cpu_ms = median([1000 * r["cpu_s"] / r["turns"] for r in runs])
        summary[name] = (rate, cpu_ms, turns)
        concurrency = 1 if name in ("convsim-c1", "openai-loop") else args.concurrency
        rows.append((name, concurrency, turns, rate, cpu_ms))
    print()
    print(f"machine: {machine()}")
    print(f"server: {'instant (bench/instant_server.py)' if not args.target else args.target}; "
          f"median of {args.repeat} rounds")  # fmt: skip
    print(table(("client", "in flight", "turns", "turns/s", "CPU ms/turn"), rows))
    for name, reason in skipped.items():
        print(f"{name}: {reason}")
    if "convsim" in summary:
        print()
        rate, cpu_ms, _ = summary["convsim"]
        for other in ("inspect_ai", "openai-loop"):
            if other in summary:
                o_rate, o_cpu, _ = summary[other]
                print(f"convsim / {other}: turns/s x{rate / o_rate:.2f}, CPU per turn x{cpu_ms / o_cpu:.2f} "
                      f"({o_cpu / cpu_ms:.2f}x less CPU per turn)")  # fmt: skip
        if "convsim@baseline" in summary:
            b_rate, b_cpu, _ = summary["convsim@baseline"]
            print(f"convsim / convsim@baseline: turns/s x{rate / b_rate:.2f}, CPU per turn x{cpu_ms / b_cpu:.2f}")
        if "convsim-c1" in summary and "openai-loop" in summary:
            c1_rate, c1_cpu, _ = summary["convsim-c1"]
            o_rate, o_cpu, _ = summary["openai-loop"]
            print(f"convsim-c1 / openai-loop (both one at a time): turns/s x{c1_rate / o_rate:.2f}, "
                  f"CPU per turn x{c1_cpu / o_cpu:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
