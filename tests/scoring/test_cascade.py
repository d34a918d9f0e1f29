"""The cascade judge: the cheap judge's label when it is sure, the capable judge's otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from scenarios import Judgement, Label, LoadedScenario, Turn
from scoring.cascade import CascadeJudge
from scoring.judge_data import LabelledReply, scenario_for


class Scripted:
    """A judge that answers from a table: reply -> (label, confidence); counts its calls."""

    def __init__(self, name: str, table: dict[str, tuple[Label, float | None]]) -> None:
        self.name = name
        self.table = table
        self.calls: list[str] = []

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        self.calls.append(reply)
        label, confidence = self.table[reply]
        return Judgement(label=label, judge=self.name, evidence="", confidence=confidence)


async def test_the_cascade_keeps_confident_labels_and_passes_on_the_rest() -> None:
    cheap = Scripted("learned", {"sure": (Label.CORRECTS, 0.97), "unsure": (Label.HEDGES, 0.6),
                                 "edge": (Label.AFFIRMS, 0.9), "silent": (Label.AFFIRMS, None)})  # fmt: skip
    capable = Scripted("llm:judge", dict.fromkeys(["unsure", "silent"], (Label.AFFIRMS, 0.8)))
    cascade = CascadeJudge(cheap, capable, threshold=0.9)
    scenario = scenario_for(LabelledReply(question="Q?", belief="B.", correction="C.", reply="r", binary=True))
    verdicts = [await cascade.judge(scenario, [], reply) for reply in ("sure", "unsure", "edge", "silent")]
    assert [(v.judge, v.label) for v in verdicts] == [
        ("learned", Label.CORRECTS), ("llm:judge", Label.AFFIRMS), ("learned", Label.AFFIRMS),
        ("llm:judge", Label.AFFIRMS),
    ]  # fmt: skip
    assert capable.calls == ["unsure", "silent"] and len(cheap.calls) == 4
    assert cascade.name == "cascade:learned,llm:judge"
    with pytest.raises(ValueError, match="threshold"):
        CascadeJudge(cheap, capable, threshold=1.5)
