"""User-text templates: plain ``{name}`` variables, nothing more."""

from __future__ import annotations

import string

__all__ = ["template_fields"]


def template_fields(template: str) -> list[str]:
    """The ``{names}`` a template uses.

    Raises:
        ValueError: the template is malformed or uses attribute access,
            indexing, conversions or format specs (only plain ``{name}`` is allowed).
    """
    names = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"only plain {{name}} variables are allowed, not {{{field}}}")
        names.append(field)
    return names
