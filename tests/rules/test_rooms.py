"""Live sessions from their events: state, closing, admission, join links, consent, attendance."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import AdmissionRequired, DomainError, IllegalTransition, JoinRefused, RoomKeyRequired
from nostr_training.kinds import build_attendance_record, build_completion_record
from nostr_training.kinds.attendance import AttendanceAction, AttendanceClaim
from nostr_training.kinds.calendar import RsvpStatus
from nostr_training.kinds.deletion import Deletion
from nostr_training.kinds.recordings import Recording
from nostr_training.kinds.rooms import (
    ConsentAnswer,
    Decision,
    JoinRequest,
    Meeting,
    MeetingStatus,
    Presence,
    RecordingConsent,
    Room,
    RoomKey,
    RoomStatus,
    WaitingRoomDecision,
)
from nostr_training.rules import rooms as r
from nostr_training.rules.attendance import Join, Leave
from nostr_training.rules.lifecycle import SessionAction, SessionState, transition
from nostr_training.rules.room_keys import Change, KeySchedule, MembershipChange
from nostr_training.rules.rsvp import roster

from .factories import ALICE, BOB, CAROL, DAVE, HOST, LEARNERS, START, lesson, rsvp

S = SessionState
MIN = 60
OTHER = LEARNERS[8]
_ids = itertools.count(1)


def eid() -> str:
    return f"{next(_ids):064x}"


LESSON = lesson(
    60,
    requires_rsvp=True,
    waiting_room=True,
    e2ee_required=True,
    allow_recording=True,
    max_participants=2,
    created_at=START - 7 * 86400,
    event_id="f" * 64,
)
OPEN = lesson(60, d="open-1", requires_rsvp=False, waiting_room=False, max_participants=2)


def room(of=LESSON, at=START - 900, author=HOST, epoch=1, e2ee="livekit-gcm") -> Room:
    return Room(
        author=author,
        d="room-1",
        name="Role-play",
        status=RoomStatus.PRIVATE,
        service="https://meet.example/room-1",
        hosts=(author,),
        lesson=of.coordinate,
        e2ee=e2ee,
        key_epoch=epoch,
        created_at=at,
        event_id=eid(),
    )


def meeting(status, at, *, of=LESSON, author=HOST, ends=None, missed=False) -> Meeting:
    return Meeting(
        author=author,
        d="room-1-s1",
        room=f"30312:{author}:room-1",
        title="Role-play",
        starts=of.start,
        status=MeetingStatus(status),
        lesson=of.coordinate,
        ends=ends,
        created_at=at,
        event_id=eid(),
        missed=missed,
    )


def request(who, at, of=LESSON) -> JoinRequest:
    return JoinRequest(who, of.coordinate, HOST, at, event_id=eid())


def decide(who, answer, at, *, of=LESSON, author=HOST) -> WaitingRoomDecision:
    return WaitingRoomDecision(author, of.coordinate, who, Decision(answer), at, event_id=eid())


def claim(who, action, at, of=LESSON) -> AttendanceClaim:
    return AttendanceClaim(who, of.coordinate, AttendanceAction(action), at, event_id=eid())


def beat(who, at, room_coord=f"30312:{HOST}:room-1") -> Presence:
    return Presence(who, room_coord, at, event_id=eid())


def consent(who, answer, at, of=LESSON) -> RecordingConsent:
    return RecordingConsent(who, of.coordinate, HOST, ConsentAnswer(answer), at, event_id=eid())


def recording(at, author=HOST, of=LESSON) -> Recording:
    return Recording(author, "https://blossom.example/" + "ab" * 32 + ".webm", "video/webm", "ab" * 32, 1, of.coordinate, at, event_id=eid())


def ev(of=LESSON, **parts) -> r.SessionEvidence:
    return r.SessionEvidence(of, **{k: tuple(v) for k, v in parts.items()})


END = LESSON.end
GRACE = r.LivePolicy().closure_grace


# State derivation -----------------------------------------------------------------------------

LIVE_AT = meeting("live", START)
ENDED_AT = meeting("ended", END, ends=END)

STATE_CASES = [
    ("nothing yet", {}, START - 3600, S.SCHEDULED),
    ("room created", {"rooms": [room()]}, START - 600, S.ROOM_CREATED),
    ("meeting planned", {"rooms": [room()], "meetings": [meeting("planned", START - 900)]}, START - 60, S.ROOM_CREATED),
    ("instructor late, inside the window", {"rooms": [room()]}, START + 600, S.ROOM_CREATED),
    ("live", {"rooms": [room()], "meetings": [meeting("planned", START - 900), LIVE_AT]}, START + 60, S.LIVE),
    ("overran while updated", {"meetings": [meeting("live", END + 1800)]}, END + 2400, S.LIVE),
    ("live, no update for an hour past the window", {"meetings": [LIVE_AT]}, START + 2 * 3600, S.ENDED),
    ("ended, recording may come", {"meetings": [LIVE_AT, ENDED_AT]}, END + 60, S.ENDED),
    ("ended, recording never came", {"meetings": [ENDED_AT]}, END + 8 * 86400, S.ENDED_WITHOUT_RECORDING),
    ("ended with the host's recording", {"meetings": [ENDED_AT], "recordings": [recording(END + 600)]}, END + 900, S.RECORDING_AVAILABLE),
    ("a recording by someone else is not the lesson's", {"meetings": [ENDED_AT], "recordings": [recording(END + 600, author=ALICE)]}, END + 900, S.ENDED),
    ("cancelled", {"deletions": [Deletion(HOST, (), (LESSON.coordinate,), (31923,), START - 86400)]}, START - 3600, S.CANCELLED),
    ("a deletion by someone else", {"deletions": [Deletion(ALICE, (), (LESSON.coordinate,), (31923,), START - 86400)]}, START - 3600, S.SCHEDULED),
    ("a deletion older than the lesson held", {"deletions": [Deletion(HOST, (), (LESSON.coordinate,), (31923,), START - 8 * 86400)]}, START - 3600, S.SCHEDULED),
    ("deleted by event id", {"deletions": [Deletion(HOST, ("f" * 64,), (), (31923,), START - 9 * 86400)]}, START - 3600, S.CANCELLED),
    ("nobody started it", {"rooms": [room()]}, END + GRACE, S.MISSED),
    ("not yet judged missed", {"rooms": [room()]}, END + GRACE - 1, S.ROOM_CREATED),
    ("closed as missed", {"meetings": [meeting("ended", END + GRACE, missed=True)]}, END + GRACE, S.MISSED),
    ("a stranger's live meeting", {"meetings": [meeting("live", START, author=ALICE)]}, START + 60, S.SCHEDULED),
]


@pytest.mark.parametrize("name,parts,now,state", STATE_CASES, ids=[c[0] for c in STATE_CASES])
def test_state_from_events(name, parts, now, state):
    assert r.session_state(ev(**parts), now) is state


def test_a_lesson_that_forbids_recording_ends_without_one():
    no_rec = dataclasses.replace(LESSON, allow_recording=False)
    evidence = ev(no_rec, meetings=[meeting("ended", END, of=no_rec)], recordings=[recording(END, of=no_rec)])
    assert r.session_state(evidence, END + 60) is S.ENDED_WITHOUT_RECORDING


def _reachable(a: SessionState, b: SessionState) -> bool:
    seen, frontier = {a}, [a]
    while frontier:
        state = frontier.pop()
        for action in SessionAction:
            try:
                nxt = transition(state, action)
            except IllegalTransition:
                continue
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return b in seen


_EVENTS = {
    "room": room(),
    "planned": meeting("planned", START - 900),
    "live": LIVE_AT,
    "live late": meeting("live", END + 600),
    "ended": ENDED_AT,
    "missed": meeting("ended", END + GRACE, missed=True),
    "recording": recording(END + 600),
    "cancel": Deletion(HOST, (), (LESSON.coordinate,), (31923,), START - 86400),
}


@settings(max_examples=200, deadline=None)
@given(
    picked=st.sets(st.sampled_from(sorted(_EVENTS))),
    times=st.lists(st.integers(-2 * 86400, 10 * 86400), min_size=2, max_size=6),
)
def test_with_fixed_events_time_only_moves_the_state_forward(picked, times):
    """Whatever the events, a later moment's state is reachable from an earlier one's by the lifecycle."""
    parts: dict[str, list] = {"rooms": [], "meetings": [], "recordings": [], "deletions": []}
    for name in picked:
        item = _EVENTS[name]
        key = {Room: "rooms", Meeting: "meetings", Recording: "recordings", Deletion: "deletions"}[type(item)]
        parts[key].append(item)
    evidence = ev(**parts)
    states = [r.session_state(evidence, START + t) for t in sorted(times)]
    for before, after in itertools.pairwise(states):
        assert _reachable(before, after), (before, after)


# Closing, once; auto-start --------------------------------------------------------------------


def test_a_session_nobody_started_is_marked_missed_once():
    evidence = ev(rooms=[room()], meetings=[meeting("planned", START - 900)])
    assert r.closure_due(evidence, END + GRACE - 1) is None
    closure = r.closure_due(evidence, END + GRACE)
    assert closure.action is SessionAction.MARK_MISSED and closure.meeting.status is MeetingStatus.PLANNED
    assert closure.ends == END + GRACE and closure.room is not None
    closed = ev(rooms=[room()], meetings=[meeting("planned", START - 900), meeting("ended", END + GRACE, missed=True)])
    assert r.closure_due(closed, END + 86400) is None, "once the miss is published nothing is due again"


def test_a_live_session_nobody_ended_is_ended_after_the_last_activity():
    evidence = ev(rooms=[room()], meetings=[LIVE_AT], presences=[beat(ALICE, END + 600)], decisions=[decide(ALICE, "admit", START)])
    assert r.closure_due(evidence, END + GRACE) is None, "people were still there after the end"
    closure = r.closure_due(evidence, END + 600 + GRACE)
    assert closure.action is SessionAction.END and closure.ends == END + 600
    assert r.closure_due(ev(meetings=[LIVE_AT, ENDED_AT]), END + 86400) is None
    stranger = ev(rooms=[room()], meetings=[LIVE_AT], presences=[beat(OTHER, END + 3000)])
    assert r.closure_due(stranger, END + GRACE).ends == END, "a stranger's presence keeps nothing open"
    assert r.next_moment(evidence, START) == END + 600 + GRACE


def test_a_cancelled_session_is_never_closed():
    evidence = ev(deletions=[Deletion(HOST, (), (LESSON.coordinate,), (31923,), START - 86400)])
    assert r.closure_due(evidence, END + 86400) is None
    assert r.next_moment(evidence, START - 86400) is None


def test_auto_start_creates_the_room_once_before_the_start():
    policy = r.LivePolicy(room_lead=15 * MIN)
    assert r.auto_start_at(LESSON, policy) == START - 15 * MIN
    bare = ev()
    assert not r.room_creation_due(bare, START - 15 * MIN - 1, policy)
    assert r.room_creation_due(bare, START - 15 * MIN, policy)
    assert r.room_creation_due(bare, START + 30 * MIN, policy), "the daemon was off: still worth a room"
    assert not r.room_creation_due(bare, END, policy)
    assert not r.room_creation_due(ev(rooms=[room()]), START - 10 * MIN, policy)
    assert r.next_moment(bare, START - 86400, policy) == START - 15 * MIN
    assert r.next_moment(ev(rooms=[room()]), START - 86400, policy) == END + GRACE


# Admission ------------------------------------------------------------------------------------

SEATED = [rsvp(ALICE, "accepted", START - 5000, of=LESSON), rsvp(BOB, "accepted", START - 4000, of=LESSON),
          rsvp(CAROL, "accepted", START - 3000, of=LESSON), rsvp(DAVE, "tentative", START - 3000, of=LESSON)]


def test_seated_rsvps_are_admitted_by_policy_the_rest_wait():
    evidence = ev(rooms=[room()], rsvps=SEATED, join_requests=[request(ALICE, START - 120), request(CAROL, START - 110), request(DAVE, START - 100)])
    due = r.decisions_due(evidence, START - 60)
    assert [(d.participant, d.decision) for d in due] == [(ALICE, Decision.ADMIT)]
    assert due[0].target == room().coordinate and due[0].request is not None
    waiting = r.waiting_room(evidence)
    assert [w.pubkey for w in waiting] == [ALICE, CAROL, DAVE]
    assert "waitlist (position 1)" in waiting[1].reason and "RSVP tentative" in waiting[2].reason
    assert r.admission(evidence, BOB).admission is r.Admission.NOT_REQUESTED
    assert r.admission(evidence, HOST).admission is r.Admission.ADMITTED


def test_no_automatic_decision_before_the_room_or_after_the_end():
    evidence = ev(rsvps=SEATED, join_requests=[request(ALICE, START - 3600)])
    assert r.decisions_due(evidence, START - 3600) == ()
    ended = ev(rooms=[room()], meetings=[ENDED_AT], rsvps=SEATED, join_requests=[request(ALICE, END)])
    assert r.decisions_due(ended, END + 60) == ()


def test_a_due_admission_is_due_once():
    evidence = ev(rooms=[room()], rsvps=SEATED, join_requests=[request(ALICE, START - 120)])
    assert len(r.decisions_due(evidence, START)) == 1
    signed = dataclasses.replace(evidence, decisions=(decide(ALICE, "admit", START - 60),))
    assert r.decisions_due(signed, START) == ()
    assert r.admission(signed, ALICE).admission is r.Admission.ADMITTED


def test_denied_stays_denied_until_readmitted_and_only_the_host_decides():
    base = {"rooms": [room()], "rsvps": SEATED}
    denied = ev(**base, join_requests=[request(ALICE, START - 120), request(ALICE, START + 300)],
                decisions=[decide(ALICE, "deny", START - 60)])
    assert r.admission(denied, ALICE).admission is r.Admission.DENIED
    assert r.decisions_due(denied, START + 400) == (), "a new request does not reopen a deny"
    forged = dataclasses.replace(denied, decisions=(*denied.decisions, decide(ALICE, "admit", START + 400, author=BOB)))
    assert r.admission(forged, ALICE).admission is r.Admission.DENIED, "only the host's 8313 counts"
    again = dataclasses.replace(denied, decisions=(*denied.decisions, decide(ALICE, "admit", START + 400)))
    assert r.admission(again, ALICE).admission is r.Admission.ADMITTED
    removed = dataclasses.replace(again, decisions=(*again.decisions, decide(ALICE, "deny", START + 900)))
    assert r.admission(removed, ALICE).admission is r.Admission.DENIED


def test_a_decision_for_another_lesson_does_not_count():
    other = lesson(60, d="lesson-2")
    evidence = ev(rooms=[room()], join_requests=[request(ALICE, START)], decisions=[decide(ALICE, "admit", START, of=other)])
    assert r.admission(evidence, ALICE).admission is r.Admission.WAITING


def test_a_join_request_signed_by_someone_else_is_refused():
    mine = request(ALICE, START)
    r.check_join_request(mine, ALICE, LESSON)
    with pytest.raises(DomainError, match="not by the participant"):
        r.check_join_request(mine, BOB, LESSON)
    with pytest.raises(DomainError, match="not for lesson"):
        r.check_join_request(request(ALICE, START, of=OPEN), ALICE, dataclasses.replace(OPEN, d="other"))


def test_decisions_the_host_may_not_sign():
    evidence = ev(rooms=[room()])
    r.check_decision(evidence, HOST, ALICE, START)
    with pytest.raises(DomainError, match="does not host"):
        r.check_decision(evidence, BOB, ALICE, START)
    with pytest.raises(DomainError, match="host is never admitted"):
        r.check_decision(evidence, HOST, HOST, START)
    with pytest.raises(IllegalTransition, match="ended"):
        r.check_decision(ev(meetings=[ENDED_AT]), HOST, ALICE, END + 60)
    with pytest.raises(IllegalTransition, match="cancelled"):
        r.check_decision(ev(deletions=[Deletion(HOST, (), (LESSON.coordinate,), (31923,), START - 86400)]), HOST, ALICE, START - 3600)
    with pytest.raises(DomainError, match="does not host"):
        r.require_host(LESSON, ALICE)


def test_an_open_lesson_admits_within_capacity():
    evidence = ev(OPEN, rooms=[room(OPEN)], join_requests=[request(ALICE, START, OPEN), request(BOB, START + 1, OPEN), request(CAROL, START + 2, OPEN)])
    assert [d.participant for d in r.decisions_due(evidence, START + 10)] == [ALICE, BOB]
    assert "full" in r.admission(evidence, CAROL).reason
    assert r.admission(evidence, DAVE).admission is r.Admission.ADMITTED, "an open lesson needs no admission"


def test_membership_changes_feed_the_key_schedule():
    evidence = ev(
        rooms=[room()],
        join_requests=[request(ALICE, START - 120), request(BOB, START - 110), request(ALICE, START + 900)],
        decisions=[decide(ALICE, "admit", START - 60), decide(BOB, "admit", START - 60), decide(BOB, "deny", START + 1200)],
        claims=[claim(ALICE, "join", START), claim(ALICE, "leave", START + 600), claim(BOB, "join", START + 1300)],
    )
    changes = r.membership_changes(evidence)
    assert MembershipChange(ALICE, Change.LEAVE, START + 600) in changes
    assert MembershipChange(ALICE, Change.RETURN, START + 900) in changes
    assert MembershipChange(BOB, Change.REMOVE, START + 1200) in changes
    schedule = KeySchedule.open(HOST, START - 900)
    for at in (START - 60, START + 600, START + 900, START + 1200, START + 1300):
        schedule = schedule.catch_up([c for c in changes if c.at <= at], at)
    assert [sorted(e.recipients) for e in schedule.epochs] == [
        sorted({HOST, ALICE, BOB}),
        sorted({HOST, BOB}),
        sorted({HOST, ALICE, BOB}),
        sorted({HOST, ALICE}),
    ]
    assert BOB not in schedule.members, "Bob's join claim after his removal lets him in nowhere"


# Join links and E2EE --------------------------------------------------------------------------


def _admitted_live(**extra):
    return ev(rooms=[room(epoch=2)], meetings=[LIVE_AT], rsvps=SEATED, join_requests=[request(ALICE, START - 60)],
              decisions=[decide(ALICE, "admit", START - 30)], **extra)


def test_e2ee_without_the_current_key_gives_no_link():
    evidence = _admitted_live()
    no_key = r.join_access(evidence, ALICE, START + 60)
    assert no_key.url is None and "no room key" in no_key.reason
    old = r.join_access(evidence, ALICE, START + 60, key_epoch=1)
    assert old.url is None and "retired" in old.reason
    ok = r.join_access(evidence, ALICE, START + 60, key_epoch=2)
    assert ok.url == "https://meet.example/room-1" and ok.epoch == 2


def test_require_raises_what_the_sfu_adapter_raises():
    evidence = _admitted_live()
    assert r.join_access(evidence, ALICE, START + 60, key_epoch=2).require() == "https://meet.example/room-1"
    with pytest.raises(RoomKeyRequired, match="room-1: .*no room key"):
        r.join_access(evidence, ALICE, START + 60).require()
    with pytest.raises(AdmissionRequired, match="not admitted"):
        r.join_access(evidence, BOB, START + 60, key_epoch=2).require()
    with pytest.raises(JoinRefused, match="no room: session is ended"):
        r.join_access(ev(meetings=[ENDED_AT]), ALICE, END + 60, key_epoch=2).require()


def test_no_clear_media_fallback_when_the_room_announces_no_e2ee():
    evidence = dataclasses.replace(_admitted_live(), rooms=(room(e2ee=None, epoch=None),))
    access = r.join_access(evidence, ALICE, START + 60, key_epoch=2)
    assert access.url is None and "does not encrypt" in access.reason


def test_links_need_admission_and_an_open_room():
    evidence = _admitted_live()
    assert "not admitted" in r.join_access(evidence, BOB, START + 60, key_epoch=2).reason
    denied = dataclasses.replace(evidence, decisions=(*evidence.decisions, decide(ALICE, "deny", START + 100)))
    assert r.join_access(denied, ALICE, START + 200, key_epoch=2).reason == "the host denied entry"
    early = ev(rooms=[room(epoch=2)], decisions=[decide(ALICE, "admit", START - 3600)])
    assert r.join_access(early, ALICE, START - 301, key_epoch=2).url is None
    assert r.join_access(early, ALICE, START - 300, key_epoch=2).url is not None, "early-join grace"
    assert r.join_access(ev(meetings=[ENDED_AT]), ALICE, END + 60, key_epoch=2).url is None


def test_an_open_lesson_without_e2ee_links_everyone():
    evidence = ev(OPEN, rooms=[room(OPEN, e2ee=None, epoch=None)], meetings=[meeting("live", START, of=OPEN)])
    assert r.join_access(evidence, DAVE, START + 60).url == "https://meet.example/room-1"


# Recording consent ----------------------------------------------------------------------------


def test_consent_given_then_withdrawn():
    evidence = ev(consents=[consent(ALICE, "given", START - 100), consent(ALICE, "withdrawn", START + 1200),
                            consent(BOB, "given", START - 100), consent(CAROL, "given", START, of=OPEN)])
    assert not r.consent_in_force(evidence, ALICE, START - 101)
    assert r.consent_in_force(evidence, ALICE, START + 600)
    assert not r.consent_in_force(evidence, ALICE, START + 1200)
    assert r.recording_subjects(evidence, [ALICE, BOB, CAROL, DAVE, HOST], START + 600) == tuple(sorted((ALICE, BOB, HOST)))
    assert r.recording_subjects(evidence, [ALICE, BOB, CAROL], END) == (BOB,), "withdrawn: no longer claimed"


def test_consent_is_only_the_participants_own_and_only_where_recording_is_allowed():
    forged = RecordingConsent(BOB, LESSON.coordinate, HOST, ConsentAnswer.GIVEN, START, event_id=eid())
    evidence = ev(consents=[forged])
    assert not r.consent_in_force(evidence, ALICE, START + 60)
    no_rec = dataclasses.replace(LESSON, allow_recording=False)
    assert not r.consent_in_force(ev(no_rec, consents=[consent(ALICE, "given", START)]), ALICE, START + 60)


# Conference details ---------------------------------------------------------------------------


def test_conference_details_count_admitted_fresh_presence():
    evidence = _admitted_live(presences=[beat(ALICE, START + 500), beat(HOST, START + 550), beat(BOB, START + 550), beat(CAROL, START + 100)])
    details = r.conference_details(evidence, START + 600)
    room_id, active, count = details
    assert (room_id, active, count) == (room().coordinate, True, 2), "Bob was never admitted, Carol's beat is stale"
    assert r.conference_details(ev(rooms=[room()]), START - 60) == (room().coordinate, False, 0)
    snapshot = ev(rooms=[room()], meetings=[dataclasses.replace(LIVE_AT, current_participants=5)])
    assert r.conference_details(snapshot, START + 60).participant_count == 5
    assert r.conference_details(ev(), START) == (None, False, 0)


def test_every_learner_sees_the_same_details():
    evidence = _admitted_live(presences=[beat(ALICE, START + 500)])
    views = [r.learner_view(evidence, who, START + 600) for who in (ALICE, BOB, CAROL)]
    assert {(v.room, v.participant_count, v.is_live) for v in views} == {(room().coordinate, 1, True)}


# Attendance -----------------------------------------------------------------------------------


def _drop_and_reconnect():
    """Alice: waits 2 min, admitted at the start, drops after 20 min, back at 30, leaves at 45."""
    beats = [beat(ALICE, START + m * MIN) for m in range(21)] + [beat(ALICE, START + m * MIN) for m in range(30, 45)]
    return ev(
        rooms=[room()],
        meetings=[LIVE_AT, ENDED_AT],
        rsvps=SEATED,
        join_requests=[request(ALICE, START - 2 * MIN)],
        decisions=[decide(ALICE, "admit", START)],
        claims=[claim(ALICE, "join", START + 10), claim(ALICE, "join", START + 30 * MIN), claim(ALICE, "leave", START + 45 * MIN)],
        presences=beats,
    )


def test_a_learner_who_drops_and_reconnects_is_counted_once_with_two_joins():
    result = r.attendance_so_far(_drop_and_reconnect(), END + 60)
    assert list(result) == [ALICE]
    alice = result[ALICE]
    assert alice.join_count == 2, "the request and the claim just after admission are one join"
    assert alice.reconnections == 1
    grace = r.LivePolicy().attendance.heartbeat_grace
    assert alice.intervals == ((START, START + 20 * MIN + grace), (START + 30 * MIN, START + 45 * MIN))
    assert alice.total_seconds == 20 * MIN + grace + 15 * MIN


def _stayed(minutes_by_learner):
    requests, decisions, claims = [], [], []
    for who, minutes in minutes_by_learner.items():
        requests.append(request(who, START - 5 * MIN))
        decisions.append(decide(who, "admit", START))
        claims.append(claim(who, "leave", START + minutes * MIN))
    return ev(rooms=[room()], meetings=[LIVE_AT, ENDED_AT], rsvps=SEATED, join_requests=requests, decisions=decisions, claims=claims)


def test_35_of_60_minutes_completes_20_does_not():
    evidence = _stayed({ALICE: 35, BOB: 20})
    done = r.live_completions(evidence, END + 60)
    assert (done[ALICE].met, done[ALICE].total_seconds) == (True, 35 * MIN)
    assert (done[BOB].met, done[BOB].total_seconds) == (False, 20 * MIN)
    assert HOST not in done
    everyone = r.attendance_so_far(evidence, END + 60)
    for who in (ALICE, BOB):
        assert r.attendance_so_far(evidence, END + 60, only=who) == {who: everyone[who]}


def test_waiting_room_time_is_not_attendance():
    evidence = ev(rooms=[room()], meetings=[LIVE_AT, ENDED_AT], join_requests=[request(ALICE, START - 10 * MIN)],
                  decisions=[decide(ALICE, "admit", START + 10 * MIN)], claims=[claim(ALICE, "leave", START + 50 * MIN)])
    assert r.attendance_so_far(evidence, END)[ALICE].total_seconds == 40 * MIN


def test_a_long_wait_does_not_orphan_the_heartbeats_that_follow_the_admission():
    beats = [beat(ALICE, START + m * MIN) for m in range(10, 51)]
    evidence = ev(rooms=[room()], meetings=[LIVE_AT, ENDED_AT], join_requests=[request(ALICE, START - 10 * MIN)],
                  decisions=[decide(ALICE, "admit", START + 10 * MIN)], presences=beats)
    alice = r.attendance_so_far(evidence, END)[ALICE]
    assert (alice.intervals, alice.join_count) == (((START + 10 * MIN, START + 50 * MIN + 180),), 1)
    gave_up = dataclasses.replace(evidence, claims=(claim(ALICE, "leave", START + 5 * MIN),), presences=())
    assert r.attendance_so_far(gave_up, END) == {}, "she left the waiting room before the admit"


def test_a_denied_learner_attends_nothing_and_a_removed_one_stops_at_removal():
    evidence = ev(rooms=[room()], meetings=[LIVE_AT, ENDED_AT],
                  join_requests=[request(ALICE, START - 60), request(BOB, START - 60)],
                  decisions=[decide(ALICE, "deny", START), decide(BOB, "admit", START), decide(BOB, "deny", START + 25 * MIN)],
                  claims=[claim(BOB, "join", START + 30 * MIN), claim(ALICE, "join", START + 5 * MIN)])
    result = r.attendance_so_far(evidence, END)
    assert result[ALICE].total_seconds == 0
    assert result[BOB].total_seconds == 25 * MIN, "Bob's join after his removal does not count"
    assert not r.live_completions(evidence, END)[ALICE].met


def test_host_observed_joins_replace_the_learners_own_marks():
    observed = [Join(ALICE, START, "sfu-1", "sfu"), Leave(ALICE, START + 10 * MIN, "sfu-1", "sfu"),
                Join(ALICE, START + 15 * MIN, "sfu-2", "sfu"), Leave(ALICE, START + 50 * MIN, "sfu-2", "sfu")]
    evidence = ev(rooms=[room()], meetings=[LIVE_AT, ENDED_AT], join_requests=[request(ALICE, START - 60)],
                  decisions=[decide(ALICE, "admit", START)], claims=[claim(ALICE, "join", START + 1)], observed=observed)
    alice = r.attendance_so_far(evidence, END)[ALICE]
    assert alice.join_count == 2 and alice.total_seconds == 45 * MIN


def test_nothing_is_attended_before_the_start_or_at_a_missed_session():
    assert r.attendance_so_far(ev(rooms=[room()], join_requests=[request(ALICE, START - 60)]), START - 30) == {}
    assert r.session_window(ev(rooms=[room()]), END + GRACE) is None


def test_attendance_so_far_grows_while_live():
    evidence = dataclasses.replace(_drop_and_reconnect(), meetings=(LIVE_AT,))
    assert r.attendance_so_far(evidence, START + 10 * MIN)[ALICE].total_seconds == 10 * MIN


# The learner's view ---------------------------------------------------------------------------


def test_learner_view_before_during_and_after():
    before = ev(rsvps=SEATED)
    view = r.learner_view(before, CAROL, START - 3600)
    assert view.is_scheduled and not view.is_live and view.time_until_start == 3600
    assert view.rsvp_status is RsvpStatus.ACCEPTED and view.can_rsvp and view.waitlist_position == 1
    assert view.join.url is None and view.attendance_seconds == 0

    live = _drop_and_reconnect()
    live = dataclasses.replace(live, meetings=(LIVE_AT,))
    during = r.learner_view(live, ALICE, START + 40 * MIN, key_epoch=1)
    assert during.is_live and during.is_attending and during.admission is r.Admission.ADMITTED
    assert during.join.url is not None and during.join_count == 2 and not during.can_rsvp
    assert during.attendance_seconds == 20 * MIN + 180 + 10 * MIN

    after = dataclasses.replace(_drop_and_reconnect(), recordings=(recording(END + 600),))
    done = r.learner_view(after, ALICE, END + 900)
    assert done.is_ended and done.has_recording and done.recording_url.startswith("https://blossom.example/")
    assert not done.is_attending and done.attendance_seconds == 20 * MIN + 180 + 15 * MIN

    missed = r.learner_view(ev(rooms=[room()]), ALICE, END + GRACE)
    assert missed.is_missed and missed.is_ended and not missed.is_live and missed.time_until_start is None


def test_only_the_hosts_current_room_key_is_taken():
    evidence = _admitted_live()
    key = RoomKey(HOST, room().coordinate, 2, bytes(32), "aes-256-gcm", START)
    r.check_room_key(evidence, key)
    with pytest.raises(DomainError, match="does not host"):
        r.check_room_key(evidence, dataclasses.replace(key, author=BOB))
    with pytest.raises(DomainError, match="not for the room"):
        r.check_room_key(evidence, dataclasses.replace(key, room=f"30312:{HOST}:elsewhere"))
    with pytest.raises(DomainError, match="epoch 1 is older than epoch 2"):
        r.check_room_key(evidence, dataclasses.replace(key, epoch=1))
    with pytest.raises(DomainError, match="epoch 2 is older than epoch 3"):
        r.check_room_key(evidence, key, newest_held=3)


_decision = st.tuples(st.sampled_from([ALICE, BOB, CAROL]), st.sampled_from(["admit", "deny"]), st.integers(0, 50), st.booleans())
_req = st.tuples(st.sampled_from([ALICE, BOB, CAROL, DAVE]), st.integers(-50, 50))
_answers = st.lists(st.tuples(st.sampled_from([ALICE, BOB, CAROL, DAVE]), st.sampled_from(["accepted", "tentative", "declined"]), st.integers(0, 20)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(decisions=st.lists(_decision, max_size=8), requests=st.lists(_req, max_size=6), answers=_answers)
def test_admission_properties(decisions, requests, answers):
    """The latest host decision stands whatever else happens; the policy only decides the undecided."""
    made = [decide(who, answer, START + at, author=HOST if by_host else DAVE) for who, answer, at, by_host in decisions]
    evidence = ev(
        rooms=[room()],
        rsvps=[rsvp(who, status, START - 3600 + at, of=LESSON, event_id=eid()) for who, status, at in answers],
        join_requests=[request(who, START + at) for who, at in requests],
        decisions=made,
    )
    due = {d.participant for d in r.decisions_due(evidence, START + 60)}
    seated = set(roster(LESSON, evidence.rsvps).confirmed)
    for who in (ALICE, BOB, CAROL, DAVE):
        mine = [d for d in made if d.participant == who and d.author == HOST]
        status = r.admission(evidence, who)
        if mine:
            latest = max(mine, key=lambda d: (d.created_at, [-ord(ch) for ch in d.event_id]))
            expected = r.Admission.ADMITTED if latest.decision is Decision.ADMIT else r.Admission.DENIED
            assert status.admission is expected
            assert who not in due, "a decided participant is never decided again by policy"
        elif any(q == who for q, _ in requests):
            assert status.admission is r.Admission.WAITING
            assert (who in due) == status.auto_admit == (who in seated), "auto-admitted iff seated"
        else:
            assert status.admission is r.Admission.NOT_REQUESTED and who not in due


def test_records_carry_the_rule_and_complete_when_the_threshold_was_reached():
    evidence = _stayed({ALICE: 35, BOB: 20})
    records = {rec.learner: rec for rec in r.attendance_records(evidence, END + 60)}
    alice, bob = records[ALICE], records[BOB]
    assert (alice.met, alice.total_seconds, alice.required_seconds, alice.scheduled_seconds) == (True, 35 * MIN, 30 * MIN, 60 * MIN)
    assert not bob.met and alice.rule == ">=1800s OR >=50% of 3600s"
    assert len(alice.evidence) == 3, "her request, her leave claim and the host's admit"
    for rec in records.values():
        build_attendance_record(rec, created_at=END + 60)
    (done,) = r.completion_records(evidence, END + 60)
    assert (done.learner, done.completed_at) == (ALICE, START + 30 * MIN)
    build_completion_record(done, created_at=END + 60)
    assert r.completed_at(r.attendance_so_far(evidence, END)[BOB], 30 * MIN) is None


def test_the_issue_story_as_the_hosts_daemon_would_tick_through_it():
    """60 minutes: Alice admitted by her seat, Bob denied then admitted late; keys follow."""
    events: dict[str, list] = {"rooms": [], "meetings": [], "rsvps": SEATED[:2], "join_requests": [],
                               "decisions": [], "claims": [], "presences": []}
    schedule = None
    history = []

    def tick(at):
        nonlocal schedule
        evidence = ev(**events)
        if r.room_creation_due(evidence, at):
            events["rooms"].append(room(at=at))
            events["meetings"].append(meeting("planned", at))
            schedule = KeySchedule.open(HOST, at)
        for due in r.decisions_due(ev(**events), at):
            events["decisions"].append(decide(due.participant, "admit", at))
        if schedule is not None:
            schedule = schedule.catch_up(r.membership_changes(ev(**events)), at)
            history.append((at, schedule.current.number if schedule.current else None))
        return ev(**events)

    tick(START - 20 * MIN)
    assert events["rooms"] == [], "auto-start waits for its time"
    tick(START - 15 * MIN)
    assert len(events["rooms"]) == 1 and schedule.current.recipients == {HOST}
    events["join_requests"] += [request(ALICE, START - 5 * MIN), request(BOB, START - 4 * MIN)]
    events["rsvps"] = [SEATED[0], rsvp(BOB, "declined", START - 4000, of=LESSON)]
    tick(START - 4 * MIN)
    assert schedule.current.recipients == {HOST, ALICE}, "only the seated learner gets a key"
    r.check_decision(ev(**events), HOST, BOB, START - 3 * MIN)
    events["decisions"].append(decide(BOB, "deny", START - 3 * MIN))
    events["meetings"].append(meeting("live", START))
    tick(START)
    assert r.join_access(ev(**events), BOB, START + 60, key_epoch=1).url is None
    assert r.join_access(ev(**events), ALICE, START + 60, key_epoch=1).url is not None
    events["presences"] += [beat(ALICE, START + m * MIN) for m in range(-4, 11)]  # in from her admission, drops after 10 min
    events["claims"].append(claim(ALICE, "join", START + 20 * MIN))  # reconnects
    events["presences"] += [beat(ALICE, START + m * MIN) for m in range(20, 42)]
    tick(START + 20 * MIN)
    assert schedule.current.number == 1, "a dropped connection is not a leave"
    events["decisions"].append(decide(BOB, "admit", START + 25 * MIN))
    events["claims"].append(claim(BOB, "join", START + 25 * MIN))
    tick(START + 25 * MIN)
    assert schedule.current.number == 1 and BOB in schedule.current.recipients
    events["claims"].append(claim(ALICE, "leave", START + 42 * MIN))
    tick(START + 42 * MIN)
    assert schedule.current.number == 2 and schedule.current.recipients == {HOST, BOB}, "the new epoch skips Alice"
    events["claims"].append(claim(BOB, "leave", START + 45 * MIN))
    events["meetings"].append(meeting("ended", END, ends=END))
    final = tick(END)
    assert r.closure_due(final, END + 86400) is None
    done = r.live_completions(final, END)
    alice = r.attendance_so_far(final, END)[ALICE]
    assert alice.join_count == 2
    assert alice.intervals == ((START - 4 * MIN, START + 10 * MIN + 180), (START + 20 * MIN, START + 42 * MIN))
    assert done[ALICE].met and not done[BOB].met and done[BOB].total_seconds == 20 * MIN
    assert [number for _, number in history] == sorted(number for _, number in history), "epochs only move forward"


def test_without_presence_the_count_comes_from_public_joins_and_leaves():
    """Nobody publishes presence: the participant count every learner reads comes from the join
    requests and claims of admitted participants (a leave takes one out; the unadmitted count not)."""
    base = dict(rooms=[room()], meetings=[LIVE_AT], rsvps=SEATED,
                join_requests=[request(ALICE, START - 2 * MIN), request(BOB, START - MIN)],
                decisions=[decide(ALICE, "admit", START)])
    inside = ev(**base)
    assert r.conference_details(inside, START + 10 * MIN).participant_count == 1
    left = ev(**base, claims=[claim(ALICE, "leave", START + 5 * MIN)])
    assert r.conference_details(left, START + 10 * MIN).participant_count == 0
    back = ev(**base, claims=[claim(ALICE, "leave", START + 5 * MIN), claim(ALICE, "join", START + 6 * MIN)])
    assert r.conference_details(back, START + 10 * MIN).participant_count == 1


def test_attendance_so_far_never_counts_time_that_has_not_come():
    """Live before the scheduled start: a learner in the room for one minute has one minute."""
    early_live = dataclasses.replace(meeting("live", START - 3 * MIN), starts=START - 3 * MIN)
    evidence = ev(rooms=[room()], meetings=[early_live], rsvps=SEATED,
                  join_requests=[request(ALICE, START - 2 * MIN)], decisions=[decide(ALICE, "admit", START - 2 * MIN)])
    result = r.attendance_so_far(evidence, START - MIN)
    assert result[ALICE].total_seconds == MIN
