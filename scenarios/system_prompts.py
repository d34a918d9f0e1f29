"""Target-side conditions: the built-in system prompts (neutral and warm)."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["builtin_system_prompts", "system_prompt"]


@cache
def builtin_system_prompts() -> dict[str, str]:
    """The named system prompts that ship with convsim (``neutral``, ``warm``), by name."""
    folder = resources.files("scenarios").joinpath("system_prompts")
    return {
        entry.name.removesuffix(".txt"): entry.read_text(encoding="utf-8").strip()
        for entry in folder.iterdir()
        if entry.name.endswith(".txt")
    }


def system_prompt(name_or_text: str) -> str:
    """A built-in prompt's text if ``name_or_text`` names one, else the text itself."""
    return builtin_system_prompts().get(name_or_text, name_or_text)
