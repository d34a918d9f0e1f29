"""The model file: a trained learned judge's vocabularies, scaling and weights, and how it scores a reply."""

from __future__ import annotations

import gzip
import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scenarios import REPLY_LABELS
from scoring.learned.encoder import Array, Vocabulary
from scoring.learned.features import SCENARIO_FEATURES, Reply, scenario_features

__all__ = ["DENSE_WEIGHT", "FORMAT", "FORMAT_VERSION", "SHIPPED_MODEL", "JudgeModel", "ModelFileError"]

FORMAT = "convsim-learned-judge"
FORMAT_VERSION = 2
SHIPPED_MODEL = "sycon-13-models.json.gz"
"""The judge in the package (``--judge learned``): trained on SYCON-Bench's 13 models' judgements."""
DENSE_WEIGHT = 0.3
"""The scenario block's weight beside the two unit-norm n-gram blocks."""


class ModelFileError(Exception):
    """A learned-judge model file is missing or not valid; ``str()`` names the file and the problem."""


class JudgeModel(BaseModel):
    """A trained learned judge, as stored in its JSON file.

    Attributes:
        mode: ``binary`` (classes ``0``, ``1``: corrects or not) or ``labels`` (reply labels).
        classes: the output classes, in weight order.
        reply, opening, similarity: the vocabularies of the two n-gram blocks and of the scenario
            features' similarities.
        mean, scale: standardisation of the scenario features.
        weights: per class (one row in binary mode: the score of ``1``), one weight per column:
            the reply block's terms, then the opening block's, then the scenario features.
        bias: per weight row.
        threshold: binary mode: the probability of ``1`` from which a reply corrects.
        confident_at: the confidence from which held-out accuracy reached 90% (for a cascade).
        training: how the model was trained and how it did on data it was not trained on.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["convsim-learned-judge"] = "convsim-learned-judge"
    version: int = FORMAT_VERSION
    mode: Literal["binary", "labels"]
    classes: list[str] = Field(min_length=2)
    reply: Vocabulary
    opening: Vocabulary
    similarity: Vocabulary
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]
    bias: list[float]
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    confident_at: float = Field(default=1.0, ge=0.0, le=1.0)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shapes(self) -> JudgeModel:
        rows = 1 if self.mode == "binary" else len(self.classes)
        width = len(self.reply.terms) + len(self.opening.terms) + len(SCENARIO_FEATURES)
        if len(self.weights) != rows or len(self.bias) != rows or any(len(w) != width for w in self.weights):
            raise ValueError(f"weights and bias do not match {rows} class rows of {width} columns")
        if len(self.mean) != len(SCENARIO_FEATURES) or len(self.scale) != len(SCENARIO_FEATURES):
            raise ValueError(f"mean and scale need one value per scenario feature ({len(SCENARIO_FEATURES)})")
        numbers = [*self.mean, *self.scale, *self.bias, *(w for row in self.weights for w in row)]
        if not all(math.isfinite(v) for v in numbers) or min(self.scale) <= 0:
            raise ValueError("mean, scale, weights and bias must be finite numbers, and every scale positive")
        if self.mode == "binary" and self.classes != ["0", "1"]:
            raise ValueError("a binary model has the classes ['0', '1']")
        if self.mode == "labels" and not set(self.classes) <= {label.value for label in REPLY_LABELS}:
            raise ValueError(f"classes must be reply labels, not {self.classes}")
        return self

    @cached_property
    def _weights(self) -> Array:
        return np.asarray(self.weights, dtype=np.float64)

    def columns(self, reply: Reply) -> tuple[npt.NDArray[np.int64], Array]:
        """The reply's sparse feature row: column indices and values."""
        a_cols, a_vals = self.reply.row(reply.reply)
        b_cols, b_vals = self.opening.row(reply.reply)
        dense = scenario_features(self.similarity, reply.reply, reply.correction, reply.belief, reply.question,
                                  reply.user)  # fmt: skip
        dense = (dense - np.asarray(self.mean)) / np.asarray(self.scale) * DENSE_WEIGHT
        offset = len(self.reply.terms) + len(self.opening.terms)
        columns = np.concatenate([a_cols, b_cols + len(self.reply.terms), offset + np.arange(len(dense))])
        return columns, np.concatenate([a_vals, b_vals, dense])

    def proba(self, reply: Reply) -> tuple[Array, tuple[npt.NDArray[np.int64], Array]]:
        """Class probabilities of one reply (in :attr:`classes` order), and its feature row."""
        row = self.columns(reply)
        scores = self._weights[:, row[0]] @ row[1] + np.asarray(self.bias)
        if self.mode == "binary":
            p = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - p, p]), row
        z = np.exp(scores - scores.max())
        return z / z.sum(), row

    def explain(self, row: tuple[npt.NDArray[np.int64], Array], cls: int, top: int = 3) -> list[tuple[str, float]]:
        """The features that pushed a class's score most, with their contributions."""
        weights = self._weights[0 if self.mode == "binary" else cls, row[0]] * row[1]
        if self.mode == "binary" and cls == 0:
            weights = -weights
        order = [i for i in np.argsort(-weights)[:top] if weights[i] > 0]
        return [(self._column_name(int(row[0][i])), float(weights[i])) for i in order]

    def _column_name(self, column: int) -> str:
        n_reply, n_opening = len(self.reply.terms), len(self.opening.terms)
        if column < n_reply:
            return f"reply '{self.reply.terms[column]}'"
        if column < n_reply + n_opening:
            return f"opening '{self.opening.terms[column - n_reply]}'"
        return SCENARIO_FEATURES[column - n_reply - n_opening]

    def save(self, path: Path) -> None:
        """Write the model as JSON (gzip-compressed when the name ends in ``.gz``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump_json().encode("utf-8")
        path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)

    @classmethod
    def load(cls, path: Path | Any) -> JudgeModel:
        """Read a model file (a path, or a package resource).

        Raises:
            ModelFileError: the file is missing or not a valid model.
        """
        try:
            raw = path.read_bytes()
            if path.name.endswith(".gz"):
                raw = gzip.decompress(raw)
            data = json.loads(raw)
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such file") from None
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: not a learned-judge model ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a learned-judge model (no `format: {FORMAT}`)")
        if data.get("version") != FORMAT_VERSION:
            found = data.get("version")
            raise ModelFileError(
                f"{path}: model format version {found}; this convsim reads {FORMAT_VERSION} (train it again)"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            raise ModelFileError(f"{path}: {problems}") from None
