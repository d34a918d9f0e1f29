"""`convsim serve` in the background stops on SIGTERM (`kill %1`), with every process it started.

vLLM itself is replaced by a stand-in that answers `/health` and starts a worker process, so that
this runs in seconds; tests/integration/test_serve_cli.py starts the real server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulator.serving.vllm_server import process_group_members
from tests.helpers import CONVSIM, FAKE_SERVER, fake_python

POLITE_SERVER = FAKE_SERVER.replace("[s.signal(n, s.SIG_IGN) for n in (s.SIGINT, s.SIGTERM)]; ", "").replace(
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n", ""
)

"""The stand-in vLLM server with its worker, both stopping on SIGINT, as vLLM's processes do."""


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    """An environment in which the python that runs vLLM runs the stand-in."""
    assert "SIG_IGN" not in POLITE_SERVER
    return {**os.environ, "CONVSIM_VLLM_PYTHON": str(fake_python(tmp_path, POLITE_SERVER))}


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
