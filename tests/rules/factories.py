"""Lessons, courses and RSVPs for the rule tests: plain values, no signing needed."""

from __future__ import annotations

from dataclasses import replace

from nostr_training.kinds.calendar import Course, Lesson, Module, Rsvp, RsvpStatus

HOST = "a" * 64
LEARNERS = tuple(f"{i:x}" * 64 for i in range(1, 10))
ALICE, BOB, CAROL, DAVE, ERIN = LEARNERS[:5]
START = 1_800_000_000
HOUR = 3600
DAY = 86400


def lesson(minutes: int = 60, start: int = START, **changes) -> Lesson:
    base = Lesson(
        author=HOST,
        d="lesson-1",
        title="Jail Support Role-Play",
        start=start,
        end=start + minutes * 60,
        instructor=HOST,
    )
    return replace(base, **changes)


def course(lessons: int = 3, **changes) -> Course:
    base = Course(
        author=HOST,
        d="jail-support",
        title="Jail Support",
        lessons=tuple(f"31923:{HOST}:lesson-{i}" for i in range(1, lessons + 1)),
        certification_enabled=True,
        validity_days=180,
    )
    return replace(base, **changes)


def module(title: str, *lessons: str) -> Module:
    return Module(title, lessons)


def rsvp(
    author: str,
    status: RsvpStatus | str,
    at: int,
    *,
    of: Lesson | None = None,
    event_id: str | None = None,
    d: str = "rsvp-1",
) -> Rsvp:
    target = of or lesson()
    return Rsvp(
        author=author,
        lesson=target.coordinate,
        status=RsvpStatus(status) if isinstance(status, str) else status,
        d=d,
        created_at=at,
        event_id=event_id,
    )
