"""Analysis: transcript dumps as frames, the metrics computed from them, reports and a viewer.

Typical use in a notebook::

    from scoring.analysis import load, decay, survival, amplification
    frames = load(["runs/base", "runs/warm"])
    decay(frames, by=["run", "condition"]).curve
"""

from scoring.analysis.comparisons import (
    MATCH_KEYS,
    Calibration,
    ErrorModel,
    amplification,
    calibration,
    error_model,
    paired_by_turn,
    paired_comparison,
)
from scoring.analysis.frames import CONVERSATION_COLUMNS, TURN_COLUMNS, Frames, load, read_run
from scoring.analysis.metrics import (
    DEFAULT_BY,
    Decay,
    decay,
    exclusions,
    face_saving,
    headline,
    survival,
    turn_statistics,
    usable_conversations,
    usable_turns,
)
from scoring.analysis.sequences import (
    ConversationMetrics,
    capitulation_turn,
    conversation_metrics,
    holds,
    number_of_flips,
    turn_of_flip,
)

__all__ = [
    "CONVERSATION_COLUMNS",
    "DEFAULT_BY",
    "MATCH_KEYS",
    "TURN_COLUMNS",
    "Calibration",
    "ConversationMetrics",
    "Decay",
    "ErrorModel",
    "Frames",
    "amplification",
    "calibration",
    "capitulation_turn",
    "conversation_metrics",
    "decay",
    "error_model",
    "exclusions",
    "face_saving",
    "headline",
    "holds",
    "load",
    "number_of_flips",
    "paired_by_turn",
    "paired_comparison",
    "read_run",
    "survival",
    "turn_of_flip",
    "turn_statistics",
    "usable_conversations",
    "usable_turns",
]
