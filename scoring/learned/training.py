"""Training a learned judge with scikit-learn (imported when training), and measuring it held out."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scenarios import REPLY_LABELS
from scoring.agreement import cohen_kappa, group_folds, model_folds
from scoring.judge_data import LabelledReply
from scoring.learned.encoder import OPENING_WORDS, Vocabulary, opening
from scoring.learned.features import Reply, scenario_features
from scoring.learned.model import DENSE_WEIGHT, JudgeModel

__all__ = [
    "TrainReport",
    "confident_threshold",
    "fit_judge_model",
    "fit_vocabulary",
    "held_out_predictions",
    "tfidf_matrix",
    "train_learned_judge",
]

_CONFIDENT_ACCURACY = 0.9  # a cascade keeps the learned label where held-out accuracy reaches this


def _targets(items: Sequence[LabelledReply]) -> tuple[Literal["binary", "labels"], list[str], list[str]]:
    """The training mode, classes and per-item targets: five-way when every item has a label, else binary.

    Raises:
        ValueError: fewer than two different targets.
    """
    if items and all(item.label is not None for item in items):
        values: list[str] = [item.label.value for item in items if item.label is not None]
        mode: Literal["binary", "labels"] = "labels"
        classes: list[str] = [label.value for label in REPLY_LABELS if label.value in values]
    else:
        mode, classes, values = "binary", ["0", "1"], ["1" if item.target else "0" for item in items]
    if len(set(values)) < 2:
        raise ValueError("the training items need at least two different labels")
    return mode, classes, values


def fit_vocabulary(texts: Sequence[str], ngram: tuple[int, int], words: int | None, **options: Any) -> Vocabulary:
    """A TF-IDF vocabulary fitted by scikit-learn on ``texts`` (only their first ``words`` words, if given)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(ngram_range=ngram, sublinear_tf=True, **options)
    vectoriser.fit([opening(t, words) if words else t for t in texts])
    terms = vectoriser.get_feature_names_out().tolist()
    return Vocabulary(ngram=ngram, words=words, terms=terms, idf=vectoriser.idf_.tolist())


def fit_judge_model(items: Sequence[LabelledReply], replies: Sequence[Reply] | None = None) -> JudgeModel:
    """Fit vocabularies, scaling and the classifier on labelled replies (no held-out estimates).

    Raises:
        ValueError: fewer than two classes among the labels.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    mode, classes, y = _targets(items)
    replies = list(replies) if replies is not None else [Reply.of_item(item) for item in items]
    texts = [r.reply for r in replies]
    reply_vocab = fit_vocabulary(texts, (1, 2), None, min_df=2)
    opening_vocab = fit_vocabulary(texts, (1, 3), OPENING_WORDS, min_df=2)
    scenario_texts = sorted({t for r in replies for t in (r.correction, r.belief, r.question)})
    similarity = fit_vocabulary([*texts, *scenario_texts], (1, 1), None, stop_words="english")
    dense = np.stack([scenario_features(similarity, r.reply, r.correction, r.belief, r.question, r.user)
                      for r in replies])  # fmt: skip
    mean, scale = dense.mean(0), dense.std(0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    blocks = [tfidf_matrix(reply_vocab, texts), tfidf_matrix(opening_vocab, texts),
              sparse.csr_matrix((dense - mean) / scale * DENSE_WEIGHT)]  # fmt: skip
    x = sparse.hstack(blocks).tocsr()
    solver = "liblinear" if mode == "binary" else "lbfgs"
    classifier = LogisticRegression(class_weight="balanced", C=1.0, solver=solver, max_iter=2000)
    classifier.fit(x, [classes.index(v) for v in y])
    weights, bias = classifier.coef_.round(6), classifier.intercept_
    if mode == "labels" and len(classes) == 2:  # one score for the second class: as a softmax, the first scores 0
        weights, bias = np.vstack([np.zeros_like(weights), weights]), np.concatenate([[0.0], bias])
    return JudgeModel(
        mode=mode, classes=classes, reply=reply_vocab, opening=opening_vocab, similarity=similarity,
        mean=mean.tolist(), scale=scale.tolist(), weights=weights.tolist(), bias=bias.tolist(),
    )  # fmt: skip


def tfidf_matrix(vocabulary: Vocabulary, texts: Sequence[str]) -> Any:
    """The texts' TF-IDF rows as a sparse matrix (the same values as :meth:`Vocabulary.row`)."""
    from scipy import sparse

    rows = [vocabulary.row(text) for text in texts]
    indptr = np.cumsum([0, *(len(r[0]) for r in rows)])
    columns = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, dtype=np.int64)
    values = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
    return sparse.csr_matrix((values, columns, indptr), shape=(len(rows), len(vocabulary.terms)))


def held_out_predictions(
    items: Sequence[LabelledReply], folds: Sequence[tuple[Sequence[LabelledReply], Sequence[LabelledReply]]]
) -> tuple[list[str], list[float]]:
    """Each item's predicted class and confidence from the fold where it was held out.

    Args:
        items: every item.
        folds: (train, test) pairs whose test sets cover each item once.
    """
    replies = {id(item): Reply.of_item(item) for item in items}
    predicted: dict[int, tuple[str, float]] = {}
    for train, test in folds:
        model = fit_judge_model(train, [replies[id(i)] for i in train])
        for item in test:
            proba, _ = model.proba(replies[id(item)])
            cls = int(proba.argmax())
            predicted[id(item)] = (model.classes[cls], float(proba[cls]))
    return [predicted[id(i)][0] for i in items], [predicted[id(i)][1] for i in items]


def confident_threshold(correct: Sequence[bool], confidence: Sequence[float], accuracy: float) -> float:
    """The least confidence from which the held-out predictions at or above it reach ``accuracy``.

    Returns:
        That confidence; 1.0 when no threshold reaches it.
    """
    order = np.argsort(-np.asarray(confidence))
    hits = np.cumsum(np.asarray(correct, dtype=np.float64)[order])
    shares = hits / np.arange(1, len(order) + 1)
    reached = np.nonzero(shares >= accuracy)[0]
    return float(np.asarray(confidence)[order][reached.max()]) if reached.size else 1.0


@dataclass(frozen=True)
class TrainReport:
    """What :func:`train_learned_judge` did.

    Attributes:
        path: the model file written.
        mode: ``binary`` or ``labels``.
        n: training replies.
        groups: distinct groups (questions) among them.
        models: distinct models that wrote them (0 when unknown).
        by_question_kappa: kappa of 5-fold cross-validation by question (``None``: too few questions).
        by_model_kappa: leave-one-model-out kappa per model (empty: fewer than two models).
        confident_at: the cascade threshold found.
        seconds: wall time.
    """

    path: Path
    mode: str
    n: int
    groups: int
    models: int
    by_question_kappa: float | None
    by_model_kappa: dict[str, float]
    confident_at: float
    seconds: float


def train_learned_judge(items: Sequence[LabelledReply], out: Path, seed: int = 0, source: str = "") -> TrainReport:
    """Train a learned judge on labelled replies, measure it held out, and write it to ``out``.

    Five-way labels on every item train a five-way judge; otherwise it is binary (corrects or
    not). Held out, by question (5 folds): the kappa and the cascade threshold; by model
    (leave one model out), when the items name two models or more: the kappa of each model.

    Args:
        items: the training replies.
        out: the model file to write.
        seed: the seed of the by-question folds.
        source: where the replies come from (recorded, so that an evaluation on them can be flagged).

    Raises:
        ValueError: fewer than two classes among the labels.
    """
    started = time.perf_counter()
    mode, _, y = _targets(items)
    groups = len({item.group for item in items})
    models = sorted({item.model for item in items if item.model})
    by_question: float | None = None
    confident_at = 1.0
    if groups >= 5:
        predicted, confidence = held_out_predictions(items, group_folds(items, 5, seed))
        by_question = cohen_kappa(y, predicted)
        correct = [p == t for p, t in zip(predicted, y, strict=True)]
        confident_at = confident_threshold(correct, confidence, _CONFIDENT_ACCURACY)
    by_model: dict[str, float] = {}
    if len(models) >= 2 and all(item.model for item in items):
        folds = model_folds(items)
        predicted, _ = held_out_predictions(items, [(train, test) for _, train, test in folds])
        for model_name, _, test in folds:
            index = {id(item) for item in test}
            pairs = [(t, p) for item, t, p in zip(items, y, predicted, strict=True) if id(item) in index]
            by_model[model_name] = cohen_kappa([t for t, _ in pairs], [p for _, p in pairs])
    model = fit_judge_model(items)
    model.confident_at = confident_at
    model.training = {
        "data": source, "n": len(items), "groups": groups, "models": models, "seed": seed, "mode": mode,
        "positives": sum(item.target for item in items),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "held_out": {"by_question_kappa": by_question, "by_model_kappa": by_model,
                     "confident_at": confident_at, "confident_accuracy": _CONFIDENT_ACCURACY},
    }  # fmt: skip
    model.save(out)
    return TrainReport(out, mode, len(items), groups, len(models), by_question, by_model, confident_at,
                       time.perf_counter() - started)  # fmt: skip
