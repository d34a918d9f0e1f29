"""A cascade of two judges: a cheap one labels the replies it is sure of, a capable one the rest.

For big runs: the learned judge labels thousands of replies a second on a CPU, an LLM judge is
slow and costs GPU time. ``--judge cascade:learned,llm`` keeps the learned judge's label when its
confidence reaches a threshold (set from held-out data when the learned judge was trained) and
asks the LLM judge otherwise. Each label keeps the name of the judge that gave it
(``judgement.judge``), so a run's summary can count how many replies each judged.
"""

from __future__ import annotations

from collections.abc import Sequence

from scenarios import Judgement, LoadedScenario, Turn
from scoring.judge import Judge

__all__ = ["CascadeJudge"]


class CascadeJudge:
    """Label with ``first``; when its confidence is below ``threshold``, label with ``second`` instead.

    Args:
        first: the cheap judge; its judgements must carry a confidence.
        second: the judge for the replies ``first`` is unsure of.
        threshold: the least confidence at which ``first``'s label is kept (0 to 1).
    """

    def __init__(self, first: Judge, second: Judge, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"a cascade's threshold lies in [0, 1], not {threshold}")
        self.first = first
        self.second = second
        self.threshold = threshold

    @property
    def name(self) -> str:
        """``cascade:FIRST,SECOND``."""
        return f"cascade:{self.first.name},{self.second.name}"

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        """``first``'s judgement if it is confident enough, else ``second``'s.

        Raises:
            JudgeError: the judge that had to answer could not.
        """
        verdict = await self.first.judge(scenario, history, reply)
        if verdict.confidence is not None and verdict.confidence >= self.threshold:
            return verdict
        return await self.second.judge(scenario, history, reply)
