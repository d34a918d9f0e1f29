"""Correction rates corrected for the judge's own errors (Rogan-Gladen), with bootstrap intervals.

A run's correction rate is the share of replies its judge labelled ``corrects``. A judge that
misses corrections (sensitivity below 1) or sees them where there are none (specificity below 1)
biases that share. Given the judge's rates measured on reference labels
(:class:`~scoring.judge_error.JudgeErrorRates`, from ``convsim judge-eval --save``), the true
share is estimated as ``(observed + specificity - 1) / (sensitivity + specificity - 1)``, clipped
to [0, 1]. Its interval comes from a bootstrap that resamples both sources of uncertainty: the
run's conversations, and the judge's validation replies (their 2x2 table, multinomially).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scenarios import Label
from scoring.analysis.frames import Frames
from scoring.analysis.metrics import DEFAULT_BY, corrections_by_turn, groups, usable_turns
from scoring.analysis.stats import bootstrap_sums, nan_percentiles
from scoring.judge_error import JudgeErrorRates, LabelErrorRates, rogan_gladen

__all__ = ["ALL_TURNS", "corrected_rates"]

ALL_TURNS = "all"
"""The ``turn`` of the row that pools every turn of a group."""

FloatArray = npt.NDArray[np.float64]


def _validation_draws(
    corrects: LabelErrorRates, n_boot: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Sensitivity and specificity of ``n_boot`` resamples of the judge's validation replies."""
    cells = np.array(
        [
            corrects.true_positives,
            corrects.positives - corrects.true_positives,
            corrects.false_positives,
            corrects.negatives - corrects.false_positives,
        ],
        dtype=np.float64,
    )
    total = int(cells.sum())
    if total == 0 or corrects.positives == 0 or corrects.negatives == 0:
        raise ValueError("judge-error rates need reference replies of both kinds (corrects and not)")
    draws = rng.multinomial(total, cells / total, size=n_boot).astype(np.float64)
    tp, fn, fp, tn = draws.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (tp + fn), tn / (tn + fp)


def _corrected(observed: FloatArray, sensitivity: FloatArray, specificity: FloatArray) -> FloatArray:
    """Rogan-Gladen over arrays (rows: resamples), ``nan`` where the judge is no better than chance."""
    youden = (sensitivity + specificity - 1.0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (observed + specificity[:, None] - 1.0) / youden
    return np.where(youden > 0, np.clip(value, 0.0, 1.0), np.nan)


def corrected_rates(
    frames: Frames,
    rates: JudgeErrorRates,
    by: Sequence[str] = DEFAULT_BY,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Observed and judge-error-corrected correction rates, by group and turn and over all turns.

    Args:
        frames: the loaded runs (their replies labelled by the judge ``rates`` describes).
        rates: the judge's measured error rates.
        by: grouping columns.
        n_boot: bootstrap resamples (each resamples conversations and validation replies).
        seed: the bootstrap's seed.
        level: confidence level.

    Returns:
        Columns ``*by, turn, n, observed, observed_low, observed_high, corrected, corrected_low,
        corrected_high``; ``turn`` is the turn number, or ``"all"`` for the row over every turn.

    Raises:
        ValueError: the rates hold no usable figures for ``corrects``.
    """
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2 * 100
    corrects = rates.labels.get(Label.CORRECTS.value)
    if corrects is None:
        raise ValueError(f"the judge-error rates of {rates.judge} have no rates for 'corrects'")
    sensitivity, specificity = _validation_draws(corrects, n_boot, rng)
    records: list[dict[str, Any]] = []
    for key, rows in groups(usable_turns(frames), by):
        hits, replies = corrections_by_turn(rows)
        horizon = hits.shape[1]
        # columns: hits per turn, all turns; replies per turn, all turns
        table = np.hstack([hits, hits.sum(axis=1, keepdims=True), replies, replies.sum(axis=1, keepdims=True)])
        width = horizon + 1
        n, k = table[:, width:].sum(axis=0), table[:, :width].sum(axis=0)
        boot = np.vstack(list(bootstrap_sums(table, n_boot, rng)))
        with np.errstate(invalid="ignore", divide="ignore"):
            observed_b = np.where(boot[:, width:] > 0, boot[:, :width] / boot[:, width:], np.nan)
        observed_low, observed_high = nan_percentiles(observed_b, tail)
        corrected_low, corrected_high = nan_percentiles(_corrected(observed_b, sensitivity, specificity), tail)
        labels: list[int | str] = [*range(1, horizon + 1), ALL_TURNS]
        for column, turn in enumerate(labels):
            if n[column] == 0:
                continue
            observed = float(k[column] / n[column])
            records.append({
                **dict(zip(by, key, strict=True)), "turn": turn, "n": int(n[column]), "observed": observed,
                "observed_low": float(observed_low[column]), "observed_high": float(observed_high[column]),
                "corrected": rogan_gladen(observed, corrects.sensitivity, corrects.specificity),
                "corrected_low": float(corrected_low[column]), "corrected_high": float(corrected_high[column]),
            })  # fmt: skip
    columns = [*by, "turn", "n", "observed", "observed_low", "observed_high", "corrected", "corrected_low",
               "corrected_high"]  # fmt: skip
    return pd.DataFrame.from_records(records, columns=columns)
