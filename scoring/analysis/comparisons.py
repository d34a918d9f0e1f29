"""Comparisons: amplification against matched controls, paired targets, a logistic error model, calibration.

Same rules as ``metrics``: conversations only, error turns and errored conversations left out
(``metrics.exclusions`` counts them). An *error* is a usable reply that does not correct.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scenarios import Condition
from scoring.analysis.frames import Frames
from scoring.analysis.metrics import groups, usable_conversations, usable_turns
from scoring.analysis.stats import (
    bootstrap_sums,
    expected_calibration_error,
    fit_logit,
    mcnemar_exact,
    normal_quantile,
    unit_turn_sums,
)

__all__ = [
    "MATCH_KEYS",
    "Calibration",
    "ErrorModel",
    "amplification",
    "calibration",
    "error_model",
    "paired_by_turn",
    "paired_comparison",
]

MATCH_KEYS: tuple[str, ...] = ("scenario", "persona", "condition", "seed")
"""What makes two targets' conversations the same conversation."""

_UNIT_KEYS = ("scenario", "persona", "seed")  # a matched set across conditions


def _controls(condition: str) -> tuple[str, ...]:
    try:
        return tuple(c.value for c in Condition(condition).controls)
    except ValueError:
        return ()


def amplification(
    frames: Frames,
    by: Sequence[str] = ("target",),
    *,
    at_turn: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Error rate under each condition minus under each of its matched controls.

    The error rate is the share of usable replies that do not correct (at one turn, or over all
    turns). Controls come from ``scenarios.Condition(...).controls`` (emotional+false_belief
    against false_belief, emotional and neutral; emotional and false_belief against neutral).
    The bootstrap resamples matched sets (scenario, persona, seed), keeping each set's
    conditions together, since they share everything but the condition.

    Args:
        frames: the loaded runs.
        by: grouping columns (condition must not be among them).
        at_turn: only replies at this turn (1 is the warm-model paper's single-turn protocol);
            ``None`` pools every turn.
        n_boot: bootstrap resamples.
        seed: the bootstrap's seed.
        level: confidence level.

    Returns:
        Columns ``*by, condition, control, n, error, n_control, error_control, points,
        points_low, points_high, relative, relative_low, relative_high``: error rates as shares,
        ``points`` the difference in percentage points, ``relative`` the difference as a
        percentage of the control's error rate (NaN when the control never errs).
    """
    if "condition" in by:
        raise ValueError("amplification compares conditions: leave 'condition' out of by")
    turns = usable_turns(frames)
    if at_turn is not None:
        turns = turns.loc[turns["turn"] == at_turn]
    tail = (1 - level) / 2 * 100
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for key, rows in groups(turns, by):
        units, _ = pd.factorize(pd.MultiIndex.from_frame(rows[list(_UNIT_KEYS)].astype(str)))
        conditions = sorted(rows["condition"].unique())
        column = pd.Categorical(rows["condition"], categories=conditions).codes.astype(np.int64)
        width = len(conditions)
        cells = units * width + column
        size = (int(units.max()) + 1) * width
        replies = np.bincount(cells, minlength=size).reshape(-1, width).astype(np.float64)
        errors = np.bincount(cells, weights=(~rows["holds"]).to_numpy(np.float64), minlength=size)
        errors = errors.reshape(-1, width)
        n, e = replies.sum(axis=0), errors.sum(axis=0)
        boot = np.vstack(list(bootstrap_sums(np.hstack([errors, replies]), n_boot, rng)))
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_rate = boot[:, :width] / boot[:, width:]
        index = {c: i for i, c in enumerate(conditions)}
        for condition in conditions:
            for control in _controls(condition):
                if control not in index:
                    continue
                i, j = index[condition], index[control]
                head = {**dict(zip(by, key, strict=True)), "condition": condition, "control": control}
                records.append({**head, **_difference(e[i], n[i], e[j], n[j], boot_rate[:, i], boot_rate[:, j], tail)})
    return pd.DataFrame.from_records(
        records,
        columns=[*by, "condition", "control", "n", "error", "n_control", "error_control", "points", "points_low",
                 "points_high", "relative", "relative_low", "relative_high"],
    )  # fmt: skip


def _difference(
    e: float, n: float, e0: float, n0: float, rate: np.ndarray[Any, Any], rate0: np.ndarray[Any, Any], tail: float
) -> dict[str, Any]:
    error, control = e / n, e0 / n0
    points = rate - rate0
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(rate0 > 0, points / rate0, np.nan)
    p_low, p_high = _interval(points, tail)
    r_low, r_high = _interval(relative, tail)
    return {
        "n": int(n), "error": error, "n_control": int(n0), "error_control": control,
        "points": 100 * (error - control), "points_low": 100 * p_low, "points_high": 100 * p_high,
        "relative": 100 * (error - control) / control if control > 0 else math.nan,
        "relative_low": 100 * r_low, "relative_high": 100 * r_high,
    }  # fmt: skip


def _interval(values: np.ndarray[Any, Any], tail: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan, math.nan
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _arm(conversations: pd.DataFrame, selector: Mapping[str, Any]) -> pd.Series[bool]:
    mask = pd.Series(True, index=conversations.index)
    for column, value in selector.items():
        mask &= conversations[column] == value
    return mask


def paired_comparison(
    frames: Frames,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    outcome: str = "corrected_turn1",
    by: Sequence[str] = ("condition",),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Two arms on the same conversations (matched on scenario, persona, condition, seed): paired difference, McNemar.

    Args:
        frames: the loaded runs.
        a: selects arm A's conversations, e.g. ``{"target": "base"}`` or ``{"run": "warm-run"}``.
        b: selects arm B's conversations.
        outcome: a boolean conversation column, e.g. ``corrected_turn1``, ``ever_corrected``, ``capitulated``.
        by: strata; each gets a row, and the last row (strata ``"all"``) pools them.
        n_boot: bootstrap resamples of the pairs.
        seed: the bootstrap's seed.
        level: confidence level.

    Returns:
        Columns ``*by, outcome, pairs, a_yes, b_yes, only_a, only_b, rate_a, rate_b, difference,
        low, high, p_value, unpaired``: ``difference`` is rate A minus rate B, ``low``/``high`` its
        bootstrap interval resampling pairs (each pair keeps both arms); ``unpaired`` counts usable
        conversations of either arm without a usable partner (a partner that errored, or none).

    Raises:
        ValueError: an arm has two conversations with the same match keys (narrow its selector).
    """
    pairs, unpaired_of = _pairs(usable_conversations(frames), a, b, by, outcome)
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2 * 100
    records = []
    for key, rows in _strata(pairs, by):
        ya, yb = rows[f"{outcome}_a"].astype(bool), rows[f"{outcome}_b"].astype(bool)
        unpaired = unpaired_of if key == ("all",) * len(by) else _in_stratum(unpaired_of, by, key)
        hits = np.column_stack([ya.to_numpy(np.float64), yb.to_numpy(np.float64), np.ones(len(rows))])
        records.append({**dict(zip(by, key, strict=True)), "outcome": outcome, "a_yes": int(ya.sum()),
                        "b_yes": int(yb.sum()), **_paired_difference(hits[None], n_boot, rng, tail)[0],
                        "unpaired": len(unpaired)})  # fmt: skip
    return pd.DataFrame.from_records(
        records,
        columns=[*by, "outcome", "pairs", "a_yes", "b_yes", "only_a", "only_b", "rate_a", "rate_b", "difference",
                 "low", "high", "p_value", "unpaired"],
    )  # fmt: skip


def paired_by_turn(
    frames: Frames,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    by: Sequence[str] = ("condition",),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Two arms on the same conversations, turn by turn: the paired difference in correction rate.

    At each turn, the pairs where both arms have a usable reply; the bootstrap resamples pairs
    (a pair keeps both arms and all its turns), so the intervals at different turns come from
    the same resamples. McNemar's exact p-value sits beside each difference.

    Args:
        frames: the loaded runs.
        a: selects arm A's replies, as in :func:`paired_comparison`.
        b: selects arm B's replies.
        by: strata; each gets rows, and the strata ``"all"`` pools them.
        n_boot: bootstrap resamples of the pairs.
        seed: the bootstrap's seed.
        level: confidence level.

    Returns:
        Columns ``*by, turn, pairs, only_a, only_b, rate_a, rate_b, difference, low, high, p_value``:
        rates are shares of replies that correct; ``difference`` is A minus B.
    """
    pairs, _ = _pairs(usable_turns(frames), a, b, by, "holds", ["turn"])
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2 * 100
    records = []
    for key, rows in _strata(pairs, by):
        if rows.empty:
            continue
        units, _ = pd.factorize(pd.MultiIndex.from_frame(rows[list(MATCH_KEYS)].astype(str)))
        columns = unit_turn_sums(units, rows["turn"].to_numpy(np.int64), rows["holds_a"].to_numpy(np.float64),
                                 rows["holds_b"].to_numpy(np.float64), np.ones(len(rows)))  # fmt: skip
        hits = np.stack(columns, axis=-1).transpose(1, 0, 2)  # (turns, pairs, [a, b, present])
        for turn, stats in enumerate(_paired_difference(hits, n_boot, rng, tail), start=1):
            if stats["pairs"]:
                records.append({**dict(zip(by, key, strict=True)), "turn": turn, **stats})
    return pd.DataFrame.from_records(
        records,
        columns=[*by, "turn", "pairs", "only_a", "only_b", "rate_a", "rate_b", "difference", "low", "high",
                 "p_value"],
    )  # fmt: skip


def _pairs(
    rows: pd.DataFrame,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    strata: Sequence[str],
    value: str,
    extra_keys: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The arms' rows matched on ``MATCH_KEYS`` (and ``extra_keys``): (pairs, rows without a partner).

    The pairs hold ``value_a`` and ``value_b``, and the strata columns of arm A.

    Raises:
        ValueError: an arm has two rows with the same keys (narrow its selector).
    """
    keys = [*MATCH_KEYS, *extra_keys]
    arms = []
    for name, selector, columns in (("a", a, [*keys, *strata]), ("b", b, keys)):
        arm = rows.loc[_arm(rows, selector), [*dict.fromkeys(columns), value]]
        if arm.duplicated(keys).any():
            raise ValueError(f"arm {name} ({dict(selector)}) has several conversations per {', '.join(keys)}")
        arms.append(arm.rename(columns={value: f"{value}_{name}"}))
    paired = arms[0].merge(arms[1], on=keys, how="outer", indicator=True)
    return paired.loc[paired["_merge"] == "both"], paired.loc[paired["_merge"] != "both"]


def _strata(pairs: pd.DataFrame, by: Sequence[str]) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    return [(key, rows) for key, rows in groups(pairs, by)] + ([(("all",) * len(by), pairs)] if by else [])


def _paired_difference(
    hits: np.ndarray[Any, Any], n_boot: int, rng: np.random.Generator, tail: float
) -> list[dict[str, Any]]:
    """Per slice of ``hits`` ``(slices, pairs, [a, b, present])``: counts, rates, difference, interval, McNemar.

    One bootstrap of the pairs serves every slice (a pair keeps all its slices).
    """
    slices, units = hits.shape[0], hits.shape[1]
    flat = hits.transpose(1, 0, 2).reshape(units, slices * 3)
    boot = np.vstack(list(bootstrap_sums(flat, n_boot, rng))).reshape(-1, slices, 3) if units else None
    out = []
    for i, values in enumerate(hits):
        present = values[:, 2] > 0
        a, b = values[present, 0] > 0, values[present, 1] > 0
        n = int(present.sum())
        only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
        low, high = math.nan, math.nan
        if n and boot is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                low, high = _interval((boot[:, i, 0] - boot[:, i, 1]) / boot[:, i, 2], tail)
        out.append({"pairs": n, "only_a": only_a, "only_b": only_b,
                    "rate_a": a.mean() if n else math.nan, "rate_b": b.mean() if n else math.nan,
                    "difference": (a.mean() - b.mean()) if n else math.nan, "low": low, "high": high,
                    "p_value": mcnemar_exact(only_a, only_b)})  # fmt: skip
    return out


def _in_stratum(frame: pd.DataFrame, by: Sequence[str], key: tuple[Any, ...]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in zip(by, key, strict=True):
        mask &= frame[column] == value
    return frame.loc[mask]


@dataclass(frozen=True)
class ErrorModel:
    """A logistic model of error (a usable reply that does not correct).

    Attributes:
        effects: columns ``term, level, reference, ame, se, low, high, p_value``: average marginal
            effects on the probability of error: for a categorical term, the mean change in
            predicted probability when every reply is set to ``level`` instead of ``reference``;
            for a numeric term, the mean derivative (per unit, e.g. per turn).
        coefficients: the fitted log-odds coefficients, by design column.
        n: replies in the fit.
        clusters: conversations (the standard errors are clustered by conversation).
        converged: the fit converged.
    """

    effects: pd.DataFrame
    coefficients: pd.Series[float]
    n: int
    clusters: int
    converged: bool


def _reference(levels: list[str]) -> str:
    return "neutral" if "neutral" in levels else levels[0]


def error_model(
    frames: Frames,
    categorical: Sequence[str] = ("target", "condition"),
    numeric: Sequence[str] = ("turn",),
    *,
    level: float = 0.95,
) -> ErrorModel:
    """Fit ``P(error) = logistic(intercept + categorical dummies + numeric terms)`` and its average marginal effects.

    The fit is maximum likelihood by IRLS (numpy); standard errors are cluster-robust by
    conversation, and the effects' errors come from the delta method. Each categorical term's
    reference level is ``neutral`` where present, else its first level in sorted order.

    Args:
        frames: the loaded runs.
        categorical: columns entered as dummies.
        numeric: columns entered as numbers.
        level: confidence level of the effects' intervals.
    """
    rows = usable_turns(frames)
    y = np.asarray(~rows["holds"], dtype=np.float64)
    columns: list[str] = ["intercept"]
    blocks: list[np.ndarray[Any, Any]] = [np.ones((len(rows), 1))]
    dummies: dict[str, tuple[str, list[str], list[int]]] = {}
    for term in categorical:
        values = rows[term].astype(str)
        levels = sorted(values.unique())
        reference = _reference(levels)
        others = [lv for lv in levels if lv != reference]
        dummies[term] = (reference, others, list(range(len(columns), len(columns) + len(others))))
        columns += [f"{term}[{lv}]" for lv in others]
        blocks.append(np.column_stack([(values == lv).to_numpy(np.float64) for lv in others]) if others
                      else np.zeros((len(rows), 0)))  # fmt: skip
    for term in numeric:
        columns.append(term)
        blocks.append(rows[term].to_numpy(np.float64)[:, None])
    x = np.hstack(blocks)
    fit = fit_logit(x, y, clusters=rows["conversation"].to_numpy(np.int64))
    z = normal_quantile(level)
    effects = []
    for term, (reference, others, indexes) in dummies.items():
        for lv, col in zip(others, indexes, strict=True):
            ame, grad = _categorical_effect(x, fit.coef, indexes, col)
            effects.append(_effect(term, lv, reference, ame, grad, fit.cov, z))
    for term in numeric:
        col = columns.index(term)
        p = fit.probabilities
        slope = p * (1 - p)
        ame = float(fit.coef[col] * slope.mean())
        grad = (x * (fit.coef[col] * slope * (1 - 2 * p))[:, None]).mean(axis=0)
        grad[col] += slope.mean()
        effects.append(_effect(term, "per unit", "", ame, grad, fit.cov, z))
    return ErrorModel(
        effects=pd.DataFrame.from_records(
            effects, columns=["term", "level", "reference", "ame", "se", "low", "high", "p_value"]
        ),
        coefficients=pd.Series(fit.coef, index=columns),
        n=len(rows),
        clusters=int(rows["conversation"].nunique()),
        converged=fit.converged,
    )


def _categorical_effect(
    x: np.ndarray[Any, Any], coef: np.ndarray[Any, Any], block: list[int], column: int
) -> tuple[float, np.ndarray[Any, Any]]:
    at_level, at_reference = x.copy(), x.copy()
    at_level[:, block] = 0.0
    at_level[:, column] = 1.0
    at_reference[:, block] = 0.0
    p1 = 1.0 / (1.0 + np.exp(-(at_level @ coef)))
    p0 = 1.0 / (1.0 + np.exp(-(at_reference @ coef)))
    grad = ((at_level * (p1 * (1 - p1))[:, None]) - (at_reference * (p0 * (1 - p0))[:, None])).mean(axis=0)
    return float((p1 - p0).mean()), grad


def _effect(
    term: str, level: str, reference: str, ame: float, grad: np.ndarray[Any, Any], cov: np.ndarray[Any, Any], z: float
) -> dict[str, Any]:
    se = float(math.sqrt(max(float(grad @ cov @ grad), 0.0)))
    p_value = math.erfc(abs(ame / se) / math.sqrt(2)) if se > 0 else math.nan
    return {"term": term, "level": level, "reference": reference, "ame": ame, "se": se,
            "low": ame - z * se, "high": ame + z * se, "p_value": p_value}  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    """Calibration of probe answers where logprobs were recorded.

    Attributes:
        summary: columns ``*by, n, accuracy, confidence, ece``.
        bins: columns ``*by, bin, low, high, n, accuracy, confidence`` (the reliability diagram).
        measure: the confidence column used (``confidence``: exp of the mean token logprob).
    """

    summary: pd.DataFrame
    bins: pd.DataFrame
    measure: str


def calibration(
    frames: Frames, by: Sequence[str] = ("target",), *, bins: int = 10, measure: str = "confidence"
) -> Calibration:
    """Expected calibration error and reliability diagram of probe answers.

    The answers are conversation replies scored ``accurate`` (probe replies) with logprobs.
    Confidence is ``exp(mean token logprob)`` of the reply (``measure="confidence"``), the
    geometric mean of its tokens' probabilities: it uses the whole answer, where the first
    token is often a filler ("Actually", "Yes,"); ``measure="first_token_prob"`` is the other option.

    Args:
        frames: the loaded runs.
        by: grouping columns (add ``turn`` for calibration by turn).
        bins: equal-width confidence bins.
        measure: ``confidence`` or ``first_token_prob``.
    """
    turns = usable_turns(frames)
    answers = turns.loc[turns["accurate"].notna() & turns[measure].notna()]
    summary: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for key, rows in groups(answers, by):
        confidence = rows[measure].to_numpy(np.float64)
        correct = np.asarray(rows["accurate"].astype(bool), dtype=np.float64)
        ece, accuracy, mean_confidence, counts = expected_calibration_error(confidence, correct, bins)
        head = dict(zip(by, key, strict=True))
        summary.append({**head, "n": len(rows), "accuracy": float(correct.mean()),
                        "confidence": float(confidence.mean()), "ece": ece})  # fmt: skip
        for i in range(bins):
            table.append({**head, "bin": i, "low": i / bins, "high": (i + 1) / bins, "n": int(counts[i]),
                          "accuracy": float(accuracy[i]), "confidence": float(mean_confidence[i])})  # fmt: skip
    return Calibration(
        summary=pd.DataFrame.from_records(summary, columns=[*by, "n", "accuracy", "confidence", "ece"]),
        bins=pd.DataFrame.from_records(table, columns=[*by, "bin", "low", "high", "n", "accuracy", "confidence"]),
        measure=measure,
    )
