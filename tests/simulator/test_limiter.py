"""Adaptive concurrency: the limit admits what it says, follows a vLLM-like server's queue, and runs a batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator import limiter
from simulator import prepared as run_module
from simulator.backends.base import Sampling
from simulator.config import RunConfig, TargetConfig
from simulator.limiter import AdaptiveLimit, follow_vllm
from simulator.prepared import execute, prepare
from simulator.roles import Roles, open_roles
from simulator.serving.metrics import prometheus_sums

METRICS = """# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 3.0
vllm:num_requests_waiting{engine="1",model_name="smollm2"} 2.0
vllm:num_requests_running{engine="0",model_name="smollm2"} 16.0
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 9.0
vllm:prefix_cache_hits_total{engine="0",model_name="smollm2"} NaN
"""


def test_prometheus_sums_add_up_labels_and_skip_other_names() -> None:
    names = {"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:prefix_cache_hits_total"}
    assert prometheus_sums(METRICS, names) == {"vllm:num_requests_waiting": 5.0, "vllm:num_requests_running": 16.0}


async def test_the_limit_admits_at_most_limit_holders() -> None:
    limit = AdaptiveLimit(2, maximum=4)
    inside = 0
    peak = 0

    async def hold() -> None:
        nonlocal inside, peak
        async with limit:
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(10)))
    assert peak == 2 and limit.in_use == 0 and limit.peak == 2


async def test_a_cancelled_waiter_passes_its_place_on() -> None:
    limit = AdaptiveLimit(1, maximum=1)
    await limit.__aenter__()
    first = asyncio.create_task(limit.__aenter__())
    second = asyncio.create_task(limit.__aenter__())
    await asyncio.sleep(0)
    await limit.__aexit__(None, None, None)  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(second, 1)
    assert limit.in_use == 1


async def busy(limit: AdaptiveLimit, holders: int) -> list[asyncio.Task[None]]:
    """``holders`` tasks that enter the limit and stay until cancelled."""

    async def hold() -> None:
        async with limit:
            await asyncio.sleep(3600)

    tasks = [asyncio.create_task(hold()) for _ in range(holders)]
    await asyncio.sleep(0)
    return tasks


async def test_update_grows_while_the_server_has_no_queue_and_shrinks_when_it_has_one() -> None:
    limit = AdaptiveLimit(8, maximum=64)
    tasks = await busy(limit, 100)
    limit.update(waiting=0, running=8)  # slow start: by half
    assert limit.limit == 12
    await asyncio.sleep(0)
    assert limit.in_use == 12  # the new places were handed out
    limit.update(waiting=1, running=12)  # a queue within the margin: hold
    assert limit.limit == 12
    limit.update(waiting=5, running=12)  # past the margin: by a fifth
    assert limit.limit == 9
    limit.update(waiting=5, running=12)  # 12 still in flight: the decrease has not taken effect yet
    assert limit.limit == 9
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_update_never_leaves_its_bounds_and_does_not_grow_without_demand() -> None:
    limit = AdaptiveLimit(4, minimum=2, maximum=6)
    for _ in range(10):
        limit.update(waiting=100, running=4)
    assert limit.limit == 2
    limit.update(waiting=0, running=0)  # nobody waits for a place: no reason to grow
    assert limit.limit == 2
    tasks = await busy(limit, 20)
    for _ in range(10):  # after a decrease: by one at a time (a sixteenth, at least one)
        limit.update(waiting=0, running=2)
        await asyncio.sleep(0)  # the places handed out are taken
    assert limit.limit == 6
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_follow_vllm_stops_at_once_on_a_server_without_gauges() -> None:
    async def no_metrics() -> str | None:
        return None

    limit = AdaptiveLimit(8)
    await asyncio.wait_for(follow_vllm(limit, no_metrics, interval=0.01), 1)
    assert limit.limit == 8


class QueueingServer:
    """A vLLM-like server: ``capacity`` requests run at once (``delay`` each), the rest wait in its queue;
    ``/metrics`` shows both gauges. Replies always correct, so conversations run their full length."""

    def __init__(self, capacity: int, delay: float = 0.02) -> None:
        self.capacity = capacity
        self.delay = delay
        self.running = 0
        self.waiting = 0
        self.most_waiting = 0
        self.slots = asyncio.Semaphore(capacity)
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                writer.write(await self.answer(head.split(b" ")[1].decode(), body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, path: str, body: bytes) -> bytes:
        if path.endswith("/models"):
            data = json.dumps({"data": [{"id": "queued", "object": "model"}]}).encode()
        elif path == "/metrics":
            data = (f"vllm:num_requests_waiting{{engine=\"0\"}} {self.waiting}.0\n"
                    f"vllm:num_requests_running{{engine=\"0\"}} {self.running}.0\n").encode()  # fmt: skip
        else:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
            async with self.slots:
                self.waiting -= 1
                self.running += 1
                await asyncio.sleep(self.delay)
                self.running -= 1
            reply = "Actually, that's a common misconception, and it is not true."
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 12}}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)


@pytest.fixture
async def queueing() -> AsyncIterator[type[QueueingServer]]:
    started: list[QueueingServer] = []

    class Started(QueueingServer):
        def __init__(self, capacity: int, delay: float = 0.02) -> None:
            super().__init__(capacity, delay)
            started.append(self)

    yield Started
    for server in started:
        if server.server is not None:
            server.server.close()


async def run_auto(
    server: QueueingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversations: int
) -> AdaptiveLimit:
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    target = TargetConfig(name="t", base_url=server.url, model="queued", sampling=Sampling(max_tokens=16))
    config = RunConfig(
        personas=["neutral-persistent"], targets=[target], turns=3, seeds=list(range(5)), sample=conversations,
        knowledge_check=False, concurrency="auto", out=tmp_path / "run",
    )  # fmt: skip
    prepared = prepare(config)
    roles = open_roles(config)
    seen: list[AdaptiveLimit] = []
    original = run_module.adaptive_limits

    def keep(config: RunConfig, roles: Roles) -> tuple[dict[str, AdaptiveLimit], list[asyncio.Task[None]]]:
        limits, followers = original(config, roles)
        seen.extend(limits.values())
        return limits, followers

    monkeypatch.setattr(run_module, "adaptive_limits", keep)
    monkeypatch.setattr(limiter, "POLL_SECONDS", 0.05)
    try:
        summary = await execute(prepared, roles)
    finally:
        await roles.aclose()
        prepared.store.close()
    assert summary.ran == conversations and set(summary.statuses) <= {"completed", "max_turns"}
    return seen[0]


async def test_auto_backs_off_a_server_that_queues(
    queueing: type[QueueingServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = queueing(capacity=2, delay=0.03)
    limit = await run_auto(server, tmp_path, monkeypatch, conversations=60)
    assert limit.limit < limiter.AUTO_INITIAL  # it learned that 8 conversations are more than 2 slots take


async def test_auto_grows_on_a_server_with_room(
    queueing: type[QueueingServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = queueing(capacity=1000, delay=0.05)
    limit = await run_auto(server, tmp_path, monkeypatch, conversations=150)
    assert limit.peak > limiter.AUTO_INITIAL


def test_concurrency_auto_in_the_config() -> None:
    assert RunConfig.model_validate({"concurrency": "auto"}).max_concurrency == limiter.AUTO_MAXIMUM
    assert RunConfig.model_validate({"concurrency": "12"}).max_concurrency == 12
    with pytest.raises(ValueError, match="concurrency"):
        RunConfig.model_validate({"concurrency": "lots"})
