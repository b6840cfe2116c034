"""Private courses and lessons for their host and invitees: names, revisions, invitations,
cancellation, and the fetch a CLI does without a daemon.

``services.live`` calls these when a course or lesson is private (docs/protocol.md "Private
training"); the wire and the envelope are ``kinds.private`` and ``services.private``:

- A private item gets a random ``d`` (nothing in its address is guessable). The name its host
  typed stays on the host's machine as a **local name** (action log, ``private-name``), so
  ``lesson reschedule intro`` keeps working; learners refer to it by coordinate or by its ``d``.
- A private course's lessons are private and share the course's view key: an invitee is
  invited to the course once and opens every lesson, revision and course listing with it.
- Every revision (a new time, a lesson added to the course) is the envelope published again
  under the same key: whoever holds the key sees it, without a new invitation.
- A cancellation is a NIP-09 deletion signed by nobody (a rumor), kept by the host and
  gift-wrapped to every invitee and every learner who answered: published in the clear, even
  an ``a`` tag would name the private lesson.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from .. import kinds
from ..errors import DomainError, MalformedEvent, NotFound
from ..event import Event, EventTemplate, coordinate, parse_coordinate
from ..filters import Filter
from ..kinds.calendar import Course, Lesson
from ..store.base import ActionRecord, OutboxState
from . import private
from .context import ServiceContext
from .messages import PrivateDelivery
from .publish import after_current

__all__ = [
    "PRIVATE_NAME_ACTION",
    "CANCEL_ACTION",
    "Invited",
    "random_d",
    "remember_name",
    "named",
    "resolve_course",
    "view_key_item",
    "publish_private",
    "invite_to_course",
    "invite_to_lesson",
    "private_recipients",
    "cancel_private_lesson",
    "private_cancellations",
    "fetch_private",
    "deliver_now",
]

PRIVATE_NAME_ACTION = "private-name"
CANCEL_ACTION = "private-cancel"


def random_d() -> str:
    """16 random bytes as hex: a private item's ``d``."""
    return secrets.token_hex(16)


async def _me(ctx: ServiceContext) -> str:
    return await ctx.require_signer().get_public_key()


# Local names --------------------------------------------------------------------------------


async def remember_name(ctx: ServiceContext, item: str, name: str) -> None:
    """Keep ``name`` (what the host typed) for the private item ``item``, on this machine only."""
    kind, _, d = parse_coordinate(item)
    if name == d:
        return
    await ctx.store.record_action(
        ActionRecord(f"{PRIVATE_NAME_ACTION}|{kind}|{name}", PRIVATE_NAME_ACTION, ctx.clock.now(), subject=item,
                     detail=name)
    )


async def named(ctx: ServiceContext, kind: int, name: str) -> str | None:
    """The coordinate of the user's private item of ``kind`` called ``name`` locally."""
    record = await ctx.store.get_action(f"{PRIVATE_NAME_ACTION}|{kind}|{name}")
    return record.subject if record is not None else None


async def _names(ctx: ServiceContext) -> dict[str, str]:
    return {r.subject: r.detail for r in await ctx.store.actions(action=PRIVATE_NAME_ACTION)
            if r.subject and r.detail}


async def local_name(ctx: ServiceContext, item: str) -> str | None:
    """The local name of a private item of the user's, if it has one."""
    return (await _names(ctx)).get(item)


async def resolve_course(ctx: ServiceContext, ref: str) -> Course:
    """A course by coordinate, by local name, or by the ``d`` of one of the user's courses."""
    now = ctx.clock.now()
    if ":" in ref:
        try:
            kind, _, _ = parse_coordinate(ref)
        except MalformedEvent as exc:
            raise NotFound(f"course {ref!r}: {exc}") from None
        found = await ctx.store.course(ref, now=now) if kind == kinds.COURSE else None
    else:
        coord = await named(ctx, kinds.COURSE, ref) or coordinate(kinds.COURSE, await _me(ctx), ref)
        found = await ctx.store.course(coord, now=now)
    if found is None:
        raise NotFound(f"course {ref}: not in the index (create it with 'course create')")
    return found


# Publishing ---------------------------------------------------------------------------------


def view_key_item(lesson: Lesson) -> str:
    """The item whose view key opens ``lesson``: its course (every private lesson is in one)."""
    return lesson.course or lesson.coordinate


async def publish_private(ctx: ServiceContext, templates: Sequence[EventTemplate], *, key_of: str) -> list[Event]:
    """Each template kept privately and published as an envelope under ``key_of``'s view key."""
    me = await _me(ctx)
    out = []
    for template in templates:
        out.append(await private.publish_private_item(ctx, await after_current(ctx, me, template, private=True), key_of=key_of))
    return out


# Invitations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    """What an invitation did: to which item (whose key), who got a new invitation, who had one."""

    item: str
    key_item: str
    sent: tuple[str, ...]
    already: tuple[str, ...]
    unreachable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "key_item": self.key_item, "invited": list(self.sent),
                "already_invited": list(self.already), "unreachable": dict(self.unreachable)}


def _summary(deliveries: Sequence[PrivateDelivery], invitees: Sequence[str], item: str, key_item: str) -> Invited:
    sent = tuple(p for p, d in zip(invitees, deliveries, strict=True) if d.sent)
    already = tuple(p for p, d in zip(invitees, deliveries, strict=True) if not d.sent)
    unreachable = {p: d.unreachable for p, d in zip(invitees, deliveries, strict=True) if d.unreachable}
    return Invited(item, key_item, sent, already, unreachable)


async def invite_to_course(ctx: ServiceContext, course: Course, invitees: Iterable[str]) -> Invited:
    """Add ``invitees`` to the user's private course and send each the course's key, once; the
    course is published again (its envelope) when the list of invitees grew. Without a daemon
    the envelope and the invitations are sent at once."""
    me = await _me(ctx)
    people = [p for p in dict.fromkeys(invitees) if p != me]
    if course.author != me:
        raise DomainError(f"course {course.d}: signed by {course.author[:16]}, not by you; only its author invites")
    if not course.private:
        raise DomainError(f"course {course.d} is public: anyone can read it, there is nobody to invite")
    grown = tuple(dict.fromkeys((*course.invitees, *people)))
    if grown != course.invitees:
        await publish_private(ctx, [kinds.build_course(replace(course, invitees=grown), created_at=ctx.clock.now())],
                              key_of=course.coordinate)
    deliveries = await private.invite(ctx, course.coordinate, people,
                                      text=f"You are invited to the private course {course.title}.")
    await deliver_now(ctx)
    return _summary(deliveries, people, course.coordinate, course.coordinate)


async def invite_to_lesson(ctx: ServiceContext, lesson: Lesson, invitees: Iterable[str]) -> Invited:
    """Add ``invitees`` to the user's private lesson; each gets the key of its course (the one
    key that opens the course's lessons), once per course."""
    me = await _me(ctx)
    people = [p for p in dict.fromkeys(invitees) if p != me]
    if lesson.author != me:
        raise DomainError(f"lesson {lesson.d}: only its author {lesson.author[:16]} invites to it")
    if not lesson.private:
        raise DomainError(f"lesson {lesson.d} is public: anyone can read it, there is nobody to invite")
    key_item = view_key_item(lesson)
    grown = tuple(dict.fromkeys((*lesson.invitees, *people)))
    if grown != lesson.invitees:
        await publish_private(ctx, [kinds.build_lesson(replace(lesson, invitees=grown), created_at=ctx.clock.now())],
                              key_of=key_item)
    deliveries = await private.invite(ctx, key_item, people, text=f"You are invited to the private lesson {lesson.title}.")
    await deliver_now(ctx)
    return _summary(deliveries, people, lesson.coordinate, key_item)


# Cancellation -------------------------------------------------------------------------------


async def private_recipients(ctx: ServiceContext, lesson: Lesson) -> list[str]:
    """Who hears about a private lesson's cancellation: its invitees, its course's, everyone
    who holds the key by invitation, and every learner who answered."""
    now = ctx.clock.now()
    people: list[str] = list(lesson.invitees)
    items = {lesson.coordinate, view_key_item(lesson)}
    if lesson.course is not None:
        course = await ctx.store.course(lesson.course, now=now)
        if course is not None:
            people += course.invitees
    for item in items:
        people += [r.pubkey for r in await ctx.store.actions(action=private.INVITE_ACTION, subject=item) if r.pubkey]
    people += [r.author for r in await ctx.store.rsvps(lesson.coordinate, now=now)]
    me = await _me(ctx)
    return [p for p in dict.fromkeys(people) if p != me]


async def cancel_private_lesson(ctx: ServiceContext, lesson: Lesson, *, reason: str) -> str:
    """The deletion of a private lesson, kept and gift-wrapped to its people (once each)."""
    events = [(lesson.event_id, kinds.LESSON)] if lesson.event_id else []
    template = kinds.build_deletion(events=events, addresses=[lesson.coordinate], created_at=ctx.clock.now(),
                                    reason=reason or "cancelled")
    rumor, _ = await private.deliver_rumor(ctx, template, await private_recipients(ctx, lesson),
                                           once=f"{CANCEL_ACTION}|{lesson.coordinate}")
    return rumor.id


async def private_cancellations(ctx: ServiceContext, lessons: Iterable[Lesson]) -> set[str]:
    """The coordinates among ``lessons`` (private ones) their author cancelled privately."""
    wanted = {x.coordinate: x.author for x in lessons if x.private}
    if not wanted:
        return set()
    found = await ctx.store.query(
        [Filter(kinds=frozenset({kinds.DELETION}), tags={"a": frozenset(wanted)})], now=ctx.clock.now(),
        include_private=True,
    )
    return {a for e in found for a in e.tag_values("a") if wanted.get(a) == e.pubkey}


# Without a daemon ---------------------------------------------------------------------------


async def deliver_now(ctx: ServiceContext) -> None:
    """Without a daemon: try every queued envelope and wrap once now (what ``publish_events``
    does for public events); what is not acknowledged stays queued for the daemon."""
    if ctx.live or getattr(ctx.outbox, "pool", None) is None:
        return
    from .publish import _deliver_now

    waiting = {e.event_id for e in await ctx.store.outbox_entries()
               if e.state in (OutboxState.PENDING, OutboxState.RETRYING)}
    if waiting:
        await _deliver_now(ctx, sorted(waiting), float(getattr(ctx.config, "publish_timeout", 10.0)))


async def fetch_private(ctx: ServiceContext, *, timeout: float = 5.0) -> private.InboxReport | None:
    """What a daemon would have received: the gift wraps to the user and the envelopes of the
    hosts whose keys the user holds, fetched once with the context's short-lived pool and
    opened (``open_inbox``). None when there is no pool, key or relay to ask."""
    pool = getattr(ctx.outbox, "pool", None)
    relays = list(getattr(ctx.config, "relays", ()) or ())
    if pool is None or ctx.signer is None or not relays:
        return None
    me, now = await _me(ctx), ctx.clock.now()
    wraps = await pool.fetch([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})], relays, timeout)
    for wrap in wraps:
        await ctx.store.add(wrap, verified=True, now=now)
    report = await private.open_inbox(ctx)
    hosts = {r.pubkey for r in await ctx.store.actions(action=private.VIEW_KEY_ACTION) if r.pubkey and r.pubkey != me}
    if hosts:
        envelopes = await pool.fetch([Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}), authors=frozenset(hosts))],
                                     relays, timeout)
        for envelope in envelopes:
            await ctx.store.add(envelope, verified=True, now=now)
        await private.open_envelopes(ctx, envelopes=envelopes, report=report)
    return report
