"""A judge's measured error rates, and estimates corrected for them (Rogan-Gladen).

``convsim judge-eval DATA --save FILE`` measures a judge against reference labels and keeps,
per label, how often the judge finds the label where the reference has it (sensitivity) and
how often it withholds the label where the reference has not (specificity), with the counts
behind both. :func:`rogan_gladen` turns a share observed through that judge into an estimate
of the true share; :mod:`scoring.analysis.misclassification` applies it to a run's correction
rates with bootstrap intervals that resample the validation counts too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scenarios import Label
from scoring.agreement import BINARY_CLASSES, ERROR_CLASS, Agreement

__all__ = ["FORMAT", "JudgeErrorFileError", "JudgeErrorRates", "LabelErrorRates", "rogan_gladen"]

FORMAT: Literal["convsim-judge-error"] = "convsim-judge-error"


class JudgeErrorFileError(Exception):
    """A judge-error file is missing or not valid; ``str()`` names the file and the problem."""


class LabelErrorRates(BaseModel):
    """How a judge does on one label, with the counts behind the rates.

    Attributes:
        label: the reply label (``corrects`` for binary reference labels).
        positives: replies whose reference label is ``label``.
        true_positives: of those, the ones the judge also labelled ``label``.
        negatives: replies whose reference label is another one.
        false_positives: of those, the ones the judge labelled ``label``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Label
    positives: int = Field(ge=0)
    true_positives: int = Field(ge=0)
    negatives: int = Field(ge=0)
    false_positives: int = Field(ge=0)

    @property
    def sensitivity(self) -> float:
        """P(judge says the label | the reference says it); ``nan`` with no positives."""
        return self.true_positives / self.positives if self.positives else math.nan

    @property
    def specificity(self) -> float:
        """P(judge withholds the label | the reference withholds it); ``nan`` with no negatives."""
        return 1.0 - self.false_positives / self.negatives if self.negatives else math.nan


class JudgeErrorRates(BaseModel):
    """A judge's error rates per label, measured on reference labels it was not trained on.

    Attributes:
        judge: the judge's name (as in transcripts' ``judgement.judge``).
        reference: the labelled data it was measured on.
        mode: ``binary`` (corrects or not) or ``labels`` (the five reply labels).
        n: replies compared (the judge's failures excluded).
        failed: replies the judge could not label (left out of the rates).
        accuracy: share of the ``n`` replies where the judge gives the reference class.
        kappa: Cohen's kappa over the ``n`` replies.
        labels: the rates of each label.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["convsim-judge-error"] = FORMAT
    judge: str
    reference: str
    mode: Literal["binary", "labels"]
    n: int = Field(ge=0)
    failed: int = Field(default=0, ge=0)
    accuracy: float
    kappa: float
    labels: dict[str, LabelErrorRates]

    @classmethod
    def from_agreement(cls, agreement: Agreement, reference: str) -> Self:
        """The rates behind ``agreement``; replies the judge failed on are left out and counted."""
        pairs = [(r, p) for r, p in zip(agreement.reference, agreement.predicted, strict=True) if p != ERROR_CLASS]
        if agreement.mode == "binary":
            names = {BINARY_CLASSES[0]: Label.CORRECTS}
        else:
            names = {label.value: label for label in Label if label is not Label.ERROR}
        rates: dict[str, LabelErrorRates] = {}
        for cls_, label in names.items():
            positives = [p for r, p in pairs if r == cls_]
            negatives = [p for r, p in pairs if r != cls_]
            rates[label.value] = LabelErrorRates(
                label=label,
                positives=len(positives),
                true_positives=sum(p == cls_ for p in positives),
                negatives=len(negatives),
                false_positives=sum(p == cls_ for p in negatives),
            )
        kept = Agreement.from_labels(agreement.judge, agreement.mode, [r for r, _ in pairs], [p for _, p in pairs])
        return cls(
            judge=agreement.judge,
            reference=reference,
            mode=agreement.mode,
            n=len(pairs),
            failed=agreement.errors,
            accuracy=kept.accuracy,
            kappa=kept.kappa,
            labels=rates,
        )

    def save(self, path: Path) -> None:
        """Write the rates as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a file written by :meth:`save` (``convsim judge-eval --save``).

        Raises:
            JudgeErrorFileError: the file is missing or not valid.
        """
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise JudgeErrorFileError(f"{path}: no such file (write one with convsim judge-eval ... --save)") from None
        except OSError as exc:
            raise JudgeErrorFileError(f"{path}: cannot read: {exc.strerror}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise JudgeErrorFileError(
                f"{path}: not a judge-error file ({where + ': ' if where else ''}{first['msg']}); "
                "write one with convsim judge-eval ... --save"
            ) from None

    def describe(self) -> str:
        """One sentence: the judge, the data it was measured on and how well it agrees."""
        corrects = self.labels.get(Label.CORRECTS.value)
        rates = (
            f", sensitivity {corrects.sensitivity:.2f} and specificity {corrects.specificity:.2f} for corrects"
            if corrects is not None
            else ""
        )
        return (
            f"{self.judge} agrees with the reference labels of {self.reference} with Cohen's kappa {self.kappa:.2f} "
            f"(accuracy {self.accuracy:.2f}, {self.n:,} replies{rates})"
        )


def rogan_gladen(observed: float, sensitivity: float, specificity: float) -> float:
    """The true share behind a share observed through an imperfect classifier, clipped to [0, 1].

    ``(observed + specificity - 1) / (sensitivity + specificity - 1)`` (Rogan and Gladen, 1978).

    Returns:
        The corrected share; ``nan`` when the judge is no better than chance
        (``sensitivity + specificity <= 1``) or an input is ``nan``.
    """
    youden = sensitivity + specificity - 1.0
    if not youden > 0.0 or math.isnan(observed):
        return math.nan
    return min(1.0, max(0.0, (observed + specificity - 1.0) / youden))
