"""vLLM's Prometheus metrics (``/metrics``): sums of named samples, for the doctor and ``--concurrency auto``."""

from __future__ import annotations

import math
import re

__all__ = ["prometheus_sums"]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")


def prometheus_sums(text: str, names: set[str]) -> dict[str, float]:
    """The values of the named Prometheus samples in ``text``, summed over their labels."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(tuple(names)):
            continue
        match = _SAMPLE.match(line)
        if match is None or match.group(1) not in names:
            continue
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        if not math.isnan(value):
            found[match.group(1)] = found.get(match.group(1), 0.0) + value
    return found
