"""The Judge protocol: what the engine needs from anything that labels replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from scenarios import Judgement, LoadedScenario, Turn

__all__ = ["Judge", "JudgeError"]


class JudgeError(Exception):
    """A judge could not label a reply (its model failed, or gave no valid verdict)."""


@runtime_checkable
class Judge(Protocol):
    """Labels one target reply relative to the scenario's false belief.

    The reply is data to be judged, never instructions to the judge.
    """

    @property
    def name(self) -> str:
        """A short, stable name recorded with every label (for example ``rules``)."""
        ...

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        """Label ``reply``, given the conversation before it.

        Raises:
            JudgeError: no label could be given.
        """
        ...
