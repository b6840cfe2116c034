"""Attendance claims, host records and completion records."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import coordinate

from kinds_samples import HOST, LEARNER, START, lesson_value, replaced, resigned, samples, signed, without


@pytest.fixture(scope="module")
def events():
    return {
        "claim": signed(samples()["attendance_claim"][0], LEARNER),
        "record": signed(samples()["attendance_record"][0]),
        "completion": signed(samples()["completion_record"][0]),
    }


def test_claim_reads_back(events):
    claim = k.parse_attendance_claim(events["claim"])
    assert claim.author == LEARNER.public_key
    assert claim.action is k.AttendanceAction.JOIN
    assert claim.lesson.startswith("31923:") and claim.room.startswith("30312:")


def test_record_reads_back(events):
    record = k.parse_attendance_record(events["record"])
    assert (record.learner, record.host) == (LEARNER.public_key, HOST.public_key)
    assert record.total_seconds == 2400 and record.join_count == 3 and record.met
    assert record.intervals == ((START, START + 1200), (START + 1500, START + 2700))
    assert record.d == k.attendance_record_d(record.lesson, record.learner)


def test_record_d_is_one_per_lesson_and_learner():
    lesson, other = lesson_value().coordinate, lesson_value(d="x").coordinate
    assert k.attendance_record_d(lesson, LEARNER.public_key) == k.attendance_record_d(lesson, LEARNER.public_key)
    assert k.attendance_record_d(lesson, LEARNER.public_key) != k.attendance_record_d(other, LEARNER.public_key)
    assert k.attendance_record_d(lesson, LEARNER.public_key) != k.attendance_record_d(lesson, HOST.public_key)
    assert k.attendance_record_d(lesson, LEARNER.public_key) != k.completion_record_d(lesson, LEARNER.public_key)


def _intervals(event, *pairs):
    tags = tuple(t for t in event.tags if t[0] != "interval") + tuple(("interval", *p) for p in pairs)
    return resigned(event, tags=tags)


RECORD_CASES = [
    ("missing total", lambda e: without(e, "total_seconds"), MissingTag, "'total_seconds'"),
    ("total not numeric", lambda e: replaced(e, "total_seconds", "40m"), MalformedEvent, "total_seconds: must be decimal digits"),
    ("total disagrees", lambda e: replaced(e, "total_seconds", "2401"), MalformedEvent, "differs from the intervals' sum"),
    ("overlap", lambda e: _intervals(e, (str(START), str(START + 1600)), (str(START + 1500), str(START + 2300))), MalformedEvent, "overlaps"),
    ("backwards interval", lambda e: _intervals(e, (str(START + 10), str(START))), MalformedEvent, "does not end after"),
    ("interval missing end", lambda e: _intervals(e, (str(START),)), MalformedEvent, "interval: must be ['interval', start, end]"),
    ("fewer joins than intervals", lambda e: replaced(e, "join_count", "1"), MalformedEvent, "join_count 1 is less"),
    ("met not boolean", lambda e: replaced(e, "met", "yes"), MalformedEvent, "met: must be 'true' or 'false'"),
    ("missing met", lambda e: without(e, "met"), MissingTag, "'met'"),
    ("missing rule", lambda e: without(e, "rule"), MissingTag, "'rule'"),
    ("no learner", lambda e: resigned(e, tags=tuple(t for t in e.tags if not (t[0] == "p" and t[3] == "learner"))), MalformedEvent, "no p tag with role learner"),
    ("foreign d", lambda e: replaced(e, "d", "my-own-d"), MalformedEvent, "d: is not the one derived"),
    ("wrong kind", lambda e: resigned(e, kind=31931), MalformedEvent, "expected kind 31930"),
]


@pytest.mark.parametrize("name,mutate,error,needle", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_record_parser_refuses(events, name, mutate, error, needle):
    bad = mutate(events["record"])
    with pytest.raises(error) as info:
        k.parse_attendance_record(bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


def test_record_builder_refuses_inconsistent_totals():
    record = k.parse_attendance_record(signed(samples()["attendance_record"][0]))
    with pytest.raises(MalformedEvent, match="differs"):
        k.build_attendance_record(dataclasses.replace(record, total_seconds=1), created_at=START)


CLAIM_CASES = [
    ("unknown action", lambda e: replaced(e, "action", "wave", keys=LEARNER), MalformedEvent, "action: must be one of join|leave"),
    ("missing action", lambda e: without(e, "action", LEARNER), MissingTag, "'action'"),
    ("missing lesson", lambda e: without(e, "a", LEARNER), MissingTag, "'a'"),
]


@pytest.mark.parametrize("name,mutate,error,needle", CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES])
def test_claim_parser_refuses(events, name, mutate, error, needle):
    bad = mutate(events["claim"])
    with pytest.raises(error) as info:
        k.parse_attendance_claim(bad)
    assert needle in str(info.value)


def test_completion_reads_back(events):
    done = k.parse_completion_record(events["completion"])
    assert done.basis is k.CompletionBasis.ATTENDANCE and done.learner == LEARNER.public_key
    assert done.completed_at == START + 3600


def test_course_completion_is_accepted():
    course = coordinate(31924, HOST.public_key, "jail-support")
    record = k.CompletionRecord(HOST.public_key, course, LEARNER.public_key, START, k.CompletionBasis.REQUIRED_LESSONS, START)
    assert k.parse_completion_record(signed(k.build_completion_record(record, created_at=START))).subject == course


COMPLETION_CASES = [
    ("unknown basis", lambda e: replaced(e, "basis", "vibes"), MalformedEvent, "basis: must be one of"),
    ("completed_at not numeric", lambda e: replaced(e, "completed_at", "today"), MalformedEvent, "completed_at: must be decimal digits"),
    ("subject is a room", lambda e: replaced(e, "a", coordinate(30312, HOST.public_key, "r")), MalformedEvent, "no a tag points at kind 31923|31924"),
    ("foreign d", lambda e: replaced(e, "d", "x"), MalformedEvent, "d: is not the one derived"),
]


@pytest.mark.parametrize("name,mutate,error,needle", COMPLETION_CASES, ids=[c[0] for c in COMPLETION_CASES])
def test_completion_parser_refuses(events, name, mutate, error, needle):
    bad = mutate(events["completion"])
    with pytest.raises(error) as info:
        k.parse_completion_record(bad)
    assert needle in str(info.value)


def test_deterministic_d_values_match_the_documented_formula():
    lesson, learner = lesson_value().coordinate, LEARNER.public_key

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    assert k.attendance_record_d(lesson, learner) == digest(f"attendance|{lesson}|{learner}")[:32]
    assert k.completion_record_d(lesson, learner) == digest(f"completion|{lesson}|{learner}")[:32]
    assert k.rsvp_d(lesson) == "rsvp-" + digest(lesson)[:32]
