"""Judge agreement on SYCON-Bench's labelled replies, held out two ways, beside the simplest baselines.

Only real judgements count (each conversation's turns up to and including its first 0; see
``scoring.judge_data``): 7,359 replies of 13 models to 200 questions, binary (corrects or not).
Two splits, the same folds for every judge:

- by question: 5 folds, no question's replies (of any model) on both sides;
- leave one model out: 13 folds, each model's replies judged by a judge trained on the other 12.

Judges: the majority class of the training folds; the rule judge (no training); a plain
bag-of-words baseline (TF-IDF word 1-2-grams of the reply, balanced logistic regression); the
learned judge (``scoring.learned``). Then the speed of the shipped judge per reply.

    python bench/judge_agreement.py [--data ../shared/data/sycon-false-presuppositions]

Needs scikit-learn (the ``local`` extra). About 15 minutes on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from scoring.agreement import cohen_kappa, evaluate, group_folds, model_folds
from scoring.judge_data import LabelledReply, history_for, read_labelled, scenario_for
from scoring.learned import LearnedJudge, held_out_predictions
from scoring.rules import RuleJudge

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sycon-false-presuppositions"

Folds = list[tuple[str, list[LabelledReply], list[LabelledReply]]]
Predictor = Callable[[list[LabelledReply], list[LabelledReply]], list[str]]


def _binary(item: LabelledReply) -> str:
    return "1" if item.target else "0"


def majority(train: list[LabelledReply], test: list[LabelledReply]) -> list[str]:
    """The training folds' most common class, for every test reply."""
    ones = sum(item.target for item in train)
    return ["1" if ones * 2 >= len(train) else "0"] * len(test)


def bag_of_words(train: list[LabelledReply], test: list[LabelledReply]) -> list[str]:
    """TF-IDF word 1-2-grams of the reply alone, balanced logistic regression (scikit-learn defaults)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectoriser = TfidfVectorizer(ngram_range=(1, 2))
    x = vectoriser.fit_transform([item.reply for item in train])
    classifier = LogisticRegression(class_weight="balanced", solver="liblinear")
    classifier.fit(x, [_binary(item) for item in train])
    return [str(p) for p in classifier.predict(vectoriser.transform([item.reply for item in test]))]


def _kappas(folds: Folds, predict: Predictor) -> list[tuple[str, int, float, float]]:
    """Per fold: name, test size, kappa and accuracy."""
    rows = []
    for name, train, test in folds:
        predicted = predict(train, test)
        reference = [_binary(item) for item in test]
        accuracy = sum(r == p for r, p in zip(reference, predicted, strict=True)) / len(test)
        rows.append((name, len(test), cohen_kappa(reference, predicted), accuracy))
    return rows


def _learned(folds: Folds) -> list[tuple[str, int, float, float]]:
    items = [item for _, _, test in folds for item in test]
    predicted, _ = held_out_predictions(items, [(train, test) for _, train, test in folds])
    by_item = {id(item): p for item, p in zip(items, predicted, strict=True)}
    return _kappas(folds, lambda _train, test: [by_item[id(item)] for item in test])


def _print(title: str, columns: dict[str, list[tuple[str, int, float, float]]]) -> None:
    print(f"\n== {title}: Cohen's kappa per fold (accuracy in the summary)")
    names = list(columns)
    print(f"{'fold':<24}{'n':>6}" + "".join(f"{name:>14}" for name in names))
    first = columns[names[0]]
    for k, (fold, n, _, _) in enumerate(first):
        print(f"{fold:<24}{n:>6}" + "".join(f"{columns[name][k][2]:>14.3f}" for name in names))
    for label, pick in (("mean kappa", statistics.mean), ("worst kappa", min)):
        print(f"{label:<30}" + "".join(f"{pick(r[2] for r in columns[name]):>14.3f}" for name in names))
    print(f"{'mean accuracy':<30}" + "".join(f"{statistics.mean(r[3] for r in columns[n]):>14.3f}" for n in names))


def _speed(items: Sequence[LabelledReply], n: int) -> str:
    judge = LearnedJudge()
    sample = list(items[:n])

    async def go() -> float:
        started = time.perf_counter()
        for item in sample:
            await judge.judge(scenario_for(item), history_for(item), item.reply)
        return time.perf_counter() - started

    seconds = asyncio.run(go())
    chars = statistics.mean(len(item.reply) for item in sample)
    per_reply = 1000 * seconds / len(sample)
    return f"{per_reply:.2f} ms per reply ({len(sample)} replies, {chars:,.0f} characters on average)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0, help="seed of the by-question folds")
    parser.add_argument("--speed-replies", type=int, default=500)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    read = read_labelled(args.data)
    items = read.items
    print(read.describe())
    rules = asyncio.run(evaluate(RuleJudge(), items))
    rule_of = {id(item): p for item, p in zip(items, rules.predicted, strict=True)}
    schemes: dict[str, Folds] = {
        "5-fold by question": [(f"questions {k + 1}/5", train, test)
                               for k, (train, test) in enumerate(group_folds(items, 5, args.seed))],
        "leave one model out": model_folds(items),
    }  # fmt: skip
    for title, folds in schemes.items():
        started = time.perf_counter()
        columns = {
            "majority": _kappas(folds, majority),
            "rules": _kappas(folds, lambda _train, test: [rule_of[id(item)] for item in test]),
            "bag-of-words": _kappas(folds, bag_of_words),
            "learned": _learned(folds),
        }
        _print(title, columns)
        print(f"({time.perf_counter() - started:.0f} s)")
    print(f"\nshipped learned judge, one core: {_speed(items, args.speed_replies)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
