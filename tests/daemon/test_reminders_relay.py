"""Reminders end to end on a real relay: the instructor's daemon (on ManualClock) sends each
reminder of the table once, and each learner reads it as their DM client would: fetch their
gift wraps from the relay and open them with their own key as a kind 14 from the instructor."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from polling import eventually

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.backoff import backoff
from nostr_training.daemon.config import load_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import Event, sign_event, verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.kinds.reminders import Reminder, parse_reminder
from nostr_training.nips.nip59 import unwrap
from nostr_training.rules.reminders import ReminderPolicy
from nostr_training.services.rsvp import rsvp_list
from nostr_training.signer import LocalSigner

from relay_servers import rust_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.relay

DAY, HOUR, STEP = 86400, 3600, 600
#: Wraps expire after the lesson; the relay judges that by the real clock, which the test's
#: clock (four days behind) never passes.
POLICY = ReminderPolicy(expire_after_end=20 * DAY)


def fast_pool(**kw) -> RelayPool:
    return RelayPool(verify=verify_event, backoff=lambda: backoff(initial=0.05, maximum=0.3), **kw)




class School:
    """One instructor's daemon and its learners, all on one relay and one manual clock."""

    def __init__(self, url: str, names: tuple[str, ...]):
        self.url = url
        self.host = Keys.generate()
        self.learners = {name: Keys.generate() for name in names}
        start = int(time.time()) - 4 * DAY
        self.clock = ManualClock(start - start % STEP)
        self.t0 = self.clock.now()
        self.daemon: Daemon | None = None
        self.scheduler = None
        self.client = fast_pool()
        self.course = kinds.Course(author=self.host.public_key, d=f"course-{self.t0}", title="De-escalation")

    def lesson(self, d: str, start: int, **kw) -> kinds.Lesson:
        return kinds.Lesson(author=self.host.public_key, d=d, title=f"Role-play {d}", start=start, end=start + HOUR,
                            instructor=self.host.public_key, course=self.course.coordinate, start_tzid="Europe/Paris",
                            location="https://meet.example/room-1", **kw)

    async def start_daemon(self, home) -> None:
        from nostr_training.daemon.reminders import ReminderScheduler

        config = load_config().with_overrides(relays=[self.url], port=0)
        self.scheduler = ReminderScheduler(interval=STEP, policy=POLICY)
        signer = LocalSigner(self.host)
        self.daemon = Daemon(config, signer=signer, clock=self.clock, components=(self.scheduler,),
                             pool_factory=lambda **_: fast_pool(sign=signer.sign_event))
        await self.daemon.start()
        await self.tick_done()

    async def stop_daemon(self) -> None:
        assert self.daemon is not None
        await self.daemon.stop()
        self.daemon = None

    async def tick_done(self) -> None:
        """Wait until the scheduler finished the tick due now and its wraps left the outbox."""
        scheduler, clock = self.scheduler, self.clock
        await eventually(lambda: scheduler.waiting.is_set() and scheduler.next_due > clock.now())
        assert self.daemon is not None
        await eventually(self._outbox_settled)

    async def _outbox_settled(self) -> bool:
        entries = await self.daemon.store.outbox_entries()
        return all(e.state.value in ("delivered", "refused") for e in entries)

    async def run_until(self, moment: int) -> None:
        while self.clock.now() < moment:
            await self.clock.advance(min(STEP, moment - self.clock.now()))
            if self.daemon is not None:
                await self.tick_done()

    async def publish_as(self, keys: Keys, template) -> Event:
        event = sign_event(template, keys.secret)
        results = await self.client.publish(event, [self.url], timeout=10)
        assert all(r.ok for r in results.values()), results
        return event

    async def host_publishes(self, template) -> Event:
        event = await self.publish_as(self.host, template)
        if self.daemon is not None:
            await self.daemon.store.add(event)
        return event

    async def give_inboxes(self, *names: str) -> None:
        for name in names:
            await self.publish_as(self.learners[name], kinds_inbox(self.url, self.clock.now()))

    async def answer(self, name: str, lesson: kinds.Lesson, status: str) -> Event:
        rsvp = await self.publish_as(self.learners[name], kinds.build_rsvp(lesson, status, created_at=self.clock.now()))
        assert self.daemon is not None
        coord = lesson.coordinate
        await eventually(lambda: self._indexed(rsvp.id))
        return rsvp if coord else rsvp

    async def _indexed(self, event_id: str) -> bool:
        return await self.daemon.store.get(event_id) is not None

    async def inbox(self, name: str, lesson: kinds.Lesson | None = None) -> list[tuple[Event, Reminder]]:
        """What the learner's DM client shows: their wraps from the relay, opened with their key."""
        keys = self.learners[name]
        wraps = await self.client.fetch([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({keys.public_key})})],
                                        [self.url], timeout=10)
        out = []
        for wrap in wraps:
            opened = await unwrap(wrap, LocalSigner(keys))
            assert opened.rumor.kind == kinds.DIRECT_MESSAGE and opened.rumor.pubkey == self.host.public_key
            reminder = parse_reminder(opened.rumor)
            assert reminder.recipient == keys.public_key
            if lesson is None or reminder.lesson == lesson.coordinate:
                out.append((opened.rumor, reminder))
        return sorted(out, key=lambda pair: (pair[0].created_at, pair[1].kind.value))

    async def kinds_received(self, name: str, lesson: kinds.Lesson) -> list[tuple[str, int]]:
        return [(r.kind.value, rumor.created_at) for rumor, r in await self.inbox(name, lesson)]

    async def close(self) -> None:
        if self.daemon is not None:
            await self.stop_daemon()
        await self.client.close()


def kinds_inbox(url: str, created_at: int):
    from nostr_training.event import EventTemplate

    return EventTemplate(kinds.DM_RELAYS, (("relay", url),), "", created_at)


@pytest.fixture
async def school(rust_relay, home):
    made: list[School] = []

    def make(*names: str) -> School:
        made.append(School(rust_relay.url, names))
        return made[-1]

    yield make
    for s in made:
        await s.close()


async def test_three_learners_get_the_table_once_across_a_restart(school, home):
    s = school("confirmed", "tentative", "declined")
    t0 = s.t0
    await s.give_inboxes("confirmed", "tentative", "declined")
    first = s.lesson("past", t0 - 2 * DAY)
    start = t0 + 2 * DAY
    second = s.lesson("next", start)
    await s.start_daemon(home)
    await s.host_publishes(kinds.build_course(replace(s.course, lessons=(first.coordinate,)), created_at=t0 - 3 * DAY))
    await s.host_publishes(kinds.build_lesson(first, created_at=t0 - 3 * DAY))
    for name in s.learners:  # they came to the first lesson: enrolled in the course
        rsvp = kinds.build_rsvp(first, "accepted", created_at=t0 - 3 * DAY + 60)
        event = await s.publish_as(s.learners[name], rsvp)
        await eventually(lambda e=event: s._indexed(e.id))
    second_event = await s.host_publishes(kinds.build_lesson(second, created_at=t0))
    second = replace(second, event_id=second_event.id, created_at=t0)

    await s.run_until(t0 + STEP)
    for name in s.learners:
        assert await s.kinds_received(name, second) == [("scheduled", t0 + STEP)], name
    scheduled = (await s.inbox("confirmed", second))[0][0]
    assert scheduled.content.startswith("New live session: Role-play next on ")

    await s.answer("confirmed", second, "accepted")
    await s.answer("tentative", second, "tentative")
    await s.answer("declined", second, "declined")
    await s.run_until(start - 23 * HOUR)
    for name in ("confirmed", "tentative"):
        assert await s.kinds_received(name, second) == [("scheduled", t0 + STEP), ("24h", start - DAY)], name

    await s.stop_daemon()  # down from 23 h before until 50 min before: the 1 h reminder is late
    await s.clock.advance(start - 50 * 60 - s.clock.now())
    await s.start_daemon(home)
    await s.run_until(start + 2 * HOUR)
    recorded = await s.host_publishes(kinds.build_lesson(replace(second, recording_url="https://blossom.example/r.webm"),
                                                         created_at=start + 2 * HOUR))
    await s.run_until(start + 3 * HOUR)

    expected = [("scheduled", t0 + STEP), ("24h", start - DAY), ("1h", start - 50 * 60), ("starting", start),
                ("recording_ready", start + 2 * HOUR + STEP)]  # the first tick after it was published
    for name in ("confirmed", "tentative"):
        assert await s.kinds_received(name, second) == expected, name
    assert await s.kinds_received("declined", second) == [("scheduled", t0 + STEP)]
    starting = [r for r, m in await s.inbox("confirmed", second) if m.kind.value == "starting"][0]
    assert starting.content == "Role-play next is now live - Join\nhttps://meet.example/room-1"
    assert starting.tag_value("expiration") == str(second.end + POLICY.expire_after_end)
    assert recorded.id

    # The answers to the first lesson reached the host after it started: they enrolled the
    # learners in the course but owe them nothing for that lesson, not even a "missed" entry.
    assert await s.daemon.store.actions(subject=first.coordinate) == []
    assert await s.inbox("confirmed", first) == []
    listing = await rsvp_list(s.daemon.services, second.coordinate)
    by_key = {r.pubkey: r for r in listing.rows}
    confirmed = by_key[s.learners["confirmed"].public_key]
    assert confirmed.status == "confirmed" and [r.kind for r in confirmed.sent] == [k for k, _ in expected]
    assert all(r.state == "delivered" for r in confirmed.sent) and confirmed.failed == ()


async def test_waitlist_promotion_late_answer_and_reschedule(school, home):
    s = school("first", "second", "late")
    t0 = s.t0
    await s.give_inboxes("first", "second", "late")
    start = t0 + 3 * DAY
    lesson = s.lesson("small", start, max_participants=1)
    await s.start_daemon(home)
    await s.host_publishes(kinds.build_course(replace(s.course, lessons=(lesson.coordinate,)), created_at=t0))
    event = await s.host_publishes(kinds.build_lesson(lesson, created_at=t0))
    lesson = replace(lesson, event_id=event.id, created_at=t0)

    await s.run_until(t0 + STEP)
    await s.answer("first", lesson, "accepted")
    await s.run_until(t0 + 2 * STEP)
    await s.answer("second", lesson, "accepted")
    await s.run_until(start - 30 * HOUR)
    listing = await rsvp_list(s.daemon.services, lesson.coordinate)
    assert [(r.status, r.waitlist_position) for r in listing.rows] == [("confirmed", None), ("waitlisted", 1)]

    await s.answer("first", lesson, "declined")  # 30 h before: the seat goes to "second"
    declined_at = s.clock.now()
    await s.run_until(start - 20 * HOUR)
    assert await s.kinds_received("second", lesson) == [("promoted", declined_at + STEP), ("24h", start - DAY)]
    promoted = (await s.inbox("second", lesson))[0][0]
    assert promoted.content.startswith("A seat opened: you are confirmed for Role-play small on ")
    assert await s.kinds_received("first", lesson) == []

    await s.answer("late", lesson, "tentative")  # 20 h before: no 24 h reminder from the past
    await s.run_until(start - 12 * HOUR)
    assert await s.kinds_received("late", lesson) == []

    moved = start + DAY  # rescheduled a day later, 12 h before the old start
    revision = await s.host_publishes(kinds.build_lesson(replace(lesson, start=moved, end=moved + HOUR),
                                                         created_at=s.clock.now()))
    changed_at = s.clock.now()
    await s.run_until(moved - 30 * 60)
    told = ("changed", changed_at + STEP)
    new_time = [("24h", moved - DAY), ("1h", moved - HOUR)]  # nothing more for the old time
    assert await s.kinds_received("late", lesson) == [told, *new_time]
    assert await s.kinds_received("second", lesson) == [("promoted", declined_at + STEP), ("24h", start - DAY), told, *new_time]
    assert await s.kinds_received("first", lesson) == []
    changed = [r for r, m in await s.inbox("late", lesson) if m.kind.value == "changed"][0]
    assert "please confirm again" in changed.content
    listing = await rsvp_list(s.daemon.services, lesson.coordinate)
    rows = {r.pubkey: r for r in listing.rows}
    assert rows[s.learners["second"].public_key].needs_reconfirmation
    assert rows[s.learners["late"].public_key].needs_reconfirmation
    assert revision.id


async def test_rsvp_answer_without_a_daemon_reaches_the_relay(rust_relay, home):
    """The CLI answers from the data dir's own index and delivers at once with a short-lived pool."""
    import json

    from click.testing import CliRunner

    from nostr_training.cli import main
    from nostr_training.daemon.app import open_store
    from nostr_training.daemon.config import write_config
    from nostr_training.keys import save_key_file

    user, host = Keys.generate(), Keys.generate()
    save_key_file(home / "key.ncryptsec", user, "correct horse", log_n=4)
    write_config(load_config().with_overrides(relays=[rust_relay.url]))
    start = int(time.time()) + 2 * DAY
    lesson = kinds.Lesson(author=host.public_key, d=f"offline-{start}", title="Offline", start=start, end=start + HOUR,
                          instructor=host.public_key)
    lesson_event = sign_event(kinds.build_lesson(lesson, created_at=int(time.time())), host.secret)
    store = await open_store(load_config().database_path)
    await store.add(lesson_event)
    await store.close()

    def answer():
        with CliRunner().isolation() as (out, err, _):
            try:
                main(["rsvp", "answer", lesson.coordinate, "declined", "--json"])
            except SystemExit as exc:
                return exc.code, out.getvalue().decode(), err.getvalue().decode()
        raise AssertionError("main always exits")

    code, stdout, stderr = await asyncio.to_thread(answer)
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["delivered"] and "no daemon running" in stderr and user.public_key[:16] in stderr
    async with fast_pool() as pool:
        (found,) = await pool.fetch([Filter(ids=frozenset({result["id"]}))], [rust_relay.url], timeout=10)
    rsvp = kinds.parse_rsvp(found)
    assert rsvp.author == user.public_key and rsvp.status is kinds.RsvpStatus.DECLINED and rsvp.revision == lesson_event.id
