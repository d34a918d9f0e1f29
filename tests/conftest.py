"""Shared fixtures: the stub OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openai_stub import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A fresh stub server with no faults."""
    with StubServer() as server:
        yield server
