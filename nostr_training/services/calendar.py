"""Lessons as iCalendar: one lesson, or every lesson of a course, from the index (``ics.py``).

Used by ``nostr-training ics`` and by the daemon's subscribable feed. Cancelled lessons stay in
the file as STATUS:CANCELLED (their last revision is read back from the deletion), SEQUENCE
counts the material revisions the index has seen, and the organizer carries the host's name
when the index holds their kind 0.
"""

from __future__ import annotations

from .. import kinds
from ..errors import MalformedEvent, NotFound
from ..event import Event, coordinate, parse_coordinate
from ..filters import Filter
from ..ics import CalendarEntry, calendar_entry, lessons_to_ics
from ..kinds.profile import parse_profile
from ..nips.nip19 import decode
from .context import ServiceContext
from .rsvp import lesson_evidence

__all__ = ["calendar_target", "calendar_ics"]


def calendar_target(text: str) -> str:
    """A lesson (31923) or course (31924) coordinate, from that form or an ``naddr``."""
    text = text.strip()
    if text.startswith("naddr1"):
        pointer = decode(text).data
        text = coordinate(pointer.kind, pointer.pubkey, pointer.identifier)
    kind, _, _ = parse_coordinate(text)
    if kind not in (kinds.LESSON, kinds.COURSE):
        raise MalformedEvent(f"{text!r} is a kind {kind} coordinate, not a lesson (31923) or course (31924)", field="target")
    return text


async def _host_name(ctx: ServiceContext, pubkey: str, now: int) -> str | None:
    found: list[Event] = await ctx.store.query(
        [Filter(kinds=frozenset({kinds.METADATA}), authors=frozenset({pubkey}), limit=1)], now=now
    )
    if not found:
        return None
    try:
        profile = parse_profile(found[0])
    except MalformedEvent:
        return None
    return profile.display_name or profile.name


async def _entry(ctx: ServiceContext, coord: str, now: int) -> CalendarEntry | None:
    evidence = await lesson_evidence(ctx.store, coord, now=now)
    if evidence is None:
        return None
    host = await _host_name(ctx, evidence.lesson.instructor, now)
    return calendar_entry(evidence.revisions, cancelled=evidence.cancelled_at is not None, host_name=host)


async def calendar_ics(ctx: ServiceContext, target: str) -> tuple[str, bytes]:
    """(the calendar's name, the iCalendar file) of a lesson or of every lesson of a course."""
    coord = calendar_target(target)
    now = ctx.clock.now()
    if coord.startswith(f"{kinds.LESSON}:"):
        entry = await _entry(ctx, coord, now)
        if entry is None:
            raise NotFound(f"no lesson {coord} in the index")
        return entry.lesson.title, lessons_to_ics([entry], name=entry.lesson.title)
    course = await ctx.store.course(coord, now=now)
    if course is None:
        raise NotFound(f"no course {coord} in the index: follow it first")
    lessons = list(course.lessons)
    lessons += [coordinate(kinds.LESSON, e.pubkey, e.d) for e in await ctx.store.lessons_of_course(coord, now=now)]
    entries = []
    for lesson in dict.fromkeys(c for c in lessons if c.startswith(f"{kinds.LESSON}:")):
        entry = await _entry(ctx, lesson, now)
        if entry is not None:
            entries.append(entry)
    return course.title, lessons_to_ics(entries, name=course.title)
