"""Training through in-person events: event RSVPs become lesson RSVPs, door checks attendance.

The origin mapped "attending"/"not_attending" while its events module said going / maybe /
not_going, so no RSVP ever matched, and it acted on the current user instead of the pubkey it
was given. Here every vocabulary maps onto NIP-52's answer (``rules.rsvp.rsvp_answer``), and the
answer is the learner's own signed RSVP to the event, read as an RSVP to the linked lesson: same
author, status, time and id, so the lesson's roster, waitlist and reminders treat it exactly
like an answer to the lesson itself. going and maybe enrol the learner; not_going withdraws.

Door check-ins and check-outs signed by the lesson's host (its author or instructor) become the
same join/leave evidence as a live session's, on one "door" connection per learner, and go
through the same attendance and completion rules: 45 minutes at the door complete a 60-minute
lesson (30 minutes or 50 % required), 20 do not. A check-in with no check-out counts to the end
of the session, as a dangling join does. Checks by anyone else are not evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from ..kinds.calendar import Lesson, Rsvp, RsvpStatus
from ..kinds.training_events import DoorAction, DoorCheck, TrainingLink
from .attendance import Attendance, AttendancePolicy, Join, Leave, SessionWindow, compute_attendance
from .completion import LiveCompletion, evaluate_live
from .rsvp import rsvp_answer

__all__ = [
    "DOOR_CONNECTION",
    "RsvpSync",
    "rsvp_sync",
    "lesson_rsvp",
    "door_evidence",
    "EventAttendance",
    "event_attendance",
]

DOOR_CONNECTION = "door"


@dataclass(frozen=True, slots=True)
class RsvpSync:
    """What an event RSVP does to training: the lesson answer, and enrol or withdraw."""

    status: RsvpStatus
    enrol: bool
    withdraw: bool


def rsvp_sync(word: RsvpStatus | str) -> RsvpSync:
    """going/maybe/not_going, accepted/tentative/declined or confirmed -> the training action."""
    status = rsvp_answer(word)
    declined = status is RsvpStatus.DECLINED
    return RsvpSync(status=status, enrol=not declined, withdraw=declined)


def lesson_rsvp(rsvp: Rsvp, link: TrainingLink) -> Rsvp | None:
    """The learner's RSVP to the event, read as their RSVP to the linked lesson (or None)."""
    if rsvp.lesson != link.event or link.lesson is None:
        return None
    return replace(rsvp, lesson=link.lesson)


def door_evidence(checks: Iterable[DoorCheck], lesson: Lesson) -> list[Join | Leave]:
    """The host's door checks for ``lesson`` as join/leave evidence; others' checks are dropped."""
    hosts = {lesson.author, lesson.instructor}
    out: list[Join | Leave] = []
    for check in checks:
        if check.lesson != lesson.coordinate or check.author not in hosts or check.learner in hosts:
            continue
        mark = Join if check.action is DoorAction.CHECK_IN else Leave
        out.append(mark(check.learner, check.at, DOOR_CONNECTION, f"door:{check.author}"))
    return out


@dataclass(frozen=True, slots=True)
class EventAttendance:
    attendance: Attendance
    completion: LiveCompletion


def event_attendance(
    lesson: Lesson,
    checks: Iterable[DoorCheck],
    *,
    ended_at: int | None = None,
    policy: AttendancePolicy = AttendancePolicy(),
) -> dict[str, EventAttendance]:
    """Per learner checked in at the door: time attended and whether it completes the lesson."""
    window = SessionWindow.for_lesson(lesson, ended_at)
    attended = compute_attendance(door_evidence(checks, lesson), window, policy)
    return {
        pubkey: EventAttendance(found, evaluate_live(found.total_seconds, lesson))
        for pubkey, found in attended.items()
    }
