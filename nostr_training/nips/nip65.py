"""NIP-65 relay list metadata (kind 10002) and relay URL normalisation.

``["r", url]`` means read and write; a third element ``read`` or ``write`` narrows it. Fetch
events BY someone from their write relays; fetch events MENTIONING them from their read relays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from ..errors import MalformedEvent
from ..event import Event, EventTemplate

__all__ = ["KIND_RELAY_LIST", "RelayList", "normalize_relay_url", "relay_list_template", "parse_relay_list"]

KIND_RELAY_LIST = 10002
_SCHEMES = ("ws", "wss")


def normalize_relay_url(url: str) -> str:
    """One spelling per relay: lowercase scheme and host, no trailing slash, ws/wss only.

    ``WSS://Relay.Example.com/`` and ``wss://relay.example.com`` are the same relay.
    """
    if not isinstance(url, str) or not url.strip():
        raise MalformedEvent("a relay URL must be a non-empty string", field="relay")
    return _normalized(url) if len(url) <= 256 else _normalized.__wrapped__(url)


@lru_cache(maxsize=4096)
def _normalized(url: str) -> str:
    """Remembered (a few thousand short spellings): the outbox normalises every target of every
    event it plans."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise MalformedEvent(f"not a relay URL: {text[:80]!r} ({exc})", field="relay") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise MalformedEvent(f"a relay URL starts with ws:// or wss://, got {text[:80]!r}", field="relay")
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise MalformedEvent(f"a relay URL needs a host and no user info, got {text[:80]!r}", field="relay")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class RelayList:
    """Someone's relays by direction; a relay used both ways appears in both tuples."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """Every relay once, in first-seen order (read first)."""
        return tuple(dict.fromkeys(self.read + self.write))

    @classmethod
    def of(cls, read: Iterable[str] = (), write: Iterable[str] = ()) -> "RelayList":
        """Normalise and de-duplicate, keeping order."""
        return cls(
            tuple(dict.fromkeys(normalize_relay_url(u) for u in read)),
            tuple(dict.fromkeys(normalize_relay_url(u) for u in write)),
        )


def relay_list_template(relays: RelayList, *, created_at: int) -> EventTemplate:
    """Kind 10002 with one ``r`` tag per relay; a marker only when it is one-way."""
    relays = RelayList.of(relays.read, relays.write)
    read, write = set(relays.read), set(relays.write)
    tags: list[tuple[str, ...]] = []
    for url in relays.all:
        if url in read and url in write:
            tags.append(("r", url))
        else:
            tags.append(("r", url, "read" if url in read else "write"))
    return EventTemplate(KIND_RELAY_LIST, tuple(tags), "", created_at)


def parse_relay_list(event: Event) -> RelayList:
    """Read a kind 10002; tags with a bad URL or an unknown marker are skipped, as clients do."""
    if event.kind != KIND_RELAY_LIST:
        raise MalformedEvent(f"a relay list is kind {KIND_RELAY_LIST}, not {event.kind}", field="kind", event_id=event.id)
    read: dict[str, None] = {}
    write: dict[str, None] = {}
    for tag in event.tags_named("r"):
        if len(tag) < 2:
            continue
        try:
            url = normalize_relay_url(tag[1])
        except MalformedEvent:
            continue
        marker = tag[2] if len(tag) > 2 else ""
        if marker in ("", "read"):
            read[url] = None
        if marker in ("", "write"):
            write[url] = None
    return RelayList(tuple(read), tuple(write))
