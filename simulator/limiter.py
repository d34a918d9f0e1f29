"""Adaptive concurrency: as many conversations in flight as the server sustains (``--concurrency auto``).

A fixed ``--concurrency`` is either too low (the server's batch has room, the GPU waits) or too
high (requests queue at the server, and conversations that wait for their next turn see their
prefix evicted from vLLM's cache). :class:`AdaptiveLimit` bounds the conversations in flight for
one target, and :func:`follow_vllm` moves the bound with vLLM's own queue depth, read from its
``/metrics`` every second (AIMD, as TCP does with a congestion window):

- no request waiting at the server while the bound is what holds conversations back: raise it,
  by half in a slow start (until the first sign of a queue), then by a sixteenth;
- more requests waiting than a small margin (two, or a tenth of those running) while no more
  conversations are in flight than the bound: lower it by a fifth. Conversations already in
  flight finish, so a lowered bound takes effect as they end; it is not lowered again before.

A server without vLLM's gauges (not vLLM, or ``/metrics`` unreachable) keeps the bound it has.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from types import TracebackType

from simulator.serving.metrics import prometheus_sums

__all__ = ["AUTO_INITIAL", "AUTO_MAXIMUM", "AdaptiveLimit", "follow_vllm"]

AUTO_INITIAL = 8
"""Conversations in flight per target when ``--concurrency auto`` starts."""
AUTO_MAXIMUM = 256
"""The most conversations in flight per target under ``--concurrency auto``."""
POLL_SECONDS = 1.0
"""How often :func:`follow_vllm` reads the server's queue."""

_WAITING = "vllm:num_requests_waiting"
_RUNNING = "vllm:num_requests_running"


class AdaptiveLimit:
    """An async context manager that admits at most ``limit`` holders at once; the limit may move.

    Args:
        initial: the limit to start with.
        minimum: the limit never goes below this.
        maximum: nor above this.
    """

    def __init__(self, initial: int = AUTO_INITIAL, *, minimum: int = 1, maximum: int = AUTO_MAXIMUM) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError(f"need 1 <= minimum <= initial <= maximum, not {minimum}, {initial}, {maximum}")
        self.minimum = minimum
        self.maximum = maximum
        self._limit = float(initial)
        self.in_use = 0
        self.peak = 0
        self._slow_start = True
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        """How many may hold it at once now."""
        return int(self._limit)

    @property
    def waiting(self) -> int:
        """How many wait for a place."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def __aenter__(self) -> AdaptiveLimit:
        while self.in_use >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self._wake()  # a place given to a cancelled waiter goes to the next one
                raise
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_use
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def update(self, waiting: float, running: float) -> None:
        """One control step, given the requests waiting and running at the server."""
        if waiting > max(2.0, 0.1 * running):
            self._slow_start = False
            if self.in_use <= self.limit:  # the last decrease has taken effect
                self._limit = max(float(self.minimum), self._limit * 0.8)
        elif waiting == 0 and self.in_use >= self.limit and self.waiting:
            step = self._limit * 0.5 if self._slow_start else max(1.0, self._limit / 16)
            self._limit = min(float(self.maximum), self._limit + step)
            self._wake()


async def follow_vllm(
    limit: AdaptiveLimit, read_metrics: Callable[[], Awaitable[str | None]], *, interval: float | None = None
) -> None:
    """Move ``limit`` with the queue of the vLLM server whose ``/metrics`` text ``read_metrics`` returns.

    Returns at once when the server has no vLLM queue gauges (``read_metrics`` gives ``None``, or
    text without them); the limit then stays where it is. Otherwise runs until cancelled; a
    reading that fails later skips one step.
    """
    first = True
    while True:
        text = await read_metrics()
        gauges = prometheus_sums(text, {_WAITING, _RUNNING}) if text is not None else {}
        if _WAITING in gauges:
            limit.update(gauges[_WAITING], gauges.get(_RUNNING, 0.0))
        elif first:
            return
        first = False
        await asyncio.sleep(POLL_SECONDS if interval is None else interval)
