"""In-person and hybrid training events: create and link them, sync RSVPs, and door check-in/out.

An event is a NIP-52 31923 signed by its host. ``create_training_event`` publishes it as a lesson
of the course (so it carries the lesson's completion rule and appears among the course's lessons)
or, with ``lesson``, as an event delivering an existing lesson.

RSVPs (the choice, documented in docs/protocol.md): an RSVP is the learner's own signature, and
nobody signs one for them. The learner's 31925 to the event *is* their answer to the linked lesson
(``rules.events.lesson_rsvp``), so the lesson's roster reads it as is. What the host records is
the enrolment: ``sync_event_rsvp_to_training`` writes it to the action log (action
``training-enrolment``, key per RSVP), and the host's daemon calls it for every learner RSVP to
its linked events. Given the host's own pubkey it signs the host's lesson RSVP; given another
pubkey (a phone answer at the door) it records the host's enrolment of them, marked as such.

Door checks are 8316s signed by the host at the door. A check names a learner and where they
were, so it is never published (issue 15, "attendance ... never published in the clear"): the host
keeps it as a private event and hands it to that learner in a record delivery (8317, gift-wrapped)
committed to the outbox with an action key per (lesson, learner, action, moment), so a check typed
twice counts once, and one made with the relay down reaches the learner when it comes back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import MalformedEvent, NotFound
from ..event import Event, parse_coordinate
from ..filters import Filter
from ..kinds import (
    DATE_EVENT,
    DOOR_CHECK,
    LESSON,
    Lesson,
    RsvpStatus,
    build_door_check,
    build_event_link,
    build_lesson,
    build_rsvp,
    parse_door_check,
    parse_lesson,
    parse_rsvp,
    parse_training_link,
)
from ..kinds.training_events import DoorAction, TrainingLink
from ..nips.nip19 import pubkey_from_text
from ..rules.events import lesson_rsvp, rsvp_sync
from ..store.base import ActionRecord, Store
from .context import ServiceContext
from .follows import course_coordinate
from .private import deliver_records

__all__ = [
    "ENROLMENT_ACTION",
    "EVENT_MODES",
    "create_training_event",
    "link_event_to_training",
    "event_link",
    "EnrolmentChange",
    "sync_event_rsvp_to_training",
    "enrolments",
    "track_event_attendance",
    "door_checks",
    "OPERATIONS",
]

ENROLMENT_ACTION = "training-enrolment"
DOOR_ACTION = "door-check"
EVENT_MODES = ("in_person", "hybrid")


def _event_coordinate(text: str) -> str:
    from ..event import coordinate
    from ..nips.nip19 import decode

    text = text.strip()
    if text.startswith("naddr1"):
        pointer = decode(text).data
        text = coordinate(pointer.kind, pointer.pubkey, pointer.identifier)
    kind, _, _ = parse_coordinate(text)
    if kind not in (DATE_EVENT, LESSON):
        raise MalformedEvent(f"{text!r} is a kind {kind} coordinate, not a NIP-52 event", field="event")
    return text


async def _event(store: Store, coord: str, now: int) -> Event:
    kind, author, d = parse_coordinate(coord)
    found = await store.query(
        [Filter(kinds=frozenset({kind}), authors=frozenset({author}), tags={"d": frozenset({d})}, limit=1)], now=now
    )
    if not found:
        raise NotFound(f"event {coord} is not in the index")
    return found[0]


async def event_link(store: Store, coord: str, now: int) -> TrainingLink:
    return parse_training_link(await _event(store, coord, now))


async def _lesson_of(store: Store, link: TrainingLink, now: int) -> Lesson:
    if link.lesson is None:
        raise NotFound(f"event {link.event} is linked to no lesson (event link EVENT --lesson ...)")
    lesson = await store.lesson(link.lesson, now=now)
    if lesson is None:
        raise NotFound(f"lesson {link.lesson} is not in the index")
    return lesson


async def create_training_event(
    ctx: ServiceContext,
    *,
    d: str,
    title: str,
    start: int,
    end: int,
    location: str,
    course: str | None = None,
    lesson: str | None = None,
    mode: str = "in_person",
    tzid: str | None = None,
    summary: str = "",
) -> Event:
    """A host-signed 31923 at ``location``; a lesson of ``course``, or delivering ``lesson``."""
    if mode not in EVENT_MODES:
        raise MalformedEvent(f"mode must be {' or '.join(EVENT_MODES)}, got {mode!r}", field="mode")
    if not location.strip():
        raise MalformedEvent("an in-person or hybrid event needs a location", field="location")
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    now = ctx.clock.now()
    draft = Lesson(
        author=me, d=d, title=title, start=start, end=end, instructor=me, summary=summary, start_tzid=tzid,
        course=course_coordinate(course) if course else None, location=location,
        hashtags=("in-person" if mode == "in_person" else "hybrid",),
    )
    template = build_lesson(draft, created_at=now)
    event = await signer.sign_event(template)
    if lesson is not None:
        event = await signer.sign_event(build_event_link(event, course=draft.course, lesson=lesson, created_at=now))
    parse_lesson(event)
    await ctx.outbox.submit(event)
    return event


async def link_event_to_training(ctx: ServiceContext, event: str, *, course: str | None = None, lesson: str | None = None) -> Event:
    """Publish the host's event again, now naming ``course`` and/or ``lesson``."""
    now = ctx.clock.now()
    current = await _event(ctx.store, _event_coordinate(event), now)
    signer = ctx.require_signer()
    if current.pubkey != await signer.get_public_key():
        raise MalformedEvent("only the event's author links it (the link replaces the event)", field="event")
    linked = await signer.sign_event(
        build_event_link(current, course=course_coordinate(course) if course else None, lesson=lesson,
                         created_at=max(now, current.created_at + 1))
    )
    await ctx.outbox.submit(linked)
    return linked


@dataclass(frozen=True)
class EnrolmentChange:
    """What an event RSVP did to training for ``pubkey``."""

    event: str
    pubkey: str
    status: str
    enrolled: bool
    course: str | None
    lesson: str | None
    recorded: bool
    lesson_rsvp: str | None = None
    """The id of the lesson RSVP signed (only when the pubkey is the user's own)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def sync_event_rsvp_to_training(
    ctx: ServiceContext, event: str, pubkey: str, status: str, *, rsvp: Event | None = None
) -> EnrolmentChange:
    """going/maybe/not_going (or accepted/tentative/declined/confirmed) for ``pubkey``.

    going and maybe enrol, not_going withdraws; the enrolment goes to the action log once per
    answer (the learner's RSVP id when given, else the status and time). Only the user's own
    answer is signed, as a 31925 to the linked lesson.
    """
    now = ctx.clock.now()
    coord = _event_coordinate(event)
    link = await event_link(ctx.store, coord, now)
    sync = rsvp_sync(status)
    lesson_rsvp_id = None
    signer = ctx.signer
    me = await signer.get_public_key() if signer is not None else None
    if pubkey == me and link.lesson is not None:
        lesson = await _lesson_of(ctx.store, link, now)
        assert signer is not None
        signed = await signer.sign_event(build_rsvp(lesson, sync.status, created_at=now))
        await ctx.outbox.submit(signed)
        lesson_rsvp_id = signed.id
    answer = rsvp.id if rsvp is not None else f"{sync.status.value}@{now}"
    detail = {
        "status": sync.status.value, "event": coord, "lesson": link.lesson, "course": link.course,
        "source": "learner's RSVP" if rsvp is not None and rsvp.pubkey == pubkey else "host",
    }
    action = ActionRecord(
        f"enrolment|{coord}|{pubkey}|{answer}", ENROLMENT_ACTION, rsvp.created_at if rsvp is not None else now,
        subject=link.course or link.lesson or coord, pubkey=pubkey, event_id=rsvp.id if rsvp is not None else None,
        detail=json.dumps(detail, sort_keys=True),
    )
    recorded = await ctx.store.record_action(action)
    return EnrolmentChange(coord, pubkey, sync.status.value, sync.enrol, link.course, link.lesson, recorded, lesson_rsvp_id)


async def enrolments(store: Store) -> dict[tuple[str, str], tuple[bool, int]]:
    """(pubkey, course or lesson) -> (enrolled, since): the newest recorded answer decides."""
    newest: dict[tuple[str, str], tuple[int, str, bool]] = {}
    for record in await store.actions(action=ENROLMENT_ACTION):
        if record.pubkey is None or record.subject is None:
            continue
        try:
            status = json.loads(record.detail or "{}").get("status")
        except ValueError:
            continue
        key = (record.pubkey, record.subject)
        entry = (record.done_at, record.key, status != RsvpStatus.DECLINED.value)
        if key not in newest or entry[:2] > newest[key][:2]:
            newest[key] = entry
    return {key: (enrolled, at) for key, (at, _, enrolled) in newest.items()}


async def event_rsvps(store: Store, coord: str, now: int) -> list[tuple[Event, Any]]:
    """Learners' RSVPs to the event, each read as an RSVP to the linked lesson."""
    link = await event_link(store, coord, now)
    out = []
    for event in await store.rsvps_of_lesson(coord, now=now):
        try:
            answer = parse_rsvp(event)
        except MalformedEvent:
            continue
        as_lesson = lesson_rsvp(answer, link)
        if as_lesson is not None:
            out.append((event, as_lesson))
    return out


async def track_event_attendance(
    ctx: ServiceContext, event: str, pubkey: str, check_in: int | None, check_out: int | None = None
) -> list[str]:
    """Host-signed door checks (8316) for ``pubkey`` at the event's lesson, kept privately and
    delivered to that learner (never published); the ids of the checks signed now."""
    now = ctx.clock.now()
    link = await event_link(ctx.store, _event_coordinate(event), now)
    if link.lesson is None:
        raise NotFound(f"event {link.event} is linked to no lesson")
    signer = ctx.require_signer()
    ids = []
    for action, at in ((DoorAction.CHECK_IN, check_in), (DoorAction.CHECK_OUT, check_out)):
        if at is None:
            continue
        if at > now:
            raise MalformedEvent(f"a door check records what happened: {at} is after now ({now})", field="at")
        key = f"{DOOR_ACTION}|{link.lesson}|{pubkey}|{action.value}|{at}"
        if await ctx.store.get_action(key) is not None:
            continue
        check = await signer.sign_event(build_door_check(link.lesson, pubkey, action, at=at, created_at=now))
        delivery = await deliver_records(ctx, [check], subject=link.lesson, recipient=pubkey, once=key)
        if delivery.sent:
            ids.append(check.id)
    return ids


async def door_checks(store: Store, lesson: str, now: int) -> list[Any]:
    """The door checks at ``lesson`` the index holds (private events: the host's own, or the
    learner's delivered ones)."""
    found = await store.query(
        [Filter(kinds=frozenset({DOOR_CHECK}), tags={"a": frozenset({lesson})})], now=now, include_private=True
    )
    out = []
    for event in found:
        try:
            out.append(parse_door_check(event))
        except MalformedEvent:
            continue
    return out


# Operations -------------------------------------------------------------------------------------


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"'{name}' must be text", field=name)
    return value


def _int(body: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if type(value) is not int or value < 0:
        raise MalformedEvent(f"'{name}' must be unix seconds", field=name)
    return value


def _link_dict(link: TrainingLink) -> dict[str, Any]:
    return {"event": link.event, "author": link.author, "course": link.course, "lesson": link.lesson, "location": link.location}


async def _op_create(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    event = await create_training_event(
        ctx, d=_str(body, "d") or "", title=_str(body, "title") or "", start=_int(body, "start") or 0,
        end=_int(body, "end") or 0, location=_str(body, "location") or "",
        course=_str(body, "course", required=False), lesson=_str(body, "lesson", required=False),
        mode=_str(body, "mode", required=False) or "in_person", tzid=_str(body, "tzid", required=False),
        summary=body.get("summary") or "",
    )
    return {"id": event.id, "event": event.address, "link": _link_dict(parse_training_link(event))}


async def _op_link(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    event = await link_event_to_training(
        ctx, _str(body, "event") or "", course=_str(body, "course", required=False), lesson=_str(body, "lesson", required=False)
    )
    return {"id": event.id, "event": event.address, "link": _link_dict(parse_training_link(event))}


async def _op_rsvp_sync(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    pubkey = pubkey_from_text(_str(body, "pubkey") or "")
    change = await sync_event_rsvp_to_training(ctx, _str(body, "event") or "", pubkey, _str(body, "status") or "")
    return change.to_dict()


async def _op_check(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    pubkey = pubkey_from_text(_str(body, "pubkey") or "")
    at = _int(body, "at", required=False)
    at = ctx.clock.now() if at is None else at
    action = _str(body, "action") or ""
    if action not in ("check_in", "check_out"):
        raise MalformedEvent("action must be check_in or check_out", field="action")
    ids = await track_event_attendance(
        ctx, _str(body, "event") or "", pubkey, at if action == "check_in" else None, at if action == "check_out" else None
    )
    return {"ids": ids, "at": at, "action": action}


OPERATIONS = {
    "create": _op_create,
    "link": _op_link,
    "rsvp-sync": _op_rsvp_sync,
    "check": _op_check,
}
