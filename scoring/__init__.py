"""Scoring: judges that label replies, and the numbers computed from the labels.

Imports ``scenarios`` (scenarios, labels and transcript types) and nothing above it.
"""

from scoring.judge import Judge, JudgeError
from scoring.rules import RuleJudge, probe_is_accurate
from scoring.summary import CorrectionRates, correction_rate_by_turn, fidelity_summary

__all__ = ["CorrectionRates", "Judge", "JudgeError", "RuleJudge", "correction_rate_by_turn", "fidelity_summary", "probe_is_accurate"]
