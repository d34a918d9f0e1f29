"""Finding personas: the built-in library and user files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from personas.files import FileError, FileErrors, id_errors, load_all, parse_yaml, read_text, validate_data
from personas.model import Persona

__all__ = [
    "LoadedPersona",
    "builtin_personas",
    "load_persona",
    "preset_personas",
    "resolve_personas",
]


class LoadedPersona(BaseModel):
    """A persona with where it came from and a hash of its file, for manifests and ids."""

    model_config = ConfigDict(frozen=True)

    persona: Persona
    source: str
    sha256: str


def _load(text: str, source: str) -> LoadedPersona:
    located = parse_yaml(text, source)
    errors = id_errors(located)
    try:
        persona = validate_data(located, Persona, schema="convsim personas schema")
    except FileErrors as exc:
        raise FileErrors([*exc.errors, *errors]) from None
    if errors:
        raise FileErrors(errors)
    return LoadedPersona(persona=persona, source=source, sha256=hashlib.sha256(text.encode()).hexdigest())


def load_persona(path: Path) -> LoadedPersona:
    """Load and validate one persona file; its ``id`` must equal the file name's stem.

    Raises:
        FileErrors: every problem, each with file, line and column.
    """
    return _load(read_text(path, "persona file"), str(path))


@cache
def builtin_personas() -> dict[str, LoadedPersona]:
    """The personas that ship with convsim, by id."""
    return _packaged("library")


@cache
def preset_personas(preset: str) -> dict[str, LoadedPersona]:
    """The personas of a protocol preset (``warm-paper``: the paper's interpersonal contexts), by id.

    Raises:
        KeyError: no such preset.
    """
    if not resources.files("personas").joinpath("presets", preset).is_dir():
        raise KeyError(preset)
    return _packaged(f"presets/{preset}")


def _packaged(folder: str) -> dict[str, LoadedPersona]:
    found: dict[str, LoadedPersona] = {}
    errors: list[FileError] = []
    for entry in sorted(resources.files("personas").joinpath(folder).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            loaded = _load(entry.read_text(encoding="utf-8"), f"personas/{folder}/{entry.name}")
        except FileErrors as exc:
            errors.extend(exc.errors)
            continue
        found[loaded.persona.id] = loaded
    if errors:
        raise FileErrors(errors)
    return found


def resolve_personas(refs: Iterable[str]) -> list[LoadedPersona]:
    """Turn built-in ids and file paths into personas; no refs means the whole library.

    Raises:
        FileErrors: all problems in all files at once (an unknown id counts as one).
    """
    refs = list(refs)
    if not refs:
        return list(builtin_personas().values())
    result: list[LoadedPersona] = []
    errors: list[FileError] = []
    for ref in refs:
        if ref.endswith((".yaml", ".yml")) or ("/" in ref and not ref.startswith("preset:")):
            try:
                result += load_all(load_persona, [Path(ref)])
            except FileErrors as exc:
                errors.extend(exc.errors)
        elif ref in builtin_personas():
            result.append(builtin_personas()[ref])
        elif ref.startswith("preset:") and ref.count("/") == 1:
            preset, _, persona_id = ref.removeprefix("preset:").partition("/")
            try:
                result.append(preset_personas(preset)[persona_id])
            except KeyError:
                errors.append(FileError(ref, 1, 1, f"no persona {persona_id!r} in preset {preset!r}"))
        else:
            errors.append(FileError(ref, 1, 1, f"no built-in persona {ref!r}; see `convsim personas list`"))
    if errors:
        raise FileErrors(errors)
    ids = [p.persona.id for p in result]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise FileErrors([FileError(refs[0], 1, 1, f"persona id given twice: {', '.join(dupes)}")])
    return result
