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
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Sequence

from .. import kinds
from ..clock import Clock
from ..event import Event, coordinate, parse_coordinate
from ..filters import Filter
from ..store.base import AddOutcome, Store

__all__ = ["Subscription", "plan_subscriptions", "Follows", "GIFT_WRAP_LOOKBACK"]

log = logging.getLogger("nostr_training.follows")

#: NIP-59 wraps carry created_at randomised up to two days into the past.
GIFT_WRAP_LOOKBACK = 2 * 24 * 3600


@dataclass(frozen=True)
class Subscription:
    """One named REQ the daemon keeps open on each of the user's relays."""

    name: str
    filters: tuple[Filter, ...]
    lookback: int = 0

    @property
    def key(self) -> str:
        text = json.dumps([f.to_dict() for f in self.filters], sort_keys=True, separators=(",", ":"))
        return f"{self.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def since(self, cursor: int | None) -> int | None:
        if cursor is None:
            return None
        return max(0, cursor - self.lookback)


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
) -> list[Subscription]:
    """The subscriptions for one user; empty parts are left out (a REQ must match something)."""
    subs: list[Subscription] = []
    followed = sorted(set(courses))
    all_courses = sorted(set(followed) | set(taught_courses))
    if me:
        subs.append(Subscription("own", (Filter(authors=frozenset({me})),)))
    if followed:
        subs.append(Subscription("courses", tuple(_course_filter(c) for c in followed)))
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
        subs.append(
            Subscription(
                "giftwraps",
                (Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})}),),
                lookback=GIFT_WRAP_LOOKBACK,
            )
        )
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


@dataclass
class _Cursor:
    committed: int | None = None  # what ``since`` uses; stored and flushed
    pending: int | None = None  # the newest seen before EOSE (stored events arrive newest first)
    live: bool = False  # EOSE seen: events now arrive in order
    dirty: bool = False


class Follows:
    """Keeps the planned subscriptions open, indexes events and persists cursors."""

    def __init__(
        self,
        store: Store,
        pool: Any,
        *,
        clock: Clock,
        me: str | None,
        relays: Sequence[str],
        courses: Sequence[str] = (),
        authors: Sequence[str] = (),
        on_indexed: Callable[[Event], Awaitable[None] | None] | None = None,
        flush_interval: float = 2.0,
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

    # Planning ------------------------------------------------------------------------------

    async def plan(self) -> list[Subscription]:
        """Read what the index knows about the user and plan from it."""
        taught: list[str] = []
        lessons: list[str] = []
        correspondents: set[str] = set(self.authors)
        now = self.clock.now()
        for course in self.courses:
            correspondents.add(parse_coordinate(course)[1])
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
        return plan_subscriptions(
            me=self.me,
            courses=self.courses,
            authors=self.authors,
            taught_courses=taught,
            my_lessons=lessons,
            correspondents=correspondents,
        )

    async def _load_cursors(self, sub: Subscription) -> None:
        for relay in self.relays:
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
                key, list(sub.filters), self.relays, self._handler(sub),
                since=self._since(sub), on_eose=self._eose_handler(sub),
            )
            log.info("following %s", sub.name, extra={"key": key, "relays": len(self.relays)})

    @staticmethod
    async def _maybe_await(value: Any) -> Any:
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            return await value
        return value

    def _since(self, sub: Subscription) -> Callable[[str], int | None]:
        def since(relay: str) -> int | None:
            slot = self._cursors.setdefault((relay, sub.key), _Cursor())
            slot.live = False  # a (re)connect replays stored events first
            slot.pending = None
            return sub.since(slot.committed)

        return since

    # Events --------------------------------------------------------------------------------

    def _handler(self, sub: Subscription) -> Callable[[str, Event], Awaitable[None]]:
        async def on_event(relay: str, event: Event) -> None:
            await self.ingest(relay, sub.key, event)

        return on_event

    def _eose_handler(self, sub: Subscription) -> Callable[[str], Awaitable[None]]:
        async def on_eose(relay: str) -> None:
            slot = self._cursors.setdefault((relay, sub.key), _Cursor())
            slot.live = True
            if slot.pending is not None and (slot.committed is None or slot.pending > slot.committed):
                slot.committed = slot.pending
                slot.dirty = True
            slot.pending = None

        return on_eose

    async def ingest(self, relay: str, key: str, event: Event) -> AddOutcome | None:
        """Index one event the pool verified, then move that subscription's cursor."""
        self.counters.received += 1
        try:
            outcome = await self.store.add(event, verified=True, now=self.clock.now())
        except Exception as exc:
            self.counters.rejected += 1
            log.warning("event not indexed: %s", exc, extra={"relay": relay, "event": event.id[:16]})
            return None
        if outcome is AddOutcome.DUPLICATE:
            self.counters.duplicates += 1
        elif outcome.accepted:
            self.counters.stored += 1
            if self.me and (
                (event.pubkey == self.me and event.kind in (kinds.COURSE, kinds.LESSON))
                or (event.kind == kinds.RSVP and self.me in event.tag_values("p"))
            ):
                self._replan.set()
            if self.on_indexed is not None and outcome is AddOutcome.STORED:
                await self._maybe_await(self.on_indexed(event))
        slot = self._cursors.setdefault((relay, key), _Cursor())
        if slot.live:
            if slot.committed is None or event.created_at > slot.committed:
                slot.committed = event.created_at
                slot.dirty = True
        elif slot.pending is None or event.created_at > slot.pending:
            slot.pending = event.created_at
        return outcome

    async def flush(self) -> None:
        """Persist the cursors that moved."""
        for (relay, key), slot in list(self._cursors.items()):
            if slot.dirty and slot.committed is not None:
                slot.dirty = False
                await self.store.set_cursor(relay, key, slot.committed)

    async def run(self) -> None:
        """Flush cursors and re-plan when the user's own courses, lessons or learners change."""
        try:
            while True:
                await asyncio.sleep(self.flush_interval)
                await self.flush()
                if self._replan.is_set():
                    self._replan.clear()
                    await self.apply()
        finally:
            await asyncio.shield(self.flush())

    def subscriptions(self) -> list[Subscription]:
        return list(self._active.values())

    def cursor(self, relay: str, key: str) -> int | None:
        slot = self._cursors.get((relay, key))
        return slot.committed if slot else None
