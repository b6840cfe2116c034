"""Injectable time: the system clock for real use, a manual clock for tests.

Every rule takes ``now`` as an argument; services and the daemon take a ``Clock``, so a test
can run a 60-minute session in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "ManualClock"]


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of this clock's time."""


class SystemClock:
    def now(self) -> int:
        return int(time.time())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told; sleepers wake when ``advance`` passes their deadline."""

    def __init__(self, start: int = 1_800_000_000):
        self._now = float(start)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> int:
        return int(self._now)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, fut))
        await fut

    def set(self, when: float) -> None:
        self._now = float(when)
        self._wake()

    async def advance(self, seconds: float) -> None:
        """Move time forward and let every task that was due run before returning."""
        self._now += seconds
        self._wake()
        for _ in range(5):
            await asyncio.sleep(0)

    def _wake(self) -> None:
        due = [(t, f) for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)
