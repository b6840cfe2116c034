"""The host's LiveSessions component on ManualClock with a fake pool: auto-start, policy
admission, room keys once per (room, epoch, participant), a rekey on leave, attendance records
at the end, a missed session marked once; and a restart repeats none of it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.daemon.live import LiveSessions
from nostr_training.errors import DomainError
from nostr_training.event import sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.nips.nip59 import unwrap
from nostr_training.rules.rooms import current_meeting, session_state
from nostr_training.services import live
from nostr_training.signer import LocalSigner

from daemon_fakes import FakePool

R = "ws://127.0.0.1:9"
T = 1_800_000_000
MIN = 60


@pytest.fixture
def config(home):
    return load_config().with_overrides(relays=[R], port=0)


class Host:
    def __init__(self, config, keys: Keys, clock: ManualClock):
        self.config, self.keys, self.clock = config, keys, clock
        self.daemon: Daemon | None = None
        self.live = LiveSessions(interval=10**6)

    async def start(self) -> Host:
        self.live = LiveSessions(interval=10**6)
        self.daemon = Daemon(self.config, signer=LocalSigner(self.keys), pool=FakePool(), clock=self.clock,
                             components=(self.live,))
        await self.daemon.start()
        return self

    async def stop(self) -> None:
        assert self.daemon is not None
        await self.daemon.stop()

    @property
    def store(self):
        assert self.daemon is not None
        return self.daemon.store

    async def add(self, keys: Keys, template) -> None:
        await self.store.add(sign_event(template, keys.secret), now=self.clock.now())

    async def count(self, kind: int, *, include_private: bool = False, **tags) -> int:
        return len(await self.store.query([Filter(kinds=frozenset({kind}), tags={k: frozenset(v) for k, v in tags.items()})],
                                          include_superseded=True, include_private=include_private))


def _lesson(host: Keys, **kw) -> kinds.Lesson:
    base = dict(author=host.public_key, d="l1", title="Role play", start=T + 30 * MIN, end=T + 90 * MIN,
                instructor=host.public_key, requires_rsvp=False, waiting_room=True, e2ee_required=True)
    return kinds.Lesson(**{**base, **kw})


async def _inbox(host: Host, keys: Keys) -> None:
    await host.add(keys, inbox_relays_template([R], created_at=T))


async def test_auto_start_keys_rekey_records_and_a_restart(config, alice, bob):
    carol = Keys.generate()
    clock = ManualClock(T)
    host = await Host(config, alice, clock).start()
    try:
        lesson = _lesson(alice)
        await host.add(alice, kinds.build_lesson(lesson, created_at=T))
        for learner in (bob, carol):
            await _inbox(host, learner)
        await host.live.run_once()
        assert await host.count(kinds.ROOM) == 0, "no room before the auto-start time"
        clock.set(lesson.start - 15 * MIN)
        await host.live.run_once()
        await host.live.run_once()
        assert await host.count(kinds.ROOM) == 1 and await host.count(kinds.MEETING) == 1
        room = f"{kinds.ROOM}:{alice.public_key}:l1-room"

        # Both ask; the waiting room needs the instructor: nobody is admitted by policy.
        for learner in (bob, carol):
            await host.add(learner, kinds.build_join_request(lesson.coordinate, alice.public_key, created_at=clock.now()))
        await host.live.run_once()
        assert await host.count(kinds.WAITING_ROOM_DECISION) == 0
        assert host.live.counters["keys_sent"] == 0, "no key before an admit"
        clock.set(clock.now() + MIN)
        for learner in (bob, carol):
            await live.decide(host.daemon.services, lesson.coordinate, learner.public_key, "admit")
        await host.live.run_once()
        await host.live.run_once()
        sent = await host.store.actions(action="room-key-sent")
        assert sorted((a.pubkey, a.detail) for a in sent) == sorted([(bob.public_key, "1"), (carol.public_key, "1")])
    finally:
        await host.stop()

    # Restarted: the schedule and the epoch's key come back from the action log; nothing is resent.
    host = await Host(config, alice, clock).start()
    try:
        await host.live.run_once()
        assert len(await host.store.actions(action="room-key-sent")) == 2
        clock.set(lesson.start)
        await live.start_live_session(host.daemon.services, lesson.coordinate)
        clock.set(lesson.start + 20 * MIN)
        await host.add(bob, kinds.build_attendance_claim(lesson.coordinate, "leave", created_at=clock.now(), room=room))
        await host.live.run_once()
        await host.live.run_once()
        second = [a.pubkey for a in await host.store.actions(action="room-key-sent") if a.detail == "2"]
        assert second == [carol.public_key], "epoch 2 goes to those who remain"
        epochs = [a for a in await host.store.actions(action="room-key") if a.subject == room]
        assert len(epochs) == 2 and all("AES" not in (a.detail or "") for a in epochs)
        wraps = await host.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({carol.public_key})})])
        opened = sorted([kinds.parse_room_key((await unwrap(w, LocalSigner(carol))).rumor) for w in wraps], key=lambda k: k.epoch)
        assert [k.epoch for k in opened] == [1, 2] and opened[0].key != opened[1].key and len(opened[1].key) == 32
        assert all(k.expires_at == lesson.end + 86400 for k in opened)
        room_now = [kinds.parse_room(e) for e in await host.store.query([Filter(kinds=frozenset({kinds.ROOM}))])]
        assert room_now[0].key_epoch == 2

        # Nobody ends it: an hour's grace after the last activity past the window, the daemon does, once.
        clock.set(lesson.end + 16 * MIN)
        await host.live.run_once()
        await host.live.run_once()
        ev = await live.load_evidence(host.daemon.services, lesson)
        meeting = current_meeting(ev)
        assert meeting is not None and meeting.status is kinds.MeetingStatus.ENDED and not meeting.missed
        records = [kinds.parse_attendance_record(e) for e in await host.store.query(
            [Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD}))], include_private=True)]
        by = {r.learner: r for r in records}
        assert by[bob.public_key].total_seconds == 25 * MIN and not by[bob.public_key].met
        assert by[carol.public_key].met and await host.count(kinds.COMPLETION_RECORD, include_private=True) == 1
        # Kept by the host, never published: each learner got their own in a record delivery.
        assert await host.count(kinds.ATTENDANCE_RECORD) == 0 and await host.count(kinds.COMPLETION_RECORD) == 0
        assert sorted(a.pubkey for a in await host.store.actions(action="attendance")) == sorted(
            [bob.public_key, carol.public_key])
        assert meeting.total_participants == 2
        assert len(await host.store.actions(action="live-closure")) == 1
    finally:
        await host.stop()
    host = await Host(config, alice, clock).start()
    try:
        clock.set(clock.now() + 3600)
        await host.live.run_once()
        assert await host.count(kinds.ATTENDANCE_RECORD, include_private=True) == 2
        assert await host.count(kinds.COMPLETION_RECORD, include_private=True) == 1
        assert len(await host.store.actions(action="live-closure")) == 1
    finally:
        await host.stop()


async def test_policy_admits_a_confirmed_rsvp_and_a_missed_session_is_marked_once(config, alice, bob):
    carol = Keys.generate()
    clock = ManualClock(T)
    host = await Host(config, alice, clock).start()
    try:
        lesson = _lesson(alice, requires_rsvp=True, waiting_room=False, e2ee_required=False)
        await host.add(alice, kinds.build_lesson(lesson, created_at=T))
        await host.add(bob, kinds.build_rsvp(lesson.coordinate, "accepted", created_at=T, host=alice.public_key))
        clock.set(lesson.start - 15 * MIN)
        await host.live.run_once()
        for learner in (bob, carol):
            await host.add(learner, kinds.build_join_request(lesson.coordinate, alice.public_key, created_at=clock.now()))
        await host.live.run_once()
        await host.live.run_once()
        decisions = [kinds.parse_waiting_room_decision(e)
                     for e in await host.store.query([Filter(kinds=frozenset({kinds.WAITING_ROOM_DECISION}))])]
        assert [(d.participant, d.decision.value) for d in decisions] == [(bob.public_key, "admit")]
        assert [s.pubkey for s in await live.waiting(host.daemon.services, lesson.coordinate)] == [carol.public_key]

        clock.set(lesson.end + 15 * MIN)
        await host.live.run_once()
        await host.live.run_once()
        ev = await live.load_evidence(host.daemon.services, lesson)
        assert session_state(ev, clock.now()).value == "missed"
        meeting = current_meeting(ev)
        assert meeting is not None and meeting.missed
        assert await host.count(kinds.ATTENDANCE_RECORD) == 0
        assert len(await host.store.actions(action="live-closure")) == 1
    finally:
        await host.stop()


async def test_observed_attendance_is_the_hosts_evidence_for_that_pubkey(config, alice, bob):
    clock = ManualClock(T)
    host = await Host(config, alice, clock).start()
    try:
        lesson = _lesson(alice, waiting_room=False, e2ee_required=False)
        await host.add(alice, kinds.build_lesson(lesson, created_at=T))
        ctx = host.daemon.services
        clock.set(lesson.start - 15 * MIN)
        await host.live.run_once()
        clock.set(lesson.start)
        await live.start_live_session(ctx, lesson.coordinate)
        clock.set(lesson.start + 45 * MIN)
        with pytest.raises(DomainError, match="future"):
            await live.track_live_attendance(ctx, lesson.coordinate, bob.public_key, lesson.start, clock.now() + 60)
        with pytest.raises(DomainError, match="before joining"):
            await live.track_live_attendance(ctx, lesson.coordinate, bob.public_key, lesson.start + 600, lesson.start)
        assert await host.store.actions(action=live.OBSERVED_ACTION) == []
        await live.track_live_attendance(ctx, lesson.coordinate, bob.public_key, lesson.start + 5 * MIN, lesson.start + 40 * MIN)
        await live.track_live_attendance(ctx, lesson.coordinate, bob.public_key, lesson.start + 5 * MIN, lesson.start + 40 * MIN)
        assert len(await host.store.actions(action=live.OBSERVED_ACTION)) == 2, "a join and a leave, once"
        rows = (await live.attendance_table(ctx, lesson.coordinate))["rows"]
        assert [(r["pubkey"], r["total_seconds"], r["join_count"], r["published"]) for r in rows] == [
            (bob.public_key, 35 * MIN, 1, False)]
        clock.set(lesson.end)
        assert await live.end_live_session(ctx, lesson.coordinate) is None
        rows = (await live.attendance_table(ctx, lesson.coordinate))["rows"]
        assert rows[0]["published"] and rows[0]["completed"] and rows[0]["total_seconds"] == 35 * MIN
    finally:
        await host.stop()


def test_the_daemon_hosts_live_sessions_with_the_configured_interval(config):
    from nostr_training.daemon.hosted import hosted_components
    from nostr_training.errors import ConfigError

    hosted = [c for c in hosted_components(config) if isinstance(c, LiveSessions)]
    assert len(hosted) == 1 and hosted[0].interval == 5.0
    again = [c for c in hosted_components(replace(config, extra={"live": {"interval": 2}})) if isinstance(c, LiveSessions)]
    assert again[0].interval == 2.0
    with pytest.raises(ConfigError, match=r"\[live\] interval"):
        hosted_components(replace(config, extra={"live": {"interval": "often"}}))
