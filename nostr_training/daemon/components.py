"""Services the daemon hosts: each one starts, stops and reports, and plugs in without
editing ``Daemon.start``.

A component gets the running daemon in ``start`` (its store, outbox, signer, clock, server) and
owns whatever tasks it makes. ``PeriodicComponent`` is the common shape of a scheduler: a
``tick(now)`` every ``interval`` seconds of the daemon's clock (so a test on ``ManualClock`` runs
a day in a second), with failures logged and the loop kept alive. Work that must happen once is
recorded in the store's action log (``Store.record_action``, or ``Outbox.submit(action=...)``
with the event it causes), never in memory, so a restart neither repeats nor loses it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["Component", "PeriodicComponent"]

log = logging.getLogger("nostr_training.daemon")


@runtime_checkable
class Component(Protocol):
    """Something the daemon runs beside its core (follows, outbox, local endpoint)."""

    name: str

    async def start(self, daemon: "Daemon") -> None:
        """Start work; the daemon's store, outbox, clock and server are ready."""

    async def stop(self) -> None:
        """Stop every task this component started; called in reverse start order."""

    def status(self) -> dict[str, Any]:
        """What ``daemon status`` shows for this component (JSON values)."""


class PeriodicComponent:
    """A component whose work is ``tick(now)`` every ``interval`` seconds of the daemon's clock."""

    name = "periodic"
    interval: float = 60.0

    def __init__(self) -> None:
        self.daemon: Daemon | None = None
        self.ticks = 0
        self.failures = 0
        self.last_error: str | None = None
        self.waiting = asyncio.Event()  # set while the loop waits for its next tick
        self.next_due: float | None = None  # clock time of the next tick
        self._task: asyncio.Task[None] | None = None

    async def start(self, daemon: "Daemon") -> None:
        self.daemon = daemon
        self.next_due = daemon.clock.now()  # the grid starts when the component does
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def status(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "failures": self.failures, "last_error": self.last_error}

    async def tick(self, now: int) -> None:
        """One round of work at daemon time ``now``."""

    async def _loop(self) -> None:
        """Ticks on a fixed grid of the clock (start + k * interval); after a late tick or a
        clock jump the missed grid points are not run back to back but once, at once (each tick looks
        at the whole state, so one catches up)."""
        assert self.daemon is not None and self.next_due is not None
        clock = self.daemon.clock
        due = self.next_due
        while True:
            try:
                await self.tick(clock.now())
                self.ticks += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.exception("%s: tick failed", self.name)
            due += self.interval
            now = clock.now()
            if due < now:  # late (a slow tick, a suspended laptop, a clock jump): one tick now, then the grid
                due += ((now - due) // self.interval) * self.interval
            self.next_due = due
            self.waiting.set()
            try:
                await clock.sleep(due - clock.now())
            finally:
                self.waiting.clear()
