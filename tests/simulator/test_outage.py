"""Outages: a server (every replica of a pool) that stops answering is waited for, up to a budget.

Every wait here is for a condition (with a generous deadline), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from simulator import BackendError, HttpBackend
from simulator.backends.outage import Outage, Outages, duration
from simulator.backends.pool import ReplicaPool
from tests.helpers import (
    DISTINCT,
    HELLO,
    convsim,
    error_summary,
    key,
    opening,
    parsed,
    stopped,
    turn_of,
    until,
    whole_lines,
    write_config,
)
from tests.openai_stub import Faults, StubServer


def told() -> tuple[Outages, list[str]]:
    """A board of outages, and what it was told, as the CLI prints it."""
    lines: list[str] = []
    return Outages(on_change=lambda outage: lines.append(outage.describe())), lines


async def test_a_server_that_stops_answering_is_waited_for_and_the_request_sent_again() -> None:
    """No retries at all: only the wait carries the request over the outage, and it is not counted."""
    down = stopped()
    outages, lines = told()
    client = HttpBackend(down.base_url, "corrector", max_retries=0, backoff=0.01, outage_wait=600, outages=outages)
    request = asyncio.create_task(client.chat(HELLO))
    await until(lambda: bool(outages.current))
    waiting = r"unreachable since \d\d:\d\d:\d\d, waiting \(budget left (10m00s|9m\d\ds)\)"
    assert re.fullmatch(rf"server {down.base_url} {waiting}", lines[0])
    assert not request.done()
    with StubServer(port=down.port) as back:
        result = await asyncio.wait_for(request, 120)
    await client.aclose()
    assert result.content and result.attempts == 1
    assert len(back.requests) == 1 and not outages.current
    assert lines[-1].startswith(f"server {down.base_url} answers again after ")


async def test_past_its_budget_an_outage_fails_the_requests() -> None:
    down = stopped()
    outages, lines = told()
    client = HttpBackend(down.base_url, "corrector", max_retries=3, backoff=0.01, outage_wait=0.2, outages=outages)
    with pytest.raises(BackendError) as caught:
        await asyncio.wait_for(client.chat(HELLO), 120)
    with pytest.raises(BackendError) as later:  # the server is still down: failed without a new wait
        await asyncio.wait_for(client.chat(HELLO), 120)
    await client.aclose()
    for error in (caught.value, later.value):
        assert error.kind == "connection"
        assert error.reason.startswith(f"server {down.base_url} unreachable since ")
        assert error.reason.endswith("; gave up waiting after 0s")
    assert len(lines) == 2 and "gave up waiting" in lines[1]  # began, gave up (once)


async def test_no_outage_wait_fails_as_retries_run_out() -> None:
    down = stopped()
    outages, lines = told()
    client = HttpBackend(down.base_url, "corrector", max_retries=1, backoff=0.01, outage_wait=0, outages=outages)
    with pytest.raises(BackendError) as caught:
        await client.chat(HELLO)
    await client.aclose()
    assert caught.value.kind == "connection" and caught.value.reason.endswith("(after 2 attempts)")
    assert not lines


async def test_a_server_that_answers_but_drops_the_connection_is_retried_not_waited_for() -> None:
    """A connection closed by a server that still serves the model is an ordinary failure (see test_http_backend);
    here it is cured by a retry, with no outage."""
    outages, lines = told()
    with StubServer(Faults(close_rate=0.5, seed=3)) as server:
        client = HttpBackend(server.base_url, "corrector", max_retries=6, backoff=0.01, outages=outages)
        for _ in range(4):
            await client.chat(HELLO)
        await client.aclose()
    assert any(fault == "close" for _, fault in server.outcomes)
    assert not lines


async def test_a_pool_whose_replicas_are_all_down_waits_for_one() -> None:
    a, b = stopped(), stopped()
    outages, lines = told()
    clients = [HttpBackend(server.base_url, "corrector", max_retries=0) for server in (a, b)]
    replicas = ReplicaPool(clients, timeout=60, backoff=0.01, probe_interval=0.05, max_probe_interval=0.2,
                           outages=outages)  # fmt: skip
    request = asyncio.create_task(replicas.chat(HELLO))
    await until(lambda: bool(outages.current))
    assert lines[0].startswith(f"server corrector@{a.base_url},{b.base_url} unreachable since ")
    assert all(not stats.healthy for stats in replicas.stats())  # each ejected at its first connection error
    with StubServer(port=b.port) as back:
        result = await asyncio.wait_for(request, 120)
    await replicas.aclose()
    assert result.content and back.requests and not outages.current
    assert "answers again" in lines[-1]


def test_outage_lines_read_as_the_cli_prints_them() -> None:
    outage = Outage("http://gpu1:8000/v1", 3600, Outages())
    since = f"server http://gpu1:8000/v1 unreachable since {outage.since:%H:%M:%S}"
    assert re.fullmatch(rf"{since}, waiting \(budget left (1h00m00s|59m\d\ds)\)", outage.describe())
    assert [duration(s) for s in (0, 59.4, 61, 3600, 3725)] == ["0s", "59s", "1m01s", "1h00m00s", "1h02m05s"]


def test_past_the_budget_conversations_end_in_error_exit_1_and_retry_from_their_last_turn(tmp_path: Path) -> None:
    """The server stays down past ``outage_wait``: the conversations end as connection errors and the run exits 1;
    once it is back, `--retry-errors` takes each on from its last finished exchange (its first request is the
    turn after those in its transcript) and exits 0, the result equal to a run without the outage."""
    faults = Faults(delay_s=0.03)
    with StubServer(faults) as steady:
        reference = tmp_path / "reference"
        config = write_config(tmp_path, steady, reference, max_retries=0, timeout=5, concurrency=8, **DISTINCT)
        assert convsim("run", "--config", config).returncode == 0
        expected = parsed(whole_lines(reference / "transcripts.jsonl")[0])
    out = tmp_path / "run"
    # dead after 37 requests: 37 = 3 x (conversations done) + (finished exchanges of those in flight), and every
    # conversation asks 3, so some in flight have finished exchanges, whatever the timing
    server = StubServer(Faults(delay_s=0.03, down_after=37)).__enter__()
    config = write_config(tmp_path, server, out, max_retries=0, timeout=5, concurrency=8, outage_wait=0.5, **DISTINCT)
    try:
        result = convsim("run", "--config", config, timeout=300)
    finally:
        server.__exit__()
    stderr = result.stderr
    assert result.returncode == 1, stderr
    assert "; gave up waiting after 0s" in stderr
    failed = [r for r in parsed(whole_lines(out / "transcripts.jsonl")[0]) if r["status"] == "error"]
    assert failed and all(r["error_kind"] == "connection" and "unreachable since" in r["error"] for r in failed)
    assert error_summary(stderr) == {"connection": len(failed)}
    assert any(len(r["turns"]) > 1 for r in failed)  # some had finished turns (8 conversations were in flight)
    with StubServer(faults, port=server.port) as back:
        retried = convsim("run", "--config", config, "--retry-errors")
    assert retried.returncode == 0, retried.stderr
    for record in failed:
        finished = sum(1 for t in record["turns"] if t["role"] == "assistant" and t.get("label"))
        first = next(body for body in back.requests if opening(body) == record["turns"][0]["content"])
        assert turn_of(first) == finished + 1  # not turn 1 again
    latest = {r["id"]: r for r in parsed(whole_lines(out / "transcripts.jsonl")[0])}
    assert sorted(map(key, latest.values())) == sorted(map(key, expected))
