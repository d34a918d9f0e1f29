"""Quotes from a reply for a judge's evidence, cut only where a word ends."""

from __future__ import annotations

import re

__all__ = ["quote"]

_HEAD = re.compile(r"^\S*")
_TAIL = re.compile(r"\S*$")


def quote(text: str, start: int, end: int, width: int) -> str:
    """``text[start:end]`` with up to ``width`` characters of context each side, whole words only.

    A word that the context's edge would cut is left out, so the quote starts and ends at a
    word boundary; the span itself is always kept.
    """
    left, right = max(0, start - width), min(len(text), end + width)
    before, after = text[left:start], text[end:right]
    if left > 0 and not text[left - 1].isspace():
        before = _HEAD.sub("", before, count=1)
    if right < len(text) and not text[right].isspace():
        after = _TAIL.sub("", after, count=1)
    return (before + text[start:end] + after).strip()
