"""Safe YAML loading that remembers where every value came from.

Every file a user writes (persona, scenario, run config) goes through
:func:`load_model`: it parses with PyYAML's safe loader, validates with pydantic
and turns every problem into a :class:`FileError` that names the file, line and
column, so that the CLI can print ``path:line:column: message`` lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "FileError",
    "FileErrors",
    "Located",
    "id_errors",
    "load_all",
    "load_model",
    "parse_yaml",
    "read_text",
    "validate_data",
    "yaml_files",
]

Key = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)
LoadedT = TypeVar("LoadedT")


@dataclass(frozen=True)
class FileError:
    """One problem in one file, at a 1-based line and column."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{_one_line(self.path)}:{self.line}:{self.column}: {_one_line(self.message)}"


# Characters that end a line (str.splitlines), written as escapes so that an error stays one line.
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _one_line(text: str) -> str:
    return text.translate(_LINE_BREAKS)


class FileErrors(Exception):
    """All the problems found in one or more files; ``str()`` gives one line each."""

    def __init__(self, errors: Iterable[FileError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.path, e.line, e.column))
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class Located:
    """Parsed YAML data with the position of every key and value."""

    path: str
    data: Any
    positions: dict[Key, tuple[int, int]]
    key_positions: dict[Key, tuple[int, int]]

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Line and column of the deepest part of ``loc`` that the file holds."""
        parts: Key = tuple(loc)
        while parts:
            table = self.key_positions if key else self.positions
            if parts in table:
                return table[parts]
            if parts in self.positions:
                return self.positions[parts]
            parts = parts[:-1]
        return self.positions.get((), (1, 1))

    def error(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> FileError:
        """A :class:`FileError` at the position of ``loc`` in this file."""
        line, column = self.position(loc, key=key)
        return FileError(self.path, line, column, message)


_MAX_NODES = 200_000  # aliases can make a small file expand without bound
_MAX_DEPTH = 100  # deeper nesting, or an alias inside its own anchor, is refused before Python's stack runs out
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Turns a composed YAML node tree into plain data, recording positions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.positions: dict[Key, tuple[int, int]] = {}
        self.key_positions: dict[Key, tuple[int, int]] = {}
        self.errors: list[FileError] = []
        self.nodes = 0
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, key: Key) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            line, column = _mark(node)
            raise FileErrors([FileError(self.path, line, column, f"too many YAML values (over {_MAX_NODES})")])
        self.positions[key] = _mark(node)
        if len(key) > _MAX_DEPTH:
            line, column = _mark(node)
            raise FileErrors([FileError(self.path, line, column, f"nested deeper than {_MAX_DEPTH} levels")])
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            line, column = _mark(node)
            raise FileErrors([FileError(self.path, line, column, f"unsafe or unknown YAML tag {node.tag!r}")])
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                name = self.build(key_node, (*key, "<key>"))
                self.positions.pop((*key, "<key>"), None)
                if not isinstance(name, str | int | float | bool):
                    line, column = _mark(key_node)
                    self.errors.append(FileError(self.path, line, column, "a key must be a plain value"))
                    continue
                if name in result:
                    line, column = _mark(key_node)
                    self.errors.append(FileError(self.path, line, column, f"duplicate key {name!r}"))
                child = (*key, str(name))
                self.key_positions[child] = _mark(key_node)
                result[name] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*key, i)) for i, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node, deep=True)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):  # `!!int zz`, 5000 digits
            line, column = _mark(node)
            kind = node.tag.rpartition(":")[2]
            message = f"cannot read {str(node.value)[:40]!r} as {kind}"
            raise FileErrors([FileError(self.path, line, column, message)]) from None


# (words in the parser's context or problem, where the mistake is, what it is in plain words)
_SYNTAX = (
    ("'\\t'", "problem", "a tab character: YAML indents with spaces only"),
    ("tab character", "problem", "a tab character: YAML indents with spaces only"),
    ("quoted scalar", "context", "unclosed quote: the value's closing quote is missing"),
    ("flow sequence", "context", "unclosed '[': the list is not closed with ']' (or a value in it needs quotes)"),
    ("flow mapping", "context", "unclosed '{': the mapping is not closed with '}' (or a value in it needs quotes)"),
    ("found '-'", "problem", "bad indentation: a list item where a key was expected"),
    ("<block sequence start>", "problem", "bad indentation: a list item where a key was expected"),
    ("<block mapping start>", "problem", "bad indentation: this line is indented differently from the keys above it"),
    ("<scalar>", "problem", "text after a value: quote the whole value"),
    ("expected <block end>", "problem", "bad indentation"),
    ("did not find expected key", "problem", "bad indentation: this line is indented differently from the keys above"),
    ("expected '-' indicator", "problem", "bad indentation in a list"),
    ("mapping values are not allowed", "problem",
     "a ': ' where no key can start: bad indentation, or a value holding ': ' that needs quotes"),
    ("simple key", "context", "a line that is neither `key: value` nor `- item` (a missing ':'?)"),
    ("undefined alias", "problem", "an alias (*name) with no anchor (&name) before it"),
    ("cannot start any token", "problem", "a value cannot start with this character: quote the value"),
    ("expected the node content", "problem", "a value is missing"),
)  # fmt: skip


def _syntax_error(path: str, exc: yaml.MarkedYAMLError) -> FileError:
    """A YAML syntax error in plain words, at the place to fix, with the parser's own message after."""
    parser = "; ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    plain, mark = "invalid YAML", exc.problem_mark or exc.context_mark
    for words, where, meaning in _SYNTAX:
        if words in (getattr(exc, where) or ""):
            plain = meaning
            if where == "context":  # where an unclosed quote or bracket opened, or the line lacking ':'
                mark = exc.context_mark or mark
            break
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return FileError(path, line, column, f"{plain} (YAML parser: {parser})")


def parse_yaml(text: str, path: str) -> Located:
    """Parse YAML text safely; no tags that build Python objects are accepted.

    Raises:
        FileErrors: the text is not valid YAML, holds more than one document,
            or uses a tag the safe loader refuses.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise FileErrors([_syntax_error(path, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a control character: point at it
        at = min(max(exc.position, 0), len(text))
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        message = f"invalid YAML: character U+{code:04X} is not allowed ({exc.reason})"
        raise FileErrors([FileError(path, line, column, message)]) from None
    except yaml.YAMLError as exc:
        raise FileErrors([FileError(path, 1, 1, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise FileErrors([FileError(path, 1, 1, "invalid YAML: nested too deeply")]) from None
    if node is None:
        return Located(path, None, {(): (1, 1)}, {})
    builder = _Builder(path)
    try:
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        raise FileErrors([FileError(path, line, column, f"unsafe or unknown YAML tag: {problem}")]) from None
    if builder.errors:
        raise FileErrors(builder.errors)
    return Located(path, data, builder.positions, builder.key_positions)


def _message(error: Any, schema: str) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown field {loc!r} (check the spelling; `{schema}` lists the fields)"
    if kind == "missing":
        return f"missing required field {loc!r}"
    message = str(error["msg"])
    if kind == "string_type" and isinstance(error.get("input"), bool):
        message += ' (YAML reads yes/no/true/false as booleans: quote it, as in "no")'
    elif kind == "list_type" and isinstance(error.get("input"), dict):
        message = f"a mapping where a list was expected: write `- item` lines or [a, b] ({message})"
    elif kind in ("dict_type", "model_type") and isinstance(error.get("input"), list):
        message = f"a list where a mapping was expected: write `key: value` lines ({message})"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{loc}: {message}" if loc else message


def validate_data(
    located: Located, model: type[ModelT], context: dict[str, Any] | None = None, *, schema: str
) -> ModelT:
    """Validate parsed data against a pydantic model, with positions in the errors.

    ``schema`` is the command that prints the model's JSON Schema, named by the hint on an unknown field.
    """
    if not isinstance(located.data, dict):
        raise FileErrors([located.error((), f"expected a mapping of fields for a {model.__name__.lower()}")])
    try:
        return model.model_validate(located.data, context=context)
    except ValidationError as exc:
        found = _without_union_tags(located.data, exc.errors())
        meant = _misspellings(found, model)
        typos = {missing for _, missing in meant.values() if missing is not None}
        errors = []
        for error in found:
            loc = tuple(error["loc"])
            if error["type"] == "missing":
                if loc in typos:
                    continue  # reported as the misspelling of it
                loc = loc[:-1]
            message = _message(error, schema)
            if loc in meant:
                message = f"unknown field {'.'.join(map(str, loc))!r}: did you mean {meant[loc][0]!r}?"
            errors.append(located.error(loc, message, key=error["type"] == "extra_forbidden"))
        raise FileErrors(errors) from None


def _without_union_tags(data: Any, errors: list[Any]) -> list[Any]:
    """The errors with the union members pydantic tried taken out of their locations.

    ``flow: str | Flow`` given a mapping fails as ``flow.constrained-str`` (not a string) and
    ``flow.Flow.stages...``; the file has no such keys. A wrong type under a member is dropped when
    another member of the same union has errors of its own, which are the ones to fix.
    """
    cleaned = []
    for error in errors:
        node, union = data, None
        loc: list[str | int] = []
        for i, part in enumerate(error["loc"]):
            listed = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if listed or (isinstance(node, dict) and part in node):
                node = node[part]
            elif not (error["type"] == "missing" and i == len(error["loc"]) - 1):
                union = len(loc) if union is None else union  # a union member's name: not in the file
                continue
            loc.append(part)
        cleaned.append({**error, "loc": tuple(loc), "union": None if union is None else tuple(loc[:union])})
    fixable = {e["union"] for e in cleaned if e["union"] is not None and not e["type"].endswith("_type")}
    return [e for e in cleaned if not (e["type"].endswith("_type") and e["union"] in fixable)]


def _misspellings(errors: list[Any], model: type[BaseModel]) -> dict[Key, tuple[str, Key | None]]:
    """Unknown fields close to a field of the same mapping: unknown -> (the field meant, its missing error).

    A missing field is preferred: one typo of a required field (``persistance``) makes two errors,
    an unknown field and a missing one, reported as one line. Else any field of the mapping's
    model is a candidate (``temprature`` for ``temperature``, which has a default).
    """
    missing = [tuple(e["loc"]) for e in errors if e["type"] == "missing"]
    meant: dict[Key, tuple[str, Key | None]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] != "extra_forbidden":
            continue
        taken = {m for _, m in meant.values()}
        siblings = {str(m[-1]): m for m in missing if m[:-1] == loc[:-1] and m not in taken}
        close = difflib.get_close_matches(str(loc[-1]), list(siblings), n=1, cutoff=0.75)
        if close:
            meant[loc] = (close[0], siblings[close[0]])
            continue
        close = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc[:-1]), n=1, cutoff=0.75)
        if close:
            meant[loc] = (close[0], None)
    return meant


def _fields_at(model: type[BaseModel], path: Key) -> list[str]:
    """The field names of the models that a pydantic error location inside ``model`` can point into."""
    kinds: list[Any] = [model]
    for part in path:
        following: list[Any] = []
        for kind in _unwrap(kinds):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                if part in kind.model_fields:
                    following.append(kind.model_fields[str(part)].annotation)
            elif get_origin(kind) in (list, tuple, set, frozenset) and isinstance(part, int):
                following += [arg for arg in get_args(kind) if arg is not Ellipsis]
            elif get_origin(kind) is dict:
                following += get_args(kind)[1:]
        kinds = following
    return [name for kind in _unwrap(kinds) if isinstance(kind, type) and issubclass(kind, BaseModel)
            for name in kind.model_fields]  # fmt: skip


def _unwrap(kinds: list[Any]) -> list[Any]:
    """The types inside unions, optionals and ``Annotated``."""
    found: list[Any] = []
    for kind in kinds:
        if get_origin(kind) is Annotated:
            found += _unwrap([get_args(kind)[0]])
        elif get_origin(kind) in (Union, UnionType):
            found += _unwrap(list(get_args(kind)))
        else:
            found.append(kind)
    return found


def id_errors(located: Located) -> list[FileError]:
    """The file's ``id`` must equal its name without ``.yaml``; checked on the data as written, so that
    a mismatch is reported together with the file's other mistakes."""
    written = located.data.get("id") if isinstance(located.data, dict) else None
    stem = Path(located.path).stem
    if isinstance(written, str) and written != stem:
        return [located.error(("id",), f"id {written!r} must match the file name {stem!r}")]
    return []


def read_text(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file, turning any failure into a :class:`FileErrors`."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileErrors([FileError(str(path), 1, 1, f"no such {what}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileErrors([FileError(str(path), 1, 1, f"cannot read {what}: {exc}")]) from None


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """The files given, with each folder replaced by the ``.yaml`` files in it.

    Raises:
        FileErrors: a folder holds no ``.yaml`` file.
    """
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
        elif inside := sorted(path.glob("*.yaml")):
            files += inside
        else:
            raise FileErrors([FileError(str(path), 1, 1, "no .yaml files in this folder")])
    return files


def load_all(load: Callable[[Path], LoadedT], paths: Iterable[Path]) -> list[LoadedT]:
    """Load every file with ``load``, gathering the problems of all files into one error.

    Raises:
        FileErrors: the problems of every file that failed, together.
    """
    loaded: list[LoadedT] = []
    errors: list[FileError] = []
    for path in paths:
        try:
            loaded.append(load(path))
        except FileErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise FileErrors(errors)
    return loaded


def load_model(path: Path, model: type[ModelT], context: dict[str, Any] | None = None, *, schema: str) -> ModelT:
    """Read a YAML file and validate it as ``model``.

    Raises:
        FileErrors: the file is missing, unreadable, not safe YAML, or not a
            valid ``model``; each error names the file, line and column.
    """
    return validate_data(parse_yaml(read_text(path), str(path)), model, context, schema=schema)
