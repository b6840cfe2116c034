"""The durable outbox: commit first, then send, retry until each target relay acknowledges.

Whatever the daemon or the CLI publishes goes through ``Outbox.submit``: it picks the target
relays (NIP-65 outbox model; NIP-17 inbox relays for gift wraps), commits the event and one
delivery row per relay in the store, and only then wakes the sender. The sender (``run``) takes
due rows from the store, publishes through the pool and records each answer, so a killed daemon
resumes exactly where the store says it stopped.

Relay lists missing from the store are looked up on the configured relays, but only after the
event is committed: until the look-up is answered the event keeps a placeholder row (target
``LOOKUP``), retried with backoff like a delivery, so an event published while offline still
reaches its recipients' relays once they can be asked. A gift-wrap recipient without inbox
relays gets a refused row of their own (target kind ``RECIPIENT``), removed again once a later
plan finds their relays.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Callable, Collection, Iterable, Sequence

from .. import kinds
from ..clock import Clock
from ..errors import MalformedEvent, NostrTrainingError, PrivacyRefused, RelayUnreachable, StoreError
from ..event import Event, KindClass, supersedes
from ..filters import Filter
from ..kinds import private as private_kinds
from ..nips.nip17 import parse_inbox_relays
from ..nips.nip19 import npub_encode
from ..nips.nip65 import normalize_relay_url, parse_relay_list
from ..store.base import (
    LOOKUP,
    ActionRecord,
    AddOutcome,
    Enqueue,
    OutboxItem,
    OutboxState,
    OutboxTarget,
    Store,
    TargetKind,
    expiration_of,
    is_delivered_message,
)
from .backoff import backoff
from .pool import Pool

__all__ = [
    "Outbox",
    "Submission",
    "Targets",
    "FINAL_PREFIXES",
    "is_final_refusal",
    "publish_refusal",
    "retry_delay",
    "plan_targets",
]

log = logging.getLogger("nostr_training.outbox")

#: OK-false prefixes that no retry will change (NIP-01): the row is refused for good.
FINAL_PREFIXES = ("invalid:", "blocked:", "restricted:", "pow:", "mute:")
_GIFT_WRAPS = (kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL)
#: How long an answered look-up that found no relay list is believed (seconds).
NEGATIVE_TTL = 3600
#: Pubkeys whose relay lists (or their absence) the outbox remembers per list kind.
_LIST_CACHE_SIZE = 50_000
#: Extra seconds granted to a pool's own fetch timeout before the outbox gives up on it.
_FETCH_GRACE = 1.0


def _no_inbox(recipient: str) -> str:
    return f"blocked: no inbox relays (10050) for {npub_encode(recipient)}"


def publish_refusal(event: Event, now: int) -> str | None:
    """Why ``event`` must never leave this machine, or None.

    Rumor-only kinds (a DM, a room key, a seal) travel inside gift wraps; signed and sent bare
    they leak. An event whose NIP-40 expiration has passed would only be dropped by relays.
    """
    if event.kind in kinds.PRIVATE_KINDS:
        return f"kind {event.kind} travels only inside a gift wrap, never published on its own"
    if event.kind == kinds.AUTH:
        return "kind 22242 (NIP-42 AUTH) is sent to one relay with AUTH, never broadcast"
    expires = expiration_of(event)
    if expires is not None and expires <= now:
        return f"expired at {expires} (NIP-40)"
    return None


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
    """Where an event goes, the recipients it must not go to (with why), and the people whose
    relay lists could not be looked up, so more relays may follow."""

    relays: tuple[str, ...]
    refusals: tuple[tuple[str, str], ...] = ()  # (recipient pubkey, reason)
    unresolved: tuple[str, ...] = ()  # pubkeys


def plan_targets(
    event: Event,
    *,
    relay_lists: dict[str, Event],
    dm_relay_lists: dict[str, Event],
    default_relays: Sequence[str],
    unknown: Collection[str] = (),
) -> Targets:
    """The outbox model as a pure function of the relay lists known.

    Normal events: the author's write relays (the configured relays when the author has no
    10002) plus the read relays of every ``p``-tagged user. Gift wraps: only the recipient's
    10050 relays; without one the wrap is not sent (NIP-17). ``unknown`` names the pubkeys whose
    list could not be looked up: a missing list of theirs is not taken as "has none" but listed
    in ``unresolved`` (the author's configured-relay fallback still applies meanwhile).
    """
    if event.kind in _GIFT_WRAPS:
        relays: list[str] = []
        refusals = []
        unresolved: list[str] = []
        for recipient in dict.fromkeys(event.tag_values("p")):
            dm = dm_relay_lists.get(recipient)
            found = list(parse_inbox_relays(dm)) if dm is not None else []
            if found:
                relays += found
            elif dm is None and recipient in unknown:
                unresolved.append(recipient)
            else:
                refusals.append((recipient, _no_inbox(recipient)))
        return Targets(tuple(dict.fromkeys(relays)), tuple(refusals), tuple(unresolved))
    own = relay_lists.get(event.pubkey)
    relays = (list(parse_relay_list(own).write) if own is not None else []) or _urls(default_relays)
    unresolved = [event.pubkey] if own is None and event.pubkey in unknown else []
    for tagged in dict.fromkeys(event.tag_values("p")):
        listed = relay_lists.get(tagged)
        if listed is not None:
            relays += parse_relay_list(listed).read
        elif tagged in unknown and tagged not in unresolved:
            unresolved.append(tagged)
    return Targets(tuple(dict.fromkeys(relays)), (), tuple(unresolved))


@dataclass(frozen=True)
class Submission:
    """What ``submit`` committed: the event, its target relays, the recipients refused and the
    people whose relay lists are still to be looked up (the sender retries those)."""

    event: Event
    relays: tuple[str, ...]
    refusals: tuple[tuple[str, str], ...] = ()
    outcome: Any = None
    unresolved: tuple[str, ...] = ()


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
        self._configured = _urls(self.default_relays)
        self._resolving: set[str] = set()  # event ids whose look-up ``submit`` is doing now
        self._attempted = asyncio.Event()  # set after each delivery pass
        #: Pubkeys a look-up answered without a list, until when: not asked again meanwhile.
        self._none_until: dict[tuple[int, str], int] = {}
        #: kind -> (the store's kind_version when read, pubkey -> newest list or None).
        self._list_cache: dict[int, tuple[int, dict[str, Event | None]]] = {}
        #: The relay-list versions the waiting look-ups were last planned with.
        self._lists_planned: tuple[int, int] | None = None
        self._replanning = False  # passes take the waiting look-ups until none is left due
        self._private: set[str] | None = None  # addresses of private items, read once, then noted

    # Privacy -------------------------------------------------------------------------------

    async def private_addresses(self) -> frozenset[str]:
        """The addresses of the private items in the index: nothing naming them is published."""
        if self._private is None:
            found = await self.store.query(
                [Filter(kinds=frozenset(private_kinds.ENVELOPED_KINDS))], now=self.clock.now(), include_private=True
            )
            self._private = {e.address for e in found if e.address and private_kinds.is_marked_private(e)}
        return frozenset(self._private)

    def note_private(self, address: str) -> None:
        """A private item was just stored: refuse from now on what names it."""
        if self._private is not None:
            self._private.add(address)

    async def _privacy_refusal(self, event: Event, reveal: bool) -> PrivacyRefused | None:
        if reveal:
            return None
        if (
            self._private is None and event.kind not in private_kinds.NEVER_PUBLISHED_KINDS
            and not private_kinds.is_marked_private(event) and not event.tag_values("a")
        ):
            return None
        await self.private_addresses()
        return self._refused_as_private(event)

    def _refused_as_private(self, event: Event) -> PrivacyRefused | None:
        """The privacy check once the private addresses are read (``private_addresses``)."""
        assert self._private is not None
        reason = private_kinds.publication_refusal(event, self._private)
        return PrivacyRefused(f"not published: {reason}") if reason else None

    # Targets -------------------------------------------------------------------------------

    async def _latest(self, kind: int, pubkeys: Iterable[str]) -> dict[str, Event]:
        """The newest stored list of ``kind`` of each pubkey that has one.

        Read through a cache kept while the store holds no newer event of the kind (its
        ``kind_version``), so a group commit of many authors does not query for each batch the
        lists it read for the last one; the absence of a list is cached too. A list that expires
        is not cached: the store stops serving it at its time.
        """
        version = self.store.kind_version(kind)
        cached = self._list_cache.get(kind)
        if cached is None or cached[0] != version:
            cached = self._list_cache[kind] = (version, {})
        known = cached[1]
        wanted = set(pubkeys)
        missing = wanted - known.keys()
        read: dict[str, Event | None] = dict.fromkeys(missing)
        if missing:
            found = await self.store.query([Filter(kinds=frozenset({kind}), authors=frozenset(missing))], now=self.clock.now())
            for ev in found:  # newest first: keep the first per author
                if read.get(ev.pubkey) is None:
                    read[ev.pubkey] = ev
            if self.store.kind_version(kind) == version:  # nothing of the kind committed meanwhile
                if len(known) + len(read) > _LIST_CACHE_SIZE:
                    known.clear()
                known.update((p, ev) for p, ev in read.items() if ev is None or ev.tag_value("expiration") is None)
        return {p: ev for p in wanted if (ev := read[p] if p in read else known[p]) is not None}

    def can_look_up(self) -> bool:
        """Could a relay-list look-up be asked now (a configured relay, connected)?"""
        return self.pool is not None and bool(self._configured) and self._reachable()

    def _list_versions(self) -> tuple[int, int]:
        return self.store.kind_version(kinds.RELAY_LIST), self.store.kind_version(kinds.DM_RELAYS)

    def _reachable(self) -> bool:
        """Is any configured relay connected? A relay the pool does not know yet is given the
        benefit of the doubt (the look-up itself added it)."""
        if self.pool is None:
            return False
        states = {s.url: s.state for s in self.pool.status()}
        if any(url not in states for url in self._configured):
            return True
        return any(states[url].is_up for url in self._configured)

    async def _fetch_missing(self, kind: int, pubkeys: set[str]) -> bool:
        """Ask the configured relays for relay lists we lack, and index what comes back.

        True when the look-up was answered, so a list still missing means the user has none;
        False when it could not be done (no pool or relay to ask, an error, no relay connected,
        or nothing back before the timeout).
        """
        if self.pool is None or not self._configured:
            return False
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.fetch_timeout + _FETCH_GRACE):
                events = await self.pool.fetch(
                    [Filter(kinds=frozenset({kind}), authors=frozenset(pubkeys))], list(self._configured), self.fetch_timeout
                )
        except Exception as exc:  # a lookup failure must not stop a publish: the sender looks again
            log.warning("relay list lookup failed: %s", exc, extra={"kind": kind})
            return False
        timed_out = loop.time() - started >= self.fetch_timeout
        found = [ev for ev in events if ev.kind == kind and ev.pubkey in pubkeys]
        for ev in found:
            await self.store.add(ev, verified=True, now=self.clock.now())
        if found:
            return True
        if timed_out or not self._reachable():
            log.info("relay list lookup unanswered", extra={"kind": kind, "pubkeys": len(pubkeys)})
            return False
        return True

    async def _lists(self, kind: int, pubkeys: set[str], fetch: bool) -> tuple[dict[str, Event], set[str]]:
        """The newest list of each pubkey in the store (fetching the missing ones when ``fetch``),
        and the pubkeys whose list is missing because it could not be looked up. A pubkey whose
        look-up was answered without a list within ``NEGATIVE_TTL`` counts as having none: it is
        not asked again for every event (a relay that stalls would cost each of them a timeout)."""
        lists = await self._latest(kind, pubkeys)
        now = self.clock.now()
        missing = {p for p in pubkeys - lists.keys() if self._none_until.get((kind, p), 0) <= now}
        if not missing:
            return lists, set()
        if not fetch:
            return lists, missing
        answered = await self._fetch_missing(kind, missing)
        lists = await self._latest(kind, pubkeys)
        if answered:
            for p in missing - lists.keys():
                self._none_until[(kind, p)] = now + NEGATIVE_TTL
            return lists, set()
        return lists, {p for p in pubkeys - lists.keys() if p in missing}

    async def _plan(self, events: Sequence[Event], fetch: bool = True) -> dict[str, Targets]:
        """Targets of several events from one look-up per list kind."""
        dm_people = {p for ev in events if ev.kind in _GIFT_WRAPS for p in ev.tag_values("p")}
        people = {
            p for ev in events if ev.kind not in _GIFT_WRAPS and ev.kind != kinds.AUTH
            for p in (ev.pubkey, *ev.tag_values("p"))
        }
        (dm, dm_unknown), (lists, unknown) = await asyncio.gather(
            self._lists(kinds.DM_RELAYS, dm_people, fetch), self._lists(kinds.RELAY_LIST, people, fetch)
        )
        return {
            ev.id: plan_targets(
                ev, relay_lists=lists, dm_relay_lists=dm, default_relays=self.default_relays,
                unknown=dm_unknown if ev.kind in _GIFT_WRAPS else unknown,
            )
            for ev in events
        }

    async def targets(self, event: Event, *, fetch: bool = True) -> Targets:
        """Read the relay lists needed from the store, fetching the missing ones once."""
        return (await self._plan([event], fetch))[event.id]

    async def _commit(
        self, event: Event, planned: Targets, tried: int | None, action: ActionRecord | None = None
    ) -> Any:
        """Write a plan: a pending row per relay, a refused row per unreachable recipient, and
        the look-up placeholder while some list is unresolved. ``tried`` is the placeholder's
        attempt count once a look-up was made (None before any): an unanswered look-up is
        retried with backoff, an answered one removes the placeholder. A recipient refused by an
        earlier plan whose relays are now known loses the refused row: it is no longer true."""
        now = self.clock.now()
        recipients = [OutboxTarget.recipient(p) for p, _ in planned.refusals]
        rows = [*planned.relays, *recipients, *([LOOKUP] if planned.unresolved else [])]
        outcome = await self.store.enqueue(event, rows, now=now, action=action)
        entries = await self.store.outbox_entries(event.id)
        refused = {e.target for e in entries if e.state is OutboxState.REFUSED}
        for recipient, reason in planned.refusals:
            target = OutboxTarget.recipient(recipient)
            if target not in refused:
                await self.store.outbox_record(event.id, target, ok=False, message=reason, now=now, retry_at=None)
                log.warning("not sent: %s", reason, extra={"event": event.id[:16]})
        now_refused = {p for p, _ in planned.refusals}
        for entry in entries:
            if entry.target.kind is TargetKind.RECIPIENT and entry.target.value not in now_refused and planned.relays:
                await self.store.outbox_remove(event.id, entry.target)
        if tried is not None:
            if planned.unresolved:
                who = ", ".join(npub_encode(p) for p in planned.unresolved)
                await self.store.outbox_record(
                    event.id, LOOKUP, ok=False, message=f"error: relay lists not looked up yet (no relay answered) for {who}",
                    now=now, retry_at=now + max(1, round(retry_delay(tried + 1, self.rng))),
                )
            else:
                await self.store.outbox_remove(event.id, LOOKUP)
        if not planned.relays and not planned.refusals and not planned.unresolved:
            log.warning("no target relays for event", extra={"event": event.id[:16]})
        return outcome

    # Submitting ----------------------------------------------------------------------------

    async def submit(
        self,
        event: Event,
        relays: Sequence[str] | None = None,
        *,
        action: ActionRecord | None = None,
        reveal: bool = False,
    ) -> Submission:
        """Commit ``event`` with its deliveries (to ``relays`` when given), then wake the sender.

        The event must verify. The commit comes before any network look-up: with every relay
        list needed in the store the rows are committed at once; otherwise the event is committed
        with the placeholder alone, then the lists are asked for. Refused recipients are recorded
        as refused rows so ``status`` shows them. With ``action``, the action log entry is
        written in the same transaction as the event; an action already logged queues nothing
        (the submission's outcome says ``ALREADY_DONE``). An event that is, or names, a private
        item raises PrivacyRefused unless ``reveal`` (the user chose to publish it).
        """
        refusal = publish_refusal(event, self.clock.now())
        if refusal is not None:
            raise MalformedEvent(refusal, event_id=event.id)
        private = await self._privacy_refusal(event, reveal)
        if private is not None:
            raise private
        if relays:
            planned = Targets(tuple(_urls(relays)))
            outcome = await self.store.enqueue(event, list(planned.relays), now=self.clock.now(), action=action)
        else:
            planned = await self.targets(event, fetch=False)
            if not planned.unresolved:
                outcome = await self._commit(event, planned, None, action)
            else:
                outcome = await self.store.enqueue(event, [LOOKUP], now=self.clock.now(), action=action)
                if outcome is AddOutcome.ALREADY_DONE:
                    return Submission(event, (), (), outcome, ())
                self._resolving.add(event.id)
                try:
                    planned = await self.targets(event)
                    await self._commit(event, planned, 0)
                finally:
                    self._resolving.discard(event.id)
        self._wake.set()
        return Submission(event, planned.relays, planned.refusals, outcome, planned.unresolved)

    async def submit_many(self, events: Sequence[Event]) -> list[Submission | NostrTrainingError]:
        """Commit many verified events in one transaction (the local endpoint's group commit).

        Targets come from the relay lists already in the store; an event whose lists are not
        there yet is committed with the look-up placeholder, and the sender asks for the missing
        lists after the commit, batched for every such event. Per event: its ``Submission``, or
        the error that refused it (nothing of it queued). A store failure raises for all.
        """
        now = self.clock.now()
        results: dict[str, Submission | NostrTrainingError] = {}
        fresh: dict[str, Event] = {}
        await self.private_addresses()  # read once for the whole group
        for event in events:
            refusal = publish_refusal(event, now)
            private = self._refused_as_private(event)
            if refusal is not None:
                results[event.id] = MalformedEvent(refusal, event_id=event.id)
            elif private is not None:
                results[event.id] = private
            else:
                fresh.setdefault(event.id, event)
        plans = await self._plan(list(fresh.values()), fetch=False) if fresh else {}
        items = []
        for event in fresh.values():
            planned = plans[event.id]
            targets: list[OutboxTarget | str] = [*planned.relays, *([LOOKUP] if planned.unresolved else [])]
            refused = tuple((OutboxTarget.recipient(p), reason) for p, reason in planned.refusals)
            items.append(Enqueue(event, targets, refused))
        outcomes = await self.store.enqueue_many(items, now=now, verified=True) if items else []
        for item, outcome in zip(items, outcomes, strict=True):
            planned = plans[item.event.id]
            results[item.event.id] = Submission(item.event, planned.relays, planned.refusals, outcome, planned.unresolved)
        if any(item.targets for item in items) and (
            any(t != LOOKUP for item in items for t in item.targets) or self.can_look_up()
        ):
            self._wake.set()  # not for look-ups no relay can answer yet: the poll takes them later
        return [results[e.id] for e in events]

    def wake(self) -> None:
        self._wake.set()

    async def untried(self, event_ids: Iterable[str]) -> bool:
        """Does any delivery of these events still wait for its first try? (A look-up waiting
        for a relay to be connected is not going to be tried now.)"""
        waiting_lookups = not (self.can_look_up() or self._replanning)
        for event_id in event_ids:
            for entry in await self.store.outbox_entries(event_id):
                if entry.target.kind is TargetKind.RECIPIENT:
                    continue
                if entry.target.kind is TargetKind.LOOKUP and waiting_lookups:
                    continue
                if entry.state is OutboxState.PENDING and (entry.target.kind is TargetKind.RELAY or entry.attempts == 0):
                    return True
        return False

    async def wait_attempted(self, event_ids: Sequence[str], timeout: float) -> None:
        """Return once every delivery of these events was tried at least once (their relays
        answered, refused or failed), or after ``timeout`` seconds of real time: what a
        publisher waits for before it reports."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._attempted.clear()
            if not await self.untried(event_ids):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._attempted.wait(), remaining)
            except TimeoutError:
                return

    # Delivering ----------------------------------------------------------------------------

    async def _due_items(self, event: Event) -> list[OutboxItem]:
        """The event's rows due now, read again after its targets changed."""
        now = self.clock.now()
        return [
            OutboxItem(event, e.target, e.attempts, e.next_attempt_at, e.last_message)
            for e in await self.store.outbox_entries(event.id)
            if e.state in (OutboxState.PENDING, OutboxState.RETRYING) and e.next_attempt_at is not None
            and e.next_attempt_at <= now
        ]

    async def _newer_revision(self, event: Event) -> Event | None:
        """The revision that replaces ``event`` in the store, if any: once a lesson was edited
        again, delivering the old one is pointless (and relays refuse it, some with a message
        that reads as retryable)."""
        if event.address is None:
            return None
        wanted = Filter(kinds=frozenset({event.kind}), authors=frozenset({event.pubkey}))
        if event.kind_class is KindClass.ADDRESSABLE:
            wanted = replace(wanted, tags={"d": frozenset({event.d})})
        current = [e for e in await self.store.query([wanted], now=self.clock.now()) if e.address == event.address]
        return current[0] if current and current[0].id != event.id and supersedes(current[0], event) else None

    async def _deliver_event(self, event: Event, items: list[OutboxItem]) -> None:
        relays = [i.relay for i in items if i.target.kind is TargetKind.RELAY]
        now = self.clock.now()
        newer = await self._newer_revision(event)
        if newer is not None:
            for relay in relays:
                await self.store.outbox_record(
                    event.id, relay, ok=False, message=f"superseded: revision {newer.id[:16]} replaces it",
                    now=now, retry_at=None,
                )
            return
        for item in items:
            if item.target.kind is TargetKind.RECIPIENT:
                await self.store.outbox_record(
                    event.id, item.target, ok=False, message=_no_inbox(item.target.value), now=now, retry_at=None
                )
        if not relays:
            return
        if self.pool is None:
            raise RelayUnreachable("this outbox has no relay pool; the deliveries stay queued for the daemon")
        try:
            results = await self.pool.publish(event, relays, self.timeout)
        except Exception as exc:  # the pool failing as a whole is retried like a timeout
            log.warning("publish failed: %s", exc, extra={"event": event.id[:16]})
            results = {}
        now = self.clock.now()
        by_relay = {i.relay: i for i in items if i.target.kind is TargetKind.RELAY}
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
        """One pass over the deliveries due now; returns how many rows it handled.

        Relay-list look-ups wait while no configured relay is connected (each would only be
        recorded as unanswered and retried: CPU for nothing), until one connects or a relay list
        is stored by another path (then they are planned again from the index, without asking).
        """
        now = self.clock.now()
        can_ask = self.can_look_up()
        lists = self._list_versions()
        if not can_ask and lists != self._lists_planned:
            if self._lists_planned is not None:  # a list came by another path: plan them again
                await self.store.outbox_lookups_due(now)
            self._lists_planned = lists
            self._replanning = True  # (the first pass takes those due, as any pass with a relay)
        lookups = can_ask or self._replanning
        due = await self.store.outbox_due(now, self.batch, lookups=lookups)
        if self._replanning and len(due) < self.batch:
            self._replanning = False  # every waiting look-up was planned with the lists known now
        if not due:
            return 0
        groups: dict[str, list[OutboxItem]] = {}
        events: dict[str, Event] = {}
        for item in due:
            if item.event.id in self._resolving:
                continue
            groups.setdefault(item.event.id, []).append(item)
            events[item.event.id] = item.event
        handled = sum(len(items) for items in groups.values())
        placeholders = {i.event.id: i for items in groups.values() for i in items if i.target == LOOKUP}
        if placeholders:
            plans = await self._plan([events[eid] for eid in placeholders])
            for eid, item in placeholders.items():
                await self._commit(events[eid], plans[eid], item.attempts)
                groups[eid] = await self._due_items(events[eid])
        try:
            await asyncio.gather(*(self._deliver_event(events[eid], items) for eid, items in groups.items()))
        finally:
            self._attempted.set()
        return handled

    async def run(self) -> None:
        """Deliver until cancelled: a pass whenever woken, or every ``poll`` seconds."""
        while True:
            self._wake.clear()
            try:
                handled = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except StoreError as exc:  # e.g. a full disk: nothing was recorded, the pass is tried again
                log.error("outbox pass failed: %s", exc)
                handled = 0
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
