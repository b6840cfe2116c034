"""Attendance intervals: table tests for the peers' traps, and properties of the union."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.rules.attendance import (
    Admitted,
    AttendancePolicy,
    Heartbeat,
    Join,
    Leave,
    SessionWindow,
    bridge,
    compute_attendance,
    union,
)

from .factories import ALICE, BOB, START, lesson

WINDOW = SessionWindow(START, START + 3600)
POLICY = AttendancePolicy()


def J(at, conn="laptop", who=ALICE, source=""):
    return Join(who, START + at, conn, source)


def L(at, conn="laptop", who=ALICE, source=""):
    return Leave(who, START + at, conn, source)


def H(at, who=ALICE):
    return Heartbeat(who, START + at)


def spans(*pairs):
    return tuple((START + s, START + e) for s, e in pairs)


CASES = [
    # name, evidence, total, intervals, join_count, reconnections
    ("one segment", [J(0), L(1800)], 1800, [(0, 1800)], 1, 0),
    ("reconnect after a 60 s gap is bridged",
     [J(0), L(1200), J(1260), L(3000)], 3000, [(0, 3000)], 2, 1),
    ("reconnect must not zero the learner: a 10-minute gap is not bridged, both segments count",
     [J(0), L(1200), J(1800), L(3000)], 2400, [(0, 1200), (1800, 3000)], 2, 1),
    ("gap of exactly the reconnect grace is not bridged",
     [J(0), L(1000), J(1120), L(2000)], 1880, [(0, 1000), (1120, 2000)], 2, 1),
    ("two devices must not double count",
     [J(0, "laptop"), L(2000, "laptop"), J(1000, "phone"), L(3000, "phone")],
     3000, [(0, 3000)], 2, 0),
    ("a second device inside the first adds nothing",
     [J(0, "laptop"), L(3000, "laptop"), J(600, "phone"), L(900, "phone")],
     3000, [(0, 3000)], 2, 0),
    ("early join counts only inside the early-join grace",
     [J(-900), L(600)], 900, [(-300, 600)], 1, 0),
    ("time after the session end is not counted",
     [J(3000), L(5000)], 600, [(3000, 3600)], 1, 0),
    ("joined after the end: nothing", [J(3700), L(3900)], 0, [], 1, 0),
    ("dangling join without heartbeats closes at the session end",
     [J(600)], 3000, [(600, 3600)], 1, 0),
    ("dangling join closes at the last heartbeat plus the grace",
     [J(0)] + [H(t) for t in range(60, 1201, 60)], 1380, [(0, 1380)], 1, 0),
    ("heartbeats after a silence do not stretch a dangling join",
     [J(0)] + [H(t) for t in range(60, 601, 60)] + [H(3000)], 780, [(0, 780)], 1, 0),
    ("heartbeats before a dangling join do not cut it short",
     [H(100), J(1000)], 2600, [(1000, 3600)], 1, 0),
    ("heartbeats do not shorten a join that was closed by a leave",
     [J(0), L(2000), H(100)], 2000, [(0, 2000)], 1, 0),
    ("a missed leave: a second join keeps the interval open",
     [J(0), J(600), L(1800)], 1800, [(0, 1800)], 2, 0),
    ("a reconnect with a missed leave counts both heartbeat runs, as on two connections",
     [J(0)] + [H(t) for t in range(60, 601, 60)] + [J(1500)]
     + [H(t) for t in range(1560, 3601, 60)],
     2880, [(0, 780), (1500, 3600)], 2, 1),
    ("a rejoin inside the heartbeat run keeps one interval",
     [J(0), J(300)] + [H(t) for t in range(60, 1201, 60)], 1380, [(0, 1380)], 2, 0),
    ("a leave with nothing open is ignored",
     [L(100), J(200), L(1000)], 800, [(200, 1000)], 1, 0),
    ("leave and rejoin in the same second on one connection are continuous",
     [J(0), L(1000), J(1000), L(2000)], 2000, [(0, 2000)], 2, 0),
    ("join and leave in the same second are a blip",
     [J(500), L(500), J(1000), L(1600)], 600, [(1000, 1600)], 2, 0),
    ("same connection reported by two sources a second apart",
     [J(0, source="claim"), J(1, source="sfu"), L(1800, source="claim"), L(1801, source="sfu")],
     1800, [(0, 1800)], 2, 0),
]


@pytest.mark.parametrize(
    "name, evidence, total, intervals, joins, reconnections", CASES, ids=[c[0] for c in CASES]
)
def test_attendance_table(name, evidence, total, intervals, joins, reconnections):
    got = compute_attendance(evidence, WINDOW, POLICY)[ALICE]
    assert got.total_seconds == total
    assert got.intervals == spans(*intervals)
    assert got.join_count == joins
    assert got.reconnections == reconnections


def test_reconnect_grace_is_a_policy():
    evidence = [J(0), L(1000), J(1300), L(2000)]
    assert compute_attendance(evidence, WINDOW, POLICY)[ALICE].total_seconds == 1700
    wide = AttendancePolicy(reconnect_grace=600)
    assert compute_attendance(evidence, WINDOW, wide)[ALICE].total_seconds == 2000


def test_waiting_room_time_is_not_attendance():
    evidence = [J(-120), Admitted(ALICE, START + 300), L(1800)]
    got = compute_attendance(evidence, WINDOW, POLICY, waiting_room=True)[ALICE]
    assert got.intervals == spans((300, 1800))
    assert got.total_seconds == 1500
    without = compute_attendance(evidence, WINDOW, POLICY)[ALICE]
    assert without.total_seconds == 1920


def test_never_admitted_learner_has_zero_but_is_reported():
    got = compute_attendance([J(0), L(1800)], WINDOW, POLICY, waiting_room=True)[ALICE]
    assert got.total_seconds == 0 and got.intervals == () and got.join_count == 1


def test_rejoining_after_admission_does_not_queue_again():
    evidence = [J(0), Admitted(ALICE, START + 60), L(600), J(1200), L(1800)]
    evidence.append(Admitted(ALICE, START + 1500))
    got = compute_attendance(evidence, WINDOW, POLICY, waiting_room=True)[ALICE]
    assert got.intervals == spans((60, 600), (1200, 1800))


def test_learners_are_kept_apart_and_heartbeats_alone_are_not_attendance():
    evidence = [J(0, who=ALICE), L(600, who=ALICE), J(0, who=BOB), L(1200, who=BOB)]
    evidence += [H(t, who="c" * 64) for t in range(0, 3600, 60)]
    got = compute_attendance(evidence, WINDOW, POLICY)
    assert set(got) == {ALICE, BOB}
    assert (got[ALICE].total_seconds, got[BOB].total_seconds) == (600, 1200)


def test_window_for_lesson_uses_the_actual_end_when_known():
    sixty = lesson(60)
    assert SessionWindow.for_lesson(sixty) == SessionWindow(START, START + 3600)
    assert SessionWindow.for_lesson(sixty, ended_at=START + 2400).end == START + 2400
    ended_early = SessionWindow.for_lesson(sixty, ended_at=START + 2400)
    assert compute_attendance([J(0)], ended_early, POLICY)[ALICE].total_seconds == 2400


def test_a_missed_leave_on_one_connection_counts_as_on_two():
    first = [J(0)] + [H(t) for t in range(60, 601, 60)]
    second = [H(t) for t in range(1560, 3601, 60)]
    same = compute_attendance(first + [J(1500)] + second, WINDOW, POLICY)[ALICE]
    other = compute_attendance(first + [J(1500, "phone")] + second, WINDOW, POLICY)[ALICE]
    assert same.total_seconds == other.total_seconds == 2880
    assert same.intervals == other.intervals


def test_first_join_and_last_leave():
    got = compute_attendance([J(100), L(700), J(1500), L(2000)], WINDOW, POLICY)[ALICE]
    assert (got.first_joined_at, got.last_left_at) == (START + 100, START + 2000)


def test_out_of_order_and_duplicated_inputs_give_the_same_answer():
    evidence = [J(0), L(1200), J(1260, "phone"), H(1300), L(2400, "phone"), J(2500), H(2560)]
    expected = compute_attendance(evidence, WINDOW, POLICY)
    shuffled = evidence * 3
    random.Random(7).shuffle(shuffled)
    assert compute_attendance(shuffled, WINDOW, POLICY) == expected


def test_union_and_bridge_helpers():
    assert union([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]
    assert bridge([(0, 4), (5, 12), (200, 210)], 120) == [(0, 12), (200, 210)]


def test_unknown_evidence_is_refused():
    with pytest.raises(TypeError, match="evidence"):
        compute_attendance([("join", ALICE, START)], WINDOW, POLICY)


# Properties ---------------------------------------------------------------------------------

PEOPLE = (ALICE, BOB)
CONNECTIONS = ("laptop", "phone", "tablet")
moments = st.integers(min_value=-1200, max_value=4800)


@st.composite
def evidence_item(draw):
    who = draw(st.sampled_from(PEOPLE))
    at = START + draw(moments)
    kind = draw(st.sampled_from(("join", "leave", "heartbeat", "admitted")))
    if kind == "heartbeat":
        return Heartbeat(who, at)
    if kind == "admitted":
        return Admitted(who, at)
    cls = Join if kind == "join" else Leave
    return cls(who, at, draw(st.sampled_from(CONNECTIONS)))


evidence_lists = st.lists(evidence_item(), max_size=30)
settings_ = settings(max_examples=150, deadline=None)


@settings_
@given(evidence_lists, st.booleans(), st.randoms(use_true_random=False))
def test_property_order_independent(evidence, waiting_room, rng):
    shuffled = list(evidence)
    rng.shuffle(shuffled)
    assert compute_attendance(shuffled, WINDOW, POLICY, waiting_room=waiting_room) == (
        compute_attendance(evidence, WINDOW, POLICY, waiting_room=waiting_room)
    )


@settings_
@given(evidence_lists, st.booleans())
def test_property_idempotent_on_duplicated_evidence(evidence, waiting_room):
    once = compute_attendance(evidence, WINDOW, POLICY, waiting_room=waiting_room)
    twice = compute_attendance(evidence + evidence, WINDOW, POLICY, waiting_room=waiting_room)
    assert twice == once


@settings_
@given(evidence_lists, st.booleans())
def test_property_never_more_than_the_window(evidence, waiting_room):
    """The window is [start - early_join_grace, end]: the early grace is attendance by design."""
    lo = WINDOW.start - POLICY.early_join_grace
    for got in compute_attendance(evidence, WINDOW, POLICY, waiting_room=waiting_room).values():
        assert 0 <= got.total_seconds <= WINDOW.end - lo
        assert got.total_seconds == sum(e - s for s, e in got.intervals)
        for (s, e), nxt in zip(got.intervals, got.intervals[1:] + ((None, None),), strict=False):
            assert lo <= s < e <= WINDOW.end
            if nxt[0] is not None:
                assert nxt[0] - e >= POLICY.reconnect_grace


def _covers(outer, inner):
    return all(any(a <= s and e <= b for a, b in outer) for s, e in inner)


@settings_
@given(
    evidence_lists,
    st.booleans(),
    st.sampled_from(PEOPLE),
    moments,
    st.integers(min_value=0, max_value=3000),
)
def test_property_monotone_in_added_presence(evidence, waiting_room, who, at, length):
    before = compute_attendance(evidence, WINDOW, POLICY, waiting_room=waiting_room)
    added = evidence + [
        Join(who, START + at, "new-device"),
        Leave(who, START + at + length, "new-device"),
    ]
    after = compute_attendance(added, WINDOW, POLICY, waiting_room=waiting_room)
    for pubkey, was in before.items():
        assert after[pubkey].total_seconds >= was.total_seconds
        assert _covers(after[pubkey].intervals, was.intervals)
