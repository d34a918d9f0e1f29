"""The Python API: the README's notebook example runs as written; run() works inside an event loop."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from simulator import RunConfig, RunResult, TargetConfig, arun, run
from tests.openai_stub import StubServer

README = Path(__file__).resolve().parents[1] / "README.md"


def notebook_example() -> str:
    """The Python block of the README's section on the Python API."""
    section = README.read_text(encoding="utf-8").split("## In a notebook: the Python API", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the README's Python API section has no python block"
    return found.group(1)


def run_example(url: str, model: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Execute the README example in ``folder`` with its server and model replaced."""
    code = notebook_example()
    assert code.count('"http://127.0.0.1:8000/v1"') == 1 and code.count('"smollm2"') == 1
    monkeypatch.chdir(folder)
    namespace: dict[str, object] = {}
    exec(code.replace("http://127.0.0.1:8000/v1", url).replace('"smollm2"', f'"{model}"'), namespace)
    return namespace


def check_example(namespace: dict[str, object], folder: Path) -> None:
    result = namespace["result"]
    assert isinstance(result, RunResult)
    assert result.folder == Path("runs/notebook") and (folder / "runs/notebook/transcripts.jsonl").exists()
    conversations = [t for t in result.transcripts() if t.kind == "conversation"]
    assert len(conversations) == 8 and {t.target for t in conversations} == {"neutral", "warm"}
    assert sum(result.summary.statuses.values()) == len(result.transcripts())  # knowledge checks too
    curve = namespace["curve"]
    assert set(curve["target"]) == {"neutral", "warm"} and curve["turn"].max() <= 3  # type: ignore[index]
    assert isinstance(namespace["decay_curves"](curve, series=["target"]), Figure)  # type: ignore[operator]


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
