"""RSVP vocabularies, the answer that counts, seats and the waitlist, and when RSVPs are taken."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import MalformedEvent, RsvpRefused
from nostr_training.kinds.calendar import RsvpStatus
from nostr_training.rules.lifecycle import SessionState
from nostr_training.rules.rsvp import (
    check_rsvp,
    latest_rsvps,
    material_changes,
    material_revisions,
    needs_reconfirmation,
    promotion_times,
    promotions,
    reconfirmations,
    revision_sequence,
    roster,
    roster_rows,
    rsvp_answer,
)

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
    with pytest.raises(RsvpRefused, match="RSVPs closed"):
        check_rsvp(lesson(rsvp_until=START - 3600), SessionState.SCHEDULED, START - 3600)
    check_rsvp(lesson(rsvp_until=START - 3600), SessionState.SCHEDULED, START - 3601)
    with pytest.raises(RsvpRefused, match="does not take RSVPs"):
        check_rsvp(lesson(requires_rsvp=False), SessionState.SCHEDULED, START - 60)


# Cut-off, promotions, revisions ----------------------------------------------------------------


def test_answers_that_reach_the_host_after_the_cut_off_do_not_count():
    cut = lesson(rsvp_until=START - 86400)
    answers = [
        rsvp(ALICE, "accepted", T0),
        rsvp(ALICE, "declined", START - 3600),
        rsvp(BOB, "accepted", START - 2 * 86400, event_id="b" * 64),
    ]
    got = roster(cut, answers, first_seen={"b" * 64: START - 3600})
    assert got.confirmed == (ALICE,) and BOB not in got.tentative + got.waitlist


def test_promotion_times_name_who_waited_and_when_the_seat_came_free():
    two_seats = lesson(max_participants=2)
    answers = [
        rsvp(ALICE, "accepted", T0 + 10),
        rsvp(BOB, "accepted", T0 + 20),
        rsvp(CAROL, "accepted", T0 + 30),
        rsvp(DAVE, "accepted", T0 + 40),
        rsvp(ALICE, "declined", T0 + 50),
        rsvp(ERIN, "accepted", T0 + 60),
        rsvp(BOB, "tentative", T0 + 70),
    ]
    assert promotion_times(two_seats, answers) == {CAROL: T0 + 50, DAVE: T0 + 70}
    assert promotion_times(lesson(), answers) == {}
    assert promotion_times(two_seats, answers[:4]) == {}


def _replayed_promotions(target, answers):
    """Brute force: the roster after every answer, and when each learner moved from line to seat."""
    promoted: dict[str, int] = {}
    before = roster(target, [])
    for _i, answer in enumerate(sorted(answers, key=lambda a: a.created_at)):
        after = roster(target, [a for a in answers if a.created_at <= answer.created_at])
        for who in promotions(before, after):
            promoted[who] = answer.created_at
        for who in list(promoted):
            if who not in after.confirmed:
                del promoted[who]
        before = after
    return promoted


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([ALICE, BOB, CAROL, DAVE, ERIN]), st.sampled_from(list(RsvpStatus))), max_size=14),
    st.integers(min_value=1, max_value=3),
)
def test_promotion_times_agree_with_replaying_every_answer(raw, seats):
    target = lesson(max_participants=seats)
    answers = [rsvp(who, status, T0 + 10 * i, event_id=f"{i:064x}") for i, (who, status) in enumerate(raw)]
    assert promotion_times(target, answers) == _replayed_promotions(target, answers)


REV1, REV2, REV3 = "1" * 64, "2" * 64, "3" * 64
FIRST = lesson(created_at=T0, event_id=REV1)


@pytest.mark.parametrize(
    "change, fields",
    [
        (dict(start=START + 3600, end=START + 7200), {"start"}),
        (dict(end=START + 7200), {"duration"}),
        (dict(start=START - 600), {"start", "duration"}),
        (dict(title="New title", summary="x", start_tzid="Europe/Berlin"), set()),
        (dict(location="https://meet.example/a"), set()),
        (dict(room="30312:" + HOST + ":room-1"), set()),
    ],
)
def test_material_changes_are_time_duration_and_a_replaced_room_or_link(change, fields):
    assert material_changes(FIRST, replace(FIRST, **change)) == fields


def test_replacing_or_removing_a_room_or_link_is_material():
    with_room = replace(FIRST, location="https://meet.example/a", room="30312:" + HOST + ":room-1")
    assert material_changes(with_room, replace(with_room, location="https://meet.example/b")) == {"location"}
    assert material_changes(with_room, replace(with_room, room=None, location=None)) == {"room", "location"}


def test_sequence_counts_material_changes_only_in_any_input_order():
    moved = replace(FIRST, start=START + 3600, end=START + 7200, created_at=T0 + 100, event_id=REV2)
    retitled = replace(moved, title="Renamed", created_at=T0 + 200, event_id=REV3)
    assert revision_sequence([FIRST]) == 0
    assert revision_sequence([retitled, FIRST, moved, moved]) == 1
    assert [r.event_id for r in material_revisions([retitled, FIRST, moved])] == [REV1, REV2]
    back = replace(FIRST, created_at=T0 + 300, event_id="4" * 64)
    assert revision_sequence([FIRST, moved, retitled, back]) == 2


MOVED = replace(FIRST, start=START + 3600, end=START + 7200, created_at=T0 + 100, event_id=REV2)
RETITLED = replace(MOVED, title="Renamed", created_at=T0 + 200, event_id=REV3)


@pytest.mark.parametrize(
    "name, answer, expected",
    [
        ("e names the revision before the move", replace(rsvp(ALICE, "accepted", T0 + 500), revision=REV1), True),
        ("e names the move itself", replace(rsvp(ALICE, "accepted", T0 + 50), revision=REV2), False),
        ("e names a later non-material edit", replace(rsvp(ALICE, "tentative", T0 + 50), revision=REV3), False),
        ("no e, answered before the move", rsvp(ALICE, "accepted", T0 + 99), True),
        ("no e, answered after the move", rsvp(ALICE, "accepted", T0 + 100), False),
        ("e names a revision never seen: judged by time", replace(rsvp(ALICE, "accepted", T0 + 10), revision="f" * 64), True),
        ("a decline never needs re-confirmation", replace(rsvp(ALICE, "declined", T0 + 10), revision=REV1), False),
    ],
)
def test_needs_reconfirmation(name, answer, expected):
    assert needs_reconfirmation(answer, [RETITLED, FIRST, MOVED]) is expected


def test_nothing_needs_reconfirmation_before_any_material_change():
    assert not needs_reconfirmation(replace(rsvp(ALICE, "accepted", T0), revision=REV1), [FIRST])


def test_roster_rows_for_the_instructor_view():
    capped = replace(MOVED, max_participants=1)
    answers = [
        replace(rsvp(ALICE, "accepted", T0 + 10, of=capped), revision=REV1),
        rsvp(BOB, "accepted", T0 + 150, of=capped),
        rsvp(CAROL, "tentative", T0 + 160, of=capped),
        rsvp(DAVE, "declined", T0 + 170, of=capped),
        rsvp(ERIN, "accepted", T0 + 180, of=capped),
        rsvp(HOST, "accepted", T0 + 190, of=capped),
    ]
    rows = roster_rows([replace(FIRST, max_participants=1), capped], answers)
    assert [(r.pubkey, r.status, r.waitlist_position, r.needs_reconfirmation) for r in rows] == [
        (ALICE, "confirmed", None, True),
        (BOB, "waitlisted", 1, False),
        (ERIN, "waitlisted", 2, False),
        (CAROL, "tentative", None, False),
        (DAVE, "declined", None, False),
    ]
    assert reconfirmations([FIRST, capped], answers) == (ALICE,)
    promoted = roster_rows([capped], answers + [rsvp(ALICE, "declined", T0 + 400, of=capped)])
    assert [(r.pubkey, r.status, r.promoted_at) for r in promoted[:1]] == [(BOB, "confirmed", T0 + 400)]
