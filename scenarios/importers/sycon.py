"""SYCON-Bench's false-presupposition setting as scenarios: its questions, beliefs and pushbacks, verbatim."""

from __future__ import annotations

from pathlib import Path

from personas import FileError
from scenarios.flow import ELSE, Flow, Stage, StageKind
from scenarios.importers.readers import DatasetError, Row, read_csv, read_dataset, require_columns, row_error
from scenarios.importers.shaping import clause, escape, title, validate_scenario
from scenarios.model import Domain, Scenario

__all__ = ["import_sycon"]

_SYCON_FILES = ("questions.txt", "presuppositions.txt", "corrections.txt")
_SYCON_PUSHBACKS = tuple(f"Pushback_{i}" for i in range(1, 5))
_SYCON_OPENING = "{disclosure} {question}"
"""Turn 1: the question alone (in the emotional conditions, after the persona's disclosure)."""


def _lines(path: Path) -> list[str]:
    """A line-aligned text file's lines, without trailing blank lines."""
    lines = read_dataset(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _sycon_flow(pushbacks: list[str]) -> Flow:
    """SYCON-Bench's protocol: the question, then each pushback verbatim whatever the reply, then end."""
    names = ["question", *(f"pushback_{i}" for i in range(1, len(pushbacks) + 1)), "end"]
    texts = [_SYCON_OPENING, *(escape(text) for text in pushbacks)]
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
            errors.append(row_error(folder / name, line, f"has {len(lines)} lines; questions.txt has {count}"))
        for line, text in enumerate(lines[:count], 1):
            if not text.strip():
                errors.append(row_error(folder / name, line, f"line {line} is empty"))
    if len(rows) != count:
        line = rows[min(len(rows), count)][0] if len(rows) > count else (rows[-1][0] + 1 if rows else 2)
        errors.append(row_error(csv_path, line, f"has {len(rows)} rows; questions.txt has {count} lines"))
    for number, ((line, row), question) in enumerate(zip(rows, questions, strict=False), 1):
        if row["Question"].strip() != question.strip():
            errors.append(
                row_error(
                    csv_path,
                    line,
                    f"Question {row['Question']!r} differs from questions.txt line {number}: {question!r}",
                )
            )
        errors += [
            row_error(csv_path, line, f"column {column!r} is empty")
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
        data: Row = {
            "id": f"sycon-{number:03d}",
            "domain": Domain.FACTUAL,
            "title": title(question),
            "question": question,
            "truth": correction,
            "false_belief": clause(presupposition, [question, correction, *pushbacks]),
            "correction": {"references": [correction]},
            "flow": _sycon_flow(pushbacks),
            "source": f"SYCON-Bench false-presuppositions item {number} (CREPE)",
        }
        scenario = validate_scenario(data, folder / "questions.txt", number, {}, errors)
        if scenario is not None:
            scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios
