"""Outages: a server that stopped answering, waited for up to a budget, and what a run's servers are down now.

A server restarts for ordinary reasons (an out-of-memory kill, a preempted node, a new LoRA
adapter). While it is down, the requests meant for it wait (and none is sent) until it serves the
model again; only an outage longer than the budget fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime

__all__ = ["Outage", "Outages", "duration"]


def duration(seconds: float) -> str:
    """``4m05s``, ``1h02m00s``, ``12s``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Outage:
    """One server's outage: since when, the budget for waiting it out, and whether it is over.

    Args:
        server: the server's name for people (no credentials).
        budget: seconds to wait for it from the start of the outage.
        board: the run's outages, told when this one starts, ends, or outlasts its budget.
    """

    def __init__(self, server: str, budget: float, board: Outages) -> None:
        self.server = server
        self.budget = budget
        self.since = datetime.now()
        self.board = board
        self.gave_up = False
        self._started = time.monotonic()
        self._back = asyncio.Event()
        board.begin(self)

    @property
    def over(self) -> bool:
        """The server answers again."""
        return self._back.is_set()

    def left(self) -> float:
        """Seconds of the budget left."""
        return max(0.0, self.budget - (time.monotonic() - self._started))

    def describe(self) -> str:
        """``server X unreachable since HH:MM:SS, waiting (budget left 4m05s)``, or why it ended."""
        since = f"server {self.server} unreachable since {self.since:%H:%M:%S}"
        if self.over:
            return f"server {self.server} answers again after {duration(time.monotonic() - self._started)}; resuming"
        if self.gave_up:
            return f"{since}; gave up waiting after {duration(self.budget)}"
        return f"{since}, waiting (budget left {duration(self.left())})"

    async def wait(self) -> bool:
        """Wait until the server answers again (True) or the budget is spent (False)."""
        left = self.left()
        if left > 0 and not self.over:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._back.wait()
        if not self.over and not self.gave_up:
            self.gave_up = True
            self.board.changed(self)
        return self.over

    def end(self) -> None:
        """The server answers again: every request waiting for it goes on."""
        self._back.set()
        self.board.end(self)


class Outages:
    """The outages of a run's servers that are not over, for progress bars and logs.

    Args:
        on_change: told of an outage when it starts, when it outlasts its budget and when it ends.
    """

    def __init__(self, on_change: Callable[[Outage], None] | None = None) -> None:
        self.current: list[Outage] = []
        self.on_change = on_change

    def begin(self, outage: Outage) -> None:
        """A server stopped answering."""
        self.current.append(outage)
        self.changed(outage)

    def end(self, outage: Outage) -> None:
        """A server answers again."""
        self.current.remove(outage)
        self.changed(outage)

    def changed(self, outage: Outage) -> None:
        """Tell ``on_change``."""
        if self.on_change is not None:
            self.on_change(outage)
