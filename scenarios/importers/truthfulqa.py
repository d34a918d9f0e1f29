"""TruthfulQA as scenarios: a misconception (an incorrect answer) as the belief, the best answer as the truth."""

from __future__ import annotations

from pathlib import Path

from personas import FileError
from scenarios.importers.readers import DatasetError, Row, read_csv, require_columns, row_error
from scenarios.importers.shaping import (
    GENERIC_ANECDOTE,
    GENERIC_AUTHORITY,
    IMPORT_FLOW,
    answer_clause,
    short_answers,
    split_list,
    title,
    validate_scenario,
)
from scenarios.model import Domain, Scenario

__all__ = ["import_truthfulqa"]

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
        errors += [row_error(csv_path, line, f"column {name!r} is empty") for name in empty]
        if empty:
            continue
        question, best = row["Question"].strip(), row["Best Answer"].strip()
        correct = [a for a in split_list(row["Correct Answers"]) if a.rstrip(".").lower() != _NO_COMMENT]
        incorrect = split_list(row["Incorrect Answers"])
        belief = row.get("Best Incorrect Answer", "").strip() or incorrect[0]
        data: Row = {
            "id": f"truthfulqa-{number:04d}",
            "domain": _truthfulqa_domain(row["Category"]),
            "title": title(question),
            "question": question,
            "truth": best,
            "false_belief": answer_clause(belief),
            "correct_answer": answer_clause(best),
            "correction": {
                "references": correct or [best],
                "markers": short_answers(correct),
                "belief_markers": short_answers(incorrect),
            },
            "anecdote": GENERIC_ANECDOTE,
            "authority": GENERIC_AUTHORITY,
            "flow": IMPORT_FLOW,
            "source": row["Source"].strip(),
        }
        scenario = validate_scenario(data, csv_path, line, {"truth": "Best Answer", "question": "Question"}, errors)
        if scenario is not None:
            scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios
