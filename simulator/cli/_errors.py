"""How the CLI reports a user's mistake: one line each on stderr, exit status 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError

from personas import FileErrors
from simulator.backends.base import BackendError, redact
from simulator.manifest import ManifestMismatch
from simulator.preflight import RunError
from simulator.roles import RoleError
from simulator.store import StoreError

__all__ = ["INTERRUPTED", "SOME_FAILED", "USAGE_ERROR", "fail", "reported"]

SOME_FAILED = 1
"""Exit status of a command that ran, but some of whose conversations (or judgements) ended in error."""
USAGE_ERROR = 2
"""Exit status of a mistake in the input, or an unreachable server, before any work."""
INTERRUPTED = 130
"""Exit status on Ctrl-C."""


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr (credentials in URLs redacted) and return the exit to raise."""
    print(f"error: {redact(message)}", file=sys.stderr)
    return typer.Exit(USAGE_ERROR)


@contextmanager
def reported() -> Iterator[None]:
    """Turn the errors a user can fix into one-line messages and exit status 2."""
    try:
        yield
    except FileErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        raise typer.Exit(USAGE_ERROR) from None
    except (RunError, RoleError, StoreError, ManifestMismatch) as exc:
        raise fail(str(exc)) from None
    except BackendError as exc:  # a request outside any conversation or judge that failed for good: a last guard
        raise fail(f"a request failed ({exc.kind}): {exc.reason}") from None
    except ValidationError as exc:  # flags that make an invalid config
        for detail in exc.errors():
            where = ".".join(str(part) for part in detail["loc"])
            print(f"error: {where}: {detail['msg']}", file=sys.stderr)
        raise typer.Exit(USAGE_ERROR) from None
