"""Which reminders are due, to whom, and under which durable key, at a given moment.

The seed's notification table (scheduled, 24 h, 1 h, starting, recording ready) was never sent
by the origin clients. Here the daemon asks ``plan_reminders`` on every tick, sends what is due,
and writes each reminder's action key to its action log before sending; the plan leaves out
every key already in the log, so each reminder goes once and a restart changes nothing.

Who gets what: "scheduled" goes to the course's enrolled learners (it invites an answer); the
timed reminders (24 h, 1 h, starting, recording ready) go to seated accepted answers and to
tentative ones, never to waitlisted or declined learners. "changed" goes to every accepted or
tentative answer that needs re-confirmation after a material change (``rules.rsvp``),
"promoted" to a learner who got a seat from the waitlist, "cancelled" to everyone who answered
yes or maybe, seated or waiting. The instructor gets nothing.

Each reminder has a moment and is *meaningful* until a deadline; one missed while the daemon
was down is sent late while it is still meaningful and dropped (reported as missed) after:

=================  =======================  ===========================================
kind               moment                   meaningful until (not sent at or after it)
=================  =======================  ===========================================
scheduled          the lesson first seen    RSVPs close (cut-off or start); the start
                                            when the lesson takes no RSVPs
24h                start - 24 h             start - 12 h: later, "Tomorrow" may be today
                                            and the 1 h reminder is close
1h                 start - 1 h              start - 30 min: later, "in 1 hour" is wrong
                                            and "starting" follows
starting           the start                the scheduled end, and never once ended
recording_ready    recording available      7 days later
changed            material revision seen   the start
promoted           the seat came free       the start
cancelled          cancellation             the (cancelled) start
=================  =======================  ===========================================

No reminder from the past: a timed reminder whose moment came before the learner's answer (the
start of their current run of the same answer, dated by ``rsvp.answered_at``: a waitlisted
"yes" that turns into a "maybe" is owed nothing from before the "maybe"), before
their promotion off the waitlist, or before the current time was published (the latest material
revision, first seen), is not owed, so a late RSVP gets neither a 24 h reminder nor a missed
entry. A reschedule moves the timed reminders: their key carries the lesson start, so reminders
for the old start are no longer planned and those for the new start are. Nothing but the
"cancelled" notice goes out for a cancelled session.

Action keys (``reminder_action_key``) are ``reminder:<kind>:<occasion>:<learner>:<lesson>``
with occasion = the lesson start for 24h, 1h, starting and recording_ready; ``once`` for
scheduled and cancelled; the material revision's id for changed; the time the seat came free
for promoted (a second promotion after leaving and re-joining is told again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping, Sequence

from ..kinds.calendar import Lesson, Rsvp
from ..kinds.reminders import ReminderKind
from .lifecycle import AFTER_END, SessionState
from .rsvp import answered_at, current_answer_since, material_revisions, ordered_revisions, reconfirmation_judge, standing

__all__ = [
    "ReminderPolicy",
    "DueReminder",
    "ReminderPlan",
    "reminder_action_key",
    "plan_reminders",
    "reminders_due",
    "next_reminder_at",
]

_ORDER = {kind: i for i, kind in enumerate(ReminderKind)}
ONCE = "once"


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """Offsets and windows of the table in the module docstring, in seconds."""

    day_before: int = 86400
    day_before_until: int = 12 * 3600
    hour_before: int = 3600
    hour_before_until: int = 30 * 60
    recording_ready_for: int = 7 * 86400
    expire_after_end: int = 86400
    """Every reminder carries NIP-40 ``expiration`` this long after the session's end."""


def reminder_action_key(lesson: str, learner: str, kind: ReminderKind, occasion: str | int) -> str:
    """The durable action-log key of one reminder to one learner (see the module)."""
    return f"reminder:{kind.value}:{occasion}:{learner}:{lesson}"


@dataclass(frozen=True, slots=True)
class DueReminder:
    kind: ReminderKind
    pubkey: str
    due_at: int
    """The reminder's moment; it may be before ``now`` when it is sent late."""
    deadline: int
    """It is not sent at or after this moment."""
    lesson: str
    occasion: str
    expires_at: int
    """NIP-40 ``expiration`` for the rumor and its wrap: after the session."""

    @property
    def key(self) -> str:
        return reminder_action_key(self.lesson, self.pubkey, self.kind, self.occasion)


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    """What to send now, what was missed for good, and when to ask again."""

    due: tuple[DueReminder, ...]
    missed: tuple[DueReminder, ...]
    """Owed, never sent, and no longer meaningful: for the instructor's view. Logging their keys
    as dropped reports each once; they stay out of ``due`` either way."""
    next_at: int | None
    """The earliest moment after ``now`` at which something becomes due, for the scheduler."""


_Owed = tuple[ReminderKind, str, int, int, str, int]
"""(kind, learner, moment, deadline, occasion, expires_at) of one reminder owed."""


def _seen(revision: Lesson, first_seen: Mapping[str, int]) -> int:
    written = revision.created_at if revision.created_at is not None else 0
    seen = first_seen.get(revision.event_id) if revision.event_id is not None else None
    return written if seen is None else max(written, seen)


def _candidates(
    revisions: Sequence[Lesson],
    rsvps: Iterable[Rsvp],
    enrolled: Collection[str],
    first_seen: Mapping[str, int],
    state: SessionState | None,
    cancelled_at: int | None,
    recording_available_at: int | None,
    policy: ReminderPolicy,
) -> list[_Owed]:
    """Every reminder the lesson owes anyone, sent or not, whose window is not empty."""
    ordered = ordered_revisions(revisions)
    lesson = ordered[-1]
    start = lesson.start
    expires = lesson.end + policy.expire_after_end
    out: list[_Owed] = []

    def owe(kind: ReminderKind, pubkey: str, moment: int, deadline: int, occasion: str | int, until: int = expires) -> None:
        if moment < deadline:
            out.append((kind, pubkey, moment, deadline, str(occasion), until))

    counted = standing(lesson, rsvps, first_seen=first_seen)
    history, seated = counted.history, counted.roster
    if state is SessionState.CANCELLED or cancelled_at is not None:
        if cancelled_at is not None:
            for pubkey in (*seated.confirmed, *seated.waitlist, *seated.tentative):
                owe(ReminderKind.CANCELLED, pubkey, cancelled_at, start, ONCE)
        return out

    announce_until = lesson.rsvp_closes_at if lesson.requires_rsvp else start
    announced_at = _seen(ordered[0], first_seen)
    for pubkey in sorted(set(enrolled) - {lesson.instructor}):
        owe(ReminderKind.SCHEDULED, pubkey, announced_at, announce_until, ONCE)

    material = material_revisions(ordered)[-1]
    timing_known_at = _seen(material, first_seen)
    changed_occasion = material.event_id or str(material.created_at)
    judge = reconfirmation_judge(ordered)
    for pubkey in (*seated.confirmed, *seated.waitlist, *seated.tentative):
        if judge(history[pubkey][-1]):
            owe(ReminderKind.CHANGED, pubkey, timing_known_at, start, changed_occasion)

    promoted = counted.promoted
    timed = [
        (ReminderKind.DAY_BEFORE, start - policy.day_before, start - policy.day_before_until),
        (ReminderKind.HOUR_BEFORE, start - policy.hour_before, start - policy.hour_before_until),
    ]
    if state not in AFTER_END:
        timed.append((ReminderKind.STARTING, start, lesson.end))
    for pubkey in (*seated.confirmed, *seated.tentative):
        since = max(answered_at(current_answer_since(history[pubkey]), first_seen), timing_known_at)
        if pubkey in promoted:
            owe(ReminderKind.PROMOTED, pubkey, promoted[pubkey], start, promoted[pubkey])
            since = max(since, promoted[pubkey])
        for kind, moment, deadline in timed:
            if moment >= since:
                owe(kind, pubkey, moment, deadline, start)
        if recording_available_at is not None:
            until = recording_available_at + policy.recording_ready_for
            owe(ReminderKind.RECORDING_READY, pubkey, recording_available_at, until, start, until)
    return out


def plan_reminders(
    revisions: Lesson | Sequence[Lesson],
    rsvps: Iterable[Rsvp],
    now: int,
    *,
    sent: Collection[str] = frozenset(),
    enrolled: Collection[str] = (),
    first_seen: Mapping[str, int] | None = None,
    state: SessionState | None = None,
    cancelled_at: int | None = None,
    recording_available_at: int | None = None,
    policy: ReminderPolicy = ReminderPolicy(),
) -> ReminderPlan:
    """The reminders of one lesson at ``now``: a pure function of its evidence.

    ``revisions`` is the lesson (or every revision of it seen, in any order; the newest is
    current), ``rsvps`` every answer seen, ``sent`` the action keys already logged,
    ``enrolled`` the course roster, ``first_seen`` event id -> when the daemon first saw it
    (RSVPs and lesson revisions), ``cancelled_at`` when the session was cancelled, and
    ``recording_available_at`` when its recording was published.
    """
    history = (revisions,) if isinstance(revisions, Lesson) else tuple(revisions)
    if not history:
        return ReminderPlan((), (), None)
    due: list[DueReminder] = []
    missed: list[DueReminder] = []
    future: list[int] = []
    sent_keys = sent if isinstance(sent, (set, frozenset, dict)) else frozenset(sent)
    coord = history[0].coordinate
    for kind, pubkey, moment, deadline, occasion, expires in _candidates(
        history, rsvps, enrolled, first_seen or {}, state, cancelled_at, recording_available_at, policy
    ):
        if sent_keys and reminder_action_key(coord, pubkey, kind, occasion) in sent_keys:
            continue
        if moment > now:
            future.append(moment)
        else:
            (due if now < deadline else missed).append(
                DueReminder(kind, pubkey, moment, deadline, coord, occasion, expires)
            )

    def order(r: DueReminder) -> tuple[int, int, str]:
        return (r.due_at, _ORDER[r.kind], r.pubkey)

    return ReminderPlan(tuple(sorted(due, key=order)), tuple(sorted(missed, key=order)), min(future, default=None))


def reminders_due(
    revisions: Lesson | Sequence[Lesson], rsvps: Iterable[Rsvp], sent: Collection[str], now: int, **evidence
) -> tuple[DueReminder, ...]:
    """Only the reminders to send at ``now`` (see ``plan_reminders``)."""
    return plan_reminders(revisions, rsvps, now, sent=sent, **evidence).due


def next_reminder_at(
    revisions: Lesson | Sequence[Lesson], rsvps: Iterable[Rsvp], sent: Collection[str], now: int, **evidence
) -> int | None:
    """The earliest moment after ``now`` at which a reminder becomes due, for the scheduler."""
    return plan_reminders(revisions, rsvps, now, sent=sent, **evidence).next_at
