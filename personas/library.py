"""Finding personas: the built-in library and user files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from personas.files import FileError, FileErrors, id_errors, parse_yaml, read_text, validate_data
from personas.model import Persona
from personas.references import load_packaged, resolve_refs

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
    return load_packaged("personas", "library", _load, _persona_id)


@cache
def preset_personas(preset: str) -> dict[str, LoadedPersona]:
    """The personas of a protocol preset (``warm-paper``: the paper's interpersonal contexts), by id.

    Raises:
        KeyError: no such preset.
    """
    if not resources.files("personas").joinpath("presets", preset).is_dir():
        raise KeyError(preset)
    return load_packaged("personas", f"presets/{preset}", _load, _persona_id)


def resolve_personas(refs: Iterable[str]) -> list[LoadedPersona]:
    """Turn built-in ids, files, folders of files and ``preset:NAME/ID`` into personas; no refs: the library.

    Raises:
        FileErrors: all problems in all files at once (an unknown id counts as one).
    """
    return resolve_refs(refs, "persona", builtin_personas, load_persona, _persona_id, _preset_persona)


def _persona_id(loaded: LoadedPersona) -> str:
    return loaded.persona.id


def _preset_persona(ref: str) -> LoadedPersona | None:
    """A preset's persona (``preset:warm-paper/ID``); ``None`` for another kind of reference.

    Raises:
        FileErrors: the preset has no such persona.
    """
    if not (ref.startswith("preset:") and ref.count("/") == 1):
        return None
    preset, _, persona_id = ref.removeprefix("preset:").partition("/")
    try:
        return preset_personas(preset)[persona_id]
    except KeyError:
        raise FileErrors([FileError(ref, 1, 1, f"no persona {persona_id!r} in preset {preset!r}")]) from None
