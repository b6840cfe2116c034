"""Reminder notifications sent as NIP-17 kind-14 rumors: one text per moment of the seed's table.

The seed's five moments, plus three notices about the learner's own place: the lesson changed
materially (confirm again), a seat opened from the waitlist, the session was cancelled.
Dates and times are shown in the lesson's ``start_tzid`` (UTC when it is absent or unknown), and
also in the learner's own zone when it is known and shows a different clock, with English names
written here rather than through ``strftime``, whose names follow the C locale.
"""

from __future__ import annotations

import enum
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from ..event import Event, EventTemplate
from . import DIRECT_MESSAGE as DIRECT_MESSAGE_KIND
from . import LESSON as LESSON_KIND
from . import _wire
from ._wire import Reader
from .calendar import Lesson

__all__ = [
    "ReminderKind",
    "Reminder",
    "lesson_zone",
    "zone",
    "reminder_text",
    "build_reminder",
    "parse_reminder",
]


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


class ReminderKind(enum.Enum):
    """The five moments of the seed's table, then the notices about a learner's place."""

    SCHEDULED = "scheduled"
    DAY_BEFORE = "24h"
    HOUR_BEFORE = "1h"
    STARTING = "starting"
    RECORDING_READY = "recording_ready"
    CHANGED = "changed"
    PROMOTED = "promoted"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Reminder:
    author: str
    recipient: str
    lesson: str
    kind: ReminderKind
    text: str
    created_at: int
    expires_at: int | None = None
    event_id: str | None = None


def zone(tzid: str | None) -> tzinfo | None:
    """An IANA zone by name; None when absent or not in the tz database."""
    if tzid:
        try:
            return zoneinfo.ZoneInfo(tzid)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return None


def lesson_zone(lesson: Lesson) -> tzinfo:
    """The lesson's ``start_tzid`` as a zone; UTC when absent or not in the tz database."""
    return zone(lesson.start_tzid) or timezone.utc


def _time(moment: datetime) -> str:
    return f"{moment:%H:%M} {moment.tzname()}"


def _date(moment: datetime) -> str:
    return f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {_time(moment)}"


def _when(lesson: Lesson, viewer: tzinfo | None, show) -> str:
    """The start shown in the lesson's zone, then in the viewer's when that reads differently."""
    here = show(datetime.fromtimestamp(lesson.start, tz=lesson_zone(lesson)))
    if viewer is None:
        return here
    there = show(datetime.fromtimestamp(lesson.start, tz=viewer))
    return here if there == here else f"{here} ({there} your time)"


def _with_link(text: str, link: str | None) -> str:
    return f"{text}\n{link}" if link else text


def reminder_text(kind: ReminderKind, lesson: Lesson, viewer_tz: str | None = None) -> str:
    """The notification text for ``kind``, with the join or recording link on a second line.

    ``viewer_tz`` is the learner's IANA zone when known; an unknown name is ignored.
    """
    title = lesson.title
    viewer = zone(viewer_tz)
    date = _when(lesson, viewer, _date)
    if kind is ReminderKind.SCHEDULED:
        return f"New live session: {title} on {date}"
    if kind is ReminderKind.DAY_BEFORE:
        return f"Tomorrow: {title} at {_when(lesson, viewer, _time)}"
    if kind is ReminderKind.HOUR_BEFORE:
        return f"{title} starting in 1 hour"
    if kind is ReminderKind.STARTING:
        return _with_link(f"{title} is now live - Join", lesson.location)
    if kind is ReminderKind.RECORDING_READY:
        return _with_link(f"Recording available: {title}", lesson.recording_url)
    if kind is ReminderKind.CHANGED:
        return _with_link(f"Changed: {title} is now on {date} - please confirm again", lesson.location)
    if kind is ReminderKind.PROMOTED:
        return f"A seat opened: you are confirmed for {title} on {date}"
    return f"Cancelled: {title} on {date}"


def build_reminder(
    kind: ReminderKind | str,
    lesson: Lesson,
    recipient: str,
    *,
    created_at: int,
    expires_at: int | None = None,
    viewer_tz: str | None = None,
) -> EventTemplate:
    """The kind-14 rumor for one learner; seal and gift-wrap it to their 10050 relays.

    ``viewer_tz`` is the learner's zone, when known, for the dates in the text.
    """
    try:
        moment = ReminderKind(kind)
    except ValueError:
        raise _wire.malformed("reminder", f"unknown reminder {kind!r}") from None
    tags: list[tuple[str, ...]] = [
        ("p", _wire.check_pubkey("p", recipient)),
        ("a", lesson.coordinate),
        ("reminder", moment.value),
    ]
    if expires_at is not None:
        tags.append(("expiration", _wire.check_int("expiration", expires_at)))
    return EventTemplate(DIRECT_MESSAGE_KIND, tuple(tags), reminder_text(moment, lesson, viewer_tz), created_at)


def parse_reminder(event: Event) -> Reminder:
    r = Reader(event, DIRECT_MESSAGE_KIND)
    recipient = r.pubkey("p", r.required("p"))
    lesson = r.one_coordinate((LESSON_KIND,))
    value = r.required("reminder")
    kind = ReminderKind(r.choice("reminder", value, [k.value for k in ReminderKind]))
    if not event.content:
        raise r.fail("content", "a reminder needs its text")
    return Reminder(
        author=event.pubkey,
        recipient=recipient,
        lesson=lesson,
        kind=kind,
        text=event.content,
        created_at=event.created_at,
        expires_at=r.optional_int("expiration"),
        event_id=event.id,
    )
