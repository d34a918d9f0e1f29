"""Several replicas of one model: balanced by requests in flight, a failing one ejected, readmitted when back.

Every wait here is for a condition (with a generous deadline), never for a fixed time: the
machine may be loaded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from simulator import BackendError, HttpBackend
from simulator.backends.pool import ReplicaPool
from simulator.config import Endpoint, RunConfig, TargetConfig
from simulator.limiter import AUTO_INITIAL, AUTO_MAXIMUM
from simulator.prepared import adaptive_limits
from simulator.roles import open_backend, open_roles
from simulator.serving.doctor import CHECKS, diagnose_replicas
from simulator.serving.metrics import prometheus_sums
from tests.helpers import CONVSIM, HELLO, convsim, key, parsed, run_args, stopped, until, wait_for_lines, whole_lines
from tests.openai_stub import Faults, StubServer

PASSWORD = "hunter2-in-the-url"


def pool(*servers: StubServer, timeout: float = 60.0, **options: float) -> ReplicaPool:
    replicas = [HttpBackend(server.base_url, "corrector", timeout=timeout, max_retries=0) for server in servers]
    return ReplicaPool(replicas, timeout=timeout, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- balancing


async def test_ties_go_in_turn_and_a_busy_replica_gets_nothing_until_it_answers() -> None:
    with StubServer() as a, StubServer() as b:
        replicas = pool(a, b)
        for _ in range(4):
            await replicas.chat(HELLO)
        assert len(a.requests) == len(b.requests) == 2  # idle replicas take turns
        a.faults = Faults(stall_rate=1.0, stall_s=600)
        held = asyncio.create_task(replicas.chat(HELLO))  # a's turn: it holds the request
        await until(lambda: len(a.requests) == 3)
        for _ in range(6):
            await replicas.chat(HELLO)
        assert len(a.requests) == 3 and len(b.requests) == 8  # one in flight at a: everything went to b
        a.faults.release.set()
        assert "misconception" in (await held).content
        await replicas.aclose()


async def test_a_slow_replica_gets_fewer_requests() -> None:
    with StubServer(Faults(delay_s=0.3)) as slow, StubServer() as fast:
        replicas = pool(slow, fast)

        async def conversation() -> None:
            for _ in range(6):
                await replicas.chat(HELLO)

        await asyncio.gather(*(conversation() for _ in range(6)))
        await replicas.aclose()
    assert len(slow.requests) + len(fast.requests) == 36
    assert len(slow.requests) < len(fast.requests)


# ---------------------------------------------------------------- ejection and recovery


async def test_a_stopped_replica_is_ejected_then_readmitted_when_it_restarts_on_its_port() -> None:
    with StubServer() as a:
        b = StubServer().__enter__()
        replicas = pool(a, b, probe_interval=0.05, max_probe_interval=0.2)
        await replicas.chat(HELLO)
        b.__exit__()  # b's process dies
        results = [await replicas.chat(HELLO) for _ in range(8)]
        assert all("misconception" in r.content for r in results)  # every request retried at a
        ejected = replicas.stats()[1]
        assert not ejected.healthy and ejected.ejections == 1 and ejected.last_error
        assert ejected.last_error.startswith("connection: ")
        served_before = len(a.requests)
        for _ in range(4):
            await replicas.chat(HELLO)
        assert len(a.requests) == served_before + 4  # no attempt at b while it is out
        with StubServer(port=b.port) as back:
            await until(lambda: replicas.stats()[1].healthy)  # a probe found it serving again
            for _ in range(6):
                await replicas.chat(HELLO)
            assert back.requests  # it gets traffic again
        assert replicas.stats()[1].ejections == 1
        await replicas.aclose()


async def test_every_replica_down_is_a_clear_error_naming_them_not_a_hang() -> None:
    down = [stopped(), stopped()]
    urls = [server.base_url.replace("http://", f"http://convsim:{PASSWORD}@") for server in down]
    replicas = ReplicaPool([HttpBackend(url, "corrector", timeout=2, max_retries=0) for url in urls], timeout=2,
                           backoff=0.05, probe_interval=0.05, outage_wait=2)  # fmt: skip
    with pytest.raises(BackendError) as caught:
        await asyncio.wait_for(replicas.chat(HELLO), 120)
    await replicas.aclose()
    error = caught.value
    assert error.kind == "connection"
    assert error.reason.startswith("no replica of corrector recovered within 2s; all are ejected")
    for server in down:
        assert f"http://***@127.0.0.1:{server.port}/v1: connection: " in error.reason
    assert PASSWORD not in str(error)


async def test_errors_that_retrying_cannot_cure_are_not_sent_elsewhere() -> None:
    with StubServer(Faults(max_prompt_chars=5)) as a, StubServer(Faults(max_prompt_chars=5)) as b:
        too_long = pool(a, b)
        with pytest.raises(BackendError) as overflow:
            await too_long.chat(HELLO)
        await too_long.aclose()
    with StubServer() as c, StubServer() as d:
        unknown = ReplicaPool([HttpBackend(s.base_url, "no-such-model", max_retries=0) for s in (c, d)], timeout=60)
        with pytest.raises(BackendError) as missing:
            await unknown.chat(HELLO)
        await unknown.aclose()
    assert overflow.value.kind == "context_overflow"
    assert missing.value.kind == "http" and missing.value.reason.startswith("HTTP 404")
    assert len(a.requests) + len(b.requests) == len(c.requests) + len(d.requests) == 1  # no retry
    assert all(r.healthy and r.ejections == 0 for r in [*too_long.stats(), *unknown.stats()])


async def test_retries_keep_the_single_server_kinds_and_reasons() -> None:
    with StubServer(Faults(error_rate=1.0)) as a, StubServer(Faults(error_rate=1.0)) as b:
        replicas = pool(a, b, backoff=0.01, probe_interval=0.05)  # 500s eject; a probe readmits
        with pytest.raises(BackendError) as caught:
            await replicas.chat(HELLO)
        await replicas.aclose()
    assert caught.value.kind == "http"
    assert caught.value.reason == "HTTP 500: injected failure (after 7 attempts)"
    assert len(a.requests) + len(b.requests) == 7


async def test_auto_concurrency_follows_the_sum_of_the_replicas_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--concurrency auto`` over two replicas: twice the start and ceiling, and the queues read from both."""
    target = TargetConfig(name="t", base_url="http://gpu1:8000/v1,http://gpu2:8000/v1", model="m")
    config = RunConfig(targets=[target], concurrency="auto")
    roles = open_roles(config)
    replicas = roles.targets["t"]
    assert isinstance(replicas, ReplicaPool)
    for backend, waiting in zip(replicas.backends, (3, 4), strict=True):

        async def metrics(waiting: int = waiting) -> str:
            return f'vllm:num_requests_waiting{{model_name="m"}} {waiting}.0\n'

        monkeypatch.setattr(backend, "server_metrics", metrics)
    limits, followers = adaptive_limits(config, roles)
    assert limits["t"].limit == 2 * AUTO_INITIAL and limits["t"].maximum == 2 * AUTO_MAXIMUM
    assert config.max_concurrency == 2 * AUTO_MAXIMUM
    text = await replicas.server_metrics()
    assert text is not None
    assert prometheus_sums(text, {"vllm:num_requests_waiting"}) == {"vllm:num_requests_waiting": 7.0}
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    await roles.aclose()


# ---------------------------------------------------------------- config


def test_replicas_in_a_config_and_on_the_command_line() -> None:
    assert Endpoint(base_url="http://a:1/v1", model="m").base_url == "http://a:1/v1"
    listed = Endpoint(base_url=["http://a:1/v1", "http://b:1/v1"], model="m")
    flagged = Endpoint(base_url="http://a:1/v1, http://b:1/v1", model="m")
    assert listed.base_url == flagged.base_url == ("http://a:1/v1", "http://b:1/v1") == flagged.replicas
    assert Endpoint(base_url=["http://a:1"], model="m").base_url == "http://a:1"
    for bad in ("http://a:1,", "http://a:1/v1,http://a:1/", ""):
        with pytest.raises(ValueError, match=r"replica URL given twice|empty server URL"):
            Endpoint(base_url=bad, model="m")


async def test_one_url_is_a_plain_http_backend_and_several_a_pool() -> None:
    config = RunConfig()
    one = open_backend(Endpoint(base_url="http://a:1/v1", model="m", max_retries=4), config)
    assert type(one) is HttpBackend and one.max_retries == 4
    several = open_backend(Endpoint(base_url="http://a:1/v1,http://b:1/v1", model="m", max_retries=4), config)
    assert isinstance(several, ReplicaPool) and several.max_retries == 4
    assert [b.base_url for b in several.backends] == ["http://a:1/v1", "http://b:1/v1"]
    await one.aclose()
    await several.aclose()


def test_the_plan_does_not_depend_on_the_replicas() -> None:
    def config(url: str) -> RunConfig:
        return RunConfig(targets=[TargetConfig(name="t", base_url=url, model="m")])

    assert config("http://a:1/v1").fingerprint() == config("http://b:1/v1,http://c:1/v1").fingerprint()


# ---------------------------------------------------------------- a run


def test_a_replica_stopped_mid_batch_is_ejected_and_the_batch_finishes_on_the_others(tmp_path: Path) -> None:
    """Equal to a one-server run: same conversations, no error; then a resume with another replica set adds nothing."""
    args = ["--sample", "30", "--turns", "3", "--concurrency", "4"]
    faults = Faults(delay_s=0.03)
    with StubServer(faults) as a, StubServer(faults) as c:
        reference = tmp_path / "reference"
        assert convsim(*run_args(a, "caver", reference, *args)).returncode == 0
        expected = parsed(whole_lines(reference / "transcripts.jsonl")[0])
        b = StubServer(faults).__enter__()
        out = tmp_path / "run"
        url = f"{a.base_url},{b.base_url},{c.base_url}"
        command = [*CONVSIM, "run", "--target", url, "--model", "caver", "--out", str(out), "--judge", "rules", *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_lines(out / "transcripts.jsonl", 5)
            b.__exit__()  # b's process dies mid-batch
            down = len(whole_lines(out / "transcripts.jsonl")[0])
            _, stderr = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, stderr
        records = parsed(whole_lines(out / "transcripts.jsonl")[0])
        assert down < len(expected)  # it died mid-batch
        assert sorted(map(key, records)) == sorted(map(key, expected))  # every one done, none an error
        summary = json.loads((out / "manifest.json").read_text())["summary"]
        stats = {r["base_url"]: r for r in summary["replicas"]["target:caver"]}
        assert stats[b.base_url]["ejections"] == 1 and not stats[b.base_url]["healthy"]
        assert stats[a.base_url]["healthy"] and stats[c.base_url]["healthy"]
        assert stats[a.base_url]["requests"] and stats[c.base_url]["requests"]
        assert f"{b.base_url} " in stderr and "ejected 1x (out now)" in stderr

        served, lines = len(a.requests) + len(c.requests), whole_lines(out / "transcripts.jsonl")[0]
        again = convsim("run", "--target", f"{c.base_url},{a.base_url}", "--model", "caver", "--out", out,
                        "--judge", "rules", *args)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert f"resuming: {len(expected)} of {len(expected)}" in again.stderr
        assert len(a.requests) + len(c.requests) == served  # nothing run again
    assert whole_lines(out / "transcripts.jsonl")[0] == lines


def test_every_replica_unreachable_at_the_start_is_one_line_exit_2(tmp_path: Path) -> None:
    down = [stopped(), stopped()]
    url = ",".join(server.base_url.replace("http://", f"http://convsim:{PASSWORD}@") for server in down)
    result = convsim("run", "--target", url, "--model", "corrector", "--out", tmp_path / "run")
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot reach target:corrector at any replica: http://***@127.0.0.1:")
    assert all(f"***@127.0.0.1:{server.port}/v1 (" in line for server in down)
    assert PASSWORD not in result.stderr


async def test_doctor_tells_each_check_as_it_is_done(stub: StubServer) -> None:
    gone = stopped()
    told: list[tuple[str, str]] = []
    found = await diagnose_replicas(f"{stub.base_url},{gone.base_url}", "corrector",
                                    on_check=lambda url, check: told.append((url, check.name)))  # fmt: skip
    assert sorted(told) == sorted((url, check.name) for url, checks in found.items() for check in checks)
    assert [name for url, name in told if url == stub.base_url] == list(CHECKS)  # all of them, in order
    assert [name for url, name in told if url == gone.base_url] == ["reachable"]


def test_doctor_shows_each_replica(stub: StubServer) -> None:
    gone = stopped()
    both = subprocess.run([*CONVSIM, "doctor", "--target", f"{stub.base_url},{gone.base_url}", "--model", "corrector"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert both.returncode == 1, both.stderr
    assert f"convsim doctor: {stub.base_url}" in both.stdout and f"convsim doctor: {gone.base_url}" in both.stdout
    assert "replicas: 1 of 2 reachable" in both.stderr
    assert f"cannot reach {gone.base_url}" in both.stderr
    with StubServer() as other:
        healthy = subprocess.run([*CONVSIM, "doctor", "--target", f"{stub.base_url},{other.base_url}"],
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
    assert healthy.returncode == 0, healthy.stderr
    assert "replicas: 2 of 2 reachable" in healthy.stderr
