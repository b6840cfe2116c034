"""Components plug into the daemon without editing it, run on the daemon's clock, and do their
once-only work through the action log: a day of daemon time in a second, and a restart repeats
nothing."""

from __future__ import annotations

import asyncio

import pytest

from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.components import PeriodicComponent
from nostr_training.daemon.config import load_config
from nostr_training.event import EventTemplate
from nostr_training.signer import LocalSigner
from nostr_training.store import ActionRecord, AddOutcome

from daemon_fakes import FakePool

R = "ws://127.0.0.1:9"
HOUR = 3600


class HourlyReport(PeriodicComponent):
    """Publishes one signed note per hour of daemon time, once per hour whatever restarts."""

    name = "hourly"
    interval = 600.0

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []
        self.skipped = 0

    async def tick(self, now: int) -> None:
        assert self.daemon is not None and self.daemon.signer is not None and self.daemon.outbox is not None
        hour = now // HOUR
        action = ActionRecord(f"hourly|{hour}", "hourly-report", now, detail=str(hour))
        if await self.daemon.store.get_action(action.key) is not None:
            self.skipped += 1
            return
        note = await self.daemon.signer.sign_event(EventTemplate(1, (), f"report for hour {hour}", now))
        submission = await self.daemon.outbox.submit(note, action=action)
        if submission.outcome is not AddOutcome.ALREADY_DONE:
            self.sent.append(hour)

    def status(self) -> dict:
        return {**super().status(), "sent": len(self.sent)}


@pytest.fixture
def config(home):
    return load_config().with_overrides(relays=[R], port=0)


async def run_for(clock: ManualClock, seconds: int, *components: PeriodicComponent, step: int = 60) -> None:
    """Advance the clock step by step; after each step, let the components finish the tick it
    started (their store writes take real time) before time moves on."""
    for _ in range(seconds // step):
        await clock.advance(step)
        for component in components:
            async with asyncio.timeout(5):
                while not (component.waiting.is_set() and component.next_due > clock.now()):
                    await asyncio.sleep(0.001)


async def test_a_day_of_daemon_time_and_a_restart(config, alice):
    start = 1_800_000_000 - 1_800_000_000 % HOUR
    clock = ManualClock(start)
    signer = LocalSigner(alice)
    first = HourlyReport()
    daemon = Daemon(config, signer=signer, pool=FakePool(), clock=clock, components=(first,))
    await daemon.start()
    try:
        await run_for(clock, 24 * HOUR, first)
        status = await daemon.status()
    finally:
        await daemon.stop()
    assert first.sent == list(range(start // HOUR, start // HOUR + 25)), "every hour once, both ends included"
    assert first.ticks == 24 * 6 + 1 and first.failures == 0
    assert status["components"]["hourly"]["sent"] == 25

    # Restarted in the same hour: the report of this hour is in the action log, not sent again.
    second = HourlyReport()
    daemon = Daemon(config, signer=signer, pool=FakePool(), clock=clock, components=(second,))
    await daemon.start()
    try:
        await run_for(clock, 30 * 60, second)
        assert second.sent == [] and second.skipped >= 1
        await run_for(clock, HOUR, second)
        assert second.sent == [start // HOUR + 25]
        reports = await daemon.store.actions(action="hourly-report")
        assert len(reports) == 26 and all(r.event_id for r in reports)
        assert len({e.event_id for e in await daemon.store.outbox_entries()}) == 26
    finally:
        await daemon.stop()


async def test_a_failing_tick_is_counted_and_the_loop_goes_on(config, alice):
    class Flaky(PeriodicComponent):
        name = "flaky"
        interval = 60.0

        async def tick(self, now: int) -> None:
            if self.failures < 2:
                raise ValueError("not yet")

    clock = ManualClock(1_800_000_000)
    flaky = Flaky()
    daemon = Daemon(config, pool=FakePool(), clock=clock)
    daemon.register(flaky)
    await daemon.start()
    try:
        await run_for(clock, 300, flaky)
        assert flaky.failures == 2 and flaky.ticks >= 3
        assert (await daemon.status())["components"]["flaky"]["last_error"] == "ValueError: not yet"
    finally:
        await daemon.stop()


class SlowTick(PeriodicComponent):
    """A tick that waits on the test: the clock reaches the next grid point while it runs."""

    name = "slow"
    interval = 300.0

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.release = asyncio.Event()

    async def tick(self, now: int) -> None:
        self.seen.append(now)
        if len(self.seen) == 1:
            await self.release.wait()


async def test_a_tick_due_while_the_previous_one_runs_is_not_skipped(config, alice, clock):
    """The clock reaching the next grid point during a tick makes that point due, not missed:
    the next tick runs at once, then the grid resumes (a race the expiry-notice test met)."""
    slow = SlowTick()
    daemon = Daemon(config, signer=LocalSigner(alice), pool=FakePool(), clock=clock, components=(slow,))
    await daemon.start()
    try:
        start = clock.now()
        async with asyncio.timeout(5):
            while not slow.seen:
                await asyncio.sleep(0.002)
        await clock.advance(300)
        slow.release.set()
        async with asyncio.timeout(5):
            while len(slow.seen) < 2 or not slow.waiting.is_set():
                await asyncio.sleep(0.002)
        assert slow.seen == [start, start + 300] and slow.next_due == start + 600
        await clock.advance(2 * 300 + 10)  # a jump over a grid point: one tick now, then the grid
        async with asyncio.timeout(5):
            while len(slow.seen) < 3 or not slow.waiting.is_set():
                await asyncio.sleep(0.002)
        assert slow.seen[2] == start + 910 and slow.next_due == start + 1200
    finally:
        await daemon.stop()
