"""Reading datasets: CSV and JSON Lines files as rows with their line numbers, every problem at once."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from personas import FileError, FileErrors, read_text

__all__ = ["DatasetError", "Row", "read_csv", "read_dataset", "read_jsonl", "require_columns", "row_error"]


class DatasetError(FileErrors):
    """A dataset that cannot be imported, or scenarios that cannot be written.

    A :class:`personas.FileErrors`: ``errors`` holds every problem, and ``str()`` gives
    one line each, ``file:line:column: problem`` (column 1 when the problem is a whole
    row or a named CSV column).
    """


Row = dict[str, Any]
"""One record of a table: column name to value (always text for CSV)."""


def row_error(path: Path, line: int, message: str) -> FileError:
    return FileError(str(path), line, 1, message)


def read_dataset(path: Path) -> str:
    """A dataset file's text, without a byte-order mark, with ``\\n`` line ends."""
    try:
        text = read_text(path, "dataset file")
    except FileErrors as exc:
        raise DatasetError(exc.errors) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, Row]]]:
    """A CSV file's header and its non-empty rows, each with the line it starts on.

    Raises:
        DatasetError: the CSV is malformed, a column name repeats, or a row has more
            or fewer fields than the header.
    """
    reader = csv.reader(io.StringIO(read_dataset(path), newline=""))
    errors: list[FileError] = []
    rows: list[tuple[int, Row]] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DatasetError([row_error(path, 1, "the file is empty; expected a header line of column names")])
        for name in sorted({name for name in header if header.count(name) > 1}):
            errors.append(row_error(path, 1, f"column {name!r} appears more than once in the header"))
        line = reader.line_num + 1
        for record in reader:
            if record:
                if len(record) != len(header):
                    errors.append(row_error(path, line, f"row has {len(record)} fields; the header has {len(header)}"))
                else:
                    rows.append((line, dict(zip(header, record, strict=True))))
            line = reader.line_num + 1
    except csv.Error as exc:
        errors.append(row_error(path, reader.line_num or 1, f"malformed CSV: {exc}"))
    if errors:
        raise DatasetError(errors)
    return header, rows


def read_jsonl(path: Path) -> list[tuple[int, Row]]:
    """A JSON Lines file's records (one JSON object a line, blank lines skipped), with line numbers.

    Raises:
        DatasetError: a line is not JSON or not an object.
    """
    rows: list[tuple[int, Row]] = []
    errors: list[FileError] = []
    for line, text in enumerate(read_dataset(path).split("\n"), 1):
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
            errors.append(row_error(path, line, f"expected a JSON object, found {type(record).__name__}"))
    if errors:
        raise DatasetError(errors)
    return rows


def require_columns(path: Path, header: Iterable[str], required: Iterable[str]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        found = ", ".join(repr(name) for name in header)
        raise DatasetError([row_error(path, 1, f"missing column {name!r}; the header has {found}") for name in missing])
