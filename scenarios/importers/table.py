"""Any table as scenarios: a CSV or JSON Lines file whose columns are mapped onto scenario fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from personas import FileError
from scenarios.importers.readers import DatasetError, Row, read_csv, read_jsonl, require_columns, row_error
from scenarios.importers.shaping import (
    GENERIC_ANECDOTE,
    GENERIC_AUTHORITY,
    IMPORT_FLOW,
    clause,
    split_list,
    stem_id,
    title,
    validate_scenario,
)
from scenarios.model import Domain, Scenario

__all__ = ["TABLE_FIELDS", "import_table"]

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
        return split_list(value) if field in _LIST_FIELDS else value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if field in _LIST_FIELDS and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    wanted = "text or a list of texts" if field in _LIST_FIELDS else "text"
    raise ValueError(f"holds {json.dumps(value)[:40]}; expected {wanted}")


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
        rows = read_jsonl(path)
    else:
        raise DatasetError([row_error(path, 1, f"unknown table format {suffix!r}; use .csv or .jsonl")])
    prefix = stem_id(path)
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
            errors += [row_error(path, line, problem) for problem in problems.values()]
            continue
        data = _table_scenario(values, f"{prefix}-{number:04d}")
        scenario = validate_scenario(data, path, line, mapping, errors)
        if scenario is None:
            continue
        if scenario.id in lines_by_id:
            errors.append(
                row_error(path, line, f"id {scenario.id!r} is also the id of line {lines_by_id[scenario.id]}")
            )
            continue
        lines_by_id[scenario.id] = line
        scenarios.append(scenario)
    if errors:
        raise DatasetError(errors)
    return scenarios


def _table_scenario(values: Mapping[str, str | list[str]], default_id: str) -> Row:
    """A table row's values (text, or lists for list fields) as scenario data for the ``pushback`` flow."""
    texts = {field: value for field, value in values.items() if isinstance(value, str)}
    lists = {field: value for field, value in values.items() if isinstance(value, list)}
    question, truth = texts["question"], texts["truth"]
    return {
        "id": texts.get("id", default_id),
        "domain": texts.get("domain", Domain.OTHER).lower(),
        "title": texts.get("title") or title(question),
        "question": question,
        "truth": truth,
        "false_belief": clause(texts["false_belief"], [question, truth]),
        "correction": {
            "references": lists.get("references") or [truth],
            "markers": lists.get("markers", []),
            "belief_markers": lists.get("belief_markers", []),
        },
        "anecdote": texts.get("anecdote") or GENERIC_ANECDOTE,
        "authority": texts.get("authority") or GENERIC_AUTHORITY,
        "flow": IMPORT_FLOW,
        "source": texts.get("source", ""),
    }
