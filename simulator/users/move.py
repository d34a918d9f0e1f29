"""What a simulated user says, and the protocol every simulated user follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from personas import Tactic
from scenarios import Label, Probe, StageKind, Turn

__all__ = ["User", "UserModelError", "UserMove"]


@dataclass(frozen=True)
class UserMove:
    """What the user says at a stage.

    Attributes:
        text: the message.
        kind: the stage's kind.
        stage: the flow stage it is said at (``None`` outside a flow: a knowledge check).
        probe: the probe it asks, if any.
        tactic: the pushback tactic it uses, if any.
        fixed: the scenario fixes these words (an opening, a probe, a stage's own text), so a
            model-driven user sends them as they are.
        state: what a user model said about itself with a message it wrote (holds_belief, affect,
            wants_to_stop); ``None`` for words not written by a model.
        fidelity: what such a message got wrong about the character (``broke_character``, ...).
    """

    text: str
    kind: StageKind
    stage: str | None = None
    probe: Probe | None = None
    tactic: Tactic | None = None
    fixed: bool = True
    state: dict[str, object] | None = None
    fidelity: tuple[str, ...] = ()


class UserModelError(Exception):
    """A model-driven user gave no valid message."""


class User(Protocol):
    """A simulated user, handed to the engine: it chooses each move, then words it.

    The two steps are apart so that a resumed conversation can replay the choices (which are
    deterministic, seeded) without asking a user model again for turns already said.
    """

    def next_move(self, last_label: Label | None) -> UserMove | None:
        """The next move as scripted, given the label of the target's reply to the previous one
        (``None`` before the first); ``None`` when the user has nothing more to say."""
        ...

    async def write(self, move: UserMove, turns: Sequence[Turn]) -> UserMove:
        """The move in the words the user says it, given the conversation so far; by default as scripted.

        Raises:
            UserModelError: a model-driven user could not produce a valid message.
        """
        return move
