"""What the daemon follows for its user, and the cursors that let a restart resume.

``plan_subscriptions`` is pure: from the user's pubkey, the configured courses and authors and
what the index already knows (courses they teach, their lessons, people they write to) it
returns named subscriptions. ``Follows`` keeps them open on the pool, indexes what arrives and
persists one ``since`` cursor per (relay, subscription).

A subscription's cursor key carries a hash of its filters: when the filters change (a new
lesson, a new course) the changed subscription starts from the beginning instead of trusting a
cursor that was measured for other filters.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterable, Sequence

from .. import kinds
from ..clock import Clock
from ..errors import NostrTrainingError
from ..event import Event, coordinate, parse_coordinate
from ..filters import Filter
from ..nips.nip17 import parse_inbox_relays
from ..services.private import VIEW_KEY_ACTION
from ..store.base import AddOutcome, Store
from .pool import Pool

__all__ = ["Subscription", "plan_subscriptions", "Follows", "GIFT_WRAP_LOOKBACK", "RESUME_OVERLAP"]

log = logging.getLogger("nostr_training.follows")

#: NIP-59 wraps carry created_at randomised up to two days into the past.
GIFT_WRAP_LOOKBACK = 2 * 24 * 3600

#: A resumed REQ asks again for this much before its cursor. A cursor is only the newest
#: ``created_at`` we saw; relays still receive older events later (other clients' outboxes
#: retry for hours, clocks drift), and a replay costs only duplicates.
RESUME_OVERLAP = 3600

#: A replay of at least this many stored events may have been cut by the relay's own cap
#: (rust-nostr serves 500 a filter, others 100..5000): page back with ``until`` before trusting it.
BACKFILL_THRESHOLD = 100


@dataclass(frozen=True)
class Subscription:
    """One named REQ the daemon keeps open on each of the user's relays."""

    name: str
    filters: tuple[Filter, ...]
    lookback: int = 0
    relays: tuple[str, ...] = ()
    """Relays asked besides the configured ones (the user's NIP-17 inbox for gift wraps)."""

    @property
    def key(self) -> str:
        shape: list[Any] = [f.to_dict() for f in self.filters]
        if self.relays:
            shape.append(sorted(self.relays))
        text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        return f"{self.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def since(self, cursor: int | None) -> int | None:
        if cursor is None:
            return None
        return max(0, cursor - self.lookback - RESUME_OVERLAP)


def _course_filter(course: str) -> Filter:
    kind, pubkey, d = parse_coordinate(course)
    return Filter(kinds=frozenset({kind}), authors=frozenset({pubkey}), tags={"d": frozenset({d})})


def plan_subscriptions(
    *,
    me: str | None,
    courses: Iterable[str] = (),
    authors: Iterable[str] = (),
    taught_courses: Iterable[str] = (),
    my_lessons: Iterable[str] = (),
    correspondents: Iterable[str] = (),
    inbox_relays: Iterable[str] = (),
    private_hosts: Iterable[str] = (),
    held_awards: Iterable[tuple[str, str]] = (),
) -> list[Subscription]:
    """The subscriptions for one user; empty parts are left out (a REQ must match something).

    ``private_hosts``: the authors whose view keys the user holds (``services.private``): their
    private calendar items (32678) are followed, and opened by the daemon's private inbox.
    ``held_awards``: (issuer, award id) of each award the user holds: a private award's
    revocation is a hash-only marker naming neither holder nor course, so only ``#x`` finds it.
    ``courses`` must not hold private courses (a REQ naming one tells the relay who follows it)."""
    subs: list[Subscription] = []
    followed = sorted(set(courses))
    all_courses = sorted(set(followed) | set(taught_courses))
    if me:
        subs.append(Subscription("own", (Filter(authors=frozenset({me})),)))
    if followed:
        issuers = sorted({parse_coordinate(c)[1] for c in followed})
        subs.append(Subscription("courses", (
            *(_course_filter(c) for c in followed),
            # The certificate definitions of those courses' authors: a learner's award needs its
            # definition to be shown, accepted (10008) or exported for offline verification.
            Filter(kinds=frozenset({kinds.BADGE_DEFINITION}), authors=frozenset(issuers)),
        )))
    if all_courses:
        subs.append(Subscription("lessons", (Filter(kinds=frozenset({kinds.LESSON}), tags={"a": frozenset(all_courses)}),)))
    wanted_authors = sorted(set(authors) - {me})
    if wanted_authors:
        subs.append(Subscription("authors", (Filter(authors=frozenset(wanted_authors)),)))
    if me:
        rsvp_filters = [Filter(kinds=frozenset({kinds.RSVP}), tags={"p": frozenset({me})})]
        lessons = sorted(set(my_lessons))
        if lessons:
            rsvp_filters.append(Filter(kinds=frozenset({kinds.RSVP}), tags={"a": frozenset(lessons)}))
        subs.append(Subscription("rsvps", tuple(rsvp_filters)))
        subs.append(Subscription(
            "awards",
            (Filter(kinds=frozenset({kinds.BADGE_AWARD, kinds.CERTIFICATE_REVOCATION}), tags={"p": frozenset({me})}),),
        ))
        subs.append(
            Subscription(
                "giftwraps",
                (
                    Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})}),
                    # Ephemeral wraps (a private lesson's join requests, presence): live only.
                    Filter(kinds=frozenset({kinds.GIFT_WRAP_EPHEMERAL}), tags={"p": frozenset({me})}),
                ),
                lookback=GIFT_WRAP_LOOKBACK,
                relays=tuple(dict.fromkeys(inbox_relays)),
            )
        )
    hashes: dict[str, set[str]] = {}
    for issuer, award_id in held_awards:
        hashes.setdefault(issuer, set()).add(kinds.award_hash(award_id))
    if hashes:
        subs.append(Subscription("revocation-markers", tuple(
            Filter(kinds=frozenset({kinds.CERTIFICATE_REVOCATION}), authors=frozenset({issuer}), tags={"x": frozenset(h)})
            for issuer, h in sorted(hashes.items())
        )))
    hosts = sorted(set(private_hosts) - {me})
    if hosts:
        subs.append(Subscription(
            "private-items", (Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}), authors=frozenset(hosts)),),
        ))
    people = sorted(set(correspondents) - {me} - {None})  # type: ignore[arg-type]
    if people:
        subs.append(
            Subscription(
                "relay-lists",
                (Filter(kinds=frozenset({kinds.RELAY_LIST, kinds.DM_RELAYS}), authors=frozenset(people)),),
            )
        )
    return subs


@dataclass
class FollowCounters:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped_while_failing: int = 0  # events let go while the index could not write; replayed later


#: While the index cannot write, at most this many received events wait for the retry; beyond
#: that they are dropped, which costs nothing: cursors do not move, and the subscriptions are
#: sent again from them once writing works.
MAX_PENDING_WHILE_FAILING = 20_000


@dataclass
class _Cursor:
    committed: int | None = None  # what ``since`` uses; stored and flushed
    pending: int | None = None  # the newest seen before EOSE (stored events arrive newest first)
    live: bool = False  # EOSE seen: events now arrive in order
    dirty: bool = False
    replayed: int = 0  # stored events received since the last (re)connect, before EOSE
    oldest: int | None = None  # the oldest of them: where a backfill page starts
    since: int | None = None  # what the last REQ asked for


class Follows:
    """Keeps the planned subscriptions open, indexes events and persists cursors.

    ``on_indexed`` is called, synchronously, with each event newly stored (the local endpoint
    queues it for its clients); ``run`` flushes every ``flush_interval`` seconds of ``clock``.
    """

    def __init__(
        self,
        store: Store,
        pool: Pool,
        *,
        clock: Clock,
        me: str | None,
        relays: Sequence[str],
        courses: Sequence[str] = (),
        authors: Sequence[str] = (),
        on_indexed: Callable[[Event], None] | None = None,
        flush_interval: float = 2.0,
        batch_size: int = 500,
        batch_delay: float = 0.05,
        fetch_timeout: float = 10.0,
        max_backfill_pages: int = 1000,
    ):
        self.store = store
        self.pool = pool
        self.clock = clock
        self.me = me
        self.relays = list(relays)
        self.courses = list(courses)
        self.authors = list(authors)
        self.on_indexed = on_indexed
        self.flush_interval = flush_interval
        self.counters = FollowCounters()
        self._active: dict[str, Subscription] = {}  # key -> subscription
        self._cursors: dict[tuple[str, str], _Cursor] = {}
        self._replan = asyncio.Event()
        self.batch_size = batch_size
        self.batch_delay = batch_delay
        self.fetch_timeout = fetch_timeout
        self.max_backfill_pages = max_backfill_pages
        self._buffer: list[tuple[_Cursor, bool, Event]] = []
        self.failing: str | None = None  # why the index cannot write now, or None
        self.failing_since: int | None = None
        self._commit_lock = asyncio.Lock()
        self._commit_soon: asyncio.Task[None] | None = None

    # Planning ------------------------------------------------------------------------------

    async def plan(self) -> list[Subscription]:
        """Read what the index knows about the user and plan from it."""
        taught: list[str] = []
        lessons: list[str] = []
        correspondents: set[str] = set(self.authors)
        now = self.clock.now()
        followed: list[str] = []
        for course in self.courses:
            correspondents.add(parse_coordinate(course)[1])
            known = await self.store.course(course, now=now)
            if known is None or not known.private:  # a private course comes by its envelopes
                followed.append(course)
        if self.me:
            mine = await self.store.query(
                [Filter(kinds=frozenset({kinds.COURSE, kinds.LESSON}), authors=frozenset({self.me}))], now=now
            )
            for ev in mine:
                (taught if ev.kind == kinds.COURSE else lessons).append(coordinate(ev.kind, ev.pubkey, ev.d))
                if ev.kind == kinds.LESSON:  # a course I give lessons in is a course I teach
                    taught += [a for a in ev.tag_values("a") if a.startswith(f"{kinds.COURSE}:")]
            own = await self.store.query([Filter(authors=frozenset({self.me}), limit=500)], now=now)
            for ev in own:
                correspondents.update(ev.tag_values("p"))
            rsvps = await self.store.query([Filter(kinds=frozenset({kinds.RSVP}), tags={"p": frozenset({self.me})}, limit=2000)], now=now)
            correspondents.update(ev.pubkey for ev in rsvps)
        correspondents = {p for p in correspondents if len(p) == 64}
        inbox: tuple[str, ...] = ()
        hosts: set[str] = set()
        held: list[tuple[str, str]] = []
        if self.me:
            hosts = {r.pubkey for r in await self.store.actions(action=VIEW_KEY_ACTION) if r.pubkey}
            awards = await self.store.query(
                [Filter(kinds=frozenset({kinds.BADGE_AWARD}), tags={"p": frozenset({self.me})})], now=now, include_private=True
            )
            held = [(a.pubkey, a.id) for a in awards if a.pubkey != self.me]
            mine = await self.store.query([Filter(kinds=frozenset({kinds.DM_RELAYS}), authors=frozenset({self.me}))], now=now)
            if mine:
                inbox = tuple(r for r in parse_inbox_relays(mine[0]) if r not in self.relays)
        return plan_subscriptions(
            me=self.me,
            courses=followed,
            authors=self.authors,
            taught_courses=taught,
            my_lessons=lessons,
            correspondents=correspondents,
            inbox_relays=inbox,
            private_hosts=hosts,
            held_awards=held,
        )

    def _relays_of(self, sub: Subscription) -> list[str]:
        return list(dict.fromkeys([*self.relays, *sub.relays]))

    async def _load_cursors(self, sub: Subscription) -> None:
        for relay in self._relays_of(sub):
            slot = self._cursors.setdefault((relay, sub.key), _Cursor())
            slot.committed = await self.store.get_cursor(relay, sub.key)

    async def apply(self) -> None:
        """Open new subscriptions, close the ones no longer planned."""
        planned = {s.key: s for s in await self.plan()}
        for key in list(self._active):
            if key not in planned:
                await self.pool.unsubscribe(key)
                del self._active[key]
        for key, sub in planned.items():
            if key in self._active:
                continue
            await self._load_cursors(sub)
            self._active[key] = sub
            await self.pool.subscribe(
                key, list(sub.filters), self._relays_of(sub), self._handler(sub),
                since=self._since(sub), on_eose=self._eose_handler(sub),
            )
            log.info("following %s", sub.name, extra={"key": key, "relays": len(self._relays_of(sub))})

    def _since(self, sub: Subscription) -> Callable[[str], int | None]:
        def since(relay: str) -> int | None:
            slot = self._cursors.setdefault((relay, sub.key), _Cursor())
            slot.live = False  # a (re)connect replays stored events first
            slot.pending = slot.oldest = None
            slot.replayed = 0
            slot.since = sub.since(slot.committed)
            return slot.since

        return since

    # Events --------------------------------------------------------------------------------

    def _handler(self, sub: Subscription) -> Callable[[str, Event], Awaitable[None]]:
        async def on_event(relay: str, event: Event) -> None:
            await self.ingest(relay, sub.key, event)

        return on_event

    def _eose_handler(self, sub: Subscription) -> Callable[[str], Awaitable[None]]:
        async def on_eose(relay: str) -> None:
            slot = self._cursors.setdefault((relay, sub.key), _Cursor())
            if slot.replayed >= BACKFILL_THRESHOLD and slot.oldest is not None:
                await self._backfill(relay, sub, slot)
            if not await self.commit():  # the replay is in the index before the cursor says so
                return
            slot.live = True
            if slot.pending is not None:
                self._advance(slot, slot.pending)
            slot.pending = None

        return on_eose

    async def _backfill(self, relay: str, sub: Subscription, slot: _Cursor) -> None:
        """Page back with ``until`` while pages come full: the relay may have cut the replay."""
        until = slot.oldest
        assert until is not None
        for _ in range(self.max_backfill_pages):
            page = [replace(f, since=max(f.since or 0, slot.since or 0) or None, until=until) for f in sub.filters]
            got = await self.pool.fetch(page, [relay], timeout=self.fetch_timeout)
            for event in got:
                await self.ingest(relay, sub.key, event, replay=True)
            oldest = min((e.created_at for e in got), default=until)
            if len(got) < BACKFILL_THRESHOLD or oldest >= until:
                return
            until = oldest
        log.warning("backfill of %s stopped after %d pages", sub.name, self.max_backfill_pages, extra={"relay": relay})

    def _advance(self, slot: _Cursor, created_at: int) -> None:
        """Move a cursor forward, never past our own clock (a future-dated event must not
        make the next REQ skip what is published meanwhile), and never while writes fail."""
        if self.failing is not None:
            return
        at = min(created_at, self.clock.now())
        if slot.committed is None or at > slot.committed:
            slot.committed = at
            slot.dirty = True

    async def ingest(self, relay: str, key: str, event: Event, *, replay: bool = False) -> None:
        """Take one event the pool verified; it is indexed with the next batch.

        Batches keep the index's write rate near the store's ``add_many`` speed instead of one
        transaction an event; a full buffer is committed before this returns (back-pressure).
        """
        self.counters.received += 1
        slot = self._cursors.setdefault((relay, key), _Cursor())
        live = slot.live and not replay
        if not live and not replay:
            slot.replayed += 1
            if slot.pending is None or event.created_at > slot.pending:
                slot.pending = event.created_at
            if slot.oldest is None or event.created_at < slot.oldest:
                slot.oldest = event.created_at
        if self.failing is not None and len(self._buffer) >= MAX_PENDING_WHILE_FAILING:
            self.counters.dropped_while_failing += 1
            return
        self._buffer.append((slot, live, event))
        if len(self._buffer) >= self.batch_size and self.failing is None:
            await self.commit()
        elif self._commit_soon is None or self._commit_soon.done():
            self._commit_soon = asyncio.create_task(self._commit_later())

    async def _commit_later(self) -> None:
        await asyncio.sleep(self.batch_delay)
        await asyncio.shield(self.commit())  # cancelled at stop, a batch under way still lands

    async def commit(self) -> bool:
        """Index the buffered events in one transaction, then move the cursors of live ones.

        A batch that does not commit moves no cursor: it stays buffered for the next try, the
        daemon reports that it is not indexing and why, and once a write succeeds again every
        subscription is sent anew from the cursors, so what was dropped meanwhile is replayed.
        False when nothing could be written.
        """
        async with self._commit_lock:
            if not self._buffer:
                return self.failing is None
            batch, self._buffer = self._buffer, []
            try:
                outcomes = await self.store.add_many([e for _, _, e in batch], verified=True, now=self.clock.now())
            except Exception as exc:
                self._buffer = batch + self._buffer
                if self.failing is None:
                    self.failing_since = self.clock.now()
                    log.error("not indexing: %s (%d events wait; cursors stay where the index stopped)", exc, len(batch))
                self.failing = str(exc)
                return False
            recovered = self.failing is not None
            if recovered:
                log.warning("indexing again after %s s; asking the relays again from the cursors",
                            self.clock.now() - (self.failing_since or self.clock.now()))
                self.failing = self.failing_since = None
            for (slot, live, event), outcome in zip(batch, outcomes, strict=True):
                if outcome is AddOutcome.DUPLICATE:
                    self.counters.duplicates += 1
                elif not outcome.accepted:
                    self.counters.rejected += 1
                    log.warning("event not indexed: %s", outcome.value, extra={"event": event.id[:16]})
                else:
                    self.counters.stored += 1
                    if self.me and (
                        (event.pubkey == self.me and event.kind in (kinds.COURSE, kinds.LESSON, kinds.DM_RELAYS))
                        or (event.kind in (kinds.RSVP, kinds.BADGE_AWARD) and self.me in event.tag_values("p"))
                    ):
                        self._replan.set()
                    # Ephemeral events are never stored, but the inbox opens an ephemeral wrap
                    # (and the local endpoint forwards it) only from here.
                    if self.on_indexed is not None and outcome in (AddOutcome.STORED, AddOutcome.EPHEMERAL):
                        self.on_indexed(event)
                if live:
                    self._advance(slot, event.created_at)
        if recovered:
            await self.resubscribe()
        return True

    async def resubscribe(self) -> None:
        """Send every subscription again from its committed cursor (after lost writes)."""
        active = list(self._active.values())
        for sub in active:
            await self.pool.unsubscribe(sub.key)
            del self._active[sub.key]
        await self.apply()

    async def flush(self) -> None:
        """Index what is buffered, then persist the cursors that moved."""
        if not await self.commit():
            return
        for (relay, key), slot in list(self._cursors.items()):
            if slot.dirty and slot.committed is not None:
                slot.dirty = False
                await self.store.set_cursor(relay, key, slot.committed)

    async def run(self) -> None:
        """Flush cursors and re-plan when the user's own courses, lessons or learners change."""
        try:
            while True:
                await self.clock.sleep(self.flush_interval)
                try:
                    await self.flush()
                    if self._replan.is_set():
                        self._replan.clear()
                        await self.apply()
                except NostrTrainingError as exc:  # the store failing: reported, tried again next round
                    log.error("follows: %s", exc)
        finally:
            if self._commit_soon is not None:
                self._commit_soon.cancel()  # the flush below commits what it was waiting for
            try:
                await asyncio.shield(self.flush())
            except NostrTrainingError as exc:
                log.error("follows: final flush failed: %s", exc)

    def request_replan(self) -> None:
        """Plan again at the next flush: something the plan reads changed (a new view key)."""
        self._replan.set()

    def subscriptions(self) -> list[Subscription]:
        return list(self._active.values())

    def cursor(self, relay: str, key: str) -> int | None:
        slot = self._cursors.get((relay, key))
        return slot.committed if slot else None
