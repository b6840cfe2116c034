"""The relay pool's contract: what the daemon, the outbox and follows may ask of a pool.

``RelayPool`` (``daemon/relays.py``) is the implementation over websockets; test fakes implement
the same ``Pool`` protocol. Nothing here imports a transport, so code that only needs the
contract (the outbox, follows, services, fakes) does not load one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from ..errors import AuthRequired, RelayError, RelayRefused, RelayTimeout, RelayUnreachable
from ..event import Event
from ..filters import Filter
from ..nips import nip11
from ..protocol import reason_prefix

__all__ = [
    "Pool",
    "RelayState",
    "RelayStatus",
    "PublishResult",
    "OnEvent",
    "OnEose",
    "Since",
    "RETRYABLE_PREFIXES",
    "publish_error",
    "require_delivery",
]

OnEvent = Callable[[str, Event], Awaitable[None]]
OnEose = Callable[[str], Awaitable[None]]
Since = Callable[[str], "int | None"]

RETRYABLE_PREFIXES = ("timeout", "not-connected", "rate-limited", "error", "auth-required")
"""OK-false prefixes after which sending the same event again later may succeed."""


class RelayState(enum.StrEnum):
    """Where one relay's connection loop is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTHENTICATING = "authenticating"
    AUTHENTICATED = "authenticated"
    BACKOFF = "backoff"
    """The last attempt failed; waiting before the next."""
    CLOSED = "closed"
    """Removed from the pool, or the pool was closed."""

    @property
    def is_up(self) -> bool:
        """A connection is open: the relay can answer a publish or a fetch now."""
        return self in (RelayState.CONNECTED, RelayState.AUTHENTICATING, RelayState.AUTHENTICATED)


def publish_error(message: str, relay: str | None = None) -> RelayError:
    """The typed error for an OK-false ``message``: unreachable, timed out, AUTH needed, or refused."""
    prefix = reason_prefix(message)
    if prefix == "not-connected":
        return RelayUnreachable(message, relay=relay)
    if prefix == "timeout":
        return RelayTimeout(message, relay=relay)
    if prefix == "auth-required":
        return AuthRequired(message, relay=relay)
    return RelayRefused(message, relay=relay)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """One relay's answer to one EVENT; ``message`` carries a NIP-01 prefix when ``ok`` is false.

    Besides the relay's own prefixes the pool produces ``timeout:``, ``not-connected:``,
    ``auth-required:`` (no signer, or AUTH refused) and ``invalid:`` (the relay's NIP-11 limits
    already refuse the event, so it was not sent).
    """

    ok: bool
    message: str

    @property
    def prefix(self) -> str:
        return reason_prefix(self.message)

    @property
    def delivered(self) -> bool:
        """OK true, or a relay saying it already has the event (``duplicate:``)."""
        return self.ok or self.prefix == "duplicate"

    @property
    def retryable(self) -> bool:
        return not self.ok and self.prefix in RETRYABLE_PREFIXES

    @property
    def error(self) -> RelayError | None:
        """None when delivered, else the failure as a typed error (see ``publish_error``)."""
        return None if self.delivered else publish_error(self.message)


def require_delivery(results: Mapping[str, PublishResult]) -> list[str]:
    """The relays that have the event; when none has it, raise the failure that says most:
    a refusal (no retry will change it) first, then AUTH, timeout, unreachable."""
    delivered = [url for url, result in results.items() if result.delivered]
    if delivered:
        return delivered
    if not results:
        raise RelayUnreachable("no relay to publish to")
    rank = {RelayRefused: 0, AuthRequired: 1, RelayTimeout: 2, RelayUnreachable: 3}
    errors = [publish_error(result.message, relay=url) for url, result in results.items()]
    raise min(errors, key=lambda e: rank.get(type(e), 0))


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """A snapshot of one relay for ``status`` (daemon health, CLI ``status``)."""

    url: str
    state: RelayState
    last_error: str | None
    since: int
    """When ``state`` was entered (unix seconds, from the pool's clock)."""
    events_received: int
    malformed_dropped: int
    invalid_signature_dropped: int
    unexpected_dropped: int
    notices: int
    subscriptions: int
    limits: nip11.RelayLimits | None


class Pool(Protocol):
    """What the daemon uses of a relay pool; ``RelayPool`` and the test fakes implement it."""

    async def add_relay(self, url: str) -> None:
        """Start connecting to ``url`` (no-op when already in the pool)."""

    async def remove_relay(self, url: str) -> None:
        """Disconnect and forget ``url``."""

    async def publish(self, event: Event, relays: Sequence[str], timeout: float = 10) -> dict[str, PublishResult]:
        """Send ``event`` to each relay; every relay's answer keyed by the URL as given. Never
        raises for one relay's failure."""

    async def subscribe(
        self,
        key: str,
        filters: Sequence[Filter],
        relays: Sequence[str],
        on_event: OnEvent,
        *,
        since: Since | None = None,
        on_eose: OnEose | None = None,
    ) -> None:
        """Keep ``filters`` open on ``relays`` under ``key`` until ``unsubscribe(key)``."""

    async def unsubscribe(self, key: str) -> None:
        """Close the subscription ``key`` (no-op when unknown)."""

    async def fetch(self, filters: Sequence[Filter], relays: Sequence[str], timeout: float = 10) -> list[Event]:
        """Stored events matching ``filters``, verified, de-duplicated, newest first."""

    def status(self) -> list[RelayStatus]:
        """One snapshot per relay in the pool."""

    async def close(self) -> None:
        """Close every connection and subscription."""
