"""Signed events for the store tests: small, explicit, one helper per shape."""

from __future__ import annotations

from typing import Sequence

from nostr_training.event import Event, EventTemplate, coordinate, sign_event
from nostr_training.keys import Keys


def signed(keys: Keys, kind: int, *, tags: Sequence[Sequence[str]] = (), content: str = "", at: int = 1_800_000_000) -> Event:
    return sign_event(EventTemplate(kind, tuple(tuple(t) for t in tags), content, at), keys.secret)


def addressable(keys: Keys, kind: int, d: str, *, at: int, tags: Sequence[Sequence[str]] = (), content: str = "") -> Event:
    return signed(keys, kind, tags=(("d", d), *tags), content=content, at=at)


def deletion(keys: Keys, *, ids: Sequence[str] = (), addresses: Sequence[str] = (), at: int = 1_800_000_000) -> Event:
    tags = [("e", i) for i in ids] + [("a", a) for a in addresses]
    return signed(keys, 5, tags=tags, content="withdrawn", at=at)


def address_of(keys: Keys, kind: int, d: str) -> str:
    return coordinate(kind, keys.public_key, d)


def rumor(keys: Keys, kind: int, *, tags: Sequence[Sequence[str]] = (), content: str = "", at: int = 1_800_000_000) -> Event:
    """An unsigned event as it comes out of a NIP-59 seal."""
    ev = signed(keys, kind, tags=tags, content=content, at=at)
    return Event(ev.id, ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content, None)


def tampered(event: Event, *, content: str | None = None, sig: str | None = None) -> Event:
    """The same event with a field changed after signing."""
    return Event(
        event.id, event.pubkey, event.created_at, event.kind, event.tags,
        event.content if content is None else content, event.sig if sig is None else sig,
    )
