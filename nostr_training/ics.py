"""Lessons as an iCalendar file (RFC 5545) that any calendar app imports or subscribes to.

Each lesson is one VEVENT whose UID is derived from its coordinate, so a new revision updates
the same entry instead of adding one; SEQUENCE is the number of material changes (start,
duration, a replaced room or join link; see ``rules.rsvp``), so clients take a reschedule as an
update and ignore a retitle's lower priority. Times carry the lesson's ``start_tzid`` as TZID with
its VTIMEZONE included (covering the years the lessons span), so a weekly series stays at the
same wall-clock time across a DST change even in clients without a tz database; a lesson without
a usable zone, or one starting in the hour repeated when clocks go back, is written in UTC. Two alarms (24 h and 1 h before) repeat the reminder texts; a
cancelled lesson stays in the file as STATUS:CANCELLED, without alarms, so subscribers see it
go. Output is a pure function of the input: DTSTAMP is the revision's ``created_at``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Iterable, Sequence

from icalendar import Alarm, Calendar, Event, vCalAddress, vDuration

from .kinds.calendar import Lesson
from .kinds.reminders import ReminderKind, lesson_zone, reminder_text
from .nips.nip19 import npub_encode
from .rules.rsvp import ordered_revisions, revision_sequence

__all__ = ["CalendarEntry", "calendar_entry", "lesson_uid", "lessons_to_ics", "PRODID", "ALARMS"]

PRODID = "-//nostr-training//live sessions//EN"
UID_DOMAIN = "nostr-training"
ALARMS = (
    (timedelta(hours=24), ReminderKind.DAY_BEFORE),
    (timedelta(hours=1), ReminderKind.HOUR_BEFORE),
)


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """One lesson as it should appear in a calendar."""

    lesson: Lesson
    sequence: int = 0
    """iCalendar SEQUENCE: how many material changes the lesson has had."""
    cancelled: bool = False
    host_name: str | None = None
    """The instructor's display name (kind 0), when known."""


def calendar_entry(
    revisions: Lesson | Sequence[Lesson], *, cancelled: bool = False, host_name: str | None = None
) -> CalendarEntry:
    """The current revision of a lesson with its SEQUENCE counted from every revision seen."""
    history = [revisions] if isinstance(revisions, Lesson) else list(revisions)
    ordered = ordered_revisions(history)
    return CalendarEntry(ordered[-1], revision_sequence(ordered), cancelled, host_name)


def lesson_uid(coordinate: str) -> str:
    """A UID stable for the lesson's whole life: a hash of its ``31923:pubkey:d`` coordinate."""
    return f"{hashlib.sha256(coordinate.encode('utf-8')).hexdigest()[:32]}@{UID_DOMAIN}"


class _HoursBefore(vDuration):
    """A trigger written in exact hours (``-PT24H``): ``-P1D`` is a nominal day, which a
    client may take as 23 or 25 hours across a DST change."""

    def to_ical(self) -> bytes:
        return f"-PT{int(-self.td.total_seconds()) // 3600}H".encode("ascii")


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _when(seconds: int, zone: tzinfo) -> datetime:
    """The moment in the lesson's zone; in UTC when the zone's wall clock cannot name it
    (the repeated hour when clocks go back: RFC 5545 reads such a local time as the first)."""
    local = datetime.fromtimestamp(seconds, tz=zone)
    return local if local.replace(fold=0).timestamp() == seconds else _utc(seconds)


def _description(lesson: Lesson) -> str:
    parts = [p for p in (lesson.summary, lesson.description) if p]
    if lesson.location:
        parts.append(f"Join: {lesson.location}")
    if lesson.recording_url:
        parts.append(f"Recording: {lesson.recording_url}")
    return "\n\n".join(parts)


def _vevent(entry: CalendarEntry) -> Event:
    lesson = entry.lesson
    zone = lesson_zone(lesson)
    event = Event()
    event.add("uid", lesson_uid(lesson.coordinate))
    event.add("sequence", entry.sequence)
    stamp = _utc(lesson.created_at if lesson.created_at is not None else lesson.start)
    event.add("dtstamp", stamp)
    event.add("last-modified", stamp)
    event.add("dtstart", _when(lesson.start, zone))
    event.add("dtend", _when(lesson.end, zone))
    event.add("summary", lesson.title)
    description = _description(lesson)
    if description:
        event.add("description", description)
    if lesson.location:
        event.add("location", lesson.location)
        event.add("url", lesson.location)
    if lesson.hashtags:
        event.add("categories", list(lesson.hashtags))
    organizer = vCalAddress(f"nostr:{npub_encode(lesson.instructor)}")
    if entry.host_name:
        organizer.params["CN"] = entry.host_name
    event.add("organizer", organizer)
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    if not entry.cancelled:
        for before, kind in ALARMS:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("trigger", _HoursBefore(-before))
            alarm.add("description", reminder_text(kind, lesson).splitlines()[0])
            event.add_component(alarm)
    return event


def lessons_to_ics(entries: Iterable[CalendarEntry | Lesson], *, name: str | None = None) -> bytes:
    """An iCalendar file of one lesson or a course's lessons (``name``: the calendar's title).

    Pass ``CalendarEntry`` values (see ``calendar_entry``) for SEQUENCE, cancellation and the
    host's name; a bare ``Lesson`` is an entry with none of them.
    """
    items = [e if isinstance(e, CalendarEntry) else CalendarEntry(e) for e in entries]
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if name:
        calendar.add("x-wr-calname", name)
    for entry in sorted(items, key=lambda e: (e.lesson.start, e.lesson.coordinate)):
        calendar.add_component(_vevent(entry))
    if items:
        first = min(_utc(e.lesson.start) for e in items).year
        last = max(_utc(e.lesson.end) for e in items).year
        calendar.add_missing_timezones(first_date=date(first - 1, 1, 1), last_date=date(last + 1, 12, 31))
    return calendar.to_ical()
