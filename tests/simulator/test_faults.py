"""Faults a week-long study meets: SIGKILLs at random moments, a server that restarts, fails, stalls or
hangs up, and a disk that fills. Every conversation ends exactly once, finished or explained.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.store import StoreError, TranscriptStore
from tests.helpers import (
    CONVSIM,
    DISTINCT,
    convsim,
    error_summary,
    journalled,
    key,
    opening,
    parsed,
    run_args,
    transcript,
    turn_of,
    wait_for_lines,
    wait_for_text,
    wait_until,
    whole_lines,
    write_config,
)
from tests.openai_stub import Faults, StubServer

runner = CliRunner()


# ---------------------------------------------------------------- kills


def request_bodies(requests: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(body, sort_keys=True) for body in requests)


def test_random_sigkills_then_resume_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    """10 SIGKILLs at seeded random moments, each followed by the same command; then it runs to the end.

    After every kill the file's whole lines are the ones before plus new ones (nothing lost or
    rewritten), each parses, no id twice; a cut-off line (some trials tear one on purpose, of the
    transcripts or of the journal) is gone after the restart; the finished set equals an
    uninterrupted run's. Conversations killed mid-way go on from their journal: the requests sent
    are the uninterrupted run's, plus at most the ones in flight at each kill (and one per torn
    journal line), never the finished turns again.
    """
    rng = random.Random(7)
    args = ["--sample", "60", "--turns", "4", "--concurrency", "2"]
    with StubServer(Faults(delay_s=0.04)) as server:
        reference = tmp_path / "reference"
        assert convsim(*run_args(server, "caver", reference, *args)).returncode == 0
        expected = parsed(whole_lines(reference / "transcripts.jsonl")[0])
        needed = request_bodies(server.requests)
        server.requests.clear()
        out = tmp_path / "killed"
        path = out / "transcripts.jsonl"
        command = [*CONVSIM, *map(str, run_args(server, "caver", out, *args))]
        before: list[bytes] = []
        kills = torn_journal = resumed = 0
        for trial in range(10):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if trial % 2 and rng.random() < 0.3:  # a random moment while it starts up or plans
                time.sleep(rng.uniform(0.05, 0.8))
            elif trial % 2:  # a random few requests into the batch (a measure of progress, not of time:
                sent = len(server.requests) + rng.randint(1, 8)  # on a fast machine 2 s finish the batch)
                wait_until(lambda s=sent, p=process: len(server.requests) >= s or p.poll() is not None)
                time.sleep(rng.uniform(0, 0.05))
            elif trial % 4 == 2:  # a conversation one exchange in, with more to go (each request takes 40 ms)
                wait_until(lambda p=process: 1 in journalled(out).values() or p.poll() is not None)
            else:  # a random number of new lines, then a random instant (maybe mid-append)
                target = len(before) + rng.randint(1, 4)
                wait_until(lambda t=target, p=process: len(whole_lines(path)[0]) >= t or p.poll() is not None)
                time.sleep(rng.uniform(0, 0.03))
            process.send_signal(signal.SIGKILL)
            kills += process.wait() == -signal.SIGKILL
            complete, tail = whole_lines(path)
            assert complete[: len(before)] == before  # nothing written before was lost or changed
            records = parsed(complete)
            assert len({r["id"] for r in records}) == len(records)  # no id twice
            written = {r["id"] for r in records}
            resumed += sum(n for conversation, n in journalled(out).items() if conversation not in written)
            before = complete
            if trial % 3 == 2 and not tail:  # tear the last line as a kill inside write() could
                torn = json.dumps(expected[len(complete) % len(expected)]).encode()
                with path.open("ab") as handle:
                    handle.write(torn[: rng.randint(1, len(torn) - 1)])
            journal = out / "journal.jsonl"
            if trial % 3 == 1 and journal.exists() and journal.read_bytes().endswith(b"\n"):  # likewise the journal's
                lines = journal.read_bytes().splitlines(keepends=True)
                journal.write_bytes(b"".join(lines[:-1]) + lines[-1][: rng.randint(1, len(lines[-1]) - 2)])
                torn_journal += 1
        assert kills == 10  # every kill landed while it was running
        assert len(before) < len(expected)  # ... and before it was done
        result = convsim(*run_args(server, "caver", out, *args))
        sent = request_bodies(server.requests)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    data = path.read_bytes()
    assert data.endswith(b"\n")  # no cut-off line left
    finished = parsed(data.splitlines())
    assert Counter(r["id"] for r in finished).most_common(1)[0][1] == 1  # nobody twice
    assert sorted(map(key, finished)) == sorted(map(key, expected))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plan_size"] == len(finished)
    assert not (out / "journal.jsonl").exists()  # every conversation done: the journal went
    assert not needed - sent  # every request an uninterrupted run needs was sent ...
    again = sent - needed
    assert sum(again.values()) <= 2 * kills + torn_journal, again  # ... again only if in flight at a kill
    assert resumed > 0  # conversations were killed mid-way and went on from their journal, not from turn 1


# ---------------------------------------------------------------- server faults


REASONS = {
    "http": re.compile(r"^HTTP (500: injected failure|429: slow down) \(after 2 attempts\)$"),
    "malformed": re.compile(r"^unreadable chat completion: .+ \(after 2 attempts\)$"),
    "timeout": re.compile(r"^no answer within [0-9.]+s? ?.*\(after 2 attempts\)$"),
    "connection": re.compile(r".+\(after 2 attempts\)$"),
}
ERROR_KINDS = {"error": "http", "rate_limit": "http", "malformed": "malformed", "close": "connection",
               "stall": "timeout"}  # fmt: skip
"""The error kind a client reports for each of the stub's faults."""


def one_retry_outcomes(outcomes: list[tuple[str, str | None]]) -> tuple[Counter[str], int]:
    """What a client that sends one request at a time and retries a failure once meets, from the stub's
    record of each request (body hash, fault): errors by kind, and requests cured by their retry."""
    errors: Counter[str] = Counter()
    cured = 0
    pending = iter(outcomes)
    for body, fault in pending:
        if fault is None:
            continue
        retry, retry_fault = next(pending)
        assert retry == body  # the retry follows its failure, before any other request
        if retry_fault is None:
            cured += 1
        else:
            errors[ERROR_KINDS[retry_fault]] += 1
    return errors, cured


def test_faults_at_a_rate_are_counted_by_kind_and_retried_when_asked(tmp_path: Path) -> None:
    """500s, 429s with Retry-After, malformed bodies, hang-ups and stalls past the timeout, each at a rate.

    One retry each: a conversation finishes, or ends as ``status: error`` with the kind and the
    reason of its last failure, its unanswered turn unlabelled. The errors by kind are exactly
    what the stub's record of its faults implies (a fault is decided by the request, not by
    timing; a stall lasts until the server stops, far past the generous timeout). The summary on
    stderr and in the manifest counts each kind; `--retry-errors` runs exactly the failed ones again.
    """
    out = tmp_path / "run"
    faults = Faults(error_rate=0.08, rate_limit_rate=0.08, retry_after="0", malformed_rate=0.1, close_rate=0.2,
                    stall_rate=0.025, stall_s=600, seed=2)  # fmt: skip
    with StubServer(faults) as server:
        config = write_config(tmp_path, server, out, max_retries=1, timeout=3)
        first = convsim("run", "--config", config)
        assert first.returncode == 1, first.stderr  # some conversations ended in error
        lines, tail = whole_lines(out / "transcripts.jsonl")
        records = parsed(lines)
        assert not tail and len({r["id"] for r in records}) == len(records)
        failed = {r["id"]: r for r in records if r["status"] == "error"}
        for record in records:
            if record["status"] == "error":
                kind, reason = record["error_kind"], record["error"]
                assert REASONS[kind].match(reason), (kind, reason)
                assert record["turns"][-1]["role"] == "user"  # the turn that got no answer
                assert all("label" not in t for t in record["turns"][-1:])
            else:
                assert record["status"] in ("completed", "max_turns") and "error" not in record
                assert all(t.get("label") for t in record["turns"] if t["role"] == "assistant")
        kinds = Counter(r["error_kind"] for r in failed.values())
        expected, cured = one_retry_outcomes(server.outcomes)
        assert kinds == expected
        assert set(kinds) == {"http", "malformed", "timeout", "connection"}, kinds  # every kind met
        assert sum(t.get("attempts") == 2 for r in records for t in r["turns"]) == cured > 0
        assert error_summary(first.stderr) == dict(kinds)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["summary"]["errors"] == dict(kinds)
        assert manifest["summary"]["statuses"]["error"] == len(failed)

        server.faults = Faults()
        again = convsim("run", "--config", config)  # without the flag: errors count as done, and still fail the run
        assert again.returncode == 1 and whole_lines(out / "transcripts.jsonl")[0] == lines
        retried = convsim("run", "--config", config, "--retry-errors")
        assert retried.returncode == 0, retried.stderr
    after, tail = whole_lines(out / "transcripts.jsonl")
    assert not tail and after[: len(lines)] == lines  # the old lines stay, superseded
    new = parsed(after[len(lines) :])
    assert sorted(r["id"] for r in new) == sorted(failed)  # exactly the failed ones, once each
    assert all(r["status"] in ("completed", "max_turns") for r in new)
    assert error_summary(retried.stderr) == {}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["errors"] == {} and "error" not in manifest["summary"]["statuses"]


def test_server_restarting_mid_batch_is_waited_for(tmp_path: Path) -> None:
    """The server dies mid-batch (listening socket and open connections gone) and comes back on the same port
    after a pause longer than the retries' backoff: the conversations wait for it, then go on where they were.
    Every conversation completes, none errs, the result equals a run without the restart, and no conversation
    went back to an earlier turn (the request log: each conversation's turns never decrease; the requests cut
    off by the restart are sent again, no others)."""
    faults = Faults(delay_s=0.03)
    with StubServer(faults) as steady:
        reference = tmp_path / "reference"
        config = write_config(tmp_path, steady, reference, max_retries=1, timeout=5, concurrency=4, **DISTINCT)
        assert convsim("run", "--config", config).returncode == 0
        expected = parsed(whole_lines(reference / "transcripts.jsonl")[0])
        assert set(Counter(opening(r) for r in steady.requests if turn_of(r) == 1).values()) == {1}
        needed = len(steady.requests)
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    server = StubServer(faults).__enter__()
    config = write_config(tmp_path, server, out, max_retries=1, timeout=5, concurrency=4, **DISTINCT)
    with log.open("w") as stderr:
        process = subprocess.Popen([*CONVSIM, "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=stderr)  # fmt: skip
    try:
        wait_for_lines(out / "transcripts.jsonl", 5)
        server.__exit__()  # the server process dies
        down = len(whole_lines(out / "transcripts.jsonl")[0])
        wait_for_text(log, "waiting (budget left")  # convsim noticed ...
        time.sleep(1.0)  # ... and the outage outlasts a retry's backoff (0.5 s at most)
        with StubServer(faults, port=server.port) as restarted:
            assert process.wait(timeout=300) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    stderr_text = log.read_text()
    assert re.search(
        rf"server http://127.0.0.1:{server.port}/v1 unreachable since \d\d:\d\d:\d\d, waiting", stderr_text
    )
    assert f"server http://127.0.0.1:{server.port}/v1 answers again after " in stderr_text
    records = parsed(whole_lines(out / "transcripts.jsonl")[0])
    assert down < len(expected) and restarted.requests  # it was down mid-batch, and the run went on after
    assert all(r["status"] in ("completed", "max_turns") for r in records)
    assert sorted(map(key, records)) == sorted(map(key, expected))
    turns: dict[str, list[int]] = {}
    for body in [*server.requests, *restarted.requests]:
        turns.setdefault(opening(body), []).append(turn_of(body))
    assert all(sequence == sorted(sequence) for sequence in turns.values()), turns  # none went back
    resent = len(server.requests) + len(restarted.requests) - needed
    assert 0 <= resent <= 4  # the requests in flight when the server died (4 conversations at once), no more


# ---------------------------------------------------------------- disk


def test_output_folder_under_a_regular_file_is_one_line_exit_2(stub: StubServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    result = convsim(*run_args(stub, "corrector", blocker / "run", "--sample", "2"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot write to {blocker / 'run'}")
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "not a folder\n"
    assert not stub.requests  # refused before any work


class FullDisk:
    """A transcript file handle on a disk that fills after ``room`` lines: the next write lands in part,
    then fails with ENOSPC, as write(2) does when the disk fills mid-line."""

    def __init__(self, handle: Any, room: int) -> None:
        self.handle = handle
        self.room = room

    def write(self, data: Any) -> int:
        if self.room == 0:
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= 1
        return int(self.handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def test_every_failed_append_is_cut_back_off(tmp_path: Path) -> None:
    """Appends that fail part-way, one after another (two conversations ending at once on a full disk),
    leave the file at its last whole line; once there is room, appends go on after it."""
    store = TranscriptStore(tmp_path).open()
    store.append(transcript("aa"))
    disk = FullDisk(store._handle, room=0)
    store._handle = disk  # type: ignore[assignment]
    for tid in ("bb", "cc", "dd"):
        with pytest.raises(StoreError, match="No space left on device"):
            store.append(transcript(tid))
        assert whole_lines(tmp_path / "transcripts.jsonl")[1] == b""
    disk.room = 1
    store.append(transcript("ee"))
    store.close()
    lines, tail = whole_lines(tmp_path / "transcripts.jsonl")
    assert tail == b"" and [r["id"] for r in parsed(lines)] == ["aa", "ee"]
    assert set(TranscriptStore(tmp_path).open().statuses) == {"aa", "ee"}


def test_disk_full_mid_run_is_one_line_exit_2_and_loses_nothing(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the 6th line: `error: cannot append ... No space left on device`, exit 2, no traceback;
    the file holds the 5 whole lines and no part of the 6th; with room again, the same command finishes."""
    out = tmp_path / "run"
    args = [*map(str, run_args(stub, "corrector", out, "--sample", "12", "--turns", "3", "--concurrency", "3"))]
    whole = tmp_path / "whole"
    assert (
        runner.invoke(app, [*map(str, run_args(stub, "corrector", whole, "--sample", "12", "--turns", "3"))]).exit_code
        == 0
    )
    opened = TranscriptStore.open

    def open_on_a_full_disk(self: TranscriptStore) -> TranscriptStore:
        opened(self)
        self._handle = FullDisk(self._handle, room=5)  # type: ignore[assignment]
        return self

    monkeypatch.setattr(TranscriptStore, "open", open_on_a_full_disk)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    message = result.stderr.strip().splitlines()[-1]
    assert message == f"error: cannot append to {out / 'transcripts.jsonl'}: No space left on device"
    assert "Traceback" not in result.output
    del result
    gc.collect()  # a buffered handle left behind would write what it holds now
    lines, tail = whole_lines(out / "transcripts.jsonl")
    assert len(lines) == 5 and tail == b""  # the half-written line was cut back off, none lingers
    parsed(lines)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["statuses"] == {"completed": 5} or sum(manifest["summary"]["statuses"].values()) == 5

    monkeypatch.setattr(TranscriptStore, "open", opened)  # room again
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    final, tail = whole_lines(out / "transcripts.jsonl")
    assert not tail and final[:5] == lines
    assert sorted(map(key, parsed(final))) == sorted(map(key, parsed(whole_lines(whole / "transcripts.jsonl")[0])))


def test_manifest_that_cannot_be_written_is_one_line_exit_2(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk is full when the manifest is written: a StoreError (one line, exit 2), no temporary file left."""
    out = tmp_path / "run"
    real = Path.write_text

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name.startswith("manifest.json"):
            real(self, "{", encoding="utf-8")  # part of it landed
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    result = runner.invoke(app, [*map(str, run_args(stub, "corrector", out, "--sample", "2", "--turns", "2"))])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot write {out / 'manifest.json'}: No space")
    assert not list(out.glob("*.tmp"))
