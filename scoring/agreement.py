"""How well a judge agrees with trusted labels: accuracy, Cohen's kappa, the confusion matrix.

:func:`evaluate` runs any :class:`~scoring.judge.Judge` over labelled replies (see
:mod:`scoring.judge_data`) and compares. With five-way reference labels it compares labels;
with binary ones (SYCON-Bench's 1/0) it maps the judge's label to binary first: ``corrects``
is 1, every other label 0. A reply the judge fails on (it raises :class:`JudgeError` or
gives ``error``) counts as a disagreement, under the predicted label ``error``.

Splits for training and testing learned judges go by group (question), never by reply:
replies to one question are too alike to sit on both sides.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from scenarios import REPLY_LABELS, Judgement, Label

if TYPE_CHECKING:
    import pandas as pd
from scoring.judge import Judge, JudgeError
from scoring.judge_data import LabelledReply, history_for, scenario_for

__all__ = [
    "BINARY_CLASSES",
    "ERROR_CLASS",
    "Agreement",
    "cohen_kappa",
    "confusion_matrix",
    "evaluate",
    "format_agreement",
    "group_folds",
    "model_folds",
    "split_by_group",
    "write_judged",
]

Mode = Literal["auto", "binary", "labels"]


class Grouped(Protocol):
    """Anything with a ``group`` (a :class:`LabelledReply`, for one)."""

    @property
    def group(self) -> str:
        """What the item belongs to for splitting."""
        ...


T = TypeVar("T", bound=Grouped)

BINARY_CLASSES: tuple[str, ...] = ("1", "0")
"""Binary classes: ``1`` = corrects, ``0`` = anything else."""
ERROR_CLASS = "error"
"""The predicted class of a reply the judge could not label."""


def cohen_kappa(reference: Sequence[str], predicted: Sequence[str]) -> float:
    """Cohen's kappa between two labellings of the same items.

    ``(p_o - p_e) / (1 - p_e)``, where ``p_o`` is the observed share of agreement and ``p_e`` the
    agreement expected by chance from the two label distributions.

    Returns:
        Kappa; ``nan`` when it is undefined (both sides give one and the same class throughout),
        and for no items.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference labels but {len(predicted)} predicted ones")
    n = len(reference)
    if n == 0:
        return math.nan
    observed = sum(r == p for r, p in zip(reference, predicted, strict=True)) / n
    classes = set(reference) | set(predicted)
    expected = sum((reference.count(c) / n) * (predicted.count(c) / n) for c in classes)
    if expected >= 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)


def confusion_matrix(
    reference: Sequence[str], predicted: Sequence[str], classes: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Counts by reference class (outer key) and predicted class (inner key), over ``classes``.

    Classes found in the data but missing from ``classes`` are added at the end.
    """
    order = list(classes) + sorted((set(reference) | set(predicted)) - set(classes))
    matrix = {r: dict.fromkeys(order, 0) for r in order}
    for r, p in zip(reference, predicted, strict=True):
        matrix[r][p] += 1
    return matrix


@dataclass(frozen=True)
class Agreement:
    """A judge's agreement with reference labels.

    Attributes:
        judge: the judge's name.
        mode: ``binary`` (corrects or not) or ``labels`` (the five reply labels).
        n: number of items compared.
        accuracy: share of items where the judge gives the reference class.
        kappa: Cohen's kappa (``nan`` when undefined).
        confusion: counts by reference class, then predicted class.
        classes: the class order of ``confusion``.
        errors: items the judge could not label (counted as disagreements).
        reference: the reference class of each item, in input order.
        predicted: the judge's class of each item, in input order.
        judgements: the judge's judgement of each item, in input order (``None`` where it failed),
            when the agreement comes from :func:`evaluate`.
        seconds: wall time of the evaluation.
    """

    judge: str
    mode: Literal["binary", "labels"]
    n: int
    accuracy: float
    kappa: float
    confusion: dict[str, dict[str, int]]
    classes: tuple[str, ...]
    errors: int = 0
    reference: tuple[str, ...] = field(default=(), repr=False)
    predicted: tuple[str, ...] = field(default=(), repr=False)
    judgements: tuple[Judgement | None, ...] = field(default=(), repr=False)
    seconds: float = 0.0

    @classmethod
    def from_labels(
        cls,
        judge: str,
        mode: Literal["binary", "labels"],
        reference: Sequence[str],
        predicted: Sequence[str],
        seconds: float = 0.0,
        judgements: Sequence[Judgement | None] = (),
    ) -> Agreement:
        """Compute the figures from the two labellings."""
        classes = BINARY_CLASSES if mode == "binary" else tuple(label.value for label in REPLY_LABELS)
        n = len(reference)
        agree = sum(r == p for r, p in zip(reference, predicted, strict=True))
        matrix = confusion_matrix(reference, predicted, classes)
        return cls(
            judge=judge,
            mode=mode,
            n=n,
            accuracy=agree / n if n else math.nan,
            kappa=cohen_kappa(reference, predicted),
            confusion=matrix,
            classes=tuple(matrix),
            errors=sum(p == ERROR_CLASS for p in predicted),
            reference=tuple(reference),
            predicted=tuple(predicted),
            judgements=tuple(judgements),
            seconds=seconds,
        )

    def within(self, keys: Sequence[int | str]) -> dict[int | str, Agreement]:
        """The agreement within each value of ``keys`` (one key per item, e.g. its turn), in sorted order."""
        if len(keys) != self.n:
            raise ValueError(f"{len(keys)} keys for {self.n} items")
        parts: dict[int | str, Agreement] = {}
        for key in sorted(set(keys), key=lambda k: (k, "") if isinstance(k, int) else (0, k)):
            index = [i for i, k in enumerate(keys) if k == key]
            parts[key] = Agreement.from_labels(
                self.judge, self.mode, [self.reference[i] for i in index], [self.predicted[i] for i in index]
            )
        return parts

    def confusion_frame(self) -> pd.DataFrame:
        """The confusion matrix as a DataFrame: rows are reference classes, columns predicted ones."""
        import pandas as pd  # only here: the rest of this module is needed at start-up, pandas is slow to import

        frame = pd.DataFrame.from_dict(self.confusion, orient="index")[list(self.classes)]
        frame.index.name = "reference"
        frame.columns.name = "predicted"
        return frame


def _binary(label: Label | None) -> str:
    if label is None or label is Label.ERROR:
        return ERROR_CLASS
    return "1" if label is Label.CORRECTS else "0"


def _resolve_mode(items: Sequence[LabelledReply], mode: Mode) -> Literal["binary", "labels"]:
    if mode == "auto":
        return "labels" if items and all(item.label is not None for item in items) else "binary"
    if mode == "labels" and any(item.label is None for item in items):
        raise ValueError("mode 'labels' needs a five-way label on every item; some have only 1/0")
    return mode


async def evaluate(
    judge: Judge,
    items: Sequence[LabelledReply],
    concurrency: int = 16,
    mode: Mode = "auto",
) -> Agreement:
    """Label every item with ``judge`` and compare with the reference labels.

    Args:
        judge: any judge.
        items: labelled replies.
        concurrency: how many replies are judged at once.
        mode: ``labels`` compares the five reply labels (every item needs one), ``binary``
            compares corrects-or-not; ``auto`` takes ``labels`` when every item has a five-way label.

    Returns:
        The agreement; a reply the judge fails on counts as the predicted class ``error``.
    """
    resolved = _resolve_mode(items, mode)
    semaphore = asyncio.Semaphore(max(1, concurrency))
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one(item: LabelledReply) -> Judgement | None:
        async with semaphore:
            try:
                return await judge.judge(scenario_for(item), history_for(item), item.reply)
            except JudgeError:
                return None

    judgements = await asyncio.gather(*(one(item) for item in items))
    labels = [None if judgement is None else judgement.label for judgement in judgements]
    if resolved == "binary":
        reference = ["1" if item.target else "0" for item in items]
        predicted = [_binary(label) for label in labels]
    else:
        reference = [item.label.value if item.label else ERROR_CLASS for item in items]
        predicted = [label.value if label else ERROR_CLASS for label in labels]
    seconds = loop.time() - started
    return Agreement.from_labels(judge.name, resolved, reference, predicted, seconds, judgements)


def format_agreement(agreement: Agreement, items: Sequence[LabelledReply] = ()) -> str:
    """A plain-text summary: the figures, the confusion matrix (rows: reference) and, given the
    items, the agreement by turn and (with several models) by the model that wrote the reply."""
    lines = [
        f"judge {agreement.judge}: {agreement.n} replies ({agreement.mode})",
        f"accuracy {agreement.accuracy:.3f}   Cohen's kappa {agreement.kappa:.3f}"
        + (f"   judge errors {agreement.errors}" if agreement.errors else ""),
    ]
    if agreement.seconds > 0 and agreement.n:
        lines.append(f"{agreement.n / agreement.seconds:.1f} replies/s")
    width = max(9, *(len(c) for c in agreement.classes)) + 1
    lines.append("")
    lines.append("reference \\ judge".ljust(width + 8) + "".join(c.rjust(width) for c in agreement.classes))
    for ref in agreement.classes:
        row = agreement.confusion[ref]
        if sum(row.values()) == 0 and ref == ERROR_CLASS:
            continue
        lines.append(ref.ljust(width + 8) + "".join(str(row[c]).rjust(width) for c in agreement.classes))
    if items:
        lines += _breakdown("turn", agreement.within([item.turn for item in items]))
        models = [item.model for item in items]
        if len(set(models)) > 1:
            lines += _breakdown("model", agreement.within(models))
    return "\n".join(lines)


def _breakdown(name: str, parts: dict[int | str, Agreement]) -> list[str]:
    """Rows of n, the reference's share of the first class, accuracy and kappa per part."""
    width = max(len(name), *(len(str(key)) for key in parts)) + 3
    first = next(iter(parts.values())).classes[0]
    share_head = f"ref {first}"
    lines = ["", f"{'by ' + name:<{width}} {'n':>6} {share_head:>10} {'accuracy':>8} {'kappa':>6}"]
    for key, part in parts.items():
        share = part.reference.count(first) / part.n if part.n else math.nan
        lines.append(f"{key!s:<{width}} {part.n:>6} {share:>10.3f} {part.accuracy:>8.3f} {part.kappa:>6.3f}")
    return lines


def write_judged(path: Path, items: Sequence[LabelledReply], agreement: Agreement) -> None:
    """Write one JSON line per reply: where it comes from, the reply, the reference and the judge's label.

    Each line holds ``source``, ``model``, ``group``, ``turn``, ``question``, ``belief``,
    ``correction``, ``reply``, ``reference`` and ``predicted`` (the compared classes: ``1``/``0`` or
    a label; ``error`` where the judge failed), ``agrees``, and the judge's ``label``, ``evidence``
    and ``confidence``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    judgements = agreement.judgements or (None,) * len(items)
    with path.open("w", encoding="utf-8") as handle:
        for item, reference, predicted, judgement in zip(
            items, agreement.reference, agreement.predicted, judgements, strict=True
        ):
            row = {
                "source": item.source, "model": item.model, "group": item.group, "turn": item.turn,
                "question": item.question, "belief": item.belief, "correction": item.correction, "reply": item.reply,
                "reference": reference, "predicted": predicted, "agrees": reference == predicted,
                "label": None if judgement is None else judgement.label.value,
                "evidence": None if judgement is None else judgement.evidence,
                "confidence": None if judgement is None else judgement.confidence,
            }  # fmt: skip
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _groups(items: Sequence[Grouped], seed: int) -> list[str]:
    groups = sorted({item.group for item in items})
    random.Random(seed).shuffle(groups)
    return groups


def split_by_group(items: Sequence[T], test_fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """Split items into train and test sets by group (question), never splitting a group.

    Args:
        items: labelled replies.
        test_fraction: the share of groups that go to the test set (0 to 1).
        seed: the shuffle's seed; the same seed gives the same split.

    Returns:
        (train, test), each in input order.

    Raises:
        ValueError: ``test_fraction`` is outside [0, 1].
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1], not {test_fraction}")
    groups = _groups(items, seed)
    n_test = round(len(groups) * test_fraction)
    if 0.0 < test_fraction < 1.0 and len(groups) > 1:
        n_test = min(max(n_test, 1), len(groups) - 1)
    test_groups = set(groups[:n_test])
    train = [item for item in items if item.group not in test_groups]
    test = [item for item in items if item.group in test_groups]
    return train, test


def group_folds(items: Sequence[T], k: int = 5, seed: int = 0) -> list[tuple[list[T], list[T]]]:
    """K-fold cross-validation splits by group: every group is in exactly one test fold.

    Returns:
        ``k`` pairs (train, test), each in input order.

    Raises:
        ValueError: fewer groups than folds, or ``k`` < 2.
    """
    groups = _groups(items, seed)
    if k < 2 or len(groups) < k:
        raise ValueError(f"need k >= 2 and at least k groups (k={k}, {len(groups)} groups)")
    fold_of = {group: i % k for i, group in enumerate(groups)}
    return [
        (
            [item for item in items if fold_of[item.group] != fold],
            [item for item in items if fold_of[item.group] == fold],
        )
        for fold in range(k)
    ]


def model_folds(items: Sequence[LabelledReply]) -> list[tuple[str, list[LabelledReply], list[LabelledReply]]]:
    """Leave-one-model-out splits: each model's replies are the test set once, the other models' the training set.

    Returns:
        ``(model, train, test)`` per model, in sorted order of model name, each list in input order.

    Raises:
        ValueError: fewer than two models, or an item without a model.
    """
    models = sorted({item.model for item in items})
    if "" in models:
        raise ValueError("leave-one-model-out needs the model of every reply")
    if len(models) < 2:
        raise ValueError(f"leave-one-model-out needs replies of at least two models, not {len(models)}")
    return [
        (model, [item for item in items if item.model != model], [item for item in items if item.model == model])
        for model in models
    ]
