"""RSVPs and the evidence reminders are planned from: answer a lesson, and the instructor's view.

A learner answers with ``rsvp_to_lesson`` (a 31925 with the deterministic ``d``, ``e`` the
revision answered, ``p`` the host), but any calendar client's answer counts the same: every
31925 to the lesson is read, whatever its ``d`` and in the legacy ``l`` form too, and
``rules.rsvp`` keeps the newest per learner. ``rsvp_list`` is the instructor's view: where each
learner stands, and which reminders reached them, failed, or were dropped (the action log the
reminder scheduler writes, ``daemon/reminders.py``).

A cancelled lesson is one its author deleted (NIP-09 by ``a``): the index no longer serves it,
so its last revision is read back from the deletion's ``e`` tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import kinds
from ..errors import MalformedEvent, NotFound, RsvpRefused
from ..event import Event, coordinate, parse_coordinate
from ..filters import Filter
from ..kinds.calendar import Lesson, Rsvp, build_rsvp, parse_lesson, parse_rsvp
from ..nips.nip19 import decode
from ..rules.lifecycle import SessionState
from ..rules.rsvp import check_rsvp, ordered_revisions, roster_rows, rsvp_answer
from ..store.base import Store
from .context import ServiceContext
from .messages import reachability
from .publish import PublishReport, publish_events

__all__ = [
    "REMINDER_ACTION",
    "REMINDER_DROPPED_ACTION",
    "UNKNOWN_SENDER",
    "lesson_coordinate",
    "parsed",
    "LessonEvidence",
    "lesson_evidence",
    "cancellation_of",
    "enrolled_learners",
    "has_profile",
    "RsvpAnswer",
    "rsvp_to_lesson",
    "ReminderLine",
    "RsvpListRow",
    "RsvpListing",
    "rsvp_list",
]

#: The action-log names the reminder scheduler writes: a reminder sent, and one dropped unsent.
REMINDER_ACTION = "reminder"
REMINDER_DROPPED_ACTION = "reminder.dropped"
UNKNOWN_SENDER = "your key has no kind 0 profile: DM clients show reminders from an unknown sender"


def lesson_coordinate(text: str) -> str:
    """A lesson as ``31923:<pubkey>:<d>``, from that form or from an ``naddr``."""
    text = text.strip()
    if text.startswith("naddr1"):
        pointer = decode(text).data
        text = coordinate(pointer.kind, pointer.pubkey, pointer.identifier)
    kind, _, _ = parse_coordinate(text)
    if kind != kinds.LESSON:
        raise MalformedEvent(f"{text!r} is a kind {kind} coordinate, not a lesson (31923)", field="lesson")
    return text


async def resolve_lesson_text(ctx: ServiceContext, text: str) -> str:
    """A lesson's coordinate from a coordinate, an ``naddr``, or (on this machine) a lesson's
    ``d`` or the local name of one of the user's private lessons."""
    if text.strip().startswith("naddr1") or ":" in text:
        return lesson_coordinate(text)
    from .live import resolve_lesson

    return (await resolve_lesson(ctx, text.strip())).coordinate


def parsed(parse: Any, events: list[Event]) -> list[Any]:
    """Each event the strict parser accepts, in order; the others are left out."""
    out = []
    for event in events:
        try:
            out.append(parse(event))
        except MalformedEvent:
            continue
    return out


async def cancellation_of(store: Store, coord: str, *, now: int) -> tuple[int, Lesson | None] | None:
    """(when, the last revision) when the lesson's author deleted it by ``a``; else None."""
    _, author, _ = parse_coordinate(coord)
    deletions = await store.query(
        [Filter(kinds=frozenset({kinds.DELETION}), authors=frozenset({author}), tags={"a": frozenset({coord})})], now=now,
        include_private=True,  # a private lesson's cancellation reached its people in a gift wrap
    )
    if not deletions:
        return None
    deletion = deletions[-1]  # the oldest: the lesson was cancelled then
    last: Lesson | None = None
    for event_id in deletion.tag_values("e"):
        event = await store.get(event_id)
        if event is not None and event.kind == kinds.LESSON and event.pubkey == author:
            revision = parsed(parse_lesson, [event])
            last = revision[0] if revision else last
    return deletion.created_at, last


@dataclass(frozen=True)
class LessonEvidence:
    """Everything the index says about one lesson, as ``rules.reminders`` wants it."""

    revisions: tuple[Lesson, ...]
    """Every revision seen, oldest first; the last is current."""
    rsvps: tuple[Rsvp, ...]
    """Every answer seen, whatever its ``d`` (superseded ones too: the rules pick the newest)."""
    cancelled_at: int | None = None
    recording_available_at: int | None = None
    first_seen: Mapping[str, int] = field(default_factory=dict)
    """Event id -> when the index first stored it: an answer or revision is dated by the later
    of its ``created_at`` and this (a backdated answer that arrived late counts as late)."""

    @property
    def lesson(self) -> Lesson:
        return self.revisions[-1]

    @property
    def state(self) -> SessionState:
        return SessionState.CANCELLED if self.cancelled_at is not None else SessionState.SCHEDULED


async def lesson_evidence(store: Store, coord: str, *, now: int) -> LessonEvidence | None:
    """The lesson's revisions, answers, cancellation and recording; None when never seen."""
    _, author, d = parse_coordinate(coord)
    events = await store.query(
        [Filter(kinds=frozenset({kinds.LESSON}), authors=frozenset({author}), tags={"d": frozenset({d})})],
        now=now, include_superseded=True, include_private=True,
    )
    revisions = parsed(parse_lesson, events)
    cancelled = await cancellation_of(store, coord, now=now)
    if cancelled is not None and cancelled[1] is not None:
        revisions.append(cancelled[1])
    if not revisions:
        return None
    ordered = tuple(ordered_revisions(revisions))
    answers = await store.query(
        [Filter(kinds=frozenset({kinds.RSVP}), tags={"a": frozenset({coord})})], now=now, include_superseded=True,
        include_private=True,
    )
    files = await store.query(
        [Filter(kinds=frozenset({kinds.FILE_METADATA}), authors=frozenset({author}), tags={"a": frozenset({coord})})], now=now,
        include_private=True,
    )
    rsvps = tuple(parsed(parse_rsvp, answers))
    ids = [r.event_id for r in (*ordered, *rsvps) if r.event_id is not None] + [f.id for f in files]
    seen = await store.first_seen(ids)
    recording = [max(r.created_at or 0, seen.get(r.event_id or "", 0)) for r in ordered if r.recording_url]
    recording += [max(f.created_at, seen.get(f.id, 0)) for f in files]
    return LessonEvidence(
        revisions=ordered,
        rsvps=rsvps,
        cancelled_at=cancelled[0] if cancelled is not None else None,
        recording_available_at=min(recording) if recording else None,
        first_seen=seen,
    )


async def enrolled_learners(store: Store, lesson: Lesson, *, now: int) -> frozenset[str]:
    """Who is told a new lesson of the course is scheduled: whoever answered (any answer) another
    lesson of the course, and has not answered this one yet (an answer needs no invitation)."""
    if lesson.course is None:
        return frozenset()
    siblings = {
        coordinate(kinds.LESSON, e.pubkey, e.d)
        for e in await store.lessons_of_course(lesson.course, now=now)
    } - {lesson.coordinate}
    if not siblings:
        return frozenset()
    answers = await store.query([Filter(kinds=frozenset({kinds.RSVP}), tags={"a": frozenset(siblings)})], now=now,
                                include_superseded=True, include_private=True)
    here = await store.query([Filter(kinds=frozenset({kinds.RSVP}), tags={"a": frozenset({lesson.coordinate})})],
                             now=now, include_superseded=True, include_private=True)
    return frozenset(e.pubkey for e in answers) - {e.pubkey for e in here} - {lesson.instructor, lesson.author}


async def has_profile(store: Store, pubkey: str, *, now: int) -> bool:
    """Whether the index holds a kind 0 for ``pubkey`` (DM clients show its name)."""
    return bool(await store.query([Filter(kinds=frozenset({kinds.METADATA}), authors=frozenset({pubkey}), limit=1)], now=now))


# Answering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RsvpAnswer:
    """The answer signed and what publishing it did."""

    lesson: str
    status: str
    event: dict[str, Any]
    report: PublishReport
    private: bool = False
    """Gift-wrapped to the host (a private lesson): ``event`` is the unsigned answer, ``report`` the wrap's."""

    def to_dict(self) -> dict[str, Any]:
        return {"lesson": self.lesson, "status": self.status, "event": self.event, "private": self.private,
                **self.report.to_dict()}


async def rsvp_to_lesson(
    ctx: ServiceContext, lesson_coordinate_text: str, status: str, note: str = "", *, wait: float = 10.0
) -> RsvpAnswer:
    """Sign the user's answer to a lesson the index knows and publish it through the outbox.

    Refused (``RsvpRefused``) for a cancelled lesson, one that takes no RSVPs, and once RSVPs
    closed (the start, or the instructor's ``rsvp_until``).
    """
    coord = await resolve_lesson_text(ctx, lesson_coordinate_text)
    answer = rsvp_answer(status)
    now = ctx.clock.now()
    if await cancellation_of(ctx.store, coord, now=now) is not None:
        raise RsvpRefused(f"lesson {parse_coordinate(coord)[2]}: cancelled")
    lesson = await ctx.store.lesson(coord, now=now)
    if lesson is None:
        raise NotFound(f"no lesson {coord} in the index: follow its course, or wait for the daemon to fetch it")
    check_rsvp(lesson, SessionState.SCHEDULED, now)
    if lesson.private:
        return await _private_answer(ctx, lesson, build_rsvp(lesson, answer, created_at=now, note=note), wait)
    signer = ctx.require_signer()
    event = await signer.sign_event(build_rsvp(lesson, answer, created_at=now, note=note))
    (report,) = await publish_events(ctx, [event], wait=wait)
    if not report.accepted:
        raise RsvpRefused(report.error or "the answer was not accepted")
    return RsvpAnswer(coord, answer.value, event.to_dict(), report)


async def _private_answer(ctx: ServiceContext, lesson: Lesson, template: Any, wait: float) -> RsvpAnswer:
    """The answer to a private lesson: a rumor gift-wrapped to its host (1059), the user's own
    copy kept; nothing about it is published in the clear. The report is the wrap's."""
    from .private import deliver_rumor
    from .publish import _deliver_now, _deliveries

    rumor, [delivery] = await deliver_rumor(ctx, template, [lesson.author])
    assert delivery.wrap_id is not None
    if ctx.live:
        await ctx.outbox.wait_attempted([delivery.wrap_id], wait)
    else:
        await _deliver_now(ctx, [delivery.wrap_id], wait)
    report = PublishReport(delivery.wrap_id, True, delivery.unreachable, await _deliveries(ctx, delivery.wrap_id))
    return RsvpAnswer(lesson.coordinate, parse_rsvp(rumor).status.value, rumor.to_dict(), report, private=True)


# The instructor's view ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderLine:
    """One reminder for one learner: sent (with its delivery), or dropped unsent."""

    kind: str
    at: int
    state: str
    """delivered | pending | unreachable: <why> | refused: <why> | dropped: <why>"""

    @property
    def failed(self) -> bool:
        return self.state.startswith(("unreachable", "refused", "dropped"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "state": self.state, "failed": self.failed}


@dataclass(frozen=True)
class RsvpListRow:
    pubkey: str
    status: str
    answered_at: int
    waitlist_position: int | None
    needs_reconfirmation: bool
    promoted_at: int | None
    inbox: bool
    """Whether the learner published NIP-17 inbox relays (10050); without, no reminder reaches them."""
    reminders: tuple[ReminderLine, ...] = ()

    @property
    def sent(self) -> tuple[ReminderLine, ...]:
        return tuple(r for r in self.reminders if not r.failed)

    @property
    def failed(self) -> tuple[ReminderLine, ...]:
        return tuple(r for r in self.reminders if r.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pubkey": self.pubkey, "status": self.status, "answered_at": self.answered_at,
            "waitlist_position": self.waitlist_position, "needs_reconfirmation": self.needs_reconfirmation,
            "promoted_at": self.promoted_at, "inbox": self.inbox,
            "reminders_sent": [r.to_dict() for r in self.sent], "reminders_failed": [r.to_dict() for r in self.failed],
        }


@dataclass(frozen=True)
class RsvpListing:
    lesson: str
    title: str
    start: int
    start_tzid: str | None
    seats: int | None
    cancelled: bool
    rows: tuple[RsvpListRow, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.lesson, "title": self.title, "start": self.start, "start_tzid": self.start_tzid,
            "seats": self.seats, "cancelled": self.cancelled, "rows": [r.to_dict() for r in self.rows],
            "warnings": list(self.warnings),
        }


async def _reminder_lines(ctx: ServiceContext, coord: str) -> dict[str, list[ReminderLine]]:
    out: dict[str, list[ReminderLine]] = {}
    for record in await ctx.store.actions(subject=coord):
        if record.pubkey is None:
            continue
        if record.action == REMINDER_ACTION:
            state = await reachability(ctx, record.event_id) if record.event_id else "pending"
        elif record.action == REMINDER_DROPPED_ACTION:
            state = f"dropped: {record.detail and record.detail.split(' ', 1)[-1] or 'its moment passed'}"
        else:
            continue
        kind = (record.detail or record.key.split(":")[1]).split(" ", 1)[0]
        out.setdefault(record.pubkey, []).append(ReminderLine(kind, record.done_at, state))
    for lines in out.values():
        lines.sort(key=lambda r: r.at)
    return out


async def rsvp_list(ctx: ServiceContext, lesson_text: str) -> RsvpListing:
    """Every learner's standing on the lesson, and the reminders sent to them or not."""
    coord = await resolve_lesson_text(ctx, lesson_text)
    now = ctx.clock.now()
    evidence = await lesson_evidence(ctx.store, coord, now=now)
    if evidence is None:
        raise NotFound(f"no lesson {coord} in the index")
    rows = roster_rows(evidence.revisions, evidence.rsvps, first_seen=evidence.first_seen)
    learners = {r.pubkey for r in rows}
    lines = await _reminder_lines(ctx, coord)
    learners |= set(lines)
    inboxes = await ctx.store.query([Filter(kinds=frozenset({kinds.DM_RELAYS}), authors=frozenset(learners))], now=now) if learners else []
    with_inbox = {e.pubkey for e in inboxes}
    listed = [
        RsvpListRow(r.pubkey, r.status, r.answered_at, r.waitlist_position, r.needs_reconfirmation, r.promoted_at,
                    r.pubkey in with_inbox, tuple(lines.get(r.pubkey, ())))
        for r in rows
    ]
    listed += [
        RsvpListRow(p, "invited", 0, None, False, None, p in with_inbox, tuple(lines[p]))
        for p in sorted(set(lines) - {r.pubkey for r in rows})
    ]
    warnings = []
    lesson = evidence.lesson
    if not await has_profile(ctx.store, lesson.author, now=now):
        warnings.append(UNKNOWN_SENDER)
    unreachable = sorted(r.pubkey for r in listed if not r.inbox)
    if unreachable:
        warnings.append(f"{len(unreachable)} learner(s) published no inbox relays (10050) and get no reminders")
    return RsvpListing(coord, lesson.title, lesson.start, lesson.start_tzid, lesson.max_participants,
                       evidence.cancelled_at is not None, tuple(listed), tuple(warnings))
