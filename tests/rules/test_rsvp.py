"""RSVP vocabularies, the answer that counts, seats and the waitlist, and when RSVPs are taken."""

from __future__ import annotations

import random

import pytest

from nostr_training.errors import MalformedEvent, RsvpRefused
from nostr_training.kinds.calendar import RsvpStatus
from nostr_training.rules.lifecycle import SessionState
from nostr_training.rules.rsvp import check_rsvp, latest_rsvps, promotions, roster, rsvp_answer

from .factories import ALICE, BOB, CAROL, DAVE, ERIN, HOST, START, lesson, rsvp

ACC, TEN, DEC = RsvpStatus.ACCEPTED, RsvpStatus.TENTATIVE, RsvpStatus.DECLINED
T0 = START - 10 * 86400


@pytest.mark.parametrize(
    "word, status",
    [
        ("accepted", ACC), ("tentative", TEN), ("declined", DEC),
        ("confirmed", ACC),
        ("going", ACC), ("maybe", TEN), ("not_going", DEC),
        ("Going", ACC), ("not-going", DEC), (" not going ", DEC),
        ("attending", ACC), ("not_attending", DEC),
        (RsvpStatus.TENTATIVE, TEN),
    ],
)
def test_every_vocabulary_maps_to_nip52(word, status):
    assert rsvp_answer(word) is status


@pytest.mark.parametrize("word", ["yes", "", "interested"])
def test_unknown_answers_are_refused(word):
    with pytest.raises(MalformedEvent, match="status"):
        rsvp_answer(word)


def test_latest_answer_counts_whatever_its_d():
    answers = [
        rsvp(ALICE, "accepted", T0, d="ours"),
        rsvp(ALICE, "declined", T0 + 60, d="amethyst-random-d"),
        rsvp(BOB, "tentative", T0),
    ]
    latest = latest_rsvps(answers, lesson().coordinate)
    assert latest[ALICE].status is DEC and latest[BOB].status is TEN


def test_same_second_tie_goes_to_the_lowest_event_id():
    answers = [
        rsvp(ALICE, "accepted", T0, event_id="b" * 64),
        rsvp(ALICE, "declined", T0, event_id="a" * 64),
    ]
    assert latest_rsvps(answers, lesson().coordinate)[ALICE].status is DEC
    assert latest_rsvps(answers[::-1], lesson().coordinate)[ALICE].status is DEC


def test_answers_to_other_lessons_are_ignored():
    other = lesson(d="lesson-2")
    assert latest_rsvps([rsvp(ALICE, "accepted", T0, of=other)], lesson().coordinate) == {}


def test_capacity_seats_in_rsvp_order_and_the_rest_wait():
    two_seats = lesson(max_participants=2)
    answers = [
        rsvp(CAROL, "accepted", T0 + 30),
        rsvp(ALICE, "accepted", T0 + 10),
        rsvp(DAVE, "accepted", T0 + 40),
        rsvp(BOB, "accepted", T0 + 20),
    ]
    got = roster(two_seats, answers)
    assert got.confirmed == (ALICE, BOB)
    assert got.waitlist == (CAROL, DAVE)
    assert got.waitlist_position(DAVE) == 2 and got.waitlist_position(ALICE) is None
    assert got.seats_left == 0


def test_a_decline_promotes_the_first_in_line():
    two_seats = lesson(max_participants=2)
    answers = [
        rsvp(ALICE, "accepted", T0 + 10),
        rsvp(BOB, "accepted", T0 + 20),
        rsvp(CAROL, "accepted", T0 + 30),
        rsvp(DAVE, "accepted", T0 + 40),
    ]
    before = roster(two_seats, answers)
    after = roster(two_seats, answers + [rsvp(ALICE, "declined", T0 + 50)])
    assert after.confirmed == (BOB, CAROL)
    assert after.waitlist == (DAVE,)
    assert after.declined == (ALICE,)
    assert promotions(before, after) == (CAROL,)


def test_tentative_never_takes_a_seat():
    one_seat = lesson(max_participants=1)
    answers = [
        rsvp(ALICE, "tentative", T0),
        rsvp(BOB, "accepted", T0 + 10),
        rsvp(CAROL, "accepted", T0 + 20),
    ]
    got = roster(one_seat, answers)
    assert got.confirmed == (BOB,) and got.waitlist == (CAROL,) and got.tentative == (ALICE,)


def test_accepting_again_after_a_maybe_goes_to_the_back_but_repeating_yes_keeps_the_place():
    one_seat = lesson(max_participants=1)
    answers = [
        rsvp(ALICE, "accepted", T0, d="x"),
        rsvp(BOB, "accepted", T0 + 10),
        rsvp(ALICE, "tentative", T0 + 20, d="x"),
        rsvp(ALICE, "accepted", T0 + 30, d="x"),
    ]
    assert roster(one_seat, answers).confirmed == (BOB,)
    kept = [
        rsvp(ALICE, "accepted", T0, d="x"),
        rsvp(BOB, "accepted", T0 + 10),
        rsvp(ALICE, "accepted", T0 + 30, d="y"),
    ]
    assert roster(one_seat, kept).confirmed == (ALICE,)


def test_unlimited_lesson_seats_everyone_and_the_instructor_takes_no_seat():
    open_lesson = lesson()
    answers = [
        rsvp(HOST, "accepted", T0),
        rsvp(ALICE, "accepted", T0 + 1),
        rsvp(BOB, "accepted", T0 + 2),
    ]
    got = roster(open_lesson, answers)
    assert got.confirmed == (ALICE, BOB) and got.waitlist == () and got.seats_left is None


def test_roster_does_not_depend_on_input_order_or_duplicates():
    capped = lesson(max_participants=2)
    answers = [
        rsvp(ALICE, "accepted", T0 + 5), rsvp(BOB, "accepted", T0 + 5, event_id="1" * 64),
        rsvp(CAROL, "accepted", T0 + 5, event_id="0" * 64), rsvp(DAVE, "tentative", T0),
        rsvp(ERIN, "declined", T0), rsvp(ALICE, "declined", T0 + 1),
    ]
    expected = roster(capped, answers)
    assert expected.confirmed == (CAROL, BOB) and expected.waitlist == (ALICE,)
    for seed in range(5):
        shuffled = answers * 2
        random.Random(seed).shuffle(shuffled)
        assert roster(capped, shuffled) == expected


def test_rsvp_is_taken_only_while_scheduled():
    check_rsvp(lesson(), SessionState.SCHEDULED, START - 1)
    check_rsvp(lesson(max_participants=1), SessionState.ROOM_CREATED, START - 1)
    with pytest.raises(RsvpRefused, match="started"):
        check_rsvp(lesson(), SessionState.SCHEDULED, START)
    with pytest.raises(RsvpRefused, match="live"):
        check_rsvp(lesson(), SessionState.LIVE, START - 60)
    with pytest.raises(RsvpRefused, match="does not take RSVPs"):
        check_rsvp(lesson(requires_rsvp=False), SessionState.SCHEDULED, START - 60)
