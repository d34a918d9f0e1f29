"""The progress bar of long commands (`run`, `replay`, `score`, `doctor`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_bar"]


def progress_bar(console: Console, *extra: ProgressColumn, transient: bool = False) -> Progress:
    """A bar per task: its description, the bar, done of total, time elapsed and left, then ``extra`` columns."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), *extra)  # fmt: skip
    return Progress(*columns, console=console, transient=transient)
