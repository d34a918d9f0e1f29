"""Simulated users' personas: the model, the files, the built-in library.

The bottom room: imports nothing else of convsim's.
"""

from personas.files import (
    FileError,
    FileErrors,
    Located,
    id_errors,
    load_all,
    load_model,
    parse_yaml,
    read_text,
    validate_data,
    yaml_files,
)
from personas.library import (
    LoadedPersona,
    builtin_personas,
    load_persona,
    preset_personas,
    resolve_personas,
)
from personas.model import PERSONA_ID, Affect, Emotion, Persona, Pushback, Style, Tactic, TacticPhrases
from personas.references import load_packaged, resolve_refs
from personas.templates import template_fields
from personas.voices import Voice, Voices, builtin_voices, voice_of

__all__ = [
    "PERSONA_ID",
    "Affect",
    "Emotion",
    "FileError",
    "FileErrors",
    "LoadedPersona",
    "Located",
    "Persona",
    "Pushback",
    "Style",
    "Tactic",
    "TacticPhrases",
    "Voice",
    "Voices",
    "builtin_personas",
    "builtin_voices",
    "id_errors",
    "load_all",
    "load_model",
    "load_packaged",
    "load_persona",
    "parse_yaml",
    "preset_personas",
    "read_text",
    "resolve_personas",
    "resolve_refs",
    "template_fields",
    "validate_data",
    "voice_of",
    "yaml_files",
]
