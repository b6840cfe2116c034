"""Courses, live-session lessons and RSVPs on NIP-52 calendar kinds (31924, 31923, 31925).

A lesson is a 31923 time-based event so any calendar client shows it; a course is a 31924
calendar whose ordered ``a`` tags are its lessons; an RSVP is a 31925 with a deterministic ``d``
so a new answer replaces the old one.
"""

from __future__ import annotations

import enum
import hashlib
import zoneinfo
from dataclasses import dataclass

from ..event import Event, EventTemplate, coordinate, parse_coordinate
from . import BADGE_DEFINITION as BADGE_DEFINITION_KIND
from . import COURSE as COURSE_KIND
from . import DATE_EVENT as DATE_EVENT_KIND
from . import LESSON as LESSON_KIND
from . import ROOM as ROOM_KIND
from . import RSVP as RSVP_KIND
from . import _wire
from ._wire import Reader

__all__ = [
    "RsvpStatus",
    "FreeBusy",
    "Module",
    "Course",
    "Lesson",
    "Rsvp",
    "SECONDS_PER_DAY",
    "HOST_ROLES",
    "lesson_days",
    "rsvp_status",
    "rsvp_d",
    "build_course",
    "parse_course",
    "build_lesson",
    "parse_lesson",
    "build_rsvp",
    "parse_rsvp",
]

CALENDAR_EVENT_KINDS = (DATE_EVENT_KIND, LESSON_KIND)

SECONDS_PER_DAY = 86400
HOST_ROLES = frozenset({"host", "owner"})
PARTICIPANT_ROLE = "participant"
RECORDING_MARK = "recording"
DEFAULT_COMPLETION_MINUTES = 30
DEFAULT_COMPLETION_PERCENT = 50


class RsvpStatus(enum.Enum):
    """NIP-52 RSVP status; the seed's confirmed|tentative|declined map onto it."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


class FreeBusy(enum.Enum):
    FREE = "free"
    BUSY = "busy"


_STATUS_ALIASES = {"confirmed": RsvpStatus.ACCEPTED, **{s.value: s for s in RsvpStatus}}


def rsvp_status(value: RsvpStatus | str) -> RsvpStatus:
    """Normalise a status from the CLI or the seed (``confirmed`` means ``accepted``)."""
    if isinstance(value, RsvpStatus):
        return value
    status = _STATUS_ALIASES.get(str(value).strip().lower())
    if status is None:
        raise _wire.malformed("status", f"must be accepted|tentative|declined (or confirmed), got {value!r}")
    return status


@dataclass(frozen=True, slots=True)
class Module:
    """A chapter of a course: a title and the coordinates of its lessons, in order."""

    title: str
    lessons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Course:
    author: str
    d: str
    title: str
    description: str = ""
    lessons: tuple[str, ...] = ()
    modules: tuple[Module, ...] = ()
    certification_enabled: bool = False
    validity_days: int | None = None
    required_lessons: tuple[str, ...] = ()
    event_id: str | None = None
    created_at: int | None = None
    certificate: str | None = None
    """Coordinate of the 30009 certificate definition this course awards, if any."""
    issuer: str | None = None
    """The key that signs this course's certificates (a school key); None means the author."""
    private: bool = False
    """Never published in the clear: sent to ``invitees`` in an envelope (``kinds.private``)."""
    invitees: tuple[str, ...] = ()

    @property
    def coordinate(self) -> str:
        return coordinate(31924, self.author, self.d)

    @property
    def certificate_issuer(self) -> str:
        """The only key whose definitions and awards certify this course."""
        return self.issuer or self.author


@dataclass(frozen=True, slots=True)
class Lesson:
    """The seed's LiveSessionContent, as read from a 31923.

    ``start``/``end`` are unix seconds; ``end`` is exclusive (NIP-52). The completion rule's
    inputs live on the lesson so the rule and its numbers can be stored with each result.
    """

    author: str
    d: str
    title: str
    start: int
    end: int
    instructor: str
    summary: str = ""
    start_tzid: str | None = None
    course: str | None = None
    location: str | None = None
    room: str | None = None
    recording_url: str | None = None
    max_participants: int | None = None
    requires_rsvp: bool = True
    waiting_room: bool = False
    allow_recording: bool = False
    e2ee_required: bool = False
    completion_minutes: int = DEFAULT_COMPLETION_MINUTES
    completion_percent: int = DEFAULT_COMPLETION_PERCENT
    hashtags: tuple[str, ...] = ()
    event_id: str | None = None
    created_at: int | None = None
    description: str = ""
    """The event content: NIP-52's detailed description."""
    references: tuple[str, ...] = ()
    """Plain ``r`` links other than the recording."""
    rsvp_until: int | None = None
    """The instructor's RSVP cut-off (unix seconds, not after ``start``); None: the start."""
    private: bool = False
    """Never published in the clear: sent to ``invitees`` in an envelope (``kinds.private``)."""
    invitees: tuple[str, ...] = ()
    """The learners a private lesson is sent to (``p`` with role participant)."""

    @property
    def coordinate(self) -> str:
        return coordinate(31923, self.author, self.d)

    @property
    def rsvp_closes_at(self) -> int:
        """When RSVPs stop counting: the cut-off when one is set, else the start."""
        return self.start if self.rsvp_until is None else min(self.rsvp_until, self.start)

    @property
    def duration_seconds(self) -> int:
        return self.end - self.start

    @property
    def duration_minutes(self) -> int:
        return (self.end - self.start) // 60


@dataclass(frozen=True, slots=True)
class Rsvp:
    author: str
    lesson: str
    status: RsvpStatus
    d: str
    created_at: int
    revision: str | None = None
    host: str | None = None
    free_busy: str | None = None
    note: str = ""
    event_id: str | None = None


# Courses --------------------------------------------------------------------------------------


def _check_course_lessons(course: Course) -> None:
    seen: set[str] = set()
    for coord in course.lessons:
        _wire.check_coordinate("a", coord, CALENDAR_EVENT_KINDS)
        if coord in seen:
            raise _wire.malformed("a", f"lesson {coord!r} is listed twice")
        seen.add(coord)
    grouped: set[str] = set()
    for module in course.modules:
        _wire.check_text("module", module.title)
        for coord in module.lessons:
            if coord not in seen:
                raise _wire.malformed("module", f"{module.title!r} names {coord!r}, which is not a course lesson")
            if coord in grouped:
                raise _wire.malformed("module", f"lesson {coord!r} is in two modules")
            grouped.add(coord)
    for coord in course.required_lessons:
        if coord not in seen:
            raise _wire.malformed("required", f"{coord!r} is not a course lesson")


def build_course(course: Course, *, created_at: int) -> EventTemplate:
    """A 31924 calendar: lessons as ordered ``a`` tags, modules and certification in our tags.

    ``course.author`` and ``event_id`` are not written: the signer is the author.
    """
    _wire.check_d(course.d)
    _wire.check_text("title", course.title)
    _wire.check_text("content", course.description, allow_empty=True)
    _check_course_lessons(course)
    tags: list[tuple[str, ...]] = [("d", course.d), ("title", course.title)]
    tags += [("a", coord) for coord in course.lessons]
    tags += [("module", m.title, *m.lessons) for m in course.modules]
    tags.append(("certification", _wire.bool_text(course.certification_enabled)))
    if course.validity_days is not None:
        tags.append(("validity_days", _wire.check_int("validity_days", course.validity_days, minimum=1)))
    tags += [("required", coord) for coord in course.required_lessons]
    if course.issuer is not None:
        tags.append(("issuer", _wire.check_pubkey("issuer", course.issuer)))
    if course.certificate is not None:
        _wire.check_coordinate("certificate", course.certificate, (BADGE_DEFINITION_KIND,))
        if parse_coordinate(course.certificate)[1] != course.certificate_issuer:
            raise _wire.malformed("certificate", "the definition is not signed by the course's issuer")
        tags.append(("certificate", course.certificate))
    tags += _privacy_tags(course.private, course.invitees)
    return EventTemplate(COURSE_KIND, tuple(tags), course.description, created_at)


def parse_course(event: Event) -> Course:
    r = Reader(event, COURSE_KIND)
    d = r.d()
    title = r.optional("title") or r.optional("name") or r.required("title")
    lessons: list[str] = []
    for coord in r.coordinates(CALENDAR_EVENT_KINDS):
        if coord not in lessons:
            lessons.append(coord)
    modules = []
    grouped: set[str] = set()
    for tag in r.tags("module"):
        module_title = tag[1]
        if not module_title:
            raise r.fail("module", "title must not be empty")
        members = tag[2:]
        for coord in members:
            if coord not in lessons:
                raise r.fail("module", f"{module_title!r} names {coord[:80]!r}, which is not a course lesson")
            if coord in grouped:
                raise r.fail("module", f"lesson {coord[:80]!r} is in two modules")
            grouped.add(coord)
        modules.append(Module(module_title, tuple(members)))
    required = []
    for coord in r.all("required"):
        if coord not in lessons:
            raise r.fail("required", f"{coord[:80]!r} is not a course lesson")
        required.append(coord)
    issuer = r.optional("issuer")
    if issuer is not None:
        r.pubkey("issuer", issuer)
    certificate = r.optional("certificate")
    if certificate is not None:
        r.coordinate("certificate", certificate, (BADGE_DEFINITION_KIND,))
        if parse_coordinate(certificate)[1] != (issuer or event.pubkey):
            raise r.fail("certificate", "the definition is not signed by the course's issuer")
    return Course(
        author=event.pubkey,
        d=d,
        title=title,
        description=event.content,
        lessons=tuple(lessons),
        modules=tuple(modules),
        certification_enabled=r.boolean("certification", False),
        validity_days=r.optional_int("validity_days", minimum=1),
        required_lessons=tuple(required),
        event_id=event.id,
        created_at=event.created_at,
        certificate=certificate,
        issuer=issuer,
        private=_is_private(r),
        invitees=_invitees(r),
    )


# Lessons --------------------------------------------------------------------------------------


def lesson_days(start: int, end: int | None) -> tuple[int, ...]:
    """NIP-52 ``D`` values: ``floor(t / 86400)`` for every day in [start, end), end exclusive."""
    first = start // SECONDS_PER_DAY
    if end is None or end <= start:
        return (first,)
    return tuple(range(first, (end - 1) // SECONDS_PER_DAY + 1))


def _check_tzid(tzid: str) -> str:
    try:
        zoneinfo.ZoneInfo(tzid)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise _wire.malformed("start_tzid", f"not an IANA time zone: {tzid!r}") from exc
    return tzid


def build_lesson(lesson: Lesson, *, created_at: int) -> EventTemplate:
    """A NIP-52 31923 with ``D`` tags, the instructor as ``p`` host, and our session tags.

    ``lesson.author`` and ``event_id`` are not written: the signer is the author.
    """
    _wire.check_d(lesson.d)
    _wire.check_text("title", lesson.title)
    _wire.check_int("start", lesson.start)
    _wire.check_int("end", lesson.end)
    if lesson.end <= lesson.start:
        raise _wire.malformed("end", f"{lesson.end} is not after start {lesson.start}")
    _wire.check_pubkey("p", lesson.instructor)
    tags: list[tuple[str, ...]] = [
        ("d", lesson.d),
        ("title", lesson.title),
        ("start", str(lesson.start)),
        ("end", str(lesson.end)),
    ]
    if lesson.start_tzid is not None:
        tags.append(("start_tzid", _check_tzid(lesson.start_tzid)))
    tags += [("D", str(day)) for day in lesson_days(lesson.start, lesson.end)]
    if lesson.summary:
        tags.append(("summary", lesson.summary))
    tags.append(("p", lesson.instructor, "", "host"))
    if lesson.course is not None:
        tags.append(("a", _wire.check_coordinate("course", lesson.course, (COURSE_KIND,))))
    if lesson.room is not None:
        tags.append(("a", _wire.check_coordinate("room", lesson.room, (ROOM_KIND,))))
    if lesson.location:
        tags.append(("location", lesson.location))
    if lesson.recording_url:
        tags.append(("r", lesson.recording_url, RECORDING_MARK))
    tags += [("r", url) for url in lesson.references]
    tags += [("t", _wire.check_text("t", t)) for t in lesson.hashtags]
    tags.append(("duration", str(lesson.end - lesson.start)))
    if lesson.max_participants is not None:
        tags.append(("max_participants", _wire.check_int("max_participants", lesson.max_participants, minimum=1)))
    if lesson.rsvp_until is not None:
        tags.append(("rsvp_until", _wire.check_int("rsvp_until", lesson.rsvp_until, maximum=lesson.start)))
    tags += [
        ("requires_rsvp", _wire.bool_text(lesson.requires_rsvp)),
        ("waiting_room", _wire.bool_text(lesson.waiting_room)),
        ("recording_allowed", _wire.bool_text(lesson.allow_recording)),
        ("e2ee_required", _wire.bool_text(lesson.e2ee_required)),
        ("completion_minutes", _wire.check_int("completion_minutes", lesson.completion_minutes)),
        ("completion_percent", _wire.check_int("completion_percent", lesson.completion_percent, maximum=100)),
    ]
    tags += _privacy_tags(lesson.private, lesson.invitees)
    return EventTemplate(LESSON_KIND, tuple(tags), lesson.description, created_at)


def _privacy_tags(private: bool, invitees: tuple[str, ...]) -> list[tuple[str, ...]]:
    if invitees and not private:
        raise _wire.malformed("p", "only a private item names its invitees")
    tags: list[tuple[str, ...]] = [("p", _wire.check_pubkey("p", p), "", PARTICIPANT_ROLE) for p in dict.fromkeys(invitees)]
    return tags + ([("visibility", "private")] if private else [])


def _is_private(r: Reader) -> bool:
    return any(len(t) > 1 and t[1] == "private" for t in r.tags("visibility"))


def _invitees(r: Reader) -> tuple[str, ...]:
    found = [r.pubkey("p", t[1]) for t in r.tags("p") if len(t) > 3 and t[3].strip().lower() == PARTICIPANT_ROLE]
    return tuple(dict.fromkeys(found))


def _host(r: Reader) -> str:
    for tag in r.tags("p"):
        if len(tag) > 3 and tag[3].strip().lower() in HOST_ROLES:
            return r.pubkey("p", tag[1])
    raise r.fail("p", "no p tag with role host (the instructor)")


def _check_days(r: Reader, start: int, end: int) -> None:
    values = r.all("D")
    if not values:
        return
    days = {r.integer("D", v) for v in values}
    covered = lesson_days(start, end)
    missing = [day for day in covered if day not in days]
    if missing:
        raise r.fail("D", f"day {missing[0]} between start and end has no D tag")
    last_allowed = end // SECONDS_PER_DAY
    stray = sorted(day for day in days if day < covered[0] or day > last_allowed)
    if stray:
        raise r.fail("D", f"day {stray[0]} lies outside start..end")


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def parse_lesson(event: Event) -> Lesson:
    """Read a 31923 as a lesson: start/end digits only, end after start, D consistent, a host."""
    r = Reader(event, LESSON_KIND)
    d = r.d()
    title = r.optional("title") or r.optional("name") or r.required("title")
    start = r.required_int("start")
    duration = r.optional_int("duration", minimum=1)
    end_text = r.optional("end")
    if end_text is not None:
        end = r.integer("end", end_text)
        if end <= start:
            raise r.fail("end", f"{end} is not after start {start}")
        if duration is not None and duration != end - start:
            raise r.fail("duration", f"{duration} s disagrees with end - start = {end - start} s")
    elif duration is not None:
        end = start + duration
    else:
        r.required("end")
    _check_days(r, start, end)
    instructor = _host(r)
    course = next(iter(r.coordinates((COURSE_KIND,))), None)
    room = next(iter(r.coordinates((ROOM_KIND,))), None)
    recording = None
    references = []
    for tag in r.tags("r"):
        if len(tag) > 2 and tag[2] == RECORDING_MARK and recording is None:
            recording = tag[1]
        else:
            references.append(tag[1])
    return Lesson(
        author=event.pubkey,
        d=d,
        title=title,
        start=start,
        end=end,
        instructor=instructor,
        summary=r.optional("summary") or "",
        start_tzid=r.optional("start_tzid") or None,
        course=course,
        location=r.optional("location") or None,
        room=room,
        recording_url=recording,
        max_participants=r.optional_int("max_participants", minimum=1),
        rsvp_until=r.optional_int("rsvp_until", maximum=start),
        requires_rsvp=r.boolean("requires_rsvp", True),
        waiting_room=r.boolean("waiting_room", False),
        allow_recording=r.boolean("recording_allowed", False),
        e2ee_required=r.boolean("e2ee_required", False),
        completion_minutes=_or(r.optional_int("completion_minutes"), DEFAULT_COMPLETION_MINUTES),
        completion_percent=_or(r.optional_int("completion_percent", maximum=100), DEFAULT_COMPLETION_PERCENT),
        hashtags=tuple(r.all("t")),
        event_id=event.id,
        created_at=event.created_at,
        description=event.content,
        references=tuple(references),
        private=_is_private(r),
        invitees=_invitees(r),
    )


# RSVPs ----------------------------------------------------------------------------------------


def rsvp_d(lesson: str) -> str:
    """The RSVP ``d`` for a lesson coordinate: one RSVP per (learner, lesson), newest wins."""
    return "rsvp-" + hashlib.sha256(lesson.encode("utf-8")).hexdigest()[:32]


def build_rsvp(
    lesson: Lesson | str,
    status: RsvpStatus | str,
    *,
    created_at: int,
    revision: str | None = None,
    host: str | None = None,
    free_busy: FreeBusy | str | None = None,
    note: str = "",
) -> EventTemplate:
    """A 31925 answering ``lesson``; given a ``Lesson``, its id and author fill ``e`` and ``p``."""
    if isinstance(lesson, Lesson):
        coord = lesson.coordinate
        revision = revision if revision is not None else lesson.event_id
        host = host if host is not None else lesson.author
    else:
        coord = lesson
    _wire.check_coordinate("a", coord, CALENDAR_EVENT_KINDS)
    answer = rsvp_status(status)
    tags: list[tuple[str, ...]] = [("a", coord), ("d", rsvp_d(coord)), ("status", answer.value)]
    if revision is not None:
        tags.append(("e", _wire.check_event_id("e", revision)))
    if host is not None:
        tags.append(("p", _wire.check_pubkey("p", host)))
    if free_busy is not None and answer is not RsvpStatus.DECLINED:
        try:
            tags.append(("fb", FreeBusy(free_busy).value))
        except ValueError as exc:
            raise _wire.malformed("fb", f"must be free|busy, got {free_busy!r}") from exc
    _wire.check_text("content", note, allow_empty=True)
    return EventTemplate(RSVP_KIND, tuple(tags), note, created_at)


def _status(r: Reader) -> RsvpStatus:
    value = r.optional("status")
    if value is None:
        for tag in r.tags("l"):
            if len(tag) > 2 and tag[2] == "status":
                value = tag[1]
                break
    if value is None:
        r.required("status")
    try:
        return RsvpStatus(value)
    except ValueError:
        raise r.fail("status", f"must be accepted|tentative|declined, got {value!r}") from None


def parse_rsvp(event: Event) -> Rsvp:
    """Read a 31925; the legacy ``["l", <status>, "status"]`` form is read too."""
    r = Reader(event, RSVP_KIND)
    lesson = r.one_coordinate(CALENDAR_EVENT_KINDS)
    d = r.d()
    status = _status(r)
    revision = r.optional("e")
    if revision is not None:
        r.event_id("e", revision)
    host = r.optional("p")
    if host is not None:
        r.pubkey("p", host)
    free_busy = r.optional("fb")
    if free_busy is not None:
        r.choice("fb", free_busy, [f.value for f in FreeBusy])
        if status is RsvpStatus.DECLINED:
            free_busy = None
    return Rsvp(
        author=event.pubkey,
        lesson=lesson,
        status=status,
        d=d,
        created_at=event.created_at,
        revision=revision,
        host=host,
        free_busy=free_busy,
        note=event.content,
        event_id=event.id,
    )
