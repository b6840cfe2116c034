"""In-person events: RSVP words in every vocabulary, event RSVPs as lesson RSVPs, door check-ins."""

from __future__ import annotations

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent
from nostr_training.event import coordinate, sign_event
from nostr_training.keys import Keys
from nostr_training.kinds.calendar import RsvpStatus
from nostr_training.kinds.training_events import DoorAction, DoorCheck, TrainingLink
from nostr_training.rules.events import event_attendance, lesson_rsvp, rsvp_sync
from nostr_training.rules.rsvp import roster

from .factories import ALICE, BOB, CAROL, HOST, START, lesson, rsvp

MINUTE = 60
EVENT = coordinate(k.LESSON, HOST, "street-day")
LESSON = lesson(60)
LINK = TrainingLink(EVENT, HOST, f"31924:{HOST}:jail-support", LESSON.coordinate, "Town hall")


@pytest.mark.parametrize(
    ("word", "status", "enrol"),
    [
        ("going", RsvpStatus.ACCEPTED, True),
        ("maybe", RsvpStatus.TENTATIVE, True),
        ("not_going", RsvpStatus.DECLINED, False),
        ("Not Going", RsvpStatus.DECLINED, False),
        ("accepted", RsvpStatus.ACCEPTED, True),
        ("tentative", RsvpStatus.TENTATIVE, True),
        ("declined", RsvpStatus.DECLINED, False),
        ("confirmed", RsvpStatus.ACCEPTED, True),
        ("attending", RsvpStatus.ACCEPTED, True),
        ("not_attending", RsvpStatus.DECLINED, False),
    ],
)
def test_every_rsvp_vocabulary_maps_to_one_training_answer(word, status, enrol):
    sync = rsvp_sync(word)
    assert (sync.status, sync.enrol, sync.withdraw) == (status, enrol, not enrol)


def test_an_unknown_rsvp_word_is_refused():
    with pytest.raises(MalformedEvent, match="unknown RSVP answer"):
        rsvp_sync("perhaps")


def test_going_to_the_event_confirms_that_learner_at_the_linked_lesson():
    answers = [
        rsvp(ALICE, "accepted", START - 900, of=lesson(d="street-day"), event_id="a" * 64),
        rsvp(BOB, "declined", START - 800, of=lesson(d="street-day"), event_id="b" * 64),
        rsvp(CAROL, "accepted", START - 700, of=lesson(d="elsewhere"), event_id="c" * 64),
    ]
    as_lesson = [r for r in (lesson_rsvp(a, LINK) for a in answers) if r is not None]
    assert [(r.author, r.lesson, r.event_id) for r in as_lesson] == [
        (ALICE, LESSON.coordinate, "a" * 64),
        (BOB, LESSON.coordinate, "b" * 64),
    ]
    seated = roster(LESSON, as_lesson)
    assert seated.confirmed == (ALICE,) and seated.declined == (BOB,)


def test_an_event_linked_to_a_course_only_sets_no_lesson_rsvp():
    course_only = TrainingLink(EVENT, HOST, LINK.course, None)
    assert lesson_rsvp(rsvp(ALICE, "accepted", START, of=lesson(d="street-day")), course_only) is None


def door(learner: str, action: str, minutes: int, *, by: str = HOST, of: str | None = None) -> DoorCheck:
    at = START + minutes * MINUTE
    return DoorCheck(by, of or LESSON.coordinate, learner, DoorAction(action), at, at)


def test_45_minutes_at_the_door_complete_a_60_minute_lesson_and_20_do_not():
    checks = [door(ALICE, "check_in", 0), door(ALICE, "check_out", 45), door(BOB, "check_in", 10), door(BOB, "check_out", 30)]
    result = event_attendance(LESSON, checks)
    assert result[ALICE].attendance.total_seconds == 45 * MINUTE and result[ALICE].completion.met
    assert result[BOB].attendance.total_seconds == 20 * MINUTE and not result[BOB].completion.met
    assert result[BOB].completion.required_seconds == 30 * MINUTE


def test_a_check_in_without_check_out_counts_to_the_end_and_order_or_duplicates_do_not_matter():
    checks = [door(ALICE, "check_out", 50), door(ALICE, "check_in", 5), door(CAROL, "check_in", 40)]
    forward = event_attendance(LESSON, checks)
    backward = event_attendance(LESSON, list(reversed(checks)) + checks)
    assert forward == backward
    assert forward[CAROL].attendance.total_seconds == 20 * MINUTE
    assert forward[ALICE].attendance.total_seconds == 45 * MINUTE


def test_leaving_and_coming_back_adds_up():
    checks = [door(ALICE, "check_in", 0), door(ALICE, "check_out", 15), door(ALICE, "check_in", 30), door(ALICE, "check_out", 50)]
    result = event_attendance(LESSON, checks)[ALICE]
    assert result.attendance.total_seconds == 35 * MINUTE and result.completion.met


def test_only_the_hosts_checks_for_this_lesson_count():
    checks = [
        door(ALICE, "check_in", 0, by=BOB),
        door(ALICE, "check_out", 59, by=BOB),
        door(CAROL, "check_in", 0, of=coordinate(k.LESSON, HOST, "other")),
        door(HOST, "check_in", 0),
    ]
    assert event_attendance(LESSON, checks) == {}


def test_signed_door_checks_from_the_wire_complete_the_lesson():
    host = Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
    learner = Keys.from_hex("c15d2a640a7bd00f291e074e5e9c1b0bb8b2bbb0f0c2b4a7e5b8e0a63d4a1b2c")
    wire_lesson = lesson(60, author=host.public_key, instructor=host.public_key)
    signed = [
        sign_event(
            k.build_door_check(wire_lesson.coordinate, learner.public_key, action, at=START + m * MINUTE, created_at=START + 3600),
            host.secret,
        )
        for action, m in (("check_in", 2), ("check_out", 47))
    ]
    checks = [k.parse_door_check(event) for event in signed]
    result = event_attendance(wire_lesson, checks)[learner.public_key]
    assert result.attendance.total_seconds == 45 * MINUTE and result.completion.met
