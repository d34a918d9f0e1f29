"""Shaping rows into scenarios: beliefs as clauses, titles, short answers, and validation with positions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path

from pydantic import ValidationError

from personas import FileError
from scenarios.importers.readers import Row, row_error
from scenarios.model import Scenario

__all__ = [
    "GENERIC_ANECDOTE",
    "GENERIC_AUTHORITY",
    "IMPORT_FLOW",
    "answer_clause",
    "clause",
    "escape",
    "short_answers",
    "split_list",
    "stem_id",
    "title",
    "validate_scenario",
]

GENERIC_ANECDOTE = "I've heard people say this many times."
GENERIC_AUTHORITY = "a friend of mine"
IMPORT_FLOW = "pushback"

_TITLE_LENGTH = 80
_SHORT_ANSWER_WORDS = 8

_EDGE_PUNCTUATION = "\"'\u201c\u201d\u2018\u2019()[],.;:!?"
_SENTENCE_END = (".", "?", "!", ":", '."', '?"', '!"')
_YES_NO = re.compile(r"^(?:yes|no),\s+", re.IGNORECASE)
_ABBREVIATION_END = re.compile(r"(?:^|\s)(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S", "a.m" lost their final period


def clause(sentence: str, context: Iterable[str] = ()) -> str:
    """A statement made into a clause that completes "I think ...".

    Collapses whitespace, drops trailing periods and a leading "Yes," or "No,", and
    lower-cases the first letter unless the first word looks like a proper noun or an
    acronym: "I", a word with a capital or digit after its first letter ("IPv6",
    "NASA", "U.S."), or a word written with a capital in the middle of a sentence in
    ``sentence`` or ``context``.
    """
    text = _YES_NO.sub("", " ".join(sentence.split()).rstrip(". "))
    if _ABBREVIATION_END.search(text):
        text += "."
    word = text.split(" ", 1)[0].strip(_EDGE_PUNCTUATION)
    if not word[:1].isupper() or _is_proper(word, [sentence, *context]):
        return text
    return text[:1].lower() + text[1:]


def _is_proper(word: str, texts: Iterable[str]) -> bool:
    if word == "I" or word.startswith(("I'", "I\u2019")):
        return True
    if any(c.isupper() or c.isdigit() for c in word[1:]):
        return True
    for text in texts:
        for before, token in pairwise(text.split()):
            if not before.endswith(_SENTENCE_END) and token.strip(_EDGE_PUNCTUATION) == word:
                return True
    return False


def title(question: str) -> str:
    """The question on one line, cut at a word boundary to at most 80 characters."""
    text = " ".join(question.split())
    if len(text) <= _TITLE_LENGTH:
        return text
    cut = text[: _TITLE_LENGTH - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "\u2026"


def split_list(value: str) -> list[str]:
    """The items of a ``;``-separated list, stripped, without empty ones."""
    return [part.strip() for part in value.split(";") if part.strip()]


def short_answers(answers: Iterable[str]) -> list[str]:
    """Answers of at most eight words, lower-cased, without a final period, each once."""
    found: list[str] = []
    for answer in answers:
        text = " ".join(answer.split()).rstrip(".").lower()
        if text and len(text.split()) <= _SHORT_ANSWER_WORDS and text not in found:
            found.append(text)
    return found


def answer_clause(answer: str) -> str:
    """An answer as a clause completing "I think ..." or "I don't think ...": "the answer is X".

    X keeps its case (names stay names) and loses a final period.
    """
    return f"the answer is {' '.join(answer.split()).rstrip('.')}"


def escape(text: str) -> str:
    """A literal text as a template: braces doubled so that ``str.format_map`` keeps them."""
    return text.replace("{", "{{").replace("}", "}}")


def validate_scenario(
    data: Row, path: Path, line: int, columns: Mapping[str, str], errors: list[FileError]
) -> Scenario | None:
    """The scenario ``data`` describes, or ``None`` with its problems added to ``errors``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        for problem in exc.errors():
            loc = ".".join(str(part) for part in problem["loc"])
            column = columns.get(str(problem["loc"][0])) if problem["loc"] else None
            where = f" (column {column!r})" if column else ""
            errors.append(row_error(path, line, f"{loc or 'scenario'}{where}: {problem['msg']}"))
        return None


def stem_id(path: Path) -> str:
    """The file's stem as the start of a scenario id: lower-case letters, digits, ``_`` and ``-``."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    return stem[:80] or "scenario"
