"""A scripted stand-in for the relay pool, for the daemon's unit tests (real relays are used in
the tests marked ``relay``). ``FakePool`` implements the daemon's ``Pool`` protocol: every method
is async except ``status``, as in ``RelayPool`` (``test_daemon_pool`` checks the signatures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from nostr_training.daemon.pool import OnEose, OnEvent, PublishResult, RelayState, RelayStatus, Since
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.filters import Filter, matches_any
from nostr_training.keys import Keys


@dataclass
class FakeSubscription:
    key: str
    filters: list[Filter]
    relays: list[str]
    on_event: OnEvent
    since: Since | None
    on_eose: OnEose | None


@dataclass
class FakePool:
    """Answers publishes from ``answers[relay]`` (a message, or "" for OK true); a relay in
    ``down`` answers not-connected. ``stored`` events answer fetches."""

    answers: dict[str, str] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    stored: list[Event] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)  # (relay, event id)
    subscriptions: dict[str, FakeSubscription] = field(default_factory=dict)
    fetches: list[list[Filter]] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)
    subscribe_calls: int = 0
    closed: bool = False

    async def add_relay(self, url: str) -> None:
        self.relays.append(url)

    async def publish(self, event: Event, relays: Sequence[str], timeout: float = 10) -> dict[str, PublishResult]:
        out = {}
        for relay in relays:
            if relay in self.down:
                out[relay] = PublishResult(False, "not-connected: relay is down")
                continue
            self.published.append((relay, event.id))
            message = self.answers.get(relay, "")
            out[relay] = PublishResult(message == "" or message.startswith("ok"), message)
        return out

    async def fetch(self, filters: Sequence[Filter], relays: Sequence[str], timeout: float = 10) -> list[Event]:
        self.fetches.append(list(filters))
        return [e for e in self.stored if matches_any(filters, e)]

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
        self.subscribe_calls += 1
        self.subscriptions[key] = FakeSubscription(key, list(filters), list(relays), on_event, since, on_eose)

    async def unsubscribe(self, key: str) -> None:
        self.subscriptions.pop(key, None)

    async def remove_relay(self, url: str) -> None:
        self.relays.remove(url)

    def status(self) -> list[RelayStatus]:
        return [
            RelayStatus(url=u, state=RelayState.BACKOFF if u in self.down else RelayState.CONNECTED, last_error=None, since=0,
                        events_received=0, malformed_dropped=0, invalid_signature_dropped=0,
                        unexpected_dropped=0, notices=0, subscriptions=len(self.subscriptions), limits=None)
            for u in self.relays
        ]

    async def close(self) -> None:
        self.closed = True


def signed(keys: Keys, kind: int, *, tags=(), content: str = "", created_at: int = 1_800_000_000) -> Event:
    return sign_event(EventTemplate(kind, tuple(tuple(t) for t in tags), content, created_at), keys.secret)
