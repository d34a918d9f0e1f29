"""Colours and marks shared by the report's figures and the viewer, defined once.

A series (a target, or a run and target) keeps its colour, marker and line style in every
figure and in the viewer: styles are given in the sorted order of the series names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from scenarios import REPLY_LABELS

__all__ = ["ERROR_COLOR", "LABEL_COLORS", "SERIES_COLORS", "SeriesStyle", "series_styles"]

LABEL_COLORS: dict[str, str] = dict(
    zip(
        (label.value for label in REPLY_LABELS),
        ("#2e7d32", "#f9a825", "#9e9e9e", "#c62828", "#6a1b9a"),
        strict=True,
    )
)
"""One colour per reply label (corrects, hedges, evades, affirms, refuses)."""
ERROR_COLOR = "#212121"
"""A reply without a usable label."""

SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LineStyle = Literal["-", "--", "-.", ":"]
_LINESTYLES: tuple[LineStyle, ...] = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: a colour, a marker and a line style (matplotlib names)."""

    color: str
    marker: str
    linestyle: LineStyle


def series_styles(names: Iterable[str]) -> dict[str, SeriesStyle]:
    """A style per series name, by its place among the sorted names (the same in every view)."""
    ordered = sorted(set(names))
    return {
        name: SeriesStyle(
            SERIES_COLORS[i % len(SERIES_COLORS)], _MARKERS[i % len(_MARKERS)], _LINESTYLES[i % len(_LINESTYLES)]
        )
        for i, name in enumerate(ordered)
    }
