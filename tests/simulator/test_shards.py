"""Splitting one plan over several jobs (`--shard I/N`), joining them (`merge`), retrying errors."""

from __future__ import annotations

import json
from pathlib import Path

from simulator import read_transcripts
from tests.helpers import convsim, run_args
from tests.openai_stub import Faults, StubServer

PLAN = ["--sample", "12", "--turns", "3"]


def records(folder: Path) -> list[tuple[str, str]]:
    return sorted((t.id, json.dumps([(x.role, x.content, x.label) for x in t.turns])) for t in read_transcripts(folder))


def test_three_shards_merged_equal_the_unsplit_run(stub: StubServer, tmp_path: Path) -> None:
    assert convsim(*run_args(stub, "caver", tmp_path / "whole", *PLAN)).returncode == 0
    parts = []
    for index in (1, 2, 3):
        part = tmp_path / f"part{index}"
        assert convsim(*run_args(stub, "caver", part, *PLAN, "--shard", f"{index}/3")).returncode == 0
        parts.append(part)
    ids = [{t.id for t in read_transcripts(part)} for part in parts]
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # disjoint, none empty
    result = convsim("merge", *parts, "--out", tmp_path / "merged")
    assert result.returncode == 0, result.stderr
    assert records(tmp_path / "merged") == records(tmp_path / "whole")


def test_merge_refuses_runs_of_different_plans(stub: StubServer, tmp_path: Path) -> None:
    assert convsim(*run_args(stub, "caver", tmp_path / "a", *PLAN, "--shard", "1/2")).returncode == 0
    assert (
        convsim(*run_args(stub, "caver", tmp_path / "b", "--sample", "12", "--turns", "4", "--shard", "2/2")).returncode
        == 0
    )
    result = convsim("merge", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "merged")
    assert result.returncode == 2
    assert "different plans" in result.stderr
    assert not (tmp_path / "merged").exists()


def test_bad_shard_is_exit_2(stub: StubServer, tmp_path: Path) -> None:
    result = convsim(*run_args(stub, "caver", tmp_path / "run", "--shard", "4/3"))
    assert result.returncode == 2
    assert "shard 4/3" in result.stderr


def test_retry_errors_runs_only_the_failed_ones(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with StubServer(Faults(error_rate=0.3, seed=5)) as flaky:
        config = tmp_path / "run.yaml"
        config.write_text(
            f"targets: [{{name: c, base_url: '{flaky.base_url}', model: corrector, max_retries: 0}}]\n"
            f"sample: 12\nturns: 3\nconcurrency: 1\nout: {out}\n"
        )
        assert convsim("run", "--config", config).returncode == 1  # some ended in error
        failed = {t.id for t in read_transcripts(out) if t.status == "error"}
        assert failed
        flaky.faults.error_rate = 0.0
        before = len(flaky.requests)
        assert convsim("run", "--config", config).returncode == 1  # the errors are still the run's
        assert len(flaky.requests) == before  # without the flag, errors count as done
        assert convsim("run", "--config", config, "--retry-errors").returncode == 0
        assert len(flaky.requests) > before
    latest = {t.id: t for t in read_transcripts(out)}
    assert all(latest[i].status != "error" for i in failed)
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == len(latest) + len(failed)  # the old error lines stay, superseded
