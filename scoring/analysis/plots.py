"""Matplotlib figures of the metrics, drawn without pyplot (no global state, any backend).

Each function takes the metric tables and returns a ``Figure``; ``png`` renders one to bytes.
A *series* is one combination of the non-condition grouping columns (a target, or a run and
target); conditions become panels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from scenarios import REPLY_LABELS
from scoring.analysis.palette import LABEL_COLORS, SeriesStyle, series_styles
from scoring.analysis.stats import MIN_N

__all__ = [
    "amplification_bars",
    "decay_curves",
    "label_distribution",
    "png",
    "reliability_diagram",
    "series_name",
    "survival_curves",
]

CONDITION_ORDER = ("neutral", "emotional", "false_belief", "emotional+false_belief")
Styles = Mapping[str, SeriesStyle] | None
"""Every series' style in a report (``palette.series_styles``); ``None``: from the figure's own series."""
_HATCHES = ("", "//", "..", "xx")  # bars of overlapping series stay apart in grey print too
_N_NOTE = "small numbers: n behind each point; no band where n < 5"


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


def _styles(table: pd.DataFrame, series: Sequence[str], given: Styles) -> dict[str, SeriesStyle]:
    """The styles given (every series of a report, so that each keeps its look), else this table's series'."""
    return dict(given) if given else series_styles(name for name, _ in _series_groups(table, series))


def _series_legend(figure: Figure, styles: dict[str, SeriesStyle], note: str = "") -> None:
    """One legend for every panel, below them: each series' colour, marker and line style."""
    handles = [Line2D([], [], color=s.color, marker=s.marker, linestyle=s.linestyle, label=name)
               for name, s in styles.items()]  # fmt: skip
    if note:
        handles.append(Line2D([], [], linestyle="none", label=note))
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize="small")


def _annotate_n(ax: Axes, xs: Sequence[float], ys: Sequence[float], ns: Sequence[int], color: str, i: int) -> None:
    """The number behind each point, small, offset per series so that overlapping series stay apart."""
    for x, y, n in zip(xs, ys, ns, strict=True):
        ax.annotate(f"{n}", (x, y), xytext=(4, 5 + 8 * i), textcoords="offset points", fontsize=6, color=color)


def _band(rows: pd.DataFrame, low: str, high: str, n: str) -> tuple[pd.Series[float], pd.Series[float]]:
    """An interval's ends, NaN where fewer than ``MIN_N`` units stand behind it (no band drawn there)."""
    small = rows[n] < MIN_N
    return rows[low].mask(small), rows[high].mask(small)


def decay_curves(
    curve: pd.DataFrame, series: Sequence[str], panel: str | None = "condition", styles: Styles = None
) -> Figure:
    """Correction rate by turn with its Wilson band and n: one panel per condition, one line per series."""
    panels = _panels(curve, panel)
    drawn = _styles(curve, series, styles)
    figure, axes = _grid(len(panels))
    for ax, value in zip(axes, panels, strict=True):
        for name, rows in _series_groups(_rows(curve, panel, value), series):
            rows = rows.sort_values("turn")
            style, i = drawn[name], list(drawn).index(name)
            ax.plot(rows["turn"], rows["rate"], color=style.color, marker=style.marker, linestyle=style.linestyle)
            low, high = _band(rows, "low", "high", "n")
            ax.fill_between(rows["turn"], low, high, color=style.color, alpha=0.15)
            _annotate_n(ax, list(rows["turn"]), list(rows["rate"]), list(rows["n"]), style.color, i)
        ax.set_title(str(value) if value is not None else "all conditions")
        ax.set_xlabel("turn")
        ax.set_ylabel("correction rate")
        ax.set_ylim(-0.03, 1.1)
        ax.grid(alpha=0.3)
    _series_legend(figure, drawn, _N_NOTE)
    figure.suptitle("Reliability decay: share of replies that correct the belief (95% Wilson bands)")
    return figure


def survival_curves(
    table: pd.DataFrame, series: Sequence[str], panel: str | None = "condition", styles: Styles = None
) -> Figure:
    """Kaplan-Meier curves of "has not capitulated", with pointwise intervals and the number at risk."""
    panels = _panels(table, panel)
    drawn = _styles(table, series, styles)
    figure, axes = _grid(len(panels))
    for ax, value in zip(axes, panels, strict=True):
        for name, rows in _series_groups(_rows(table, panel, value), series):
            rows = rows.sort_values("turn")
            style, i = drawn[name], list(drawn).index(name)
            turns = [0, *rows["turn"]]
            ax.step(turns, [1.0, *rows["survival"]], where="post", color=style.color, linestyle=style.linestyle)
            ax.plot(rows["turn"], rows["survival"], linestyle="none", marker=style.marker, color=style.color)
            low, high = _band(rows, "low", "high", "at_risk")
            ax.fill_between(turns, [1.0, *low], [1.0, *high], step="post", color=style.color, alpha=0.15)
            _annotate_n(ax, list(rows["turn"]), list(rows["survival"]), list(rows["at_risk"]), style.color, i)
        ax.set_title(str(value) if value is not None else "all conditions")
        ax.set_xlabel("turn")
        ax.set_ylabel("share not capitulated")
        ax.set_ylim(-0.03, 1.1)
        ax.grid(alpha=0.3)
    _series_legend(figure, drawn, "n: conversations at risk; no band where n < 5")
    figure.suptitle("Survival of corrections: corrected, and has not affirmed the belief since (Kaplan-Meier)")
    return figure


def amplification_bars(table: pd.DataFrame, series: Sequence[str], styles: Styles = None) -> Figure:
    """Amplification in percentage points per condition-vs-control pair, bars per series, with intervals."""
    pairs = list(dict.fromkeys(zip(table["condition"], table["control"], strict=True)))
    groups = _series_groups(table, series)
    drawn = _styles(table, series, styles)
    figure = Figure(figsize=(max(6.0, 1.4 * len(pairs) * max(1, len(groups)) / 1.5), 4.6), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / max(1, len(groups))
    for i, (name, rows) in enumerate(groups):
        indexed = rows.set_index(["condition", "control"])
        xs: list[float] = []
        heights: list[float] = []
        lows: list[float] = []
        highs: list[float] = []
        ns: list[int] = []
        for x, pair in enumerate(pairs):
            if pair in indexed.index:
                row = indexed.loc[pair]
                xs.append(x - 0.4 + width * (i + 0.5))
                heights.append(row["points"])
                lows.append(max(0.0, row["points"] - row["points_low"]))
                highs.append(max(0.0, row["points_high"] - row["points"]))
                ns.append(int(row["n"]))
        ax.bar(xs, heights, width=width, yerr=[lows, highs], capsize=3, color=drawn[name].color,
               hatch=_HATCHES[i % len(_HATCHES)], edgecolor="white")  # fmt: skip
        for x_at, n in zip(xs, ns, strict=True):
            ax.annotate(f"n={n}", (x_at, 0), xytext=(0, -10), textcoords="offset points", fontsize=6, ha="center")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(pairs)), [f"{c}\nvs {k}" for c, k in pairs], fontsize="small")
    ax.set_ylabel("error rate difference (points)")
    ax.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=drawn[name].color, hatch=_HATCHES[i % len(_HATCHES)], edgecolor="white", label=name)
               for i, (name, _) in enumerate(groups)]  # fmt: skip
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize="small")
    figure.suptitle("Amplification: error under a condition minus under its matched control (95% bootstrap)")
    return figure


def label_distribution(counts: pd.DataFrame, series: Sequence[str]) -> Figure:
    """Stacked shares of each label by turn, one panel per series, every label in one legend.

    Args:
        counts: columns ``*series, turn, label, n``.
        series: the series columns.
    """
    groups = _series_groups(counts, series)
    figure, axes = _grid(len(groups))
    labels = [label.value for label in REPLY_LABELS]
    for ax, (name, rows) in zip(axes, groups, strict=True):
        table = rows.pivot_table(index="turn", columns="label", values="n", aggfunc="sum", fill_value=0)
        table = table.reindex(columns=labels, fill_value=0)
        totals = table.sum(axis=1)
        shares = table.div(totals, axis=0)
        bottom = pd.Series(0.0, index=shares.index)
        for label in labels:
            ax.bar(shares.index, shares[label], bottom=bottom, color=LABEL_COLORS[label])
            bottom = bottom + shares[label]
        for turn, n in zip(totals.index, totals, strict=True):
            ax.annotate(f"n={n}", (float(turn), 1.0), xytext=(0, 2), textcoords="offset points", fontsize=6,
                        ha="center")  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("turn")
        ax.set_ylabel("share of replies")
        ax.set_ylim(0, 1.1)
    handles = [Patch(color=LABEL_COLORS[label], label=label) for label in labels]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    figure.suptitle("Labels by turn (n: usable replies at the turn)")
    return figure


def reliability_diagram(bins: pd.DataFrame, series: Sequence[str], styles: Styles = None) -> Figure:
    """Accuracy against confidence per bin (the diagonal is perfect calibration), n beside each point."""
    figure = Figure(figsize=(4.8, 4.8), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
    present = bins.loc[bins["n"] > 0]
    drawn = _styles(present, series, styles)
    for name, rows in _series_groups(present, series):
        style, i = drawn[name], list(drawn).index(name)
        ax.plot(rows["confidence"], rows["accuracy"], color=style.color, marker=style.marker, linestyle=style.linestyle)
        _annotate_n(ax, list(rows["confidence"]), list(rows["accuracy"]), list(rows["n"]), style.color, i)
    ax.set_xlabel("confidence (exp mean token logprob)")
    ax.set_ylabel("accuracy of probe answers")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    _series_legend(figure, drawn, "n: probe answers in the bin")
    figure.suptitle("Reliability diagram")
    return figure
