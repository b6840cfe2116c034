"""Reminder notifications sent as NIP-17 kind-14 rumors: one text per moment of the seed's table.

Dates and times are shown in the lesson's ``start_tzid`` (UTC when it is absent or unknown), with
English names written here rather than through ``strftime``, whose names follow the C locale.
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
    """The five moments a learner is told about a live session."""

    SCHEDULED = "scheduled"
    DAY_BEFORE = "24h"
    HOUR_BEFORE = "1h"
    STARTING = "starting"
    RECORDING_READY = "recording_ready"


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


def lesson_zone(lesson: Lesson) -> tzinfo:
    """The lesson's ``start_tzid`` as a zone; UTC when absent or not in the tz database."""
    if lesson.start_tzid:
        try:
            return zoneinfo.ZoneInfo(lesson.start_tzid)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.utc


def _local(lesson: Lesson) -> datetime:
    return datetime.fromtimestamp(lesson.start, tz=lesson_zone(lesson))


def _time(moment: datetime) -> str:
    return f"{moment:%H:%M} {moment.tzname()}"


def _date(moment: datetime) -> str:
    return f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {_time(moment)}"


def reminder_text(kind: ReminderKind, lesson: Lesson) -> str:
    """The seed's notification text for ``kind``, with the join or recording link on a second line."""
    title = lesson.title
    if kind is ReminderKind.SCHEDULED:
        return f"New live session: {title} on {_date(_local(lesson))}"
    if kind is ReminderKind.DAY_BEFORE:
        return f"Tomorrow: {title} at {_time(_local(lesson))}"
    if kind is ReminderKind.HOUR_BEFORE:
        return f"{title} starting in 1 hour"
    if kind is ReminderKind.STARTING:
        text = f"{title} is now live - Join"
        return f"{text}\n{lesson.location}" if lesson.location else text
    text = f"Recording available: {title}"
    return f"{text}\n{lesson.recording_url}" if lesson.recording_url else text


def build_reminder(
    kind: ReminderKind | str,
    lesson: Lesson,
    recipient: str,
    *,
    created_at: int,
    expires_at: int | None = None,
) -> EventTemplate:
    """The kind-14 rumor for one learner; seal and gift-wrap it to their 10050 relays."""
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
    return EventTemplate(DIRECT_MESSAGE_KIND, tuple(tags), reminder_text(moment, lesson), created_at)


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
