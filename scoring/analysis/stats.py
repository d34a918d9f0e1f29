"""Statistics on plain numpy arrays: bootstrap, Kaplan-Meier, McNemar, logistic regression, calibration.

Nothing here knows about transcripts; ``metrics`` feeds these functions from the frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_N",
    "Logit",
    "bootstrap_sums",
    "expected_calibration_error",
    "fit_logit",
    "kaplan_meier",
    "mcnemar_exact",
    "medians_from_counts",
    "nan_percentiles",
    "normal_quantile",
    "ols_slopes",
    "unit_turn_sums",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CHUNK_CELLS = 4_000_000  # resamples x units per chunk: bounds the bootstrap's memory


def normal_quantile(level: float) -> float:
    """The two-sided standard normal quantile of a confidence level (1.96 for 0.95)."""
    # bisection on erf: exact to double precision, no scipy needed
    target = 0.5 + level / 2
    low, high = 0.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def bootstrap_sums(values: FloatArray, n_boot: int, rng: np.random.Generator) -> Iterator[FloatArray]:
    """Column sums of ``values`` over bootstrap resamples of its rows, in chunks.

    Each resample draws ``len(values)`` rows with replacement (counted into weights); each
    yielded chunk is a ``(resamples, columns)`` array, ``n_boot`` resamples in all.

    Args:
        values: ``(units, columns)``: one row per resampled unit (a conversation, a matched cluster).
        n_boot: resamples in all.
        rng: the generator (seed it for reproducible intervals).
    """
    units = values.shape[0]
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(units, 1)))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        draws = rng.integers(0, units, size=(size, units)) + (np.arange(size) * units)[:, None]
        weights = np.bincount(draws.ravel(), minlength=size * units).reshape(size, units).astype(np.float64)
        yield weights @ values
        done += size


def unit_turn_sums(
    units: npt.NDArray[np.int64], turns: npt.NDArray[np.int64], *weights: FloatArray
) -> list[FloatArray]:
    """Each of ``weights`` summed per unit and turn: one row per unit, one column per turn.

    Args:
        units: each row's unit, coded 0..k-1 (e.g. ``pd.factorize`` of its conversation).
        turns: each row's turn, from 1.
        weights: per row, the values to sum (ones count the rows).
    """
    turn_index = turns - 1
    horizon = int(turn_index.max()) + 1
    cells = units * horizon + turn_index
    size = (int(units.max()) + 1) * horizon
    return [
        np.bincount(cells, weights=w, minlength=size).astype(np.float64, copy=False).reshape(-1, horizon)
        for w in weights
    ]


def medians_from_counts(counts: FloatArray, values: FloatArray) -> FloatArray:
    """The median of each row's sample, given as counts of each of the sorted ``values``.

    Args:
        counts: ``(samples, values)``: how many times each value occurs (e.g. bootstrap resample weights
            summed per distinct value).
        values: ``(values,)`` the distinct values, ascending.
    """
    n = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    lower = np.argmax(cumulative > ((n - 1) // 2)[:, None], axis=1)
    upper = np.argmax(cumulative > (n // 2)[:, None], axis=1)
    medians: FloatArray = (values[lower] + values[upper]) / 2
    return medians


def nan_percentiles(values: FloatArray, tail: float) -> tuple[FloatArray, FloatArray]:
    """Lower and upper percentiles (``tail`` and ``100 - tail``) per column, ignoring NaN.

    A column with no finite value gets NaN at both ends.
    """
    finite = np.isfinite(values)
    low = np.full(values.shape[1], np.nan)
    high = np.full(values.shape[1], np.nan)
    for column in range(values.shape[1]):
        present = values[finite[:, column], column]
        if present.size:
            low[column], high[column] = np.percentile(present, [tail, 100 - tail])
    return low, high


def ols_slopes(x: FloatArray, y: FloatArray) -> FloatArray:
    """Least-squares slope of each row of ``y`` on ``x``, ignoring NaN cells (NaN under two points).

    Args:
        x: ``(points,)`` abscissae.
        y: ``(rows, points)`` ordinates, NaN where missing.
    """
    mask = ~np.isnan(y)
    n = mask.sum(axis=1)
    xs = np.where(mask, x, 0.0)
    ys = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_mean = xs.sum(axis=1) / n
        y_mean = ys.sum(axis=1) / n
        dx = np.where(mask, x - x_mean[:, None], 0.0)
        numerator = (dx * (ys - y_mean[:, None])).sum(axis=1)
        denominator = (dx * dx).sum(axis=1)
        slopes: FloatArray = np.where((n >= 2) & (denominator > 0), numerator / denominator, np.nan)
    return slopes


@dataclass(frozen=True)
class SurvivalTable:
    """A Kaplan-Meier estimate at each time from 1 to the largest observed.

    Attributes:
        time, at_risk, events, censored: per time step.
        survival: the estimate just after the time step.
        low, high: pointwise confidence interval (Greenwood variance, log-log transform).
    """

    time: IntArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    survival: FloatArray
    low: FloatArray
    high: FloatArray


def kaplan_meier(times: IntArray, events: npt.NDArray[np.bool_], level: float = 0.95) -> SurvivalTable:
    """Kaplan-Meier survival with Greenwood log-log intervals.

    Args:
        times: positive integer time of each subject's event or censoring.
        events: True where the subject had the event at its time, False where censored.
        level: confidence level of the intervals.
    """
    horizon = int(times.max()) if times.size else 0
    grid = np.arange(1, horizon + 1, dtype=np.int64)
    event_counts = np.bincount(times[events], minlength=horizon + 1)[1:].astype(np.int64)
    censor_counts = np.bincount(times[~events], minlength=horizon + 1)[1:].astype(np.int64)
    leaving = event_counts + censor_counts
    at_risk = (len(times) - np.concatenate([[0], np.cumsum(leaving)[:-1]])).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - event_counts / at_risk, 1.0)
        survival = np.cumprod(factor)
        terms = np.where(at_risk > event_counts, event_counts / (at_risk * (at_risk - event_counts)), 0.0)
        greenwood = np.cumsum(terms)
        z = normal_quantile(level)
        log_s = np.log(survival)
        spread = z * np.sqrt(greenwood) / np.abs(log_s)
        low = np.where((survival > 0) & (survival < 1), survival ** np.exp(spread), survival)
        high = np.where((survival > 0) & (survival < 1), survival ** np.exp(-spread), survival)
    as_float = np.float64
    return SurvivalTable(
        grid,
        at_risk,
        event_counts,
        censor_counts,
        survival.astype(as_float),
        low.astype(as_float),
        high.astype(as_float),
    )


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against one half.

    Args:
        only_a: pairs where the outcome holds for A only.
        only_b: pairs where the outcome holds for B only.
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)
    ]
    peak = max(log_terms)
    tail = math.exp(peak) * sum(math.exp(t - peak) for t in log_terms)
    return min(1.0, 2.0 * tail)


MIN_N = 5
"""Below this many units a report prints "n too small" instead of an interval."""


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) when ``n`` is 0.

    Honest at small ``n`` (2 of 2 gives about [34%, 100%], not [100%, 100%]); reports still
    print "n too small" below ``MIN_N``.
    """
    if n == 0:
        return math.nan, math.nan
    z = normal_quantile(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Logit:
    """A fitted logistic regression.

    Attributes:
        coef: coefficients, one per column of the design matrix.
        cov: their covariance (cluster-robust when clusters were given).
        probabilities: fitted probabilities of the rows.
        converged: IRLS reached the tolerance within the iteration limit.
        iterations: IRLS steps taken.
    """

    coef: FloatArray
    cov: FloatArray
    probabilities: FloatArray
    converged: bool
    iterations: int


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))
    return out


def fit_logit(
    x: FloatArray, y: FloatArray, clusters: IntArray | None = None, max_iter: int = 50, tol: float = 1e-10
) -> Logit:
    """Maximum-likelihood logistic regression by iteratively reweighted least squares.

    A tiny ridge (1e-8) keeps the normal equations solvable under separation; a coefficient
    that runs off to infinity shows as ``converged=False``.

    Args:
        x: ``(rows, columns)`` design matrix, intercept included.
        y: ``(rows,)`` outcomes, 0 or 1.
        clusters: ``(rows,)`` cluster codes for a cluster-robust (sandwich) covariance, e.g. one
            code per conversation, since replies of one conversation are not independent.
        max_iter: IRLS steps at most.
        tol: stop when the largest coefficient change is below this.
    """
    columns = x.shape[1]
    beta = np.zeros(columns)
    ridge = 1e-8 * np.eye(columns)
    converged = False
    iterations = 0
    p = _sigmoid(x @ beta)
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        w = np.maximum(p * (1 - p), 1e-12)
        hessian = (x * w[:, None]).T @ x + ridge
        step = np.linalg.solve(hessian, x.T @ (y - p))
        beta = beta + step
        p = _sigmoid(x @ beta)
        if float(np.max(np.abs(step))) < tol:
            converged = True
            break
    w = np.maximum(p * (1 - p), 1e-12)
    bread = np.linalg.pinv((x * w[:, None]).T @ x + ridge)
    if clusters is None:
        cov = bread
    else:
        scores = x * (y - p)[:, None]
        _, codes = np.unique(clusters, return_inverse=True)
        groups = int(codes.max()) + 1 if codes.size else 0
        summed = np.zeros((groups, columns))
        np.add.at(summed, codes, scores)
        correction = groups / (groups - 1) if groups > 1 else 1.0
        cov = correction * bread @ (summed.T @ summed) @ bread
    return Logit(
        coef=beta, cov=np.asarray(cov, dtype=np.float64), probabilities=p, converged=converged, iterations=iterations
    )


def expected_calibration_error(
    confidence: FloatArray, correct: FloatArray, bins: int = 10
) -> tuple[float, FloatArray, FloatArray, IntArray]:
    """Expected calibration error over equal-width confidence bins.

    ECE = sum over bins of (share of answers in the bin) x |accuracy - mean confidence|.

    Args:
        confidence: ``(answers,)`` in [0, 1].
        correct: ``(answers,)`` 1 for an accurate answer, else 0.
        bins: equal-width bins over [0, 1].

    Returns:
        (ece, accuracy per bin, mean confidence per bin, answers per bin); NaN for empty bins.
    """
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.int64)
    hits = np.bincount(index, weights=correct, minlength=bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, hits / counts, np.nan)
        mean_confidence = np.where(counts > 0, confidence_sums / counts, np.nan)
    total = counts.sum()
    gaps = np.where(counts > 0, np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_confidence)), 0.0)
    ece = float((counts * gaps).sum() / total) if total else math.nan
    return ece, accuracy, mean_confidence, counts
