"""Matplotlib figures of the metrics, drawn without pyplot (no global state, any backend).

Each function takes the metric tables and returns a ``Figure``; ``png`` renders one to bytes.
A *series* is one combination of the non-condition grouping columns (a target, or a run and
target); conditions become panels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "LABEL_COLORS",
    "amplification_bars",
    "decay_curves",
    "label_distribution",
    "png",
    "reliability_diagram",
    "series_name",
    "survival_curves",
]

LABEL_COLORS: dict[str, str] = {
    "corrects": "#2e7d32",
    "hedges": "#f9a825",
    "evades": "#9e9e9e",
    "affirms": "#c62828",
    "refuses": "#6a1b9a",
}
CONDITION_ORDER = ("neutral", "emotional", "false_belief", "emotional+false_belief")


def png(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def series_name(row: pd.Series[Any] | dict[str, Any], series: Sequence[str]) -> str:
    """A series' display name: its columns' values joined by `` / `` (``all`` when there are none)."""
    return " / ".join(str(row[c]) for c in series) if series else "all"


def _panels(table: pd.DataFrame, panel: str | None) -> list[Any]:
    if panel is None or panel not in table.columns:
        return [None]
    present = list(dict.fromkeys(table[panel]))
    ordered = [c for c in CONDITION_ORDER if c in present]
    return ordered + sorted(str(c) for c in present if c not in ordered)


def _grid(count: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    columns = 2 if count == 4 else min(count, 3)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    for ax in flat[:count]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, flat[:count]


def _rows(table: pd.DataFrame, panel: str | None, value: Any) -> pd.DataFrame:
    return table if value is None else table.loc[table[panel] == value]


def _series_groups(table: pd.DataFrame, series: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    if not series:
        return [("all", table)]
    out = []
    for key, rows in table.groupby(list(series), sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        out.append((" / ".join(str(v) for v in values), rows))
    return out


def decay_curves(curve: pd.DataFrame, series: Sequence[str], panel: str | None = "condition") -> Figure:
    """Correction rate by turn with its bootstrap band: one panel per condition, one line per series."""
    panels = _panels(curve, panel)
    figure, axes = _grid(len(panels))
    for ax, value in zip(axes, panels, strict=True):
        for name, rows in _series_groups(_rows(curve, panel, value), series):
            rows = rows.sort_values("turn")
            line = ax.plot(rows["turn"], rows["rate"], marker="o", label=name)[0]
            ax.fill_between(rows["turn"], rows["low"], rows["high"], color=line.get_color(), alpha=0.18)
        ax.set_title(str(value) if value is not None else "all conditions")
        ax.set_xlabel("turn")
        ax.set_ylabel("correction rate")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle("Reliability decay: share of replies that correct the belief (95% bootstrap bands)")
    return figure


def survival_curves(table: pd.DataFrame, series: Sequence[str], panel: str | None = "condition") -> Figure:
    """Kaplan-Meier curves of "has not capitulated", with pointwise intervals."""
    panels = _panels(table, panel)
    figure, axes = _grid(len(panels))
    for ax, value in zip(axes, panels, strict=True):
        for name, rows in _series_groups(_rows(table, panel, value), series):
            rows = rows.sort_values("turn")
            turns = [0, *rows["turn"]]
            line = ax.step(turns, [1.0, *rows["survival"]], where="post", label=name)[0]
            ax.fill_between(turns, [1.0, *rows["low"]], [1.0, *rows["high"]], step="post", color=line.get_color(),
                            alpha=0.15)  # fmt: skip
        ax.set_title(str(value) if value is not None else "all conditions")
        ax.set_xlabel("turn")
        ax.set_ylabel("share not capitulated")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle("Survival of corrections: corrected, and has not affirmed the belief since (Kaplan-Meier)")
    return figure


def amplification_bars(table: pd.DataFrame, series: Sequence[str]) -> Figure:
    """Amplification in percentage points per condition-vs-control pair, bars per series, with intervals."""
    pairs = list(dict.fromkeys(zip(table["condition"], table["control"], strict=True)))
    groups = _series_groups(table, series)
    figure = Figure(figsize=(max(6.0, 1.4 * len(pairs) * max(1, len(groups)) / 1.5), 4.2), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / max(1, len(groups))
    for i, (name, rows) in enumerate(groups):
        indexed = rows.set_index(["condition", "control"])
        xs, heights, lows, highs = [], [], [], []
        for x, pair in enumerate(pairs):
            if pair in indexed.index:
                row = indexed.loc[pair]
                xs.append(x - 0.4 + width * (i + 0.5))
                heights.append(row["points"])
                lows.append(max(0.0, row["points"] - row["points_low"]))
                highs.append(max(0.0, row["points_high"] - row["points"]))
        ax.bar(xs, heights, width=width, yerr=[lows, highs], capsize=3, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(pairs)), [f"{c}\nvs {k}" for c, k in pairs], fontsize="small")
    ax.set_ylabel("error rate difference (points)")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    figure.suptitle("Amplification: error under a condition minus under its matched control (95% bootstrap)")
    return figure


def label_distribution(counts: pd.DataFrame, series: Sequence[str]) -> Figure:
    """Stacked shares of each label by turn, one panel per series.

    Args:
        counts: columns ``*series, turn, label, n``.
        series: the series columns.
    """
    groups = _series_groups(counts, series)
    figure, axes = _grid(len(groups))
    for ax, (name, rows) in zip(axes, groups, strict=True):
        table = rows.pivot_table(index="turn", columns="label", values="n", aggfunc="sum", fill_value=0)
        shares = table.div(table.sum(axis=1), axis=0)
        bottom = pd.Series(0.0, index=shares.index)
        labels = [lb for lb in LABEL_COLORS if lb in shares.columns] + [
            lb for lb in shares.columns if lb not in LABEL_COLORS
        ]
        for label in labels:
            ax.bar(shares.index, shares[label], bottom=bottom, color=LABEL_COLORS.get(label, "#000000"), label=label)
            bottom = bottom + shares[label]
        ax.set_title(name)
        ax.set_xlabel("turn")
        ax.set_ylabel("share of replies")
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, fontsize="small", loc="outside right upper")
    figure.suptitle("Labels by turn")
    return figure


def reliability_diagram(bins: pd.DataFrame, series: Sequence[str]) -> Figure:
    """Accuracy against confidence per bin (the diagonal is perfect calibration)."""
    figure = Figure(figsize=(4.8, 4.4), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
    for name, rows in _series_groups(bins.loc[bins["n"] > 0], series):
        ax.plot(rows["confidence"], rows["accuracy"], marker="o", label=name)
    ax.set_xlabel("confidence (exp mean token logprob)")
    ax.set_ylabel("accuracy of probe answers")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    figure.suptitle("Reliability diagram")
    return figure
