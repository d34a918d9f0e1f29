"""The text encoder: words, a reply's opening, and TF-IDF vocabularies whose rows numpy computes."""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["OPENING_WORDS", "Array", "Vocabulary", "cosine", "opening", "tokens"]

Array = npt.NDArray[np.float64]
OPENING_WORDS = 40
"""A reply's opening: its first words, where a correction or a concession usually stands."""
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern, so training and judging agree


def tokens(text: str) -> list[str]:
    """The text's words, lower-cased, as scikit-learn's default token pattern cuts them."""
    return _TOKEN.findall(text.lower())


def opening(text: str, words: int = OPENING_WORDS) -> str:
    """The first ``words`` words of a text."""
    return " ".join(text.split()[:words])


class Vocabulary(BaseModel):
    """A fitted TF-IDF vocabulary: terms (word n-grams), their IDF weights, and how text is cut.

    A text's row is ``(1 + log count) * idf`` per known term, L2-normalised: scikit-learn's
    ``TfidfVectorizer(sublinear_tf=True)`` with its default tokens, reproduced in numpy.

    Attributes:
        ngram: the shortest and longest n-gram.
        words: only the text's first ``words`` words (``None``: all of it).
        terms: the known terms, in column order.
        idf: one weight per term.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ngram: tuple[int, int]
    words: int | None = None
    terms: list[str]
    idf: list[float]

    @model_validator(mode="after")
    def _shapes(self) -> Vocabulary:
        if len(self.terms) != len(self.idf):
            raise ValueError(f"{len(self.terms)} terms but {len(self.idf)} idf weights")
        if not 1 <= self.ngram[0] <= self.ngram[1]:
            raise ValueError(f"bad n-gram range {self.ngram}")
        return self

    @cached_property
    def index(self) -> dict[str, int]:
        """Each term's column."""
        return {term: i for i, term in enumerate(self.terms)}

    @cached_property
    def _idf(self) -> Array:
        return np.asarray(self.idf, dtype=np.float64)

    def grams(self, text: str) -> list[str]:
        """The text's n-grams (known or not), in order."""
        words = tokens(opening(text, self.words) if self.words else text)
        low, high = self.ngram
        return [" ".join(words[i : i + n]) for n in range(low, high + 1) for i in range(len(words) - n + 1)]

    def row(self, text: str) -> tuple[npt.NDArray[np.int64], Array]:
        """The text's sparse TF-IDF row: column indices and values (L2 norm 1, or empty)."""
        counts = Counter(j for g in self.grams(text) if (j := self.index.get(g)) is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self._idf[columns]
        return columns, values / np.linalg.norm(values)


def cosine(a: tuple[npt.NDArray[np.int64], Array], b: tuple[npt.NDArray[np.int64], Array]) -> float:
    """The cosine similarity of two sparse rows of unit norm."""
    common, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float(a[1][ia] @ b[1][ib]) if common.size else 0.0
