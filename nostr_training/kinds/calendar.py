"""Courses, live-session lessons and RSVPs on NIP-52 calendar kinds (31924, 31923, 31925).

A lesson is a 31923 time-based event so any calendar client shows it; a course is a 31924
calendar whose ordered ``a`` tags are its lessons; an RSVP is a 31925 with a deterministic ``d``
so a new answer replaces the old one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..event import coordinate

__all__ = ["RsvpStatus", "Module", "Course", "Lesson", "Rsvp"]


class RsvpStatus(enum.Enum):
    """NIP-52 RSVP status; the seed's confirmed|tentative|declined map onto it."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


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

    @property
    def coordinate(self) -> str:
        return coordinate(31924, self.author, self.d)


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
    completion_minutes: int = 30
    completion_percent: int = 50
    hashtags: tuple[str, ...] = ()
    event_id: str | None = None
    created_at: int | None = None

    @property
    def coordinate(self) -> str:
        return coordinate(31923, self.author, self.d)

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
