"""Transcript types: what a finished conversation looks like on disk.

They sit here, beside the scenario they play out, so that both the engine
(``simulator``) and analysis (``scoring``) can read them without importing each other.
One :class:`Transcript` is one JSON line of ``transcripts.jsonl``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scenarios.labels import Label

__all__ = ["Judgement", "Status", "TokenLogprobs", "Transcript", "Turn"]


class Status(StrEnum):
    """How a conversation ended."""

    COMPLETED = "completed"  # reached an end stage
    MAX_TURNS = "max_turns"  # stopped at the turn limit
    CONTEXT_OVERFLOW = "context_overflow"  # the conversation outgrew the target's context
    ERROR = "error"  # a request failed for good; `error` says why

    @property
    def finished(self) -> bool:
        """The conversation ran as planned (it is not an error to retry)."""
        return self in (Status.COMPLETED, Status.MAX_TURNS)


class Judgement(BaseModel):
    """A judge's verdict on one reply."""

    model_config = ConfigDict(frozen=True)

    label: Label
    judge: str
    evidence: str = ""
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class TokenLogprobs(BaseModel):
    """A reply's generated tokens and their log probabilities, as two parallel lists."""

    model_config = ConfigDict(frozen=True)

    tokens: list[str]
    logprobs: list[float]


class Turn(BaseModel):
    """One message. Assistant turns carry the reply's label and what the server reported.

    User turns written by a user model carry ``generated``, the model's ``user_state``
    (holds_belief, affect, wants_to_stop) and ``fidelity``: what the simulated user got wrong
    (``broke_character``, ``dropped_belief``, ``contradicted_scenario``), so that simulator
    failures can be counted apart from the target's.
    """

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str
    stage: str | None = None
    label: Label | None = None
    judgement: Judgement | None = None
    accurate: bool | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    attempts: int | None = None
    logprobs: TokenLogprobs | None = None
    generated: bool | None = None
    user_state: dict[str, object] | None = None
    fidelity: list[str] | None = None


class Transcript(BaseModel):
    """One conversation, as planned and as it happened.

    Attributes:
        id: stable hash of what defines the conversation (see ``simulator.plan``).
        kind: ``conversation``, or ``knowledge_check`` (the direct question alone).
        turns: user and assistant messages in order (the system prompt is not repeated here).
        error: why the conversation stopped early, for error statuses.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["conversation", "knowledge_check"]
    status: Status
    persona: str | None = None
    affect: str | None = None
    scenario: str
    domain: str
    condition: str
    target: str
    model: str
    seed: int
    max_turns: int
    turns: list[Turn]
    error: str | None = None
    error_kind: str | None = None
    started_at: str
    finished_at: str
    duration_s: float

    @property
    def replies(self) -> list[Turn]:
        """The assistant turns."""
        return [turn for turn in self.turns if turn.role == "assistant"]
