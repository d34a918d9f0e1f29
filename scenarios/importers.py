"""Importers: third-party datasets turned into scenarios, and scenarios written as YAML files.

Each importer is a pure function from a dataset on disk to a list of :class:`Scenario`;
:func:`write_scenarios` writes them as ``<id>.yaml`` files that load through
:func:`scenarios.load_scenario`. A dataset that cannot be imported raises
:class:`DatasetError`, which names every problem as ``file:line:column: problem``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from personas import FileError, FileErrors, read_text
from scenarios.conditions import Condition
from scenarios.flow import ELSE, Flow, Stage, StageKind
from scenarios.library import builtin_flows, load_scenario
from scenarios.model import Domain, Scenario

__all__ = [
    "TABLE_FIELDS",
    "DatasetError",
    "WarmPaperColumns",
    "import_sycon",
    "import_table",
    "import_truthfulqa",
    "import_warm_paper",
    "read_csv",
    "require_columns",
    "warm_paper_columns",
    "write_scenarios",
]


class DatasetError(FileErrors):
    """A dataset that cannot be imported, or scenarios that cannot be written.

    A :class:`personas.FileErrors`: ``errors`` holds every problem, and ``str()`` gives
    one line each, ``file:line:column: problem`` (column 1 when the problem is a whole
    row or a named CSV column).
    """


_Row = dict[str, Any]
"""One record of a table: column name to value (always text for CSV)."""

_TITLE_LENGTH = 80
_SHORT_ANSWER_WORDS = 8
_GENERIC_ANECDOTE = "I've heard people say this many times."
_GENERIC_AUTHORITY = "a friend of mine"
_IMPORT_FLOW = "pushback"

_EDGE_PUNCTUATION = "\"'\u201c\u201d\u2018\u2019()[],.;:!?"
_SENTENCE_END = (".", "?", "!", ":", '."', '?"', '!"')
_YES_NO = re.compile(r"^(?:yes|no),\s+", re.IGNORECASE)
_ABBREVIATION_END = re.compile(r"(?:^|\s)(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S", "a.m" lost their final period


def _error(path: Path, line: int, message: str) -> FileError:
    return FileError(str(path), line, 1, message)


def _read(path: Path) -> str:
    """A dataset file's text, without a byte-order mark, with ``\\n`` line ends."""
    try:
        text = read_text(path, "dataset file")
    except FileErrors as exc:
        raise DatasetError(exc.errors) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _clause(sentence: str, context: Iterable[str] = ()) -> str:
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


def _title(question: str) -> str:
    """The question on one line, cut at a word boundary to at most 80 characters."""
    text = " ".join(question.split())
    if len(text) <= _TITLE_LENGTH:
        return text
    cut = text[: _TITLE_LENGTH - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "\u2026"


def _split(value: str) -> list[str]:
    """The items of a ``;``-separated list, stripped, without empty ones."""
    return [part.strip() for part in value.split(";") if part.strip()]


def _short(answers: Iterable[str]) -> list[str]:
    """Answers of at most eight words, lower-cased, without a final period, each once."""
    found: list[str] = []
    for answer in answers:
        text = " ".join(answer.split()).rstrip(".").lower()
        if text and len(text.split()) <= _SHORT_ANSWER_WORDS and text not in found:
            found.append(text)
    return found


def _answer(answer: str) -> str:
    """An answer as a clause completing "I think ..." or "I don't think ...": "the answer is X".

    X keeps its case (names stay names) and loses a final period.
    """
    return f"the answer is {' '.join(answer.split()).rstrip('.')}"


def _escape(text: str) -> str:
    """A literal text as a template: braces doubled so that ``str.format_map`` keeps them."""
    return text.replace("{", "{{").replace("}", "}}")


def _validate(
    data: _Row, path: Path, line: int, columns: Mapping[str, str], errors: list[FileError]
) -> Scenario | None:
    """The scenario ``data`` describes, or ``None`` with its problems added to ``errors``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        for problem in exc.errors():
            loc = ".".join(str(part) for part in problem["loc"])
            column = columns.get(str(problem["loc"][0])) if problem["loc"] else None
            where = f" (column {column!r})" if column else ""
            errors.append(_error(path, line, f"{loc or 'scenario'}{where}: {problem['msg']}"))
        return None


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, _Row]]]:
    """A CSV file's header and its non-empty rows, each with the line it starts on.

    Raises:
        DatasetError: the CSV is malformed, a column name repeats, or a row has more
            or fewer fields than the header.
    """
    reader = csv.reader(io.StringIO(_read(path), newline=""))
    errors: list[FileError] = []
    rows: list[tuple[int, _Row]] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DatasetError([_error(path, 1, "the file is empty; expected a header line of column names")])
        for name in sorted({name for name in header if header.count(name) > 1}):
            errors.append(_error(path, 1, f"column {name!r} appears more than once in the header"))
        line = reader.line_num + 1
        for record in reader:
            if record:
                if len(record) != len(header):
                    errors.append(_error(path, line, f"row has {len(record)} fields; the header has {len(header)}"))
                else:
                    rows.append((line, dict(zip(header, record, strict=True))))
            line = reader.line_num + 1
    except csv.Error as exc:
        errors.append(_error(path, reader.line_num or 1, f"malformed CSV: {exc}"))
    if errors:
        raise DatasetError(errors)
    return header, rows


def _read_jsonl(path: Path) -> list[tuple[int, _Row]]:
    """A JSON Lines file's records (one JSON object a line, blank lines skipped), with line numbers.

    Raises:
        DatasetError: a line is not JSON or not an object.
    """
    rows: list[tuple[int, _Row]] = []
    errors: list[FileError] = []
    for line, text in enumerate(_read(path).split("\n"), 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(FileError(str(path), line, exc.colno, f"invalid JSON: {exc.msg}"))
            continue
        if isinstance(record, dict):
            rows.append((line, record))
        else:
            errors.append(_error(path, line, f"expected a JSON object, found {type(record).__name__}"))
    if errors:
        raise DatasetError(errors)
    return rows


def require_columns(path: Path, header: Iterable[str], required: Iterable[str]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        found = ", ".join(repr(name) for name in header)
        raise DatasetError([_error(path, 1, f"missing column {name!r}; the header has {found}") for name in missing])


# --- SYCON-Bench false presuppositions -----------------------------------------------------------

_SYCON_FILES = ("questions.txt", "presuppositions.txt", "corrections.txt")
_SYCON_PUSHBACKS = tuple(f"Pushback_{i}" for i in range(1, 5))
_SYCON_OPENING = "{disclosure} {question}"
"""Turn 1: the question alone (in the emotional conditions, after the persona's disclosure)."""


def _lines(path: Path) -> list[str]:
    """A line-aligned text file's lines, without trailing blank lines."""
    lines = _read(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _sycon_flow(pushbacks: list[str]) -> Flow:
    """SYCON-Bench's protocol: the question, then each pushback verbatim whatever the reply, then end."""
    names = ["question", *(f"pushback_{i}" for i in range(1, len(pushbacks) + 1)), "end"]
    texts = [_SYCON_OPENING, *(_escape(text) for text in pushbacks)]
    stages = {
        name: Stage(kind=StageKind.SAY, user=text, next={ELSE: after}, verbatim=True)
        for name, text, after in zip(names, texts, names[1:], strict=False)
    }
    return Flow(start=names[0], stages={**stages, "end": Stage(kind=StageKind.END)})


def import_sycon(folder: Path) -> list[Scenario]:
    """Scenarios from SYCON-Bench's false-presupposition setting, one per item.

    ``folder`` holds ``questions.txt``, ``presuppositions.txt`` and ``corrections.txt``
    (line N of each is item N) and ``push_back.csv`` (columns ``Question,
    Pushback_1..Pushback_4``, rows in the same order). Item N becomes ``sycon-NNN``,
    whose inline flow reproduces the benchmark's five turns: the question, then
    ``Pushback_1`` to ``Pushback_4`` verbatim whatever the target replies, then the end.

    Args:
        folder: the dataset's folder.

    Returns:
        The scenarios, in item order.

    Raises:
        DatasetError: a file is missing or malformed, the files have different numbers
            of items, a line is empty, or a ``push_back.csv`` row's question differs
            from the same item's line in ``questions.txt``.
    """
    texts = {name: _lines(folder / name) for name in _SYCON_FILES}
    csv_path = folder / "push_back.csv"
    header, rows = read_csv(csv_path)
    require_columns(csv_path, header, ("Question", *_SYCON_PUSHBACKS))
    questions = texts["questions.txt"]
    count = len(questions)
    errors: list[FileError] = []
    for name, lines in texts.items():
        if len(lines) != count:
            line = min(len(lines), count) + 1
            errors.append(_error(folder / name, line, f"has {len(lines)} lines; questions.txt has {count}"))
        for line, text in enumerate(lines[:count], 1):
            if not text.strip():
                errors.append(_error(folder / name, line, f"line {line} is empty"))
    if len(rows) != count:
        line = rows[min(len(rows), count)][0] if len(rows) > count else (rows[-1][0] + 1 if rows else 2)
        errors.append(_error(csv_path, line, f"has {len(rows)} rows; questions.txt has {count} lines"))
    for number, ((line, row), question) in enumerate(zip(rows, questions, strict=False), 1):
        if row["Question"].strip() != question.strip():
            errors.append(
                _error(
                    csv_path,
                    line,
                    f"Question {row['Question']!r} differs from questions.txt line {number}: {question!r}",
                )
            )
        errors += [
            _error(csv_path, line, f"column {column!r} is empty")
            for column in _SYCON_PUSHBACKS
            if not row[column].strip()
        ]
    if errors:
        raise DatasetError(errors)
    scenarios: list[Scenario] = []
    for number, (question, presupposition, correction, (_, row)) in enumerate(
        zip(questions, texts["presuppositions.txt"], texts["corrections.txt"], rows, strict=True), 1
    ):
        pushbacks = [row[column] for column in _SYCON_PUSHBACKS]
        data: _Row = {
            "id": f"sycon-{number:03d}",
            "domain": Domain.FACTUAL,
            "title": _title(question),
            "question": question,
            "truth": correction,
            "false_belief": _clause(presupposition, [question, correction, *pushbacks]),
            "correction": {"references": [correction]},
            "flow": _sycon_flow(pushbacks),
            "source": f"SYCON-Bench false-presuppositions item {number} (CREPE)",
        }
        scenario = _validate(data, folder / "questions.txt", number, {}, errors)
        if scenario is not None:
            scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios


# --- TruthfulQA ----------------------------------------------------------------------------------

_TRUTHFULQA_COLUMNS = ("Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source")
_TRUTHFULQA_DOMAINS = {
    **dict.fromkeys(("health", "nutrition", "medicine"), Domain.MEDICAL),
    **dict.fromkeys(("conspiracies", "misinformation"), Domain.DISINFORMATION),
    **dict.fromkeys(("science", "physics", "biology", "chemistry", "misconceptions"), Domain.SCIENCE),
    "history": Domain.HISTORY,
    **dict.fromkeys(("finance", "economics"), Domain.FINANCE),
}
_NO_COMMENT = "i have no comment"
"""TruthfulQA counts declining to answer as correct; it is no correction of a belief."""


def _truthfulqa_domain(category: str) -> Domain:
    """The domain of a TruthfulQA category, by its head ("Misconceptions: Topical" -> science)."""
    head = category.split(":", 1)[0].strip().lower()
    return _TRUTHFULQA_DOMAINS.get(head, Domain.FACTUAL)


def import_truthfulqa(csv_path: Path) -> list[Scenario]:
    """Scenarios from TruthfulQA's CSV, one per row, using the ``pushback`` flow.

    Columns used: ``Category`` (mapped to a domain), ``Question``, ``Best Answer`` (the
    truth), ``Correct Answers`` and ``Incorrect Answers`` (``;``-separated) and ``Source``.
    The false belief is the column ``Best Incorrect Answer`` when the file has it, else
    the first incorrect answer, and the correct answer the best answer, both in the
    warm-model paper's answer form ("the answer is X", X as written); the references are
    the correct answers but "I have no comment"; the rule judge's markers are the short (at
    most eight words) correct and incorrect answers, lower-cased. Row N becomes
    ``truthfulqa-NNNN``.

    Args:
        csv_path: TruthfulQA's ``TruthfulQA.csv``.

    Returns:
        The scenarios, in row order.

    Raises:
        DatasetError: the file is missing or malformed, lacks a column, or a row lacks a
            question, a best answer or an incorrect answer.
    """
    header, rows = read_csv(csv_path)
    require_columns(csv_path, header, _TRUTHFULQA_COLUMNS)
    errors: list[FileError] = []
    scenarios: list[Scenario] = []
    for number, (line, row) in enumerate(rows, 1):
        empty = [name for name in ("Question", "Best Answer", "Incorrect Answers") if not row[name].strip()]
        errors += [_error(csv_path, line, f"column {name!r} is empty") for name in empty]
        if empty:
            continue
        question, best = row["Question"].strip(), row["Best Answer"].strip()
        correct = [a for a in _split(row["Correct Answers"]) if a.rstrip(".").lower() != _NO_COMMENT]
        incorrect = _split(row["Incorrect Answers"])
        belief = row.get("Best Incorrect Answer", "").strip() or incorrect[0]
        data: _Row = {
            "id": f"truthfulqa-{number:04d}",
            "domain": _truthfulqa_domain(row["Category"]),
            "title": _title(question),
            "question": question,
            "truth": best,
            "false_belief": _answer(belief),
            "correct_answer": _answer(best),
            "correction": {
                "references": correct or [best],
                "markers": _short(correct),
                "belief_markers": _short(incorrect),
            },
            "anecdote": _GENERIC_ANECDOTE,
            "authority": _GENERIC_AUTHORITY,
            "flow": _IMPORT_FLOW,
            "source": row["Source"].strip(),
        }
        scenario = _validate(data, csv_path, line, {"truth": "Best Answer", "question": "Question"}, errors)
        if scenario is not None:
            scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios


# --- the warm-model paper's prompt files -------------------------------------------------------


@dataclass(frozen=True)
class WarmPaperColumns:
    """Where one of the warm-model paper's prompt files keeps each item's parts.

    Its QA files (trivia, TruthfulQA) have short answers, its MedQA files an answer and a wrong
    answer, its disinformation files a true and a false statement.
    """

    question: str
    correct: str
    incorrect: str
    template: str
    domain: Domain

    def statements(self, row: Mapping[str, str]) -> tuple[str, str]:
        """The row's truth and false belief, each as a sentence."""
        correct, incorrect = (" ".join(row[column].split()) for column in (self.correct, self.incorrect))
        if self.domain is Domain.DISINFORMATION:
            return correct, incorrect
        return f"The answer is {correct.rstrip('.')}.", f"The answer is {incorrect.rstrip('.')}."

    def clauses(self, row: Mapping[str, str]) -> tuple[str, str]:
        """The row's correct answer and false belief as clauses completing "I (don't) think ..."."""
        if self.domain is Domain.DISINFORMATION:
            context = [row[self.question], row[self.correct], row[self.incorrect]]
            return _clause(row[self.correct], context), _clause(row[self.incorrect], context)
        return _answer(row[self.correct]), _answer(row[self.incorrect])


_WARM_PAPER_FILES = (
    WarmPaperColumns("content_key", "correct_answer", "incorrect_answer", "prompt_template", Domain.FACTUAL),
    WarmPaperColumns("question", "answer", "wrong_answer", "prompt_type", Domain.MEDICAL),
    WarmPaperColumns("prompt_disinfo", "ground_truth", "ground_false", "prompt_template", Domain.DISINFORMATION),
)
_WARM_PAPER_TEMPLATES = {
    "original": Condition.ORIGINAL,
    "original_neutral": Condition.NEUTRAL,
    "incorrect": Condition.FALSE_BELIEF,
    "correct": Condition.DENIED_CORRECT,
}
_WARM_PAPER_CONTEXTS = {
    "emotion:sad": "warm-sad",
    "emotion:happy": "warm-happy",
    "emotion:anger": "warm-angry",
    "relation:close": "warm-close",
    "relation:hierarchical_up": "warm-deferential",
    "relation:hierarchical_down": "warm-instrumental",
    "stake:high": "warm-high-stakes",
    "stake:low": "warm-low-stakes",
}
_UNMODIFIED = "unmodified"
_PANDAS_NONE = " (the paper's files write some answers, such as None, as empty cells: fill it in)"


def warm_paper_columns(path: Path, header: Iterable[str]) -> WarmPaperColumns:
    """The layout of one of the warm-model paper's prompt files, from its header.

    Raises:
        DatasetError: the header is none of the paper's.
    """
    names = list(header)
    for columns in _WARM_PAPER_FILES:
        if columns.question in names:
            require_columns(path, names, (columns.correct, columns.incorrect, columns.template, "amendment_type"))
            return columns
    wanted = " or ".join(repr(columns.question) for columns in _WARM_PAPER_FILES)
    raise DatasetError([_error(path, 1, f"not one of the warm-model paper's prompt files: no column {wanted}")])


def _warm_paper_condition(template: str, amendment: str) -> tuple[Condition, str] | str:
    """The condition and the persona reference of a row, or what is wrong with it."""
    if template not in _WARM_PAPER_TEMPLATES:
        return f"unknown prompt template {template!r}; known: {', '.join(_WARM_PAPER_TEMPLATES)}"
    base = _WARM_PAPER_TEMPLATES[template]
    if amendment == _UNMODIFIED:
        return base, ""
    if amendment not in _WARM_PAPER_CONTEXTS:
        return f"unknown amendment_type {amendment!r}; known: {', '.join([_UNMODIFIED, *_WARM_PAPER_CONTEXTS])}"
    emotional = Condition.EMOTIONAL if base is Condition.NEUTRAL else Condition(f"emotional+{base}")
    return emotional, f"preset:warm-paper/{_WARM_PAPER_CONTEXTS[amendment]}"


def _opening_flow(prompt: str) -> Flow:
    """The ``pushback`` flow whose first turn is ``prompt``, sent verbatim."""
    flow = builtin_flows()[_IMPORT_FLOW]
    opening = Stage(kind=StageKind.SAY, user=_escape(prompt), next=flow.stages[flow.start].next, verbatim=True)
    return flow.model_copy(update={"stages": {**flow.stages, flow.start: opening}})


def import_warm_paper(paths: Sequence[Path]) -> list[Scenario]:
    """Scenarios from the warm-model paper's prompt files (``<dataset>_<model>_outputs.csv``), one per row.

    Each row's ``prompt`` is the first turn, verbatim; the built-in ``pushback`` flow follows
    (``--turns 1`` is the paper's single-turn protocol). The row's condition comes from its
    prompt template (``original``, ``original_neutral``, ``incorrect``, ``correct``: the
    conditions ``original``, ``neutral``, ``false_belief``, ``denied_correct``) and its
    ``amendment_type``: a context makes it the ``emotional+`` form, played with the
    ``warm-paper`` preset's persona for that context. The correct and incorrect answers give the
    truth, the false belief and the correct answer. Row N of ``F.csv`` becomes ``f-NNNN``.

    Args:
        paths: the CSV files.

    Returns:
        The scenarios, file by file, in row order.

    Raises:
        DatasetError: a file is missing, malformed or not one of the paper's, two files have the
            same name, or a row is empty or has an unknown template or context.
    """
    errors: list[FileError] = []
    scenarios: list[Scenario] = []
    stems: dict[str, Path] = {}
    for path in paths:
        prefix = _stem_id(path)
        if prefix in stems:
            errors.append(_error(path, 1, f"same scenario ids as {stems[prefix]}; import it into another folder"))
            continue
        stems[prefix] = path
        header, rows = read_csv(path)
        require_columns(path, header, ("prompt",))
        columns = warm_paper_columns(path, header)
        for number, (line, row) in enumerate(rows, 1):
            needed = ("prompt", columns.question, columns.correct, columns.incorrect)
            empty = [name for name in needed if not row[name].strip()]
            case = _warm_paper_condition(row[columns.template].strip(), row["amendment_type"].strip())
            errors += [
                _error(path, line, f"column {name!r} is empty{_PANDAS_NONE if name != 'prompt' else ''}")
                for name in empty
            ]
            if isinstance(case, str):
                errors.append(_error(path, line, case))
            if empty or isinstance(case, str):
                continue
            truth, _ = columns.statements(row)
            correct_answer, belief = columns.clauses(row)
            question = row[columns.question].strip()
            data: _Row = {
                "id": f"{prefix}-{number:04d}",
                "domain": columns.domain,
                "title": _title(question),
                "question": question,
                "truth": truth,
                "false_belief": belief,
                "correct_answer": correct_answer,
                "correction": {
                    "references": [truth],
                    "markers": _short([row[columns.correct]]),
                    "belief_markers": _short([row[columns.incorrect]]),
                },
                "anecdote": _GENERIC_ANECDOTE,
                "authority": _GENERIC_AUTHORITY,
                "flow": _opening_flow(row["prompt"]),
                "condition": case[0],
                "persona": case[1],
                "source": f"warm-model paper {path.name} line {line}",
            }
            scenario = _validate(data, path, line, {"question": columns.question}, errors)
            if scenario is not None:
                scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios


# --- any table -----------------------------------------------------------------------------------

TABLE_FIELDS = (
    "id",
    "domain",
    "title",
    "question",
    "truth",
    "false_belief",
    "references",
    "markers",
    "belief_markers",
    "anecdote",
    "authority",
    "source",
)
"""The scenario fields :func:`import_table` can take from a column or a default."""
_LIST_FIELDS = frozenset({"references", "markers", "belief_markers"})
_REQUIRED_FIELDS = ("question", "truth", "false_belief")


def _cell(value: Any, field: str) -> str | list[str]:
    """A table value as text, or as a list for a list field; raises ValueError for other types."""
    if isinstance(value, str):
        return _split(value) if field in _LIST_FIELDS else value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if field in _LIST_FIELDS and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    wanted = "text or a list of texts" if field in _LIST_FIELDS else "text"
    raise ValueError(f"holds {json.dumps(value)[:40]}; expected {wanted}")


def _stem_id(path: Path) -> str:
    """The file's stem as the start of a scenario id: lower-case letters, digits, ``_`` and ``-``."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    return stem[:80] or "scenario"


def import_table(path: Path, mapping: dict[str, str], defaults: dict[str, str] | None = None) -> list[Scenario]:
    """Scenarios from a CSV or JSON Lines file (by suffix), one per row, using the ``pushback`` flow.

    ``mapping`` names the column that gives each scenario field (see ``TABLE_FIELDS``);
    ``defaults`` gives values for fields without a column, or whose cell is empty. List
    fields (``references``, ``markers``, ``belief_markers``) are ``;``-separated text, or
    JSON lists in JSON Lines. Without a value: ``id`` is ``<file stem>-NNNN`` (row N),
    ``domain`` is ``other``, ``title`` is the question cut short, ``references`` is the
    truth, ``anecdote`` and ``authority`` are generic. ``false_belief`` is made a clause
    that completes "I think ..." (first letter lower-cased unless a proper noun, no
    final period).

    Args:
        path: a ``.csv`` file with a header line, or a ``.jsonl`` file of JSON objects.
        mapping: scenario field -> column name.
        defaults: scenario field -> value, for fields that no column gives.

    Returns:
        The scenarios, in row order.

    Raises:
        ValueError: ``mapping`` or ``defaults`` names a field not in ``TABLE_FIELDS``, or
            nothing gives ``question``, ``truth`` or ``false_belief``.
        DatasetError: the file is missing, malformed or of another suffix, lacks a mapped
            column, or a row's values do not make a valid scenario.
    """
    defaults = defaults or {}
    unknown = sorted((set(mapping) | set(defaults)) - set(TABLE_FIELDS))
    if unknown:
        raise ValueError(f"unknown scenario field(s) {', '.join(unknown)}; known: {', '.join(TABLE_FIELDS)}")
    unset = [name for name in _REQUIRED_FIELDS if name not in mapping and name not in defaults]
    if unset:
        raise ValueError(f"nothing gives {', '.join(unset)}: map a column to it or give a default")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = read_csv(path)
        require_columns(path, header, dict.fromkeys(mapping.values()))
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    else:
        raise DatasetError([_error(path, 1, f"unknown table format {suffix!r}; use .csv or .jsonl")])
    prefix = _stem_id(path)
    errors: list[FileError] = []
    scenarios: list[Scenario] = []
    lines_by_id: dict[str, int] = {}
    for number, (line, row) in enumerate(rows, 1):
        values: dict[str, str | list[str]] = {field: _cell(value, field) for field, value in defaults.items()}
        problems: dict[str, str] = {}
        for field, column in mapping.items():
            if column not in row:
                problems[field] = f"no column {column!r} (mapped to {field})"
                continue
            try:
                value = _cell(row[column], field)
            except ValueError as exc:
                problems[field] = f"column {column!r} {exc}"
                continue
            if value:
                values[field] = value
        for field in _REQUIRED_FIELDS:
            if not values.get(field) and field not in problems:
                problems[field] = (
                    f"column {mapping[field]!r} is empty ({field})"
                    if field in mapping
                    else f"the default {field} is empty"
                )
        if problems:
            errors += [_error(path, line, problem) for problem in problems.values()]
            continue
        data = _table_scenario(values, f"{prefix}-{number:04d}")
        scenario = _validate(data, path, line, mapping, errors)
        if scenario is None:
            continue
        if scenario.id in lines_by_id:
            errors.append(_error(path, line, f"id {scenario.id!r} is also the id of line {lines_by_id[scenario.id]}"))
            continue
        lines_by_id[scenario.id] = line
        scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios


def _table_scenario(values: Mapping[str, str | list[str]], default_id: str) -> _Row:
    """A table row's values (text, or lists for list fields) as scenario data for the ``pushback`` flow."""
    texts = {field: value for field, value in values.items() if isinstance(value, str)}
    lists = {field: value for field, value in values.items() if isinstance(value, list)}
    question, truth = texts["question"], texts["truth"]
    return {
        "id": texts.get("id", default_id),
        "domain": texts.get("domain", Domain.OTHER).lower(),
        "title": texts.get("title") or _title(question),
        "question": question,
        "truth": truth,
        "false_belief": _clause(texts["false_belief"], [question, truth]),
        "correction": {
            "references": lists.get("references") or [truth],
            "markers": lists.get("markers", []),
            "belief_markers": lists.get("belief_markers", []),
        },
        "anecdote": texts.get("anecdote") or _GENERIC_ANECDOTE,
        "authority": texts.get("authority") or _GENERIC_AUTHORITY,
        "flow": _IMPORT_FLOW,
        "source": texts.get("source", ""),
    }


# --- writing -------------------------------------------------------------------------------------


def _dump(scenario: Scenario) -> str:
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_scenarios(scenarios: list[Scenario], out: Path, *, overwrite: bool = False) -> list[Path]:
    """Write each scenario as ``out/<id>.yaml``, all or none, each proven to load.

    The files are written to a temporary folder inside ``out`` and loaded there with
    :func:`scenarios.load_scenario` (schema, flow and template checks); only when every
    one loads are they moved into ``out``.

    Args:
        scenarios: the scenarios to write; their ids must differ.
        out: the folder to write into (created if need be).
        overwrite: replace files that exist already, instead of refusing.

    Returns:
        The paths written, in the order of ``scenarios``.

    Raises:
        DatasetError: two scenarios share an id, a file exists and ``overwrite`` is
            false, or a written file does not load (nothing is written then).
    """
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / f"{scenario.id}.yaml" for scenario in scenarios]
    errors: list[FileError] = []
    seen: set[Path] = set()
    for target in targets:
        if target in seen:
            errors.append(FileError(str(target), 1, 1, f"scenario id {target.stem!r} given twice"))
        elif target.exists() and not overwrite:
            errors.append(FileError(str(target), 1, 1, "file exists; pass overwrite=True to replace it"))
        seen.add(target)
    if errors:
        raise DatasetError(errors)
    with tempfile.TemporaryDirectory(dir=out, prefix=".convsim-import-") as staging:
        staged = [Path(staging) / target.name for target in targets]
        for scenario, path, target in zip(scenarios, staged, targets, strict=True):
            path.write_text(_dump(scenario), encoding="utf-8")
            try:
                load_scenario(path)
            except FileErrors as exc:
                errors += [dataclasses.replace(error, path=str(target)) for error in exc.errors]
        if errors:
            raise DatasetError(errors)
        for path, target in zip(staged, targets, strict=True):
            os.replace(path, target)
    return targets
