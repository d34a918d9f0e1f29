"""`convsim serve` as a user runs it: healthy, prints its URL, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.serving.vllm_server import process_group_members

CONVSIM = [sys.executable, "-m", "simulator"]


def test_serve_not_installed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "CONVSIM_VLLM_PYTHON": str(tmp_path / "no-python")}
    result = subprocess.run([*CONVSIM, "serve", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: vLLM is not installed")


def test_serve_refuses_a_taken_port(tmp_path: Path, vllm_python: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([*CONVSIM, "serve", str(tmp_path), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


@pytest.mark.integration
def test_serve_a_model_that_does_not_load(tmp_path: Path, vllm_python: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = subprocess.run([*CONVSIM, "serve", str(tmp_path), "--port", "0"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 2
    assert "vLLM exited with code" in result.stderr


@pytest.mark.integration
def test_serve_then_ctrl_c(vllm_python: Path) -> None:
    process = subprocess.Popen([*CONVSIM, "serve", "default", "--port", "0", "--", "--max-num-seqs", "8"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    url = process.stdout.readline().strip()  # printed once healthy
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url), url
    models = httpx.get(f"{url}/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["smollm2"]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    pid = int(re.search(r"\(pid (\d+),", stderr).group(1))  # type: ignore[union-attr]
    assert process_group_members(pid) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=5)
