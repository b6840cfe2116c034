"""Attendance: learners' join/leave claims (8315), the host's record (31930), completion (31931).

A claim is evidence a learner signs; the record is what counts, signed by the host (or the room
service on the host's behalf). Records are addressable with a ``d`` derived from (lesson,
learner), so there is one current record per learner per lesson and a newer one replaces it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..event import Event, EventTemplate, coordinate
from . import ATTENDANCE_CLAIM as ATTENDANCE_CLAIM_KIND
from . import ATTENDANCE_RECORD as ATTENDANCE_RECORD_KIND
from . import COMPLETION_RECORD as COMPLETION_RECORD_KIND
from . import COURSE as COURSE_KIND
from . import LESSON as LESSON_KIND
from . import ROOM as ROOM_KIND
from . import _wire
from ._wire import Reader

__all__ = [
    "AttendanceAction",
    "CompletionBasis",
    "AttendanceClaim",
    "AttendanceRecord",
    "CompletionRecord",
    "attendance_record_d",
    "completion_record_d",
    "build_attendance_claim",
    "parse_attendance_claim",
    "build_attendance_record",
    "parse_attendance_record",
    "build_completion_record",
    "parse_completion_record",
]


CLAIM_ALT = "Learner's join/leave claim for a live training session"
RECORD_ALT = "Attendance record for a live training session"
COMPLETION_ALT = "Training completion record"


class AttendanceAction(enum.Enum):
    JOIN = "join"
    LEAVE = "leave"


class CompletionBasis(enum.Enum):
    """What a completion rests on."""

    ATTENDANCE = "attendance"
    RECORDING = "recording"
    REQUIRED_LESSONS = "required_lessons"
    INSTRUCTOR = "instructor"


@dataclass(frozen=True, slots=True)
class AttendanceClaim:
    """A learner says "I joined" or "I left" at ``created_at``: evidence, not the record."""

    author: str
    lesson: str
    action: AttendanceAction
    created_at: int
    room: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class AttendanceRecord:
    """The host's current account of one learner at one lesson.

    ``intervals`` are merged, sorted and disjoint ``(start, end)`` pairs (end exclusive) and
    ``total_seconds`` is their sum; ``rule`` names the rule applied, ``required_seconds`` its
    threshold for this lesson, and ``met`` whether the learner reached it.
    """

    author: str
    lesson: str
    learner: str
    total_seconds: int
    join_count: int
    intervals: tuple[tuple[int, int], ...]
    rule: str
    met: bool
    created_at: int
    required_seconds: int | None = None
    host: str | None = None
    """The host the record speaks for, when a room service signed it."""
    evidence: tuple[str, ...] = ()
    d: str = ""
    event_id: str | None = None
    minimum_seconds: int | None = None
    minimum_percent: int | None = None
    scheduled_seconds: int | None = None
    """The rule's inputs, so a reader can recheck ``required_seconds`` without the lesson."""

    @property
    def coordinate(self) -> str:
        return coordinate(ATTENDANCE_RECORD_KIND, self.author, self.d or attendance_record_d(self.lesson, self.learner))


@dataclass(frozen=True, slots=True)
class CompletionRecord:
    """A learner completed a lesson or a course (``subject``), signed by the host or school."""

    author: str
    subject: str
    learner: str
    completed_at: int
    basis: CompletionBasis
    created_at: int
    evidence: tuple[str, ...] = ()
    d: str = ""
    event_id: str | None = None

    @property
    def coordinate(self) -> str:
        return coordinate(COMPLETION_RECORD_KIND, self.author, self.d or completion_record_d(self.subject, self.learner))


def attendance_record_d(lesson: str, learner: str) -> str:
    return _wire.deterministic_d("attendance", lesson, learner)


def completion_record_d(subject: str, learner: str) -> str:
    return _wire.deterministic_d("completion", subject, learner)


# Claim 8315 -----------------------------------------------------------------------------------


def build_attendance_claim(
    lesson: str, action: AttendanceAction | str, *, created_at: int, room: str | None = None
) -> EventTemplate:
    try:
        act = AttendanceAction(action)
    except ValueError:
        raise _wire.malformed("action", f"must be join|leave, got {action!r}") from None
    tags: list[tuple[str, ...]] = [
        ("a", _wire.check_coordinate("a", lesson, (LESSON_KIND,))),
        ("action", act.value),
    ]
    if room is not None:
        tags.append(("a", _wire.check_coordinate("a", room, (ROOM_KIND,))))
    tags.append(_wire.alt(CLAIM_ALT))
    return EventTemplate(ATTENDANCE_CLAIM_KIND, tuple(tags), "", created_at)


def parse_attendance_claim(event: Event) -> AttendanceClaim:
    r = Reader(event, ATTENDANCE_CLAIM_KIND)
    lesson = r.one_coordinate((LESSON_KIND,))
    action = AttendanceAction(r.choice("action", r.required("action"), [a.value for a in AttendanceAction]))
    return AttendanceClaim(
        author=event.pubkey,
        lesson=lesson,
        action=action,
        created_at=event.created_at,
        room=next(iter(r.coordinates((ROOM_KIND,))), None),
        event_id=event.id,
    )


# Record 31930 ---------------------------------------------------------------------------------


def _interval_problem(intervals: tuple[tuple[int, int], ...], total: int, joins: int) -> str | None:
    previous_end = None
    for start, end in intervals:
        if end <= start:
            return f"interval {start}..{end} does not end after it starts"
        if previous_end is not None and start <= previous_end:
            return f"interval {start}..{end} overlaps or touches the one before; intervals must be merged"
        previous_end = end
    covered = sum(end - start for start, end in intervals)
    if covered != total:
        return f"total_seconds {total} differs from the intervals' sum {covered}"
    if joins < len(intervals):
        return f"join_count {joins} is less than the {len(intervals)} intervals"
    return None


def build_attendance_record(record: AttendanceRecord, *, created_at: int) -> EventTemplate:
    """A 31930 for (lesson, learner); ``record.author``, ``d`` and ``event_id`` are not written."""
    _wire.check_coordinate("a", record.lesson, (LESSON_KIND,))
    _wire.check_pubkey("p", record.learner)
    _wire.check_text("rule", record.rule)
    _wire.check_int("total_seconds", record.total_seconds)
    _wire.check_int("join_count", record.join_count)
    for start, end in record.intervals:
        _wire.check_int("interval", start)
        _wire.check_int("interval", end)
    problem = _interval_problem(tuple(record.intervals), record.total_seconds, record.join_count)
    if problem:
        raise _wire.malformed("interval", problem)
    tags: list[tuple[str, ...]] = [
        ("d", attendance_record_d(record.lesson, record.learner)),
        ("a", record.lesson),
        ("p", record.learner, "", "learner"),
    ]
    if record.host is not None:
        tags.append(("p", _wire.check_pubkey("p", record.host), "", "host"))
    tags += [
        ("total_seconds", str(record.total_seconds)),
        ("join_count", str(record.join_count)),
    ]
    tags += [("interval", str(start), str(end)) for start, end in record.intervals]
    tags.append(("rule", record.rule))
    for name in ("required_seconds", "minimum_seconds", "minimum_percent", "scheduled_seconds"):
        value = getattr(record, name)
        if value is not None:
            tags.append((name, _wire.check_int(name, value, maximum=100 if name == "minimum_percent" else None)))
    tags.append(("met", _wire.bool_text(record.met)))
    tags += [("e", _wire.check_event_id("e", ev)) for ev in record.evidence]
    tags.append(_wire.alt(RECORD_ALT))
    return EventTemplate(ATTENDANCE_RECORD_KIND, tuple(tags), "", created_at)


def _role_p(r: Reader, role: str) -> str | None:
    for tag in r.tags("p"):
        if len(tag) > 3 and tag[3].lower() == role:
            return r.pubkey("p", tag[1])
    return None


def parse_attendance_record(event: Event) -> AttendanceRecord:
    r = Reader(event, ATTENDANCE_RECORD_KIND)
    d = r.d()
    lesson = r.one_coordinate((LESSON_KIND,))
    learner = _role_p(r, "learner")
    if learner is None:
        raise r.fail("p", "no p tag with role learner")
    if d != attendance_record_d(lesson, learner):
        raise r.fail("d", "is not the one derived from (lesson, learner), so it would not replace older records")
    total = r.required_int("total_seconds")
    joins = r.required_int("join_count")
    intervals = []
    for tag in r.tags("interval"):
        if len(tag) != 3:
            raise r.fail("interval", f"must be ['interval', start, end], got {list(tag)[:4]!r}")
        intervals.append((r.integer("interval", tag[1]), r.integer("interval", tag[2])))
    problem = _interval_problem(tuple(intervals), total, joins)
    if problem:
        raise r.fail("interval", problem)
    rule = r.required("rule")
    met_text = r.required("met")
    if met_text not in ("true", "false"):
        raise r.fail("met", f"must be 'true' or 'false', got {met_text!r}")
    return AttendanceRecord(
        author=event.pubkey,
        lesson=lesson,
        learner=learner,
        total_seconds=total,
        join_count=joins,
        intervals=tuple(intervals),
        rule=rule,
        met=met_text == "true",
        created_at=event.created_at,
        required_seconds=r.optional_int("required_seconds"),
        host=_role_p(r, "host"),
        evidence=tuple(r.event_id("e", ev) for ev in r.all("e")),
        d=d,
        event_id=event.id,
        minimum_seconds=r.optional_int("minimum_seconds"),
        minimum_percent=r.optional_int("minimum_percent", maximum=100),
        scheduled_seconds=r.optional_int("scheduled_seconds"),
    )


# Completion 31931 -----------------------------------------------------------------------------


def build_completion_record(record: CompletionRecord, *, created_at: int) -> EventTemplate:
    """A 31931 for (lesson or course, learner); ``record.author``, ``d`` and ``event_id`` are not written."""
    _wire.check_coordinate("a", record.subject, (LESSON_KIND, COURSE_KIND))
    _wire.check_pubkey("p", record.learner)
    tags: list[tuple[str, ...]] = [
        ("d", completion_record_d(record.subject, record.learner)),
        ("a", record.subject),
        ("p", record.learner),
        ("completed_at", _wire.check_int("completed_at", record.completed_at)),
        ("basis", CompletionBasis(record.basis).value),
    ]
    tags += [("e", _wire.check_event_id("e", ev)) for ev in record.evidence]
    tags.append(_wire.alt(COMPLETION_ALT))
    return EventTemplate(COMPLETION_RECORD_KIND, tuple(tags), "", created_at)


def parse_completion_record(event: Event) -> CompletionRecord:
    r = Reader(event, COMPLETION_RECORD_KIND)
    d = r.d()
    subject = r.one_coordinate((LESSON_KIND, COURSE_KIND))
    learner = r.pubkey("p", r.required("p"))
    if d != completion_record_d(subject, learner):
        raise r.fail("d", "is not the one derived from (subject, learner), so it would not replace older records")
    basis = CompletionBasis(r.choice("basis", r.required("basis"), [b.value for b in CompletionBasis]))
    return CompletionRecord(
        author=event.pubkey,
        subject=subject,
        learner=learner,
        completed_at=r.required_int("completed_at"),
        basis=basis,
        created_at=event.created_at,
        evidence=tuple(r.event_id("e", ev) for ev in r.all("e")),
        d=d,
        event_id=event.id,
    )
