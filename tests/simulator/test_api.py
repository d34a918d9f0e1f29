"""The Python API: the README's notebook example runs as written; run() works inside an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulator import RunConfig, RunResult, TargetConfig, arun, run
from tests.helpers import check_example, notebook_example, run_example
from tests.openai_stub import StubServer


def test_the_readme_notebook_example_runs(stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(notebook_example().strip().splitlines()) < 15
    namespace = run_example(stub.base_url, "corrector", tmp_path, monkeypatch)
    check_example(namespace, tmp_path)
    targets = namespace["targets"]
    again = run(RunConfig(targets=targets, sample=8, turns=3, out="runs/notebook"))  # type: ignore[arg-type]
    assert again.summary.ran == 0 and again.summary.skipped == len(again.transcripts())  # resumed: all done


def test_run_inside_a_running_event_loop_as_in_jupyter(stub: StubServer, tmp_path: Path) -> None:
    target = TargetConfig(name="t", base_url=stub.base_url, model="corrector")
    config = RunConfig(targets=[target], sample=2, turns=2, out=tmp_path / "run")

    async def notebook_cell() -> RunResult:
        return run(config)  # a plain call where a loop is running: no "asyncio.run() cannot be called"

    result = asyncio.run(notebook_cell())
    assert result.summary.ran == len(result.transcripts()) > 0
    assert asyncio.run(arun(config)).summary.skipped == result.summary.ran  # resumes: nothing left to run
