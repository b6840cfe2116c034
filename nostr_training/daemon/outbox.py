"""The durable outbox: commit first, then send, retry until each target relay acknowledges.

Whatever the daemon or the CLI publishes goes through ``Outbox.submit``: it picks the target
relays (NIP-65 outbox model; NIP-17 inbox relays for gift wraps), commits the event and one
delivery row per relay in the store, and only then wakes the sender. The sender (``run``) takes
due rows from the store, publishes through the pool and records each answer, so a killed daemon
resumes exactly where the store says it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Protocol, Sequence

from .. import kinds
from ..clock import Clock
from ..event import Event
from ..filters import Filter
from ..store.base import OutboxItem, Store, is_delivered_message
from .backoff import backoff
from ..errors import MalformedEvent
from ..nips.nip17 import parse_inbox_relays
from ..nips.nip19 import npub_encode
from ..nips.nip65 import normalize_relay_url, parse_relay_list

__all__ = [
    "Outbox",
    "Submission",
    "Targets",
    "FINAL_PREFIXES",
    "NO_INBOX_PREFIX",
    "is_final_refusal",
    "retry_delay",
    "plan_targets",
]

log = logging.getLogger("nostr_training.outbox")

#: OK-false prefixes that no retry will change (NIP-01): the row is refused for good.
FINAL_PREFIXES = ("invalid:", "blocked:", "restricted:", "pow:", "mute:")
#: The marker target of a gift wrap whose recipient has no 10050: NIP-17 says do not send.
NO_INBOX_PREFIX = "no-inbox:"
_GIFT_WRAPS = (kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL)


def is_final_refusal(message: str) -> bool:
    return message.startswith(FINAL_PREFIXES)


def retry_delay(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempts + 1``: 5 s doubling per attempt, capped at an hour,
    each delay between half and all of its cap."""
    return next(islice(backoff(initial=5.0, factor=2.0, maximum=3600.0, jitter=0.5, rng=rng), max(0, attempts - 1), None))


def _urls(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        try:
            out.append(normalize_relay_url(value))
        except MalformedEvent:
            continue
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Targets:
    """Where an event goes, and the recipients it must not go to (with why)."""

    relays: tuple[str, ...]
    refusals: tuple[tuple[str, str], ...] = ()  # (marker target, reason)


def plan_targets(
    event: Event,
    *,
    relay_lists: dict[str, Event],
    dm_relay_lists: dict[str, Event],
    default_relays: Sequence[str],
) -> Targets:
    """The outbox model as a pure function of the relay lists known.

    Normal events: the author's write relays (the configured relays when the author has no
    10002) plus the read relays of every ``p``-tagged user. Gift wraps: only the recipient's
    10050 relays; without one the wrap is not sent (NIP-17).
    """
    if event.kind == kinds.AUTH:
        return Targets((), ((f"{NO_INBOX_PREFIX}{event.pubkey}", "invalid: kind 22242 must never be broadcast"),))
    if event.kind in _GIFT_WRAPS:
        relays: list[str] = []
        refusals = []
        for recipient in dict.fromkeys(event.tag_values("p")):
            dm = dm_relay_lists.get(recipient)
            found = list(parse_inbox_relays(dm)) if dm is not None else []
            if found:
                relays += found
            else:
                refusals.append((f"{NO_INBOX_PREFIX}{recipient}", f"blocked: no inbox relays (10050) for {npub_encode(recipient)}"))
        return Targets(tuple(dict.fromkeys(relays)), tuple(refusals))
    own = relay_lists.get(event.pubkey)
    relays = (list(parse_relay_list(own).write) if own is not None else []) or _urls(default_relays)
    for tagged in dict.fromkeys(event.tag_values("p")):
        listed = relay_lists.get(tagged)
        if listed is not None:
            relays += parse_relay_list(listed).read
    return Targets(tuple(dict.fromkeys(relays)))


@dataclass(frozen=True)
class Submission:
    """What ``submit`` committed: the event, its target relays and the recipients refused."""

    event: Event
    relays: tuple[str, ...]
    refusals: tuple[tuple[str, str], ...] = ()
    outcome: Any = None


class Pool(Protocol):
    async def publish(self, event: Event, relays: Sequence[str], timeout: float) -> dict[str, Any]: ...

    async def fetch(self, filters: Sequence[Filter], relays: Sequence[str], timeout: float) -> list[Event]: ...


@dataclass
class OutboxCounters:
    attempts: int = 0
    delivered: int = 0
    refused: int = 0
    retried: int = 0
    last_error: dict[str, str] = field(default_factory=dict)


class Outbox:
    """Targets, commits and delivers published events; one instance per daemon (or CLI run)."""

    def __init__(
        self,
        store: Store,
        pool: Pool | None,
        *,
        clock: Clock,
        default_relays: Sequence[str],
        timeout: float = 10.0,
        fetch_timeout: float = 5.0,
        batch: int = 100,
        poll: float = 1.0,
        rng: Callable[[], float] = random.random,
    ):
        self.store = store
        self.pool = pool
        self.clock = clock
        self.default_relays = tuple(default_relays)
        self.timeout = timeout
        self.fetch_timeout = fetch_timeout
        self.batch = batch
        self.poll = poll
        self.rng = rng
        self.counters = OutboxCounters()
        self._wake = asyncio.Event()

    # Targets -------------------------------------------------------------------------------

    async def _latest(self, kind: int, pubkeys: Iterable[str]) -> dict[str, Event]:
        wanted = sorted(set(pubkeys))
        if not wanted:
            return {}
        found = await self.store.query([Filter(kinds=frozenset({kind}), authors=frozenset(wanted))], now=self.clock.now())
        out: dict[str, Event] = {}
        for ev in found:  # newest first: keep the first per author
            out.setdefault(ev.pubkey, ev)
        return out

    async def _fetch_missing(self, kind: int, pubkeys: set[str]) -> None:
        """Ask the configured relays for relay lists we lack, and index what comes back."""
        if not pubkeys or self.pool is None or not self.default_relays:
            return
        try:
            events = await self.pool.fetch(
                [Filter(kinds=frozenset({kind}), authors=frozenset(pubkeys))], list(self.default_relays), self.fetch_timeout
            )
        except Exception as exc:  # a lookup failure must not stop a publish: targets fall back
            log.warning("relay list lookup failed: %s", exc, extra={"kind": kind})
            return
        for ev in events:
            if ev.kind == kind and ev.pubkey in pubkeys:
                await self.store.add(ev, verified=True, now=self.clock.now())

    async def targets(self, event: Event) -> Targets:
        """Read the relay lists needed from the store, fetching the missing ones once."""
        if event.kind in _GIFT_WRAPS:
            recipients = set(event.tag_values("p"))
            dm = await self._latest(kinds.DM_RELAYS, recipients)
            if recipients - dm.keys():
                await self._fetch_missing(kinds.DM_RELAYS, recipients - dm.keys())
                dm = await self._latest(kinds.DM_RELAYS, recipients)
            return plan_targets(event, relay_lists={}, dm_relay_lists=dm, default_relays=self.default_relays)
        people = {event.pubkey, *event.tag_values("p")}
        lists = await self._latest(kinds.RELAY_LIST, people)
        missing = people - lists.keys()
        if missing:
            await self._fetch_missing(kinds.RELAY_LIST, missing)
            lists = await self._latest(kinds.RELAY_LIST, people)
        return plan_targets(event, relay_lists=lists, dm_relay_lists={}, default_relays=self.default_relays)

    # Submitting ----------------------------------------------------------------------------

    async def submit(self, event: Event, relays: Sequence[str] | None = None) -> Submission:
        """Commit ``event`` with its deliveries (to ``relays`` when given), then wake the sender.

        The event must verify; refused recipients are recorded as refused rows so ``status``
        shows them.
        """
        if relays:
            planned = Targets(tuple(_urls(relays)))
        else:
            planned = await self.targets(event)
        now = self.clock.now()
        markers = [m for m, _ in planned.refusals]
        outcome = await self.store.enqueue(event, list(planned.relays) + markers, now=now)
        for marker, reason in planned.refusals:
            await self.store.outbox_record(event.id, marker, ok=False, message=reason, now=now, retry_at=None)
            log.warning("not sent: %s", reason, extra={"event": event.id[:16]})
        if not planned.relays and not planned.refusals:
            log.warning("no target relays for event", extra={"event": event.id[:16]})
        self._wake.set()
        return Submission(event, planned.relays, planned.refusals, outcome)

    def wake(self) -> None:
        self._wake.set()

    # Delivering ----------------------------------------------------------------------------

    async def _deliver_event(self, event: Event, items: list[OutboxItem]) -> None:
        relays = [i.relay for i in items if not i.relay.startswith(NO_INBOX_PREFIX)]
        now = self.clock.now()
        for item in items:
            if item.relay.startswith(NO_INBOX_PREFIX):
                await self.store.outbox_record(
                    event.id, item.relay, ok=False, message=f"blocked: no inbox relays (10050) for {npub_encode(item.relay[len(NO_INBOX_PREFIX):])}",
                    now=now, retry_at=None,
                )
        if not relays:
            return
        assert self.pool is not None
        try:
            results = await self.pool.publish(event, relays, self.timeout)
        except Exception as exc:  # the pool failing as a whole is retried like a timeout
            log.warning("publish failed: %s", exc, extra={"event": event.id[:16]})
            results = {}
        now = self.clock.now()
        by_relay = {i.relay: i for i in items}
        for relay in relays:
            result = results.get(relay)
            ok = bool(result is not None and result.ok)
            message = "error: no answer from relay" if result is None else (result.message or "")
            self.counters.attempts += 1
            if is_delivered_message(ok, message):
                self.counters.delivered += 1
                await self.store.outbox_record(event.id, relay, ok=ok, message=message, now=now, retry_at=None)
                continue
            self.counters.last_error[relay] = message
            if is_final_refusal(message):
                self.counters.refused += 1
                log.warning("relay refused event: %s", message, extra={"relay": relay, "event": event.id[:16]})
                await self.store.outbox_record(event.id, relay, ok=False, message=message, now=now, retry_at=None)
            else:
                self.counters.retried += 1
                delay = retry_delay(by_relay[relay].attempts + 1, self.rng)
                await self.store.outbox_record(
                    event.id, relay, ok=False, message=message, now=now, retry_at=now + max(1, round(delay))
                )

    async def deliver_due(self) -> int:
        """One pass over the deliveries due now; returns how many rows it handled."""
        due = await self.store.outbox_due(self.clock.now(), self.batch)
        if not due:
            return 0
        groups: dict[str, list[OutboxItem]] = {}
        events: dict[str, Event] = {}
        for item in due:
            groups.setdefault(item.event.id, []).append(item)
            events[item.event.id] = item.event
        await asyncio.gather(*(self._deliver_event(events[eid], items) for eid, items in groups.items()))
        return len(due)

    async def run(self) -> None:
        """Deliver until cancelled: a pass whenever woken, or every ``poll`` seconds."""
        while True:
            self._wake.clear()
            try:
                handled = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed")
                handled = 0
            if handled:
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep(self.poll))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
