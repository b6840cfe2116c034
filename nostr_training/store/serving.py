"""Which stored events are served: the NIP-01/09/40 rules both store implementations share.

Pure functions of events (and ``now``), so the SQLite and in-memory stores cannot drift apart on
what a deletion covers or when an arrival is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..errors import InvalidId, MalformedEvent
from ..event import Event, KindClass, compute_id, kind_class, parse_coordinate
from ..filters import Filter
from ..kinds import (
    ATTENDANCE_RECORD,
    BADGE_AWARD,
    COURSE,
    DELETION,
    GIFT_WRAP,
    GIFT_WRAP_EPHEMERAL,
    LESSON,
    RSVP,
    AttendanceRecord,
    CertificateAward,
    Course,
    Lesson,
    Rsvp,
    parse_attendance_record,
    parse_certificate_award,
    parse_course,
    parse_lesson,
    parse_rsvp,
)
from .base import AddOutcome, expiration_of

__all__ = [
    "DeletionMark",
    "arrival_refusal",
    "deletion_marks",
    "e_deletion_applies",
    "a_deletion_applies",
    "check_private_id",
    "indexed_tags",
    "gift_wrap_visible",
    "GIFT_WRAP_KINDS",
    "CourseQueries",
]

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class DeletionMark:
    """One target of a kind-5: an event id or an address, with who asked and when."""

    target: str
    deleter: str
    created_at: int
    deletion_id: str


def arrival_refusal(event: Event, now: int | None) -> AddOutcome | None:
    """EPHEMERAL or EXPIRED when the event must not be stored at all, else None."""
    if kind_class(event.kind) is KindClass.EPHEMERAL:
        return AddOutcome.EPHEMERAL
    if now is not None:
        expiration = expiration_of(event)
        if expiration is not None and expiration <= now:
            return AddOutcome.EXPIRED
    return None


def deletion_marks(deletion: Event) -> list[DeletionMark]:
    """The targets a published kind-5 names that it may cover.

    ``e`` targets are kept whatever their author (the author is checked against the target when
    it is known); ``a`` targets count only when the coordinate's pubkey is the deleter's.
    """
    if deletion.kind != DELETION:
        return []
    marks: dict[str, DeletionMark] = {}
    for tag in deletion.tags:
        if len(tag) < 2:
            continue
        name, value = tag[0], tag[1]
        if name == "e":
            if len(value) != 64 or not _HEX.issuperset(value) or value == deletion.id:
                continue
        elif name == "a":
            try:
                _, owner, _ = parse_coordinate(value)
            except MalformedEvent:
                continue
            if owner != deletion.pubkey:
                continue
        else:
            continue
        marks[value] = DeletionMark(value, deletion.pubkey, deletion.created_at, deletion.id)
    return list(marks.values())


def e_deletion_applies(deleter: str, target: Event) -> bool:
    """May ``deleter`` delete ``target`` by id? Its author may; for a gift wrap, its recipient."""
    if target.kind == DELETION:
        return False
    if target.pubkey == deleter:
        return True
    return target.kind == GIFT_WRAP and deleter in target.tag_values("p")


def a_deletion_applies(mark: DeletionMark, target: Event) -> bool:
    """Does an address deletion cover this version? Only versions up to the deletion's time."""
    return target.kind != DELETION and target.pubkey == mark.deleter and target.created_at <= mark.created_at


def check_private_id(event: Event) -> None:
    """A private event has no signature to check, but its id must still be its hash."""
    if compute_id(event.pubkey, event.created_at, event.kind, event.tags, event.content) != event.id:
        raise InvalidId(f"event {event.id[:16]}: id does not match its fields")


#: Kinds served only to their ``p`` recipient when a viewer is named (NIP-59 wraps).
GIFT_WRAP_KINDS = frozenset({GIFT_WRAP, GIFT_WRAP_EPHEMERAL})


def gift_wrap_visible(event: Event, recipients: frozenset[str] | None) -> bool:
    """The serving rule for gift wraps: with ``recipients`` given (who the viewer has proved to
    be), a wrap is served only when it names one of them in a ``p`` tag; None serves every wrap
    (the user's own index, read by the user). REQ and COUNT both go through it."""
    if recipients is None or event.kind not in GIFT_WRAP_KINDS:
        return True
    return any(p in recipients for p in event.tag_values("p"))


def indexed_tags(event: Event) -> set[tuple[str, str]]:
    """(name, first value) of every single-letter tag: what relays let filters match on."""
    return {(t[0], t[1]) for t in event.tags if len(t) > 1 and len(t[0]) == 1 and t[0].isalpha()}


class CourseQueries:
    """The domain look-ups, written once over ``query`` for every store (a mixin).

    They read private events too (``include_private``): a private lesson, a private RSVP the
    host received in a gift wrap, an attendance record or award delivered to the learner are
    the user's own evidence, as good as public ones for every rule that reads them."""

    query: Callable[..., Awaitable[list[Event]]]

    async def lessons_of_course(self, course_coordinate: str, *, now: int | None = None) -> list[Event]:
        lessons = Filter(kinds=frozenset({LESSON}), tags={"a": frozenset({course_coordinate})})
        return await self.query([lessons], now=now, include_private=True)

    async def rsvps_of_lesson(self, lesson_coordinate: str, *, now: int | None = None) -> list[Event]:
        answers = Filter(kinds=frozenset({RSVP}), tags={"a": frozenset({lesson_coordinate})})
        rsvps = await self.query([answers], now=now, include_private=True)
        newest: dict[str, Event] = {}
        for rsvp in rsvps:  # already newest first, lowest id first among equals: the tie rule
            newest.setdefault(rsvp.pubkey, rsvp)
        return [e for e in rsvps if newest[e.pubkey] is e]

    async def attendance_of_lesson(self, lesson_coordinate: str, *, now: int | None = None) -> list[Event]:
        return await self.query(
            [Filter(kinds=frozenset({ATTENDANCE_RECORD}), tags={"a": frozenset({lesson_coordinate})})],
            now=now,
            include_private=True,
        )

    async def certificates_of(self, pubkey: str, *, now: int | None = None) -> list[Event]:
        awards = Filter(kinds=frozenset({BADGE_AWARD}), tags={"p": frozenset({pubkey})})
        return await self.query([awards], now=now, include_private=True)

    async def _at(self, kind: int, coordinate: str, now: int | None) -> Event | None:
        want, author, d = parse_coordinate(coordinate)
        if want != kind:
            raise MalformedEvent(f"{coordinate!r} is not a kind {kind} coordinate", field="a")
        found = await self.query(
            [Filter(kinds=frozenset({kind}), authors=frozenset({author}), tags={"d": frozenset({d})}, limit=1)],
            now=now,
            include_private=True,
        )
        return found[0] if found else None

    async def course(self, coordinate: str, *, now: int | None = None) -> Course | None:
        event = await self._at(COURSE, coordinate, now)
        parsed = _parsed(parse_course, [event] if event else [])
        return parsed[0] if parsed else None

    async def lesson(self, coordinate: str, *, now: int | None = None) -> Lesson | None:
        event = await self._at(LESSON, coordinate, now)
        parsed = _parsed(parse_lesson, [event] if event else [])
        return parsed[0] if parsed else None

    async def lessons(self, course_coordinate: str, *, now: int | None = None) -> list[Lesson]:
        found = _parsed(parse_lesson, await self.lessons_of_course(course_coordinate, now=now))
        return sorted(found, key=lambda lesson: (lesson.start, lesson.d))

    async def rsvps(self, lesson_coordinate: str, *, now: int | None = None) -> list[Rsvp]:
        # Parsed before picking, so a newer answer the strict parser refuses does not hide the
        # learner's valid one (``rules.rsvp`` only ever sees parsed answers either).
        answers = Filter(kinds=frozenset({RSVP}), tags={"a": frozenset({lesson_coordinate})})
        rsvps = await self.query([answers], now=now, include_private=True)
        newest: dict[str, Rsvp] = {}
        for rsvp in _parsed(parse_rsvp, rsvps):  # newest first, lowest id first among equals
            if rsvp.lesson == lesson_coordinate:
                newest.setdefault(rsvp.author, rsvp)
        return list(newest.values())

    async def attendance(self, lesson_coordinate: str, *, now: int | None = None) -> list[AttendanceRecord]:
        return _parsed(parse_attendance_record, await self.attendance_of_lesson(lesson_coordinate, now=now))

    async def awards(self, pubkey: str, *, now: int | None = None) -> list[CertificateAward]:
        return _parsed(parse_certificate_award, await self.certificates_of(pubkey, now=now))


def _parsed(parse: Callable[[Event], Any], events: list[Event]) -> list[Any]:
    """Each event the strict parser accepts, in order; the others are left out."""
    out = []
    for event in events:
        try:
            out.append(parse(event))
        except MalformedEvent:
            continue
    return out

