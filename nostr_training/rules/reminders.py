"""Which reminders are due, to whom, at a given moment.

The seed's notification table (scheduled, 24 h, 1 h, starting, recording ready) was never sent
by the origin clients. Here the daemon asks this rule on every tick and sends what it returns,
recording each (kind, pubkey) it sent, so each reminder goes once and a restart changes nothing.

Recipients are learners whose answer is accepted and who hold a seat, plus tentative ones;
waitlisted and declined learners get none. Each reminder has a moment and a deadline:

=================  =======================  ===========================================
kind               moment                   deadline (not sent at or after it)
=================  =======================  ===========================================
scheduled          the learner's RSVP time  the start (it confirms the RSVP)
24 h               start - 24 h             start - 1 h (the 1 h reminder supersedes it)
1 h                start - 1 h              the start
starting           the start                the scheduled end; never once the session is over
recording ready    when the recording is    7 days later
                   available
=================  =======================  ===========================================

A reminder whose moment came before the learner's RSVP (the start of their current run of
accepted/tentative answers) is never sent: an RSVP 2 h before the start gets the confirmation,
the 1 h and the starting reminders, and no 24 h one. The RSVP's time is the later of its
``created_at`` and when the daemon first saw it (``first_seen``, by event id): ``created_at`` is
whatever the learner's client wrote, so a backdated RSVP, or one that reached the host late,
would otherwise be owed reminders whose moments had already passed. A reminder past its
deadline (the daemon was off) is skipped rather than sent stale. Nothing is due for a cancelled
session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Iterator, Mapping

from ..kinds.calendar import Lesson, Rsvp, RsvpStatus
from ..kinds.reminders import ReminderKind
from .lifecycle import AFTER_END, SessionState
from .rsvp import answered_since, answers_by_author, roster

__all__ = ["ReminderPolicy", "DueReminder", "reminders_due", "next_reminder_at"]

_ORDER = {kind: i for i, kind in enumerate(ReminderKind)}
_ANSWERED = frozenset({RsvpStatus.ACCEPTED, RsvpStatus.TENTATIVE})


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    day_before: int = 86400
    hour_before: int = 3600
    recording_ready_for: int = 7 * 86400


@dataclass(frozen=True, slots=True)
class DueReminder:
    kind: ReminderKind
    pubkey: str
    due_at: int


def _answered_at(rsvp: Rsvp, first_seen: Mapping[str, int]) -> int:
    """When the answer reached us: never before the daemon first saw it, when that is known."""
    seen = first_seen.get(rsvp.event_id) if rsvp.event_id is not None else None
    return rsvp.created_at if seen is None else max(rsvp.created_at, seen)


def _candidates(
    lesson: Lesson,
    rsvps: Iterable[Rsvp],
    sent: Collection[tuple[ReminderKind, str]],
    state: SessionState | None,
    recording_available_at: int | None,
    policy: ReminderPolicy,
    first_seen: Mapping[str, int],
) -> Iterator[tuple[ReminderKind, str, int, int]]:
    """(kind, pubkey, moment, deadline) of every unsent reminder the learner is owed."""
    if state is SessionState.CANCELLED:
        return
    rsvps = tuple(rsvps)
    seated = roster(lesson, rsvps)
    recipients = set(seated.confirmed) | set(seated.tentative)
    history = answers_by_author(rsvps, lesson.coordinate)
    start = lesson.start
    for pubkey in sorted(recipients):
        since = _answered_at(answered_since(history[pubkey], _ANSWERED), first_seen)
        moments = [
            (ReminderKind.SCHEDULED, since, start),
            (ReminderKind.DAY_BEFORE, start - policy.day_before, start - policy.hour_before),
            (ReminderKind.HOUR_BEFORE, start - policy.hour_before, start),
        ]
        if state not in AFTER_END:
            moments.append((ReminderKind.STARTING, start, lesson.end))
        if recording_available_at is not None:
            moments.append(
                (
                    ReminderKind.RECORDING_READY,
                    recording_available_at,
                    recording_available_at + policy.recording_ready_for,
                )
            )
        for kind, moment, deadline in moments:
            if (kind, pubkey) in sent or moment < since or moment >= deadline:
                continue
            yield kind, pubkey, moment, deadline


def reminders_due(
    lesson: Lesson,
    rsvps: Iterable[Rsvp],
    sent: Collection[tuple[ReminderKind, str]],
    now: int,
    *,
    state: SessionState | None = None,
    recording_available_at: int | None = None,
    policy: ReminderPolicy = ReminderPolicy(),
    first_seen: Mapping[str, int] | None = None,
) -> tuple[DueReminder, ...]:
    """Reminders to send at ``now``, oldest moment first.

    ``first_seen`` maps RSVP event ids to when the daemon first saw them (see the module).
    """
    due = [
        DueReminder(kind, pubkey, moment)
        for kind, pubkey, moment, deadline in _candidates(
            lesson, rsvps, sent, state, recording_available_at, policy, first_seen or {}
        )
        if moment <= now < deadline
    ]
    return tuple(sorted(due, key=lambda r: (r.due_at, _ORDER[r.kind], r.pubkey)))


def next_reminder_at(
    lesson: Lesson,
    rsvps: Iterable[Rsvp],
    sent: Collection[tuple[ReminderKind, str]],
    now: int,
    *,
    state: SessionState | None = None,
    recording_available_at: int | None = None,
    policy: ReminderPolicy = ReminderPolicy(),
    first_seen: Mapping[str, int] | None = None,
) -> int | None:
    """The earliest moment after ``now`` at which a reminder becomes due, for the scheduler."""
    future = [
        moment
        for _, _, moment, _ in _candidates(
            lesson, rsvps, sent, state, recording_available_at, policy, first_seen or {}
        )
        if moment > now
    ]
    return min(future, default=None)
