"""Sans-I/O client side of the relay protocol (NIP-01 messages, NIP-42 AUTH) for one connection.

``RelayConnection`` holds no socket: the caller feeds it each text frame the relay sent
(``receive``) and gets back one typed record per frame; it asks it for the frames to send (``request``,
``close_subscription``, ``publish``, ``authenticate``). It tracks the open subscriptions, the
publishes and AUTHs waiting for an OK, and the latest AUTH challenge.

A relay is untrusted input. Nothing a relay sends raises: a frame that is not valid JSON, has the
wrong types, names an unknown message type, is over the size limit, or carries an event that
fails verification becomes a ``Dropped`` record and bumps a counter, and the connection lives on.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from .errors import InvalidEvent, MalformedEvent, RelayRefused
from .event import Event, verify_event
from .filters import Filter, matches_any
from .nips.nip11 import RelayLimits

__all__ = [
    "DEFAULT_MAX_INCOMING_LENGTH",
    "RelayCounters",
    "ReceivedEvent",
    "EndOfStoredEvents",
    "SubscriptionClosed",
    "PublishAnswered",
    "AuthAnswered",
    "Notice",
    "AuthChallenge",
    "Dropped",
    "Received",
    "RelayConnection",
    "reason_prefix",
]

DEFAULT_MAX_INCOMING_LENGTH = 1 << 21
"""Largest frame accepted from a relay, in bytes (2 MiB): room for big NIP-44 payloads."""

_HEX = frozenset("0123456789abcdef")
_EXCERPT = 80
_CLOSING_REMEMBERED = 1000
_UNANSWERED_REMEMBERED = 10_000
_AUTH_REFUSAL = re.compile(
    r"^\s*(auth-required|restricted|invalid|blocked)\s*:|\b(auth|authentic\w*|unauthori[sz]ed)\b", re.IGNORECASE
)
"""A NOTICE that refuses an AUTH: a NIP-01 refusal prefix, or words about authentication."""


def reason_prefix(message: str) -> str:
    """The machine-readable prefix of an OK/CLOSED message (``auth-required``, ``restricted``...)."""
    head, sep, _ = message.partition(":")
    return head.strip() if sep and " " not in head.strip() else ""


@dataclass(slots=True)
class RelayCounters:
    """What one relay sent us, summed over every connection to it."""

    events_received: int = 0
    malformed_dropped: int = 0
    invalid_signature_dropped: int = 0
    unexpected_dropped: int = 0
    notices: int = 0


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A verified event that matches the open subscription it arrived on."""

    subscription_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class EndOfStoredEvents:
    subscription_id: str


@dataclass(frozen=True, slots=True)
class SubscriptionClosed:
    """The relay refused or ended a subscription; it is no longer open."""

    subscription_id: str
    message: str

    @property
    def prefix(self) -> str:
        return reason_prefix(self.message)


@dataclass(frozen=True, slots=True)
class PublishAnswered:
    """The OK for an EVENT we sent."""

    event_id: str
    accepted: bool
    message: str

    @property
    def prefix(self) -> str:
        return reason_prefix(self.message)


@dataclass(frozen=True, slots=True)
class AuthAnswered:
    """The OK for an AUTH we sent; on success ``pubkey`` is now authenticated on this connection."""

    event_id: str
    pubkey: str
    accepted: bool
    message: str


@dataclass(frozen=True, slots=True)
class Notice:
    message: str


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    challenge: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame (or part of one) that was ignored, and why."""

    category: Literal["malformed", "invalid_signature", "unexpected", "late"]
    """``late``: still in flight when we sent CLOSE; normal, so not counted."""
    reason: str
    excerpt: str = ""


Received = (
    ReceivedEvent | EndOfStoredEvents | SubscriptionClosed | PublishAnswered | AuthAnswered
    | Notice | AuthChallenge | Dropped
)


class _Malformed(Exception):
    pass


def _excerpt(frame: str | bytes) -> str:
    text = frame if isinstance(frame, str) else repr(frame[:_EXCERPT])
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise _Malformed(reason)


@dataclass
class RelayConnection:
    """The protocol state of one websocket connection to one relay.

    ``verify`` checks every received event (injected so the pool can cache results across
    relays); ``counters`` may be shared across reconnections to the same relay.
    """

    url: str
    limits: RelayLimits = field(default_factory=RelayLimits)
    verify: Callable[[Event], Event] = verify_event
    max_incoming_length: int = DEFAULT_MAX_INCOMING_LENGTH
    counters: RelayCounters = field(default_factory=RelayCounters)
    subscriptions: dict[str, tuple[Filter, ...]] = field(default_factory=dict, init=False)
    stored_done: set[str] = field(default_factory=set, init=False)
    closing: OrderedDict[str, None] = field(default_factory=OrderedDict, init=False)
    pending_publishes: dict[str, Event] = field(default_factory=dict, init=False)
    unanswered: deque[str] = field(default_factory=deque, init=False)
    """Ids of the EVENTs sent and not yet answered (the latest 10 000), oldest first, forgotten ones
    included: a relay answers in this order, so an OK with an empty id belongs to the first."""
    pending_auth: dict[str, str] = field(default_factory=dict, init=False)
    challenge: str | None = field(default=None, init=False)
    authenticated: set[str] = field(default_factory=set, init=False)

    # Outgoing ---------------------------------------------------------------------------------

    def request(self, subscription_id: str, filters: Sequence[Filter]) -> str:
        """A REQ frame; reusing an open id replaces that subscription, as NIP-01 says."""
        if not subscription_id or len(subscription_id) > 64:
            raise MalformedEvent("a subscription id is 1 to 64 characters", field="subscription_id")
        if not filters:
            raise MalformedEvent("a REQ needs at least one filter", field="filters")
        self.subscriptions[subscription_id] = tuple(filters)
        self.stored_done.discard(subscription_id)
        self.closing.pop(subscription_id, None)
        return json.dumps(["REQ", subscription_id, *(f.to_dict() for f in filters)], separators=(",", ":"),
                          ensure_ascii=False)

    def close_subscription(self, subscription_id: str) -> str:
        """A CLOSE frame; what is still in flight for it is then dropped as ``late``."""
        self.subscriptions.pop(subscription_id, None)
        self.stored_done.discard(subscription_id)
        self.closing[subscription_id] = None
        if len(self.closing) > _CLOSING_REMEMBERED:
            self.closing.popitem(last=False)
        return json.dumps(["CLOSE", subscription_id])

    def publish(self, event: Event, *, now: int) -> str:
        """An EVENT frame, registered as waiting for its OK.

        Raises ``RelayRefused`` without sending when the relay's NIP-11 limits already say no.
        """
        frame = '["EVENT",' + event.to_json() + "]"
        refusal = self.limits.event_refusal(
            message_length=len(frame.encode("utf-8")),
            content_length=len(event.content),
            tag_count=len(event.tags),
            created_at=event.created_at,
            now=now,
        )
        if refusal is not None:
            raise RelayRefused(refusal, relay=self.url)
        self.pending_publishes[event.id] = event
        self.unanswered.append(event.id)
        if len(self.unanswered) > _UNANSWERED_REMEMBERED:
            self.unanswered.popleft()
        return frame

    def authenticate(self, auth_event: Event) -> str:
        """An AUTH frame carrying a signed kind-22242 event, registered as waiting for its OK."""
        self.pending_auth[auth_event.id] = auth_event.pubkey
        return '["AUTH",' + auth_event.to_json() + "]"

    def forget_publish(self, event_id: str) -> None:
        """Stop waiting for an OK (the caller timed out); a late OK is then dropped as unexpected,
        and the event keeps its place in ``unanswered`` so later empty-id OKs still line up."""
        self.pending_publishes.pop(event_id, None)

    def forget_auth(self, event_id: str) -> None:
        """Stop waiting for the OK of an AUTH: some relays (nostr-relay 1.14) never send one."""
        self.pending_auth.pop(event_id, None)

    @property
    def auth_state(self) -> str:
        if self.pending_auth:
            return "authenticating"
        if self.authenticated:
            return "authenticated"
        return "challenged" if self.challenge is not None else "none"

    # Incoming ---------------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> Received:
        """Parse one frame from the relay into a record; never raises on relay input."""
        try:
            return self._receive(frame)
        except _Malformed as exc:
            return self._drop("malformed", str(exc), frame)

    def _receive(self, frame: str | bytes) -> Received:
        _need(isinstance(frame, str), "binary frame (relays send text)")
        assert isinstance(frame, str)
        size = len(frame)
        if size * 4 > self.max_incoming_length:
            size = len(frame.encode("utf-8", "surrogatepass"))
        _need(size <= self.max_incoming_length,
              f"message of {size} bytes is over the limit of {self.max_incoming_length}")
        try:
            message = json.loads(frame)
        except (ValueError, RecursionError) as exc:
            raise _Malformed(f"not valid JSON ({exc.__class__.__name__}: {exc})") from None
        _need(isinstance(message, list) and bool(message) and isinstance(message[0], str),
              "not a JSON array starting with a message type")
        kind = message[0]
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise _Malformed(f"unknown message type {kind[:20]!r}")
        return handler(self, message, frame)

    def _drop(self, category: Literal["malformed", "invalid_signature", "unexpected"], reason: str,
              frame: str | bytes) -> Dropped:
        if category == "malformed":
            self.counters.malformed_dropped += 1
        elif category == "invalid_signature":
            self.counters.invalid_signature_dropped += 1
        else:
            self.counters.unexpected_dropped += 1
        return Dropped(category, reason, _excerpt(frame))

    def _not_open(self, what: str, subscription_id: str, frame: str) -> Dropped:
        if subscription_id in self.closing:
            return Dropped("late", f"{what} for subscription {subscription_id!r} after we closed it", _excerpt(frame))
        return self._drop("unexpected", f"{what} for subscription {subscription_id[:64]!r} that is not open", frame)

    def _on_event(self, message: list[Any], frame: str) -> Received:
        _need(len(message) == 3 and isinstance(message[1], str), "EVENT must be [\"EVENT\", subid, event]")
        subscription_id = message[1]
        try:
            event = Event.from_dict(message[2])
        except MalformedEvent as exc:
            raise _Malformed(f"EVENT: {exc}") from None
        filters = self.subscriptions.get(subscription_id)
        if filters is None:
            return self._not_open("EVENT", subscription_id, frame)
        if not matches_any(filters, event):
            return self._drop("unexpected", f"event {event.id[:16]} does not match subscription "
                                             f"{subscription_id!r}", frame)
        try:
            event = self.verify(event)
        except (InvalidEvent, MalformedEvent) as exc:
            return self._drop("invalid_signature", str(exc), frame)
        self.counters.events_received += 1
        return ReceivedEvent(subscription_id, event)

    def _on_ok(self, message: list[Any], frame: str) -> Received:
        _need(len(message) in (3, 4), "OK must be [\"OK\", id, bool, message]")
        event_id, accepted = message[1], message[2]
        text = message[3] if len(message) == 4 else ""
        _need(isinstance(event_id, str) and (event_id == "" or (len(event_id) == 64 and _HEX.issuperset(event_id))),
              "OK: id must be 64 lowercase hex characters")
        _need(type(accepted) is bool, "OK: accepted must be true or false")
        _need(isinstance(text, str), "OK: message must be a string")
        if event_id == "":
            # nostr-relay answers every refused EVENT with an empty id, in order, and never
            # answers AUTH with an OK; an AUTH only gets it when no EVENT is waiting.
            if self.unanswered:
                event_id = self.unanswered.popleft()
            elif len(self.pending_auth) == 1:
                event_id = next(iter(self.pending_auth))
            else:
                return self._drop("unexpected", f"OK without an event id while {len(self.pending_auth)} AUTHs "
                                                 f"and no EVENT are pending: {text[:200]}", frame)
        elif event_id in self.unanswered:
            self.unanswered.remove(event_id)
        if event_id in self.pending_auth:
            pubkey = self.pending_auth.pop(event_id)
            if accepted:
                self.authenticated.add(pubkey)
            return AuthAnswered(event_id, pubkey, accepted, text)
        if event_id in self.pending_publishes:
            del self.pending_publishes[event_id]
            return PublishAnswered(event_id, accepted, text)
        return self._drop("unexpected", f"OK for event {event_id[:16]} that nobody is waiting for", frame)

    def _on_eose(self, message: list[Any], frame: str) -> Received:
        _need(len(message) == 2 and isinstance(message[1], str), "EOSE must be [\"EOSE\", subid]")
        if message[1] not in self.subscriptions:
            return self._not_open("EOSE", message[1], frame)
        self.stored_done.add(message[1])
        return EndOfStoredEvents(message[1])

    def _on_closed(self, message: list[Any], frame: str) -> Received:
        _need(len(message) in (2, 3) and all(isinstance(m, str) for m in message[1:]),
              "CLOSED must be [\"CLOSED\", subid, message]")
        subscription_id = message[1]
        if subscription_id not in self.subscriptions:
            if subscription_id in self.closing:
                del self.closing[subscription_id]
                return Dropped("late", f"CLOSED for subscription {subscription_id!r} after we closed it",
                               _excerpt(frame))
            return self._drop("unexpected", f"CLOSED for subscription {subscription_id[:64]!r} that is not open",
                              frame)
        del self.subscriptions[subscription_id]
        self.stored_done.discard(subscription_id)
        return SubscriptionClosed(subscription_id, message[2] if len(message) == 3 else "")

    def _on_notice(self, message: list[Any], frame: str) -> Received:
        _need(len(message) == 2 and isinstance(message[1], str), "NOTICE must be [\"NOTICE\", message]")
        self.counters.notices += 1
        if self.pending_auth and _AUTH_REFUSAL.search(message[1]):
            # Relays that never OK an AUTH (nostr-relay 1.14) refuse one with a NOTICE.
            event_id, pubkey = next(iter(self.pending_auth.items()))
            del self.pending_auth[event_id]
            return AuthAnswered(event_id, pubkey, False, message[1])
        return Notice(message[1])

    def _on_auth(self, message: list[Any], frame: str) -> Received:
        _need(len(message) == 2 and isinstance(message[1], str) and message[1] != "",
              "AUTH must be [\"AUTH\", challenge]")
        self.challenge = message[1]
        return AuthChallenge(message[1])


_HANDLERS: dict[str, Callable[[RelayConnection, list[Any], str], Received]] = {
    "EVENT": RelayConnection._on_event,
    "OK": RelayConnection._on_ok,
    "EOSE": RelayConnection._on_eose,
    "CLOSED": RelayConnection._on_closed,
    "NOTICE": RelayConnection._on_notice,
    "AUTH": RelayConnection._on_auth,
}
