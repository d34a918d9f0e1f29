"""Scoring: judges that label replies, and the numbers computed from the labels.

Imports ``scenarios`` (scenarios, labels and transcript types) and nothing above it.
"""

from typing import TYPE_CHECKING, Any

from scoring.judge import Judge, JudgeError
from scoring.rules import RuleJudge, probe_is_accurate
from scoring.summary import CorrectionRates, RunTotals, correction_rate_by_turn, fidelity_summary, run_totals

if TYPE_CHECKING:
    from scoring.analysis import Frames, load


def __getattr__(name: str) -> Any:
    """``Frames`` and ``load`` come from ``scoring.analysis``, imported on first use (pandas, pyarrow)."""
    if name in ("Frames", "load"):
        from scoring import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


__all__ = [
    "CorrectionRates",
    "Frames",
    "Judge",
    "JudgeError",
    "RuleJudge",
    "RunTotals",
    "correction_rate_by_turn",
    "fidelity_summary",
    "load",
    "probe_is_accurate",
    "run_totals",
]
