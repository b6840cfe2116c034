"""Issue 15, rooms: a private lesson's session publishes nothing in the clear. The host's room,
meeting and lesson revisions travel as envelopes its invitee opens; the learner's join request,
claims and presence reach the host as ephemeral gift wraps, their consent as a durable one; the
host's decision reaches that learner alone. Everything is read back from what the wire carried."""

from __future__ import annotations

import os

import pytest
from blossom_server import BlossomServer

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.daemon.live import LiveSessions
from nostr_training.errors import PrivacyRefused
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.kinds.attendance import AttendanceAction
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.rules.lifecycle import SessionState
from nostr_training.rules.rooms import Admission, admission, current_meeting, current_room, session_state
from nostr_training.services import live, private
from nostr_training.services.recordings import publish_recording, received_recording_key, recording_ready
from nostr_training.signer import LocalSigner

from .private_wire import R, assert_nothing_in_clear, exchange, people
from .training_world import T

MIN = 60
TITLE = "Jail support"


def private_lesson(host: Keys, learner: Keys, **changes) -> kinds.Lesson:
    base = dict(author=host.public_key, d="5f0c1e9a7b3d2c4e", title=TITLE, start=T + 30 * MIN, end=T + 90 * MIN,
                instructor=host.public_key, private=True, invitees=(learner.public_key,), waiting_room=True,
                e2ee_required=False, allow_recording=True, description="Bring a pen.")
    return kinds.Lesson(**{**base, **changes})


async def invited(home, clock: ManualClock, **changes):
    """A host with a private lesson its learner was invited to, both daemons synced."""
    host, learner = Keys.generate(), Keys.generate()
    wire, (hosting, learning) = await people(home, clock, host, learner)
    lesson = private_lesson(host, learner, **changes)
    await private.publish_private_item(hosting, kinds.build_lesson(lesson, created_at=clock.now()))
    await private.invite(hosting, lesson.coordinate, [learner.public_key], text="You are invited")
    await exchange(wire, hosting, learning)
    return host, learner, wire, hosting, learning, lesson


async def test_a_private_room_reaches_the_invitee_and_the_waiting_room_works_through_wraps(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock)
    coord = lesson.coordinate

    session = await live.create_live_session(hosting, coord, live.ConferenceConfig(TITLE, host.public_key,
                                                                                    allow_recording=True,
                                                                                    e2ee_required=False))
    assert session.reports == ()  # nothing signed in the clear: envelopes only
    sent = await exchange(wire, hosting, learning)
    assert {e.kind for e in sent} == {kinds.PRIVATE_CALENDAR_ITEM}
    seen = await learning.store.lesson(coord)
    assert seen is not None and seen.room == session.room_id and seen.private
    ev = await live.load_evidence(learning, seen)
    assert current_room(ev) is not None and current_meeting(ev) is not None

    # The learner asks while the host's daemon is offline: the ephemeral wrap is lost ...
    await clock.advance(60)
    first = await live.join_session(learning, coord)
    assert first.url is None and len(first.published) == 1
    sent = await exchange(wire, hosting, learning, drop_ephemeral=True)
    assert {e.kind for e in sent} == {kinds.GIFT_WRAP_EPHEMERAL}
    assert await live.waiting(hosting, coord) == ()
    # ... and asking again sends the same request, which the host now sees, once.
    await clock.advance(60)
    again = await live.join_session(learning, lesson.d)  # by its d, as a CLI user may
    assert again.published == first.published
    await exchange(wire, hosting, learning)
    [waiting] = await live.waiting(hosting, coord)
    assert waiting.pubkey == learner.public_key and waiting.request == first.published[0]

    decision = await live.decide(hosting, coord, learner.public_key, "admit")
    sent = await exchange(wire, hosting, learning)
    assert {e.kind for e in sent} == {kinds.GIFT_WRAP} and all(e.tag_values("p") == [learner.public_key] for e in sent)
    ev = await live.load_evidence(learning, lesson)
    assert [d.event_id for d in ev.decisions] == [decision]
    assert admission(ev, learner.public_key).admission is Admission.ADMITTED
    assert await live.waiting(hosting, coord) == ()

    await clock.advance(30 * MIN)
    await live.start_live_session(hosting, coord)
    await exchange(wire, hosting, learning)
    assert session_state(await live.load_evidence(learning, lesson), clock.now()) is SessionState.LIVE
    joined = await live.join_session(learning, coord, consent=True)
    assert joined.url == session.join_url
    await live.announce_presence(learning, coord)
    await clock.advance(10 * MIN)
    await live.leave_session(learning, coord)
    await exchange(wire, hosting, learning)
    ev = await live.load_evidence(hosting, lesson)
    assert [(c.author, c.answer.value) for c in ev.consents] == [(learner.public_key, "given")]
    assert [p.author for p in ev.presences] == [learner.public_key]
    assert [c.action for c in ev.claims] == [AttendanceAction.LEAVE]

    with pytest.raises(PrivacyRefused):  # a room revision never goes out signed in the clear
        room = current_room(ev)
        assert room is not None
        await hosting.outbox.submit(sign_event(kinds.build_room(room, created_at=clock.now()), host.secret))
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key],
                            secrets=[TITLE, lesson.d, "Bring a pen"])


async def test_a_private_session_nobody_joined_starts_and_ends_in_envelopes(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock)
    await live.create_live_session(hosting, lesson.coordinate, live.ConferenceConfig(TITLE, host.public_key))
    await clock.advance(30 * MIN)
    await live.start_live_session(hosting, lesson.coordinate)
    await clock.advance(60 * MIN)
    await live.end_live_session(hosting, lesson.coordinate)
    await exchange(wire, hosting, learning)
    ev = await live.load_evidence(learning, lesson)
    assert session_state(ev, clock.now()) is SessionState.ENDED
    meeting, room = current_meeting(ev), current_room(ev)
    assert meeting is not None and meeting.status is kinds.MeetingStatus.ENDED
    assert room is not None and room.status is kinds.RoomStatus.CLOSED
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key], secrets=[TITLE, lesson.d])


async def test_a_lesson_of_a_private_course_uses_the_course_key(tmp_path):
    clock = ManualClock(T)
    host, learner = Keys.generate(), Keys.generate()
    wire, (hosting, learning) = await people(tmp_path, clock, host, learner)
    course = kinds.Course(host.public_key, "9a8b7c6d5e4f3a2b", "Street medic", private=True,
                          invitees=(learner.public_key,))
    lesson = private_lesson(host, learner, course=course.coordinate)
    course_rumor = await private.publish_private_item(hosting, kinds.build_course(course, created_at=clock.now()))
    await private.publish_private_item(hosting, kinds.build_lesson(lesson, created_at=clock.now()),
                                       key_of=course_rumor.address)
    await private.invite(hosting, course.coordinate, [learner.public_key], text="Welcome")
    await exchange(wire, hosting, learning)
    assert await live.view_key_item(hosting, lesson) == course.coordinate
    session = await live.create_live_session(hosting, lesson.coordinate, live.ConferenceConfig(TITLE, host.public_key))
    await exchange(wire, hosting, learning)
    course_key = await private.view_key_for(hosting, course.coordinate)
    assert course_key is not None and await private.view_key_for(learning, session.room_id) == course_key
    seen = await learning.store.lesson(lesson.coordinate)
    assert seen is not None and seen.room == session.room_id
    assert current_room(await live.load_evidence(learning, seen)) is not None


async def test_a_private_recording_reaches_admitted_participants_only(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock, e2ee_required=True)
    coord = lesson.coordinate
    await live.create_live_session(hosting, coord, live.ConferenceConfig(TITLE, host.public_key, allow_recording=True))
    await exchange(wire, hosting, learning)
    await live.join_session(learning, coord)
    await exchange(wire, hosting, learning)
    await live.decide(hosting, coord, learner.public_key, "admit")
    await exchange(wire, hosting, learning)

    video = tmp_path / "session.webm"
    video.write_bytes(os.urandom(200_000))
    (tmp_path / "blobs").mkdir()
    async with BlossomServer(tmp_path / "blobs", clock=clock) as blossom:
        result = await publish_recording(hosting, coord, str(video), server=blossom.url)
        await exchange(wire, hosting, learning)
        rerun = await publish_recording(hosting, coord, str(video), server=blossom.url)
    assert result.encrypted and result.keys_sent_to == (learner.public_key,)
    assert result.lesson_revision and len(result.meetings) == 1
    assert rerun.already_published and rerun.keys_sent_to == () and rerun.recording_id == result.recording_id
    sent = await exchange(wire, hosting, learning)
    assert sent == []  # the rerun reached nobody new

    # The learner holds the 1063, the key and the lesson's recording link; the relay none of it.
    ready = await recording_ready(learning, coord)
    assert ready is not None and ready.event_id == result.recording_id and ready.url == result.url
    key = await received_recording_key(learning, coord)
    assert key is not None and key.sha256 == result.sha256
    seen = await learning.store.lesson(coord)
    assert seen is not None and seen.recording_url == result.url
    assert [r.url for r in (await live.load_evidence(learning, seen)).recordings] == [result.url]
    assert await recording_ready(hosting, coord) is not None
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key],
                            secrets=[TITLE, lesson.d, result.sha256])


async def test_the_hosts_daemon_runs_a_private_session_by_policy_in_envelopes_and_wraps(tmp_path):
    clock = ManualClock(T)
    host, learner = Keys.generate(), Keys.generate()
    wire, [learning] = await people(tmp_path, clock, learner)
    hosted = LiveSessions(interval=10**6)
    config = load_config(tmp_path / "host").with_overrides(relays=[R], port=0)
    daemon = Daemon(config, signer=LocalSigner(host), pool=wire, clock=clock, components=(hosted,))
    await daemon.start()
    try:
        hosting = daemon.services
        for keys, store in ((learner, hosting.store), (host, learning.store)):
            await store.add(sign_event(inbox_relays_template([R], created_at=T - 10), keys.secret), now=T)
        lesson = private_lesson(host, learner, requires_rsvp=True)
        await private.publish_private_item(hosting, kinds.build_lesson(lesson, created_at=T))
        await private.invite(hosting, lesson.coordinate, [learner.public_key], text="You are invited")
        await exchange(wire, hosting, learning)

        clock.set(lesson.start - 15 * MIN)  # the auto-start: the room goes out as envelopes
        await hosted.run_once()
        await exchange(wire, hosting, learning)
        assert hosted.counters["rooms"] == 1
        assert session_state(await live.load_evidence(learning, lesson), clock.now()) is SessionState.ROOM_CREATED

        # A private RSVP (part A's flow, by hand here) gives her a seat: the policy admits her.
        answer = kinds.build_rsvp(lesson, kinds.RsvpStatus.ACCEPTED, created_at=clock.now())
        await private.deliver_rumor(learning, answer, [host.public_key])
        asked = await live.join_session(learning, lesson.coordinate)
        await exchange(wire, hosting, learning)
        assert [w.auto_admit for w in await live.waiting(hosting, lesson.coordinate)] == [True]
        await hosted.run_once()
        await hosted.run_once()
        assert hosted.counters["admits"] == 1  # once
        sent = await exchange(wire, hosting, learning)
        assert [e.kind for e in sent] == [kinds.GIFT_WRAP] and sent[0].tag_values("p") == [learner.public_key]
        ev = await live.load_evidence(learning, lesson)
        assert [d.request for d in ev.decisions] == [asked.published[0]]
        assert admission(ev, learner.public_key).admission is Admission.ADMITTED

        clock.set(lesson.end + 16 * MIN)  # nobody started it: the daemon marks it missed, once
        await hosted.run_once()
        await hosted.run_once()
        await exchange(wire, hosting, learning)
        assert hosted.counters["closures"] == 1
        assert session_state(await live.load_evidence(learning, lesson), clock.now()) is SessionState.MISSED
    finally:
        await daemon.stop()
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key], secrets=[TITLE, lesson.d])
