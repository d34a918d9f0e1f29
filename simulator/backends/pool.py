"""Replicas of one model behind one backend: balanced, ejected while failing, readmitted when back.

Each request goes to the healthy replica with the fewest requests in flight (ties in turn). A
replica that fails ``eject_after`` times in a row with a connection error, a timeout or a 5xx
answer, or whose connection failed and that does not answer ``GET /v1/models`` either, is ejected:
it gets no requests, and is probed in the background (``GET /v1/models``, with backoff) until it
serves the model again. A request that failed on a replica with an error worth retrying goes to
another replica at once, and waits (backoff with full jitter) only after every healthy replica
failed it; the pool holds the retry budget. When every replica is ejected, the pool is down: an
:class:`~simulator.backends.outage.Outage` begins, and requests wait (their failed attempt not
counted) until a replica is readmitted, for up to ``outage_wait`` seconds. A context overflow, or
a 4xx that retrying cannot cure, is raised at once, as :class:`HttpBackend` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pydantic import BaseModel

from simulator.backends.base import BackendError, ChatRequest, ChatResult, redact
from simulator.backends.http import HttpBackend, back_off
from simulator.backends.outage import Outage, Outages

__all__ = ["ReplicaPool", "ReplicaStats"]


class ReplicaStats(BaseModel):
    """What one replica did: attempts sent to it, failures, ejections, and whether it is in the pool now."""

    base_url: str
    healthy: bool
    requests: int
    failures: int
    ejections: int
    last_error: str | None


class _Replica:
    def __init__(self, backend: HttpBackend, index: int) -> None:
        self.backend = backend
        self.index = index
        self.in_flight = 0
        self.in_a_row = 0  # connection errors, timeouts and 5xx since the last success
        self.requests = 0
        self.failures = 0
        self.ejections = 0
        self.last_error: BackendError | None = None
        self.probe: asyncio.Task[None] | None = None  # set while ejected

    @property
    def healthy(self) -> bool:
        return self.probe is None


class ReplicaPool:
    """Chat completions over several replicas of one model (a :class:`Backend`).

    Args:
        replicas: one client per replica (the pool sends single attempts and retries itself).
        timeout: the per-request timeout.
        max_retries: attempts after the first, over all replicas.
        backoff: the mean wait before a new round of attempts, doubling up to ``max_backoff``.
        eject_after: failures in a row (connection, timeout, 5xx) that eject a replica.
        probe_interval: seconds before an ejected replica's first probe; doubles up to
            ``max_probe_interval``.
        outage_wait: seconds to wait for a replica to come back once every one is ejected (0: fail at once;
            a run passes its config's ``outage_wait``).
        outages: the run's outages, told when the pool's start and end.
    """

    def __init__(
        self,
        replicas: Sequence[HttpBackend],
        *,
        timeout: float,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        eject_after: int = 3,
        probe_interval: float = 1.0,
        max_probe_interval: float = 15.0,
        outage_wait: float = 600.0,
        outages: Outages | None = None,
    ) -> None:
        if len(replicas) < 2 or any(r.model != replicas[0].model for r in replicas):
            raise ValueError("a pool needs two or more replicas of one model")
        self.model = replicas[0].model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.eject_after = eject_after
        self.probe_interval = probe_interval
        self.max_probe_interval = max_probe_interval
        self._replicas = [_Replica(backend, index) for index, backend in enumerate(replicas)]
        self._turn = 0  # the replica that wins the next tie
        self.outage_wait = outage_wait
        self.outages = outages or Outages()
        self._outage: Outage | None = None  # while every replica is ejected
        self._last_ejection: BackendError | None = None

    @property
    def name(self) -> str:
        """``model@url1,url2,...``."""
        return f"{self.model}@{','.join(r.backend.base_url for r in self._replicas)}"

    @property
    def backends(self) -> tuple[HttpBackend, ...]:
        """The replicas' clients, in the order given."""
        return tuple(r.backend for r in self._replicas)

    def stats(self) -> list[ReplicaStats]:
        """Each replica's counts and health, in the order given."""
        return [
            ReplicaStats(
                base_url=r.backend.base_url,
                healthy=r.healthy,
                requests=r.requests,
                failures=r.failures,
                ejections=r.ejections,
                last_error=f"{r.last_error.kind}: {r.last_error.reason}" if r.last_error else None,
            )
            for r in self._replicas
        ]

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Send one chat completion to the least busy healthy replica, retrying on the others.

        Raises:
            BackendError: after the last attempt (the last failure's kind and reason); at once for
                a context overflow or a 4xx that retrying cannot cure; or when every replica stayed
                ejected for ``outage_wait`` seconds (the reason names each replica and why).
        """
        started = time.perf_counter()
        tried: set[_Replica] = set()
        attempt = 0
        while True:
            replica = await self._choose(tried)
            tried.add(replica)
            replica.in_flight += 1
            replica.requests += 1
            try:
                result = await replica.backend.attempt(request)
            except BackendError as exc:
                failure = exc
            else:
                replica.in_a_row = 0
                return result.model_copy(update={"attempts": attempt + 1, "latency_s": time.perf_counter() - started})
            finally:
                replica.in_flight -= 1
            if not failure.retryable:
                raise failure
            down = await self._failed(replica, failure)
            if down and not any(r.healthy for r in self._replicas) and self.outage_wait > 0:
                tried.clear()
                continue  # every replica is down: sent again once one is back; this attempt does not count
            if attempt == self.max_retries:
                raise BackendError(failure.kind, f"{failure.reason} (after {attempt + 1} attempts)") from None
            if not any(r.healthy and r not in tried for r in self._replicas):  # a round is over
                tried.clear()
                await back_off(failure, attempt, self.backoff, self.max_backoff)
            attempt += 1

    def eject(self, backend: HttpBackend, error: BackendError) -> None:
        """Take a replica out of the pool until a probe finds it serving the model again."""
        replica = next(r for r in self._replicas if r.backend is backend)
        replica.last_error = error
        if replica.healthy:
            replica.ejections += 1
            replica.probe = asyncio.create_task(self._probe(replica))
            self._last_ejection = error

    async def _failed(self, replica: _Replica, error: BackendError) -> bool:
        """Count a failure, eject the replica if it fails too often or is down; whether it is down (a connection
        error, and no answer to ``GET /v1/models`` either)."""
        replica.failures += 1
        replica.last_error = error
        if error.kind in ("connection", "timeout") or (error.status or 0) >= 500:
            replica.in_a_row += 1
            down = error.kind == "connection" and not await replica.backend.serves_model()
            if replica.in_a_row >= self.eject_after or down:
                self.eject(replica.backend, error)
            return down
        return False

    async def _choose(self, tried: set[_Replica]) -> _Replica:
        if not any(r.healthy for r in self._replicas):
            if self.outage_wait <= 0:
                raise self._all_ejected()
            if self._outage is None:
                self._outage = Outage(redact(self.name), self.outage_wait, self.outages)
            if not await self._outage.wait():
                raise self._all_ejected()
        healthy = [r for r in self._replicas if r.healthy]
        candidates = [r for r in healthy if r not in tried] or healthy
        count = len(self._replicas)
        chosen = min(candidates, key=lambda r: (r.in_flight, (r.index - self._turn) % count))
        self._turn = chosen.index + 1
        return chosen

    def _all_ejected(self) -> BackendError:
        why = "; ".join(
            f"{r.backend.base_url}: {r.last_error.kind}: {r.last_error.reason}" if r.last_error else r.backend.base_url
            for r in self._replicas
        )
        kind = self._last_ejection.kind if self._last_ejection else "connection"
        return BackendError(
            kind, f"no replica of {self.model} recovered within {self.outage_wait:g}s; all are ejected ({why})"
        )

    async def _probe(self, replica: _Replica) -> None:
        await replica.backend.until_serving(self.probe_interval, self.max_probe_interval)
        replica.probe = None
        replica.in_a_row = 0
        if self._outage is not None:
            outage, self._outage = self._outage, None
            outage.end()

    async def server_metrics(self) -> str | None:
        """The ``/metrics`` texts of the healthy replicas, joined (so that their gauges add up), or None."""
        texts = await asyncio.gather(*(r.backend.server_metrics() for r in self._replicas if r.healthy))
        found = [text for text in texts if text is not None]
        return "\n".join(found) if found else None

    async def aclose(self) -> None:
        """Stop the probes and close every replica's connections."""
        probes = [r.probe for r in self._replicas if r.probe is not None]
        for probe in probes:
            probe.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        for replica in self._replicas:
            await replica.backend.aclose()
