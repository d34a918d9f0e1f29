"""Analysis at scale: a synthetic run of a million reply rows, loaded and put through every metric.

Run: ``python bench/analysis_scale.py [--rows 1000000] [--turns 6] [--bootstrap 1000] [--report]``.
It writes ``transcripts.jsonl`` into a temporary folder (or ``--out``), then times ``load`` and
each metric, and prints one line per step and the total. Target: well under a minute.

The run: two targets (base, warm) x four conditions x scenarios x personas x seeds, each
conversation ``--turns`` replies long (about 1% end in a failed request), labels drawn from a
small Markov chain whose warm variant gives in more often, probes with logprobs at the last
turn, and a knowledge check per scenario and target.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.analysis import (
    amplification,
    calibration,
    decay,
    error_model,
    exclusions,
    face_saving,
    headline,
    load,
    paired_by_turn,
    paired_comparison,
    survival,
    turn_statistics,
)
from scoring.analysis.report import build_report, write_report

LABELS = ("corrects", "hedges", "evades", "affirms", "refuses")
CONDITIONS = ("neutral", "emotional", "false_belief", "emotional+false_belief")
TARGETS = ("base", "warm")
PERSONAS = 17
# next-label probabilities from the previous label (rows: LABELS order), per target
CHAIN = {
    "base": np.array([[0.80, 0.08, 0.04, 0.06, 0.02], [0.45, 0.30, 0.10, 0.12, 0.03], [0.35, 0.15, 0.35, 0.12, 0.03],
                      [0.20, 0.10, 0.05, 0.63, 0.02], [0.30, 0.10, 0.10, 0.10, 0.40]]),
    "warm": np.array([[0.62, 0.12, 0.08, 0.16, 0.02], [0.30, 0.30, 0.15, 0.22, 0.03], [0.20, 0.15, 0.43, 0.19, 0.03],
                      [0.10, 0.08, 0.05, 0.75, 0.02], [0.20, 0.10, 0.15, 0.15, 0.40]]),
}  # fmt: skip
FIRST = {"neutral": 0.85, "emotional": 0.75, "false_belief": 0.70, "emotional+false_belief": 0.60}


def _sequence(rng: np.random.Generator, target: str, condition: str, turns: int) -> list[str]:
    first_correct = FIRST[condition] - (0.12 if target == "warm" else 0.0)
    state = 0 if rng.random() < first_correct else int(rng.integers(1, 5))
    labels = [LABELS[state]]
    cumulative = CHAIN[target].cumsum(axis=1)
    for _ in range(turns - 1):
        state = int(np.searchsorted(cumulative[state], rng.random()))
        labels.append(LABELS[min(state, 4)])
    return labels


def _reply(label: str | None, stage: str, probe: bool, rng: np.random.Generator) -> dict[str, Any]:
    reply: dict[str, Any] = {"role": "assistant", "content": f"A reply that {label}.", "stage": stage}
    if label is None:
        return reply
    judgement = {"label": label, "judge": "rules", "evidence": "marker"}
    usage = {"prompt_tokens": 60, "completion_tokens": 40, "latency_s": 0.8, "attempts": 1}
    reply |= {"label": label, "judgement": judgement, "finish_reason": "stop", **usage}
    if probe:
        accurate = label == "corrects" if rng.random() < 0.9 else label != "corrects"
        confidence = float(np.clip(rng.normal(0.75 if accurate else 0.6, 0.12), 0.05, 0.99))
        reply |= {"accurate": accurate, "logprobs": {"tokens": ["a", "b", "c"], "logprobs": [math.log(confidence)] * 3}}
    return reply


def _lines(rows: int, turns: int, seed: int) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    per_group = len(TARGETS) * len(CONDITIONS)
    conversations = math.ceil(rows / turns / per_group)
    scenarios = max(1, conversations // (PERSONAS * 4))
    common = {"domain": "medical", "max_turns": turns, "started_at": "2026-01-01T00:00:00+00:00",
              "finished_at": "2026-01-01T00:00:09+00:00", "duration_s": 9.0}  # fmt: skip
    for target in TARGETS:
        for scenario in range(scenarios):
            check = [{"role": "user", "content": "question"}, _reply("corrects", "open", False, rng)]
            check[1]["accurate"] = bool(rng.random() < 0.8)
            yield json.dumps({"id": f"kc-{target}-{scenario}", "kind": "knowledge_check", "status": "completed",
                              "scenario": f"s{scenario}", "condition": "neutral", "target": target, "model": target,
                              "seed": 0, "turns": check, **common})  # fmt: skip
    for index in range(conversations):
        scenario, persona, seed = index % scenarios, (index // scenarios) % PERSONAS, index // (scenarios * PERSONAS)
        for target in TARGETS:
            for condition in CONDITIONS:
                labels = _sequence(rng, target, condition, turns)
                failed = rng.random() < 0.01
                messages: list[dict[str, Any]] = []
                for turn, label in enumerate(labels, start=1):
                    stage = "open" if turn == 1 else "probe" if turn == turns else "pushback"
                    messages.append({"role": "user", "content": f"user turn {turn}", "stage": stage})
                    if failed and turn == turns:
                        break
                    messages.append(_reply(label, stage, stage == "probe", rng))
                yield json.dumps({
                    "id": f"{target}-{condition}-{index}", "kind": "conversation",
                    "status": "error" if failed else "max_turns", "persona": f"p{persona}", "affect": "sadness",
                    "scenario": f"s{scenario}", "condition": condition, "target": target, "model": target,
                    "seed": seed, "turns": messages, **common,
                    **({"error": "timed out", "error_kind": "timeout"} if failed else {}),
                })  # fmt: skip


def _timed(name: str, step: Callable[[], Any], timings: dict[str, float]) -> Any:
    started = time.perf_counter()
    result = step()
    timings[name] = time.perf_counter() - started
    print(f"  {name:<28} {timings[name]:7.2f} s", flush=True)
    return result


def main() -> None:
    """Build the run, time the analysis, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="reply rows to generate (about)")
    parser.add_argument("--turns", type=int, default=6, help="replies per conversation")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--report", action="store_true", help="also build and write the full report with figures")
    parser.add_argument("--out", type=Path, help="folder for the run (default: a temporary folder, removed after)")
    parser.add_argument("--reuse", action="store_true", help="keep a transcripts.jsonl already in --out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch) / "run"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not (args.reuse and (folder / "transcripts.jsonl").exists()):
            with (folder / "transcripts.jsonl").open("w", encoding="utf-8") as handle:
                for line in _lines(args.rows, args.turns, seed=0):
                    handle.write(line + "\n")
        size = (folder / "transcripts.jsonl").stat().st_size
        print(
            f"run {folder / 'transcripts.jsonl'}: {size / 1e6:.0f} MB, ready in {time.perf_counter() - started:.1f} s"
        )

        timings: dict[str, float] = {}
        print("timings:")
        frames = _timed("load", lambda: load([folder]), timings)
        by = ["target", "condition"]
        curves = _timed(
            f"decay (bootstrap {args.bootstrap})", lambda: decay(frames, by, n_boot=args.bootstrap), timings
        )
        _timed("survival (Kaplan-Meier)", lambda: survival(frames, by), timings)
        _timed("amplification (all turns)", lambda: amplification(frames, n_boot=args.bootstrap), timings)
        _timed("amplification (turn 1)", lambda: amplification(frames, at_turn=1, n_boot=args.bootstrap), timings)
        _timed("paired (McNemar)", lambda: paired_comparison(frames, {"target": "base"}, {"target": "warm"}), timings)
        pair = ({"target": "base"}, {"target": "warm"})
        _timed("paired by turn (bootstrap)", lambda: paired_by_turn(frames, *pair, n_boot=args.bootstrap), timings)
        _timed("first correction, capitulation", lambda: turn_statistics(frames, by, n_boot=args.bootstrap), timings)
        model = _timed("logistic model + AMEs", lambda: error_model(frames), timings)
        _timed("face-saving", lambda: face_saving(frames, by), timings)
        _timed("calibration", lambda: calibration(frames), timings)
        _timed("exclusions", lambda: exclusions(frames), timings)
        _timed("headline", lambda: headline(frames, by, slopes=curves.slopes), timings)
        if args.report:
            report = _timed("report (tables + figures)", lambda: build_report(frames, n_boot=args.bootstrap), timings)
            _timed("write report + frames", lambda: write_report(report, frames, folder / "analysis"), timings)
        total = sum(timings.values())
        print(f"turn rows: {len(frames.turns):,}  conversations: {len(frames.conversations):,}  "
              f"logit converged: {model.converged}")  # fmt: skip
        print(f"total (load + all metrics{' + report' if args.report else ''}): {total:.1f} s")


if __name__ == "__main__":
    main()
