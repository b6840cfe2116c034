"""Issue 15, presence: the learner's daemon announces presence (10312) every minute of its clock
while the learner is in a live session (asked, let in, not left), and stops after a leave or the
end; a private lesson's beats reach the host alone as ephemeral gift wraps, a public lesson's are
published. The host reads them as "here now" (participant count). ``presence LESSON --hand``
raises a hand. All on one ManualClock; the wire is the tests' fake relay."""

from __future__ import annotations

import asyncio

from services.private_wire import assert_nothing_in_clear, exchange, people
from services.test_private_rooms import TITLE, invited
from services.training_world import T

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.daemon.presence import PresenceHeartbeat
from nostr_training.daemon.routes_live import OPERATIONS
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.rules.rooms import PRESENCE_INTERVAL, conference_details
from nostr_training.services import live
from nostr_training.signer import LocalSigner

MIN = 60


async def _daemon(home, keys: Keys, ctx, wire, clock: ManualClock) -> tuple[Daemon, PresenceHeartbeat]:
    """The learner's daemon on the learner's index and the shared wire, with the heartbeat only."""
    config = load_config(home / "daemon").with_overrides(relays=list(ctx.config.relays), port=0)
    heartbeat = PresenceHeartbeat(interval=PRESENCE_INTERVAL / 2)
    daemon = Daemon(config, signer=LocalSigner(keys), store=ctx.store, pool=wire, clock=clock, components=(heartbeat,))
    await daemon.start()
    return daemon, heartbeat


async def _ticks(clock: ManualClock, component: PresenceHeartbeat, rounds: int = 1) -> None:
    """Advance one interval at a time and wait for the tick each advance starts to finish."""
    for _ in range(rounds):
        await clock.advance(int(component.interval))
        async with asyncio.timeout(20):
            while not (component.waiting.is_set() and component.next_due is not None and component.next_due > clock.now()):
                await asyncio.sleep(0.005)


async def test_a_private_sessions_presence_beats_while_in_it_reach_the_host_only_and_stop_after_leave(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock)
    coord = lesson.coordinate
    await live.create_live_session(hosting, coord, live.ConferenceConfig(TITLE, host.public_key))
    await clock.advance(30 * MIN)
    await live.start_live_session(hosting, coord)
    await exchange(wire, hosting, learning)
    daemon, heartbeat = await _daemon(tmp_path, learner, learning, wire, clock)
    try:
        await _ticks(clock, heartbeat, 2)
        assert heartbeat.sent == 0  # not in the session: nothing to say

        await live.join_session(daemon.services, coord)
        await exchange(wire, daemon.services, hosting)
        await _ticks(clock, heartbeat, 2)
        assert heartbeat.sent == 0  # waiting for the host's admit: not in the room yet

        await live.decide(hosting, coord, learner.public_key, "admit")
        await exchange(wire, hosting, daemon.services)
        await _ticks(clock, heartbeat)
        assert heartbeat.sent == 1
        sent = await exchange(wire, daemon.services, hosting)
        assert [e.kind for e in sent] == [kinds.GIFT_WRAP_EPHEMERAL] and sent[0].tag_values("p") == [host.public_key]
        ev = await live.load_evidence(hosting, lesson)
        assert [p.author for p in ev.presences] == [learner.public_key]
        assert conference_details(ev, clock.now()).participant_count == 1  # the host reads "here now"

        await _ticks(clock, heartbeat)  # half an interval later: not due yet
        assert heartbeat.sent == 1
        await _ticks(clock, heartbeat, 3)  # then one beat a minute
        assert heartbeat.sent == 3

        await live.leave_session(daemon.services, coord)
        await exchange(wire, daemon.services, hosting)
        await _ticks(clock, heartbeat, 4)
        assert heartbeat.sent == 3 and heartbeat.failures == 0
        ev = await live.load_evidence(hosting, lesson)
        assert max(p.created_at for p in ev.presences) < clock.now() - PRESENCE_INTERVAL
    finally:
        await daemon.stop()
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key], secrets=[TITLE, lesson.d])


async def test_a_public_sessions_presence_is_published_and_stops_when_the_session_ends(tmp_path):
    clock = ManualClock(T)
    host, learner = Keys.generate(), Keys.generate()
    wire, (hosting, learning) = await people(tmp_path, clock, host, learner)
    lesson = kinds.Lesson(author=host.public_key, d="open-day", title="Open day", start=T + 30 * MIN,
                          end=T + 90 * MIN, instructor=host.public_key, requires_rsvp=False)
    await hosting.outbox.submit(sign_event(kinds.build_lesson(lesson, created_at=clock.now()), host.secret))
    await live.create_live_session(hosting, lesson.coordinate,
                                   live.ConferenceConfig("Open day", host.public_key, waiting_room=False, e2ee_required=False))
    await clock.advance(30 * MIN)
    await live.start_live_session(hosting, lesson.coordinate)
    await exchange(wire, hosting, learning)
    daemon, heartbeat = await _daemon(tmp_path, learner, learning, wire, clock)
    try:
        await live.join_session(daemon.services, lesson.coordinate)  # an open session: no admit needed
        await _ticks(clock, heartbeat, 4)
        assert heartbeat.sent == 2
        await exchange(wire, daemon.services, hosting)
        beats = [e for e in wire.events.values() if e.kind == kinds.ROOM_PRESENCE]
        assert beats and {e.pubkey for e in beats} == {learner.public_key} and all(e.sig for e in beats)

        # --hand, as the CLI sends it through the control API's operation.
        answer = await OPERATIONS["presence"](daemon.services, {"lesson": lesson.coordinate, "hand": True})
        await exchange(wire, daemon.services, hosting)
        assert kinds.parse_presence(wire.events[answer["event"]]).hand_raised

        await clock.advance(60 * MIN)
        await live.end_live_session(hosting, lesson.coordinate)
        await exchange(wire, hosting, daemon.services)
        before = heartbeat.sent
        await _ticks(clock, heartbeat, 4)
        assert heartbeat.sent == before and heartbeat.failures == 0
    finally:
        await daemon.stop()
