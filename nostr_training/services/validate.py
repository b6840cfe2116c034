"""Our own training kinds are checked with the strict parsers before anything is signed or queued.

A wrong RSVP status, a lesson without a host, an RSVP to a lesson nobody knows: each is a clear
error here instead of an event that every other client would misread.
"""

from __future__ import annotations

from typing import Callable

from .. import kinds
from ..errors import NotFound
from ..event import Event, EventTemplate, compute_id
from ..store.base import Store

__all__ = ["PARSERS", "check_event", "check_template", "check_references"]

#: The strict parser of each training kind that we sign.
PARSERS: dict[int, Callable[[Event], object]] = {
    kinds.COURSE: kinds.parse_course,
    kinds.LESSON: kinds.parse_lesson,
    kinds.RSVP: kinds.parse_rsvp,
    kinds.ROOM: kinds.parse_room,
    kinds.MEETING: kinds.parse_meeting,
    kinds.ROOM_PRESENCE: kinds.parse_presence,
    kinds.WAITING_ROOM_DECISION: kinds.parse_waiting_room_decision,
    kinds.ATTENDANCE_CLAIM: kinds.parse_attendance_claim,
    kinds.ATTENDANCE_RECORD: kinds.parse_attendance_record,
    kinds.COMPLETION_RECORD: kinds.parse_completion_record,
    kinds.BADGE_DEFINITION: kinds.parse_certificate_definition,
    kinds.BADGE_AWARD: kinds.parse_certificate_award,
    kinds.CERTIFICATE_REVOCATION: kinds.parse_certificate_revocation,
    kinds.FILE_METADATA: kinds.parse_recording,
}


def check_event(event: Event) -> None:
    """Run the strict parser of the event's kind, if it is one of ours (raises MalformedEvent)."""
    parse = PARSERS.get(event.kind)
    if parse is not None:
        parse(event)


def check_template(template: EventTemplate, pubkey: str) -> None:
    """The same check before signing: the template as ``pubkey`` would sign it."""
    tags = tuple(tuple(t) for t in template.tags)
    event_id = compute_id(pubkey, template.created_at, template.kind, tags, template.content)
    check_event(Event(event_id, pubkey, template.created_at, template.kind, tags, template.content, None))


async def check_references(event: Event, store: Store, *, now: int) -> None:
    """An RSVP must answer a lesson this index knows: a dangling ``a`` is a typo or a lost lesson."""
    if event.kind != kinds.RSVP:
        return
    rsvp = kinds.parse_rsvp(event)
    if await store.lesson(rsvp.lesson, now=now) is None:
        raise NotFound(
            f"RSVP {event.id[:16]}: no lesson {rsvp.lesson} in the local index"
            " (follow its course with 'nostr-training follow add', or check the coordinate)"
        )

