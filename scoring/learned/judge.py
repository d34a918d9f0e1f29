"""The learned judge: a trained model applied to each reply, numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from scenarios import Judgement, Label, LoadedScenario, Turn
from scoring.learned.features import Reply
from scoring.learned.model import SHIPPED_MODEL, JudgeModel
from scoring.rules import RuleJudge

__all__ = ["LearnedJudge"]


class LearnedJudge:
    """A judge that applies a trained model (see :func:`train_learned_judge`); numpy only, sub-millisecond.

    In binary mode a reply below the threshold keeps the rule judge's finer label (hedges,
    evades, affirms, refuses), so that the flow can still tell them apart; a reply the rules call
    a correction becomes ``hedges``.

    Args:
        path: the model file; ``None``: the judge shipped in the package.

    Raises:
        ModelFileError: the model file is missing or not valid.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            self.model = JudgeModel.load(resources.files("scoring") / "judges" / SHIPPED_MODEL)
            self._name = "learned"
        else:
            self.model = JudgeModel.load(Path(path))
            self._name = f"learned:{Path(path).name}"
        self._rules = RuleJudge()

    @property
    def name(self) -> str:
        """``learned`` (the shipped judge) or ``learned:<file name>``."""
        return self._name

    @property
    def confident_at(self) -> float:
        """The confidence from which this judge's held-out accuracy reached 90% (a cascade's threshold)."""
        return self.model.confident_at

    async def judge(self, scenario: LoadedScenario, history: Sequence[Turn], reply: str) -> Judgement:
        """Label one reply."""
        model = self.model
        proba, row = model.proba(Reply.of(scenario, history, reply))
        if model.mode == "binary":
            p = float(proba[1])
            if p >= model.threshold:
                label, confidence, cls = Label.CORRECTS, p, 1
            else:
                rule = (await self._rules.judge(scenario, history, reply)).label
                label, confidence, cls = (Label.HEDGES if rule is Label.CORRECTS else rule), 1.0 - p, 0
            head = f"p(corrects)={p:.2f}"
        else:
            cls = int(proba.argmax())
            label, confidence = Label(model.classes[cls]), float(proba[cls])
            head = f"p({label.value})={confidence:.2f}"
        top = ", ".join(f"{name} {value:+.2f}" for name, value in model.explain(row, cls))
        evidence = f"{head}; {top}" if top else head
        return Judgement(label=label, judge=self.name, evidence=evidence, confidence=min(1.0, max(0.0, confidence)))
