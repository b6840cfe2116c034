"""Private training as a service: what the host and the learner do instead of publishing.

The wire formats are in ``kinds.private``; docs/protocol.md "Private training" explains them.
Here:

- ``publish_private_item``: the host keeps a private course, lesson, room, meeting or
  certificate definition in its own index and publishes it only as an encrypted envelope under
  the view key of its course or lesson (created on first use, kept in the action log).
- ``invite``: the host sends that view key to each invitee in a gift-wrapped invitation, once.
- ``deliver_rumor``: an unsigned event about a private item (an RSVP, a join request, a
  decision...) gift-wrapped to the host or to learners, with the sender's own copy kept.
- ``deliver_records``: signed records (an attendance record, a certificate) handed to one
  learner in a record delivery, never published.
- ``open_inbox``: the receiving side; every gift wrap addressed to the user and every
  envelope from a host whose key the user holds is opened once, and what it holds is indexed as
  a private event, so the ordinary look-ups (``store.lesson``, ``store.rsvps``...) see it.

Nothing here publishes in the clear: the outbox refuses anything that is or names a private
item (``kinds.private.publication_refusal``), so a missed route fails loudly instead of leaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .. import kinds
from ..errors import NostrTrainingError, NotFound
from ..event import Event, EventTemplate
from ..filters import Filter
from ..kinds import private as private_kinds
from ..nips.nip59 import gift_wrap, make_rumor, unwrap
from ..store.base import ActionRecord
from .context import ServiceContext
from .messages import PrivateDelivery, send_private

__all__ = [
    "VIEW_KEY_ACTION",
    "OPENED_ACTION",
    "INBOX_KINDS",
    "InboxReport",
    "view_key_for",
    "publish_private_item",
    "invite",
    "deliver_rumor",
    "deliver_records",
    "open_inbox",
    "open_wrap",
    "open_envelopes",
]

VIEW_KEY_ACTION = "view-key"
INVITE_ACTION = "private-invite"
OPENED_ACTION = "inbox-opened"

#: Records a delivery may hand only to the learner they name (``p``).
_NAMES_ITS_HOLDER = frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD, kinds.BADGE_AWARD})

#: Rumor kinds the inbox indexes as private events; anything else (a plain DM) is left alone.
INBOX_KINDS = frozenset(
    {
        kinds.RSVP,
        kinds.RECORDING_CONSENT,
        kinds.JOIN_REQUEST,
        kinds.WAITING_ROOM_DECISION,
        kinds.ATTENDANCE_CLAIM,
        kinds.ROOM_PRESENCE,
        kinds.ROOM_KEY,
        kinds.RECORDING_KEY,
        kinds.FILE_METADATA,
        kinds.DELETION,  # a private lesson's cancellation (services.private_training)
    }
)


@dataclass
class InboxReport:
    """What one pass of ``open_inbox`` found (counts, and the addresses of new private items)."""

    opened: int = 0
    invitations: int = 0
    records: int = 0
    rumors: int = 0
    items: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """What was addressed to the user but did not hold up (a forged invitation, a bad record)."""


# View keys ------------------------------------------------------------------------------------


async def _me(ctx: ServiceContext) -> str:
    return await ctx.require_signer().get_public_key()


async def view_key_for(ctx: ServiceContext, item: str) -> bytes | None:
    """The view key the user holds for ``item``: a course or lesson coordinate of their own, or
    the 32678 coordinate an invitation named."""
    record = await ctx.store.get_action(f"{VIEW_KEY_ACTION}|{item}")
    return bytes.fromhex(record.detail) if record is not None and record.detail else None


async def _keys_of(ctx: ServiceContext, author: str) -> list[bytes]:
    """Every view key the user holds for items published by ``author``."""
    records = await ctx.store.actions(action=VIEW_KEY_ACTION, pubkey=author)
    return list(dict.fromkeys(bytes.fromhex(r.detail) for r in records if r.detail))


async def _remember_key(ctx: ServiceContext, item: str, author: str, key: bytes) -> bool:
    return await ctx.store.record_action(
        ActionRecord(f"{VIEW_KEY_ACTION}|{item}", VIEW_KEY_ACTION, ctx.clock.now(), subject=item, pubkey=author,
                     detail=key.hex())
    )


async def _own_key(ctx: ServiceContext, key_of: str) -> bytes:
    """The view key of the user's course or lesson ``key_of``, made on first use."""
    key = await view_key_for(ctx, key_of)
    if key is None:
        await _remember_key(ctx, key_of, await _me(ctx), private_kinds.new_view_key())
        key = await view_key_for(ctx, key_of)
    assert key is not None
    return key


# Host side ------------------------------------------------------------------------------------


async def publish_private_item(ctx: ServiceContext, template: EventTemplate, *, key_of: str | None = None) -> Event:
    """Keep ``template`` (marked private here) as a private event and publish its envelope.

    ``key_of`` is the course or lesson whose view key opens it (default: the item itself). The
    envelope has the item's created_at, so every holder of the key derives the same event id.
    """
    me = await _me(ctx)
    template = private_kinds.mark_private(template)
    rumor = make_rumor(template, me)
    assert rumor.address is not None
    key = await _own_key(ctx, key_of or rumor.address)
    envelope_template = private_kinds.build_envelope(template, me, key, created_at=template.created_at)
    await ctx.store.add_private(rumor, now=ctx.clock.now())
    ctx.outbox.note_private(rumor.address)
    envelope = await ctx.require_signer().sign_event(envelope_template)
    await ctx.outbox.submit(envelope)
    return rumor


async def invite(ctx: ServiceContext, item: str, invitees: Iterable[str], *, text: str) -> list[PrivateDelivery]:
    """Send each invitee the view key of the user's private course or lesson ``item``, once."""
    me = await _me(ctx)
    key = await view_key_for(ctx, item)
    if key is None:
        raise NotFound(f"{item[:80]} is not a private item of yours")
    envelope = private_kinds.envelope_coordinate(me, key, item)
    relays = getattr(ctx.config, "relays", None)
    relay = relays[0] if relays else None
    out = []
    for invitee in dict.fromkeys(invitees):
        template = private_kinds.build_invitation(envelope, key, invitee, text, relay=relay, created_at=ctx.clock.now())
        action = ActionRecord(f"{INVITE_ACTION}|{item}|{invitee}", INVITE_ACTION, ctx.clock.now(), subject=item,
                              pubkey=invitee)
        out.append(await send_private(ctx, template, invitee, action=action))
    return out


# Either side ----------------------------------------------------------------------------------


async def deliver_rumor(
    ctx: ServiceContext,
    template: EventTemplate,
    recipients: Sequence[str],
    *,
    once: str | None = None,
    ephemeral: bool = False,
    keep: bool = True,
) -> tuple[Event, list[PrivateDelivery]]:
    """Gift-wrap an unsigned event to each recipient (1059, or 21059 when ``ephemeral``) and
    keep the sender's own copy in the index. ``once``: an action key; each recipient gets it
    once (``<once>|<recipient>``)."""
    me = await _me(ctx)
    rumor = make_rumor(template, me)
    if keep:
        await ctx.store.add_private(rumor, now=ctx.clock.now())
    out = []
    for recipient in dict.fromkeys(recipients):
        action = None
        if once is not None:
            action = ActionRecord(f"{once}|{recipient}", once.split("|", 1)[0], ctx.clock.now(),
                                  subject=rumor.tag_value("a"), pubkey=recipient, event_id=rumor.id)
        if ephemeral:
            out.append(await _send_ephemeral(ctx, rumor, recipient, action))
        else:
            out.append(await send_private(ctx, rumor.template(), recipient, action=action))
    return rumor, out


async def _send_ephemeral(ctx: ServiceContext, rumor: Event, recipient: str, action: ActionRecord | None) -> PrivateDelivery:
    if action is not None and await ctx.store.get_action(action.key) is not None:
        return PrivateDelivery(None, False)
    wrap = await gift_wrap(rumor.template(), ctx.require_signer(), recipient, now=ctx.clock.now(), ephemeral=True)
    submission = await ctx.outbox.submit(wrap, action=action)
    reason = submission.refusals[0][1] if submission.refusals else None
    return PrivateDelivery(wrap.id, True, reason)


async def deliver_records(
    ctx: ServiceContext, events: Sequence[Event], *, subject: str, recipient: str, once: str | None = None
) -> PrivateDelivery:
    """Hand signed ``events`` to ``recipient`` in a record delivery; the sender keeps them too."""
    for event in events:
        await ctx.store.add_private(event, now=ctx.clock.now())
    template = private_kinds.build_record_delivery(events, subject=subject, created_at=ctx.clock.now())
    action = None
    if once is not None:
        action = ActionRecord(once, once.split("|", 1)[0], ctx.clock.now(), subject=subject, pubkey=recipient,
                              event_id=events[0].id)
    return await send_private(ctx, template, recipient, action=action)


# Receiving side ------------------------------------------------------------------------------


async def open_wrap(ctx: ServiceContext, wrap: Event, report: InboxReport | None = None) -> InboxReport:
    """Open one gift wrap addressed to the user and index what it holds (once per wrap)."""
    report = report or InboxReport()
    key = f"{OPENED_ACTION}|{wrap.id}"
    if await ctx.store.get_action(key) is not None:
        return report
    now = ctx.clock.now()
    try:
        rumor = (await unwrap(wrap, ctx.require_signer())).rumor
    except NostrTrainingError:  # not for us, or damaged: nothing in it to index, now or later
        if wrap.kind == kinds.GIFT_WRAP:
            await ctx.store.record_action(ActionRecord(key, OPENED_ACTION, now, event_id=wrap.id, detail="unreadable"))
        return report
    try:
        if private_kinds.is_invitation(rumor):
            invitation = private_kinds.parse_invitation(rumor)
            if invitation.invitee == await _me(ctx):
                await _remember_key(ctx, invitation.item, invitation.author, invitation.view_key)
                report.invitations += 1
                await open_envelopes(ctx, authors=[invitation.author], report=report)
        elif rumor.kind == kinds.RECORD_DELIVERY:
            delivery = private_kinds.parse_record_delivery(rumor)
            me = await _me(ctx)
            for event in delivery.events:
                if event.kind in _NAMES_ITS_HOLDER and me not in event.tag_values("p"):
                    report.refused.append(f"{event.kind} {event.id[:16]} from {rumor.pubkey[:16]} is about someone else")
                    continue
                await ctx.store.add_private(event, container_id=wrap.id, now=now)
                report.records += 1
        elif rumor.kind in INBOX_KINDS:
            await ctx.store.add_private(rumor, container_id=wrap.id, now=now)
            report.rumors += 1
    except NostrTrainingError as exc:  # dropped, like any event that does not parse; but said
        report.refused.append(f"{rumor.kind} from {rumor.pubkey[:16]} in wrap {wrap.id[:16]}: {exc}")
    if wrap.kind == kinds.GIFT_WRAP:  # an ephemeral wrap is never seen twice
        await ctx.store.record_action(ActionRecord(key, OPENED_ACTION, now, event_id=wrap.id))
    report.opened += 1
    return report


async def open_envelopes(
    ctx: ServiceContext, *, authors: Iterable[str] | None = None, envelopes: Sequence[Event] | None = None,
    report: InboxReport | None = None,
) -> InboxReport:
    """Decrypt the 32678 items of ``authors`` (or the ``envelopes`` given) with the keys the user
    holds, and index each inner item as a private event."""
    report = report or InboxReport()
    if envelopes is None:
        wanted = sorted(set(authors or []))
        if not wanted:
            return report
        envelopes = await ctx.store.query(
            [Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}), authors=frozenset(wanted))], now=ctx.clock.now()
        )
    keys: dict[str, list[bytes]] = {}
    for envelope in envelopes:
        if envelope.kind != kinds.PRIVATE_CALENDAR_ITEM:
            continue
        if envelope.pubkey not in keys:
            keys[envelope.pubkey] = await _keys_of(ctx, envelope.pubkey)
        for key in keys[envelope.pubkey]:
            try:
                inner = private_kinds.open_envelope(envelope, key)
            except NostrTrainingError:
                continue
            await ctx.store.add_private(inner, container_id=envelope.id, now=ctx.clock.now())
            assert inner.address is not None
            ctx.outbox.note_private(inner.address)
            await _remember_key(ctx, inner.address, envelope.pubkey, key)
            report.items.append(inner.address)
            break
    return report


async def open_inbox(ctx: ServiceContext, wraps: Sequence[Event] | None = None) -> InboxReport:
    """Open every gift wrap addressed to the user not opened yet (or the ``wraps`` given, such
    as ephemeral ones as they arrive), then every envelope from a host whose key the user holds."""
    me = await _me(ctx)
    report = InboxReport()
    if wraps is None:
        wraps = await ctx.store.query(
            [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})], now=ctx.clock.now()
        )
    for wrap in wraps:
        if me in wrap.tag_values("p"):
            await open_wrap(ctx, wrap, report)
    hosts = {r.pubkey for r in await ctx.store.actions(action=VIEW_KEY_ACTION) if r.pubkey}
    await open_envelopes(ctx, authors=hosts, report=report)
    return report

