"""NIP-17 private direct messages: kind 14 rumors gift-wrapped to every party, and kind 10050.

A DM is a kind 14 rumor (never signed) sealed and wrapped separately for each receiver and for
the sender, so the sender's other devices see it too. Senders publish only to the receiver's
kind 10050 inbox relays, and do not send at all when a receiver has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from ..errors import MalformedEvent
from ..event import Event, EventTemplate
from .nip59 import gift_wrap_many
from .nip65 import normalize_relay_url

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "KIND_CHAT_MESSAGE",
    "KIND_INBOX_RELAYS",
    "dm_rumor_template",
    "dm_wraps",
    "room_members",
    "inbox_relays_template",
    "parse_inbox_relays",
]

KIND_CHAT_MESSAGE = 14
KIND_INBOX_RELAYS = 10050
_HEX = frozenset("0123456789abcdef")


def dm_rumor_template(
    text: str,
    receivers: Iterable[str],
    *,
    created_at: int,
    relay_hints: Mapping[str, str] | None = None,
    subject: str | None = None,
    reply_to: str | None = None,
) -> EventTemplate:
    """Kind 14: ``["p", receiver, relay?]`` per receiver, then optional ``e`` reply and ``subject``."""
    hints = relay_hints or {}
    tags: list[tuple[str, ...]] = []
    for receiver in dict.fromkeys(receivers):
        hint = hints.get(receiver)
        tags.append(("p", receiver, hint) if hint else ("p", receiver))
    if not tags:
        raise MalformedEvent("a direct message needs at least one receiver", field="p")
    if reply_to is not None:
        if not (len(reply_to) == 64 and _HEX.issuperset(reply_to)):
            raise MalformedEvent(f"reply target must be a 64-hex event id, got {reply_to[:70]!r}", field="e")
        tags.append(("e", reply_to))
    if subject is not None:
        tags.append(("subject", subject))
    return EventTemplate(KIND_CHAT_MESSAGE, tuple(tags), text, created_at)


async def dm_wraps(
    signer: "Signer",
    receivers: Iterable[str],
    text: str,
    now: int,
    *,
    relay_hints: Mapping[str, str] | None = None,
    subject: str | None = None,
    reply_to: str | None = None,
    expiration: int | None = None,
) -> list[Event]:
    """Gift wraps of one kind 14 rumor: one per receiver, in order, then one for the sender.

    Every wrap holds the same rumor (same id), dated ``now``.
    """
    receiver_list = list(dict.fromkeys(receivers))
    template = dm_rumor_template(
        text, receiver_list, created_at=now, relay_hints=relay_hints, subject=subject, reply_to=reply_to
    )
    sender = await signer.get_public_key()
    parties = receiver_list + ([sender] if sender not in receiver_list else [])
    return await gift_wrap_many(template, signer, parties, now=now, expiration=expiration)


def room_members(rumor: Event) -> frozenset[str]:
    """The chat room a message belongs to: its author and every ``p`` receiver."""
    return frozenset([rumor.pubkey, *rumor.tag_values("p")])


def inbox_relays_template(relays: Iterable[str], *, created_at: int) -> EventTemplate:
    """Kind 10050 with one ``["relay", url]`` tag per inbox relay (NIP-17 suggests 1-3)."""
    urls = list(dict.fromkeys(normalize_relay_url(u) for u in relays))
    if not urls:
        raise MalformedEvent("an inbox relay list needs at least one relay", field="relay")
    return EventTemplate(KIND_INBOX_RELAYS, tuple(("relay", u) for u in urls), "", created_at)


def parse_inbox_relays(event: Event) -> tuple[str, ...]:
    """The inbox relays of a kind 10050, normalised; unreadable URLs are skipped."""
    if event.kind != KIND_INBOX_RELAYS:
        raise MalformedEvent(
            f"an inbox relay list is kind {KIND_INBOX_RELAYS}, not {event.kind}", field="kind", event_id=event.id
        )
    out: dict[str, None] = {}
    for value in event.tag_values("relay"):
        try:
            out[normalize_relay_url(value)] = None
        except MalformedEvent:
            continue
    return tuple(out)
