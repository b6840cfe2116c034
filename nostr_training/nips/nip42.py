"""NIP-42 relay authentication: the kind 22242 AUTH event and the relay-side check.

The client signs ``["relay", url]`` and ``["challenge", challenge]`` with ``created_at`` = now;
the relay accepts it if the challenge is the one it sent on this connection, the URL names the
relay (loosely: same host), the time is within about ten minutes, and the signature holds.
Kind 22242 is ephemeral and must never be broadcast.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidEvent, MalformedEvent, MissingTag
from ..event import Event, EventTemplate, verify_event
from .nip65 import normalize_relay_url

__all__ = ["KIND_AUTH", "MAX_CLOCK_SKEW", "auth_template", "check_auth", "same_relay"]

KIND_AUTH = 22242
MAX_CLOCK_SKEW = 600
"""Seconds an AUTH event's created_at may differ from the relay's clock."""


def auth_template(relay_url: str, challenge: str, *, created_at: int) -> EventTemplate:
    """The unsigned AUTH answer to ``["AUTH", challenge]`` from ``relay_url``."""
    if not challenge:
        raise MalformedEvent("must be a non-empty string", field="challenge")
    return EventTemplate(KIND_AUTH, (("relay", relay_url), ("challenge", challenge)), "", created_at)


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _host(url: str) -> str:
    try:
        host = urlsplit(normalize_relay_url(url)).hostname or ""
    except MalformedEvent:
        return ""
    return "localhost" if host in _LOOPBACK else host


def same_relay(claimed: str, actual: str) -> bool:
    """Loose match on the host name: scheme, port, path and case may differ (proxies rewrite them).

    The loopback names (localhost, 127.0.0.1, ::1) count as one host: a local relay is reached
    by any of them.
    """
    host = _host(claimed)
    return bool(host) and host == _host(actual)


def check_auth(event: Event, *, challenge: str, relay_url: str, now: int, max_skew: int = MAX_CLOCK_SKEW) -> str:
    """Accept an AUTH event for this connection and return the authenticated pubkey, or raise."""
    if event.kind != KIND_AUTH:
        raise MalformedEvent(f"an AUTH event is kind {KIND_AUTH}, not {event.kind}", field="kind", event_id=event.id)
    got_challenge = event.tag_value("challenge")
    if got_challenge is None:
        raise MissingTag("challenge", event_id=event.id)
    claimed_relay = event.tag_value("relay")
    if claimed_relay is None:
        raise MissingTag("relay", event_id=event.id)
    if got_challenge != challenge:
        raise InvalidEvent(f"event {event.id[:16]}: challenge does not match the one this relay sent")
    if not same_relay(claimed_relay, relay_url):
        raise InvalidEvent(f"event {event.id[:16]}: relay tag {claimed_relay[:80]!r} does not name {relay_url}")
    if abs(event.created_at - now) > max_skew:
        raise InvalidEvent(
            f"event {event.id[:16]}: created_at is {event.created_at - now:+d} s from now, beyond ±{max_skew} s"
        )
    verify_event(event)
    return event.pubkey
