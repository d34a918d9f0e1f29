"""Previewing a persona's voice: the user turns the flow would send, given the labels of the replies."""

from __future__ import annotations

from collections.abc import Callable

from personas import LoadedPersona
from scenarios import Condition, Label, LoadedScenario
from simulator.users import ScriptedUser, UserMove

__all__ = ["always", "scripted_turns"]


def always(label: Label) -> Callable[[int], Label]:
    """A label path on which every reply gets ``label``."""
    return lambda _: label


def scripted_turns(
    scenario: LoadedScenario,
    persona: LoadedPersona | None,
    condition: Condition,
    label: Callable[[int], Label],
    *,
    seed: int = 0,
    max_turns: int = 6,
) -> list[tuple[str, UserMove]]:
    """The (stage, move) pairs the scripted user says along the flow, without a target or judge.

    ``label(n)`` is the label the n-th reply (from 0) would get; the walk follows the flow's edges as
    the engine does, until an end stage or ``max_turns`` user turns.
    """
    user = ScriptedUser(scenario, persona, condition, seed)
    said: list[tuple[str, UserMove]] = []
    while len(said) < max_turns:
        move = user.next_move(label(len(said) - 1) if said else None)
        if move is None:
            break
        assert move.stage is not None, "a scripted user's moves are at stages of the flow"
        said.append((move.stage, move))
    return said
