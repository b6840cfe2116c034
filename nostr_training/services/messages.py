"""Private delivery: a rumor (a DM, a room key, a reminder) gift-wrapped to one recipient and
committed to the outbox, once.

Every service that tells someone something privately goes through ``send_private``: with an
``ActionRecord`` the wrap and the action-log entry commit together, so a restart neither sends
it twice nor forgets it. A recipient without NIP-17 inbox relays (10050) gets nothing: the outbox
records them as unreachable (``TargetKind.RECIPIENT``), which status and the senders' views show.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from ..event import EventTemplate
from ..nips.nip17 import dm_rumor_template
from ..nips.nip59 import gift_wrap
from ..store.base import ActionRecord, AddOutcome, OutboxState, TargetKind
from .context import ServiceContext

__all__ = ["PrivateDelivery", "send_private", "send_dm", "reachability", "WRAP_EXPIRATION_JITTER"]

#: Seconds, at most, a wrap's NIP-40 expiration lies after its rumor's.
WRAP_EXPIRATION_JITTER = 24 * 3600


@dataclass(frozen=True)
class PrivateDelivery:
    """What ``send_private`` did: the wrap's id, and whether it was new (False: already done)."""

    wrap_id: str | None
    sent: bool
    unreachable: str | None = None  # why the recipient cannot be reached, when known at once


async def send_private(
    ctx: ServiceContext,
    rumor: EventTemplate,
    recipient: str,
    *,
    action: ActionRecord | None = None,
    expiration: int | None = None,
) -> PrivateDelivery:
    """Wrap ``rumor`` (signed by nobody, sealed by the user's key) to ``recipient`` and queue it.

    With ``action``, nothing happens when the action is already logged (checked before any
    signing, and again atomically with the commit).
    """
    if action is not None and await ctx.store.get_action(action.key) is not None:
        return PrivateDelivery(None, False)
    signer = ctx.require_signer()
    # The wrap's public expiration is the rumor's plus a random delay: the same moment on the
    # wraps of one lesson's reminders or room keys would tell a relay who is in it.
    outer = expiration + secrets.randbelow(WRAP_EXPIRATION_JITTER) if expiration is not None else None
    wrap = await gift_wrap(rumor, signer, recipient, now=ctx.clock.now(), expiration=outer)
    logged = replace(action, pubkey=action.pubkey or recipient) if action is not None else None
    submission = await ctx.outbox.submit(wrap, action=logged)
    if submission.outcome is AddOutcome.ALREADY_DONE:
        return PrivateDelivery(None, False)
    reason = submission.refusals[0][1] if submission.refusals else None
    return PrivateDelivery(wrap.id, True, reason)


async def send_dm(
    ctx: ServiceContext,
    recipient: str,
    text: str,
    *,
    tags: tuple[tuple[str, ...], ...] = (),
    action: ActionRecord | None = None,
    expiration: int | None = None,
) -> PrivateDelivery:
    """A NIP-17 direct message (kind 14) to one recipient, shown by any DM client."""
    template = dm_rumor_template(text, [recipient], created_at=ctx.clock.now())
    extra = tuple(tags) + ((("expiration", str(expiration)),) if expiration is not None else ())
    if extra:
        template = EventTemplate(template.kind, tuple(template.tags) + extra, template.content, template.created_at)
    return await send_private(ctx, template, recipient, action=action, expiration=expiration)


async def reachability(ctx: ServiceContext, wrap_id: str) -> str:
    """delivered | pending | unreachable: <why> | refused: <why>, from the wrap's outbox rows."""
    entries = await ctx.store.outbox_entries(wrap_id)
    for entry in entries:
        if entry.target.kind is TargetKind.RECIPIENT and entry.state is OutboxState.REFUSED:
            return f"unreachable: {entry.last_message or 'no inbox relays'}"
    if any(e.state is OutboxState.DELIVERED for e in entries):
        return "delivered"
    refused = [e for e in entries if e.state is OutboxState.REFUSED]
    if refused and len(refused) == len(entries):
        return f"refused: {refused[0].last_message or ''}"
    return "pending"
