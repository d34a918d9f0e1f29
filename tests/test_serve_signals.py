"""`convsim serve` in the background stops on SIGTERM (`kill %1`), with every process it started.

vLLM itself is replaced by a stand-in module that answers `/health` and starts a child process,
so that this runs in a second; tests/integration/test_serve_cli.py starts the real server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulator.vllm_server import process_group_members
from tests.test_run_cli import CONVSIM

STAND_IN = """\
import http.server, subprocess, sys

port = int(sys.argv[sys.argv.index("--port") + 1])
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # a worker, as vLLM starts


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    """An environment in which `vllm.entrypoints.openai.api_server` is the stand-in."""
    module = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    module.mkdir(parents=True)
    for folder in (module, module.parent, module.parent.parent):
        (folder / "__init__.py").write_text("")
    (module / "api_server.py").write_text(STAND_IN)
    path = os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "CONVSIM_VLLM_PYTHON": sys.executable, "PYTHONPATH": path}


def test_sigterm_stops_serve_and_every_process_it_started(stand_in: dict[str, str], tmp_path: Path) -> None:
    process = subprocess.Popen([*CONVSIM, "serve", str(tmp_path), "--port", "0"], env=stand_in,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None
    url = process.stdout.readline().strip()  # printed once healthy
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url), url
    process.send_signal(signal.SIGTERM)  # what `kill %1` sends to a job in the background
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "stopping vLLM" in stderr
    pid = int(re.search(r"\(pid (\d+),", stderr).group(1))  # type: ignore[union-attr]
    assert process_group_members(pid) == []
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    with pytest.raises(urllib.error.URLError, match="refused"):  # nothing listens any more
        direct.open(url.removesuffix("/v1") + "/health", timeout=5)
