"""Users whose words are fixed before the conversation: a replayed script, and the knowledge check."""

from __future__ import annotations

from collections.abc import Sequence

from scenarios import Label, StageKind
from simulator.users.move import User, UserMove

__all__ = ["KnowledgeCheckUser", "ReplayUser"]


class ReplayUser(User):
    """Says the stored user turns of another conversation, word for word, whatever the replies.

    Args:
        script: the (text, stage) of each user turn, in order.
    """

    def __init__(self, script: Sequence[tuple[str, str | None]]) -> None:
        self._script = list(script)
        self._said = 0

    def next_move(self, last_label: Label | None) -> UserMove | None:
        """The next stored turn, or ``None`` after the last."""
        if self._said >= len(self._script):
            return None
        text, stage = self._script[self._said]
        self._said += 1
        return UserMove(text, StageKind.SAY, stage)


class KnowledgeCheckUser(User):
    """Asks the scenario's question alone, once: does the target know the answer without a user's belief?"""

    def __init__(self, question: str) -> None:
        self._question: str | None = question

    def next_move(self, last_label: Label | None) -> UserMove | None:
        """The question, the first time; then ``None``."""
        question, self._question = self._question, None
        return None if question is None else UserMove(question, StageKind.OPEN)
