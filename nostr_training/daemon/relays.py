"""The relay pool: one websocket per relay, shared by every subscription, publish and fetch.

This is the only client-side module that imports ``websockets``. The protocol itself lives in
``nostr_training.protocol`` (sans-I/O); this module adds sockets, reconnection with backoff,
NIP-11 limits, NIP-42 AUTH and delivery to callers. Everything that touches the world is
injected: ``connect`` (the websocket factory), ``sign`` (for AUTH), ``verify``, ``backoff`` and
``clock`` (timestamps and the waits between reconnects; network timeouts stay in real time).
It implements the ``Pool`` protocol of ``daemon/pool.py``, where its public types live.

Guarantees:
- every event handed to a caller has been verified (id recomputed, signature checked);
- a subscription survives reconnects: on each (re)connect its REQ is sent again with
  ``since(relay)`` merged into every filter, and events are de-duplicated by id across relays
  and reconnects, so a callback sees each event once;
- nothing a relay sends can crash the connection: bad frames are dropped, logged and counted.

De-duplication is by event id only. Two revisions of one replaceable/addressable event have
different ids, so both reach the caller when a relay serves both; choosing the winner by
address (``event.supersedes``) is the store's job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Sequence

import websockets

from ..clock import Clock, SystemClock
from ..errors import MalformedEvent, RelayError, RelayRefused
from ..event import Event, EventTemplate, verify_event
from ..filters import Filter, matches_any, order_key
from ..nips import nip11
from ..nips.nip42 import auth_template
from ..nips.nip65 import normalize_relay_url
from ..protocol import (
    DEFAULT_MAX_INCOMING_LENGTH,
    AuthAnswered,
    AuthChallenge,
    Dropped,
    EndOfStoredEvents,
    Notice,
    PublishAnswered,
    ReceivedEvent,
    RelayConnection,
    RelayCounters,
    SubscriptionClosed,
    reason_prefix,
)
from .backoff import default_backoff
from .pool import RETRYABLE_PREFIXES, OnEose, OnEvent, PublishResult, RelayState, RelayStatus, Since

__all__ = ["RelayPool", "PublishResult", "RelayState", "RelayStatus", "RETRYABLE_PREFIXES", "DEFAULT_AUTH_TIMEOUT"]

Sign = Callable[[EventTemplate], Awaitable[Event]]

_SEEN_PER_SUBSCRIPTION = 50_000
_VERIFIED_CACHE = 20_000
_INFORMATION_TIMEOUT = 3.0
_CONNECT_TIMEOUT = 10.0
DEFAULT_AUTH_TIMEOUT = 5.0
#: CLOSED reasons that asking again will not change; any other closed subscription is re-sent.
_FINAL_CLOSED = frozenset({"invalid", "blocked", "restricted", "auth-required", "unsupported", "pow"})
_MAX_CLOSED_RETRIES = 8


class _RecentIds:
    """A bounded set of ids, oldest forgotten first."""

    def __init__(self, size: int):
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """True when the id is new."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class _CachingVerifier:
    """Verify each distinct event once, however many relays send it.

    The cache holds whole events, compared field by field, so a forged copy that reuses a
    known id is still verified (and rejected).
    """

    def __init__(self, verify: Callable[[Event], Event], size: int = _VERIFIED_CACHE):
        self._verify = verify
        self._size = size
        self._cache: OrderedDict[str, Event] = OrderedDict()

    def __call__(self, event: Event) -> Event:
        cached = self._cache.get(event.id)
        if cached is not None and cached == event:
            return cached
        verified = self._verify(event)
        self._cache[event.id] = verified
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return verified


@dataclass(eq=False)
class _Subscription:
    key: str
    filters: tuple[Filter, ...]
    relays: set[str]
    on_event: OnEvent
    since: Since | None
    on_eose: OnEose | None
    seen: _RecentIds
    queue: asyncio.Queue[tuple[str, str, Event | None]]
    spelling: dict[str, str]
    """Normalised URL -> the caller's spelling, used in every callback."""
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Group:
    """One REQ on one relay carrying the filters of one or more subscriptions."""

    subscription_id: str
    keys: list[str]
    auth_retried: bool = False
    eose_keys: set[str] = dataclasses.field(default_factory=set)
    closed_retries: int = 0  # REQs sent again after the relay closed this one


@dataclass(eq=False)
class _FetchSink:
    events: dict[str, Event]
    done: asyncio.Future[None]
    filters: tuple[Filter, ...]
    auth_retried: bool = False


def _get_information(url: str, timeout: float) -> nip11.RelayInformation:
    request = urllib.request.Request(nip11.information_url(url), headers={"Accept": nip11.ACCEPT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return nip11.parse_information(response.read(1 << 20))


def _merge_since(filters: Sequence[Filter], since: int | None) -> list[Filter]:
    if since is None:
        return list(filters)
    return [f if f.since is not None and f.since >= since else dataclasses.replace(f, since=since) for f in filters]


class _Relay:
    """The connection loop and per-relay bookkeeping for one URL."""

    def __init__(self, pool: "RelayPool", url: str):
        self.pool = pool
        self.url = url
        self.state = RelayState.CONNECTING
        self.state_since = pool._clock.now()
        self.last_error: str | None = None
        self.counters = RelayCounters()
        self.information: nip11.RelayInformation | None = None
        self.conn: RelayConnection | None = None
        self.ws: Any = None
        self.groups: dict[str, _Group] = {}
        self.fetches: dict[str, _FetchSink] = {}
        self.publishing: dict[str, list[asyncio.Future[PublishAnswered]]] = {}
        self.changed = asyncio.Condition()
        self.auth_flight: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self.background: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def log(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        return self.pool._log

    @property
    def limits(self) -> nip11.RelayLimits:
        return self.information.limitation if self.information is not None else nip11.RelayLimits()

    def new_subscription_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"relay {self.url}")

    async def _set_state(self, state: RelayState, error: str | None = None) -> None:
        self.state = state
        self.state_since = self.pool._clock.now()
        if error is not None:
            self.last_error = error
        async with self.changed:
            self.changed.notify_all()

    async def wait_ready(self) -> bool:
        """Wait until connected (True) or the current attempt failed (False)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.conn is not None or self.state in (RelayState.BACKOFF, RelayState.CLOSED))
        return self.conn is not None

    # Connection loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        delays: Iterator[float] = self.pool._backoff()
        while not self.stopping:
            await self._set_state(RelayState.CONNECTING)
            try:
                if self.information is None:
                    await self._load_information()
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    ws = await self.pool._connect(
                        self.url,
                        max_size=self.pool._max_incoming_length * 4,
                        open_timeout=_CONNECT_TIMEOUT,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._fail(f"connect failed: {exc.__class__.__name__}: {exc}")
            else:
                delays = self.pool._backoff()
                if self.stopping:
                    await _close_quietly(ws)
                    break
                try:
                    await self._session(ws)
                    await self._fail("connection closed by the relay")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._fail(f"connection lost: {exc.__class__.__name__}: {exc}")
                finally:
                    self._teardown()
                    await _close_quietly(ws)
            await self.pool._clock.sleep(next(delays))

    async def _fail(self, error: str) -> None:
        self.log.info("relay %s: %s", self.url, error)
        self._teardown()
        await self._set_state(RelayState.BACKOFF, error)

    async def _load_information(self) -> None:
        try:
            async with asyncio.timeout(_INFORMATION_TIMEOUT + 1):
                self.information = await asyncio.to_thread(_get_information, self.url, _INFORMATION_TIMEOUT)
        except Exception as exc:
            self.log.debug("relay %s: no NIP-11 document (%s)", self.url, exc)

    async def _session(self, ws: Any) -> None:
        conn = RelayConnection(
            self.url,
            limits=self.limits,
            verify=self.pool._verify,
            max_incoming_length=self.pool._max_incoming_length,
            counters=self.counters,
        )
        self.ws = ws
        self.conn = conn
        self._repack()
        await self._set_state(RelayState.CONNECTED)
        for group in list(self.groups.values()):
            group.auth_retried = False
            await self.send_group(group)
        async for frame in ws:
            await self._handle(conn, conn.receive(frame))

    def _teardown(self) -> None:
        """Forget the connection: fail waiting publishes and fetches, keep subscriptions."""
        self.conn = None
        self.ws = None
        for task in self.background:
            task.cancel()
        self.background.clear()
        for flight in self.auth_flight.values():
            if not flight.done():
                flight.set_result((False, "not-connected: connection lost during AUTH"))
        self.auth_flight.clear()
        lost = PublishAnswered("", False, "not-connected: connection lost before the relay answered")
        for waiters in self.publishing.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(lost)
        for sink in self.fetches.values():
            if not sink.done.done():
                sink.done.set_result(None)

    async def send(self, frame: str) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(frame)
        except Exception as exc:
            self.log.info("relay %s: send failed: %s", self.url, exc)
            return False
        return True

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # Incoming ---------------------------------------------------------------------------------

    async def _handle(self, conn: RelayConnection, record: Any) -> None:
        if isinstance(record, ReceivedEvent):
            group = self.groups.get(record.subscription_id)
            if group is not None:
                self.pool._dispatch(self.url, group, record.event)
            elif (sink := self.fetches.get(record.subscription_id)) is not None:
                sink.events.setdefault(record.event.id, record.event)
        elif isinstance(record, EndOfStoredEvents):
            group = self.groups.get(record.subscription_id)
            if group is not None:
                fresh = [k for k in group.keys if k not in group.eose_keys]
                group.eose_keys.update(fresh)
                self.pool._dispatch_eose(self.url, fresh)
            elif (sink := self.fetches.get(record.subscription_id)) is not None and not sink.done.done():
                sink.done.set_result(None)
        elif isinstance(record, PublishAnswered):
            for fut in self.publishing.get(record.event_id, ()):
                if not fut.done():
                    fut.set_result(record)
        elif isinstance(record, AuthAnswered):
            self.log.info("relay %s: AUTH as %s %s %s", self.url, record.pubkey[:16],
                          "accepted" if record.accepted else "refused", record.message)
            flight = self.auth_flight.get(record.event_id)
            if flight is not None and not flight.done():
                flight.set_result((record.accepted, record.message))
        elif isinstance(record, SubscriptionClosed):
            self._on_closed(record)
        elif isinstance(record, AuthChallenge):
            async with self.changed:
                self.changed.notify_all()
        elif isinstance(record, Notice):
            self.log.info("relay %s: NOTICE %s", self.url, record.message[:300])
        elif isinstance(record, Dropped):
            if record.category == "late":
                self.log.debug("relay %s: %s", self.url, record.reason)
                return
            self.log.warning("relay %s: dropped %s frame: %s [%s]", self.url, record.category, record.reason,
                             record.excerpt)

    def _on_closed(self, record: SubscriptionClosed) -> None:
        group = self.groups.get(record.subscription_id)
        sink = self.fetches.get(record.subscription_id)
        if group is None and (sink is None or sink.done.done()):
            # A fetch that already had its EOSE (rust-nostr closes ids-only REQs by itself).
            self.log.debug("relay %s: finished subscription %s closed: %s", self.url, record.subscription_id,
                           record.message)
            return
        if record.prefix == "auth-required" and self.pool._sign is not None:
            if group is not None and not group.auth_retried:
                group.auth_retried = True
                self.spawn(self._auth_then(lambda: self.send_group(group), record.subscription_id))
                return
            if sink is not None and not sink.auth_retried:
                sink.auth_retried = True
                self.spawn(self._auth_then(lambda: self._send_fetch(record.subscription_id, sink),
                                           record.subscription_id))
                return
        self.last_error = f"subscription {record.subscription_id} closed: {record.message}"
        self.log.warning("relay %s: %s", self.url, self.last_error)
        if sink is not None and not sink.done.done():
            sink.done.set_result(None)
        if group is not None and record.prefix not in _FINAL_CLOSED and group.closed_retries < _MAX_CLOSED_RETRIES:
            # A subscription the relay closed for a passing reason (rate-limited, error, or none
            # given) would leave its followers deaf until the next reconnect: ask again, later.
            group.closed_retries += 1
            self.spawn(self._resend_later(group, min(60.0, 2.0 ** group.closed_retries)))

    async def _resend_later(self, group: _Group, delay: float) -> None:
        await asyncio.sleep(delay)  # protocol pacing, not daemon time
        if self.groups.get(group.subscription_id) is group:
            await self.send_group(group)

    async def _auth_then(self, resend: Callable[[], Awaitable[Any]], what: str) -> None:
        accepted, message = await self.authenticate()
        if accepted:
            await resend()
            return
        self.last_error = f"AUTH for {what} failed: {message}"
        self.log.warning("relay %s: %s", self.url, self.last_error)
        sink = self.fetches.get(what)
        if sink is not None and not sink.done.done():
            sink.done.set_result(None)

    # NIP-42 -----------------------------------------------------------------------------------

    async def authenticate(self) -> tuple[bool, str]:
        """AUTH against the latest challenge of this connection; one AUTH in flight per challenge.

        The AUTH runs in its own task, so a caller that gives up (its publish timed out) leaves
        it to finish for the others.
        """
        conn = self.conn
        sign = self.pool._sign
        if sign is None:
            return False, "auth-required: no signer configured"
        if conn is None:
            return False, "not-connected: no connection to authenticate"
        async with self.changed:
            await self.changed.wait_for(lambda: self.conn is not conn or conn.challenge is not None)
        if self.conn is not conn or conn.challenge is None:
            return False, "not-connected: connection lost while waiting for an AUTH challenge"
        challenge = conn.challenge
        flight = self.auth_flight.get(challenge)
        if flight is None:
            flight = asyncio.get_running_loop().create_future()
            self.auth_flight[challenge] = flight
            self.spawn(self._auth_flight(conn, challenge, sign, flight))
        return await asyncio.shield(flight)

    async def _auth_flight(self, conn: RelayConnection, challenge: str, sign: Sign,
                           flight: asyncio.Future[tuple[bool, str]]) -> None:
        """Sign, send and wait for the OK at most ``auth_timeout``.

        No OK in time counts as sent but unconfirmed (nostr-relay 1.14 never answers a good
        AUTH): the caller resends once anyway, and a relay that still refuses says so then.
        """
        await self._set_state(RelayState.AUTHENTICATING)
        unconfirmed = False
        try:
            try:
                auth = await sign(auth_template(self.url, challenge, created_at=self.pool._clock.now()))
            except Exception as exc:
                flight.set_result((False, f"auth-required: signing the AUTH event failed: {exc}"))
            else:
                self.auth_flight[auth.id] = flight
                if not await self.send(conn.authenticate(auth)):
                    flight.set_result((False, "not-connected: could not send AUTH"))
                await asyncio.wait({flight}, timeout=self.pool._auth_timeout)
                if not flight.done():
                    unconfirmed = True
                    conn.forget_auth(auth.id)
                    flight.set_result((True, f"AUTH unconfirmed: no OK within {self.pool._auth_timeout:g} s"))
        finally:
            if not flight.done():
                flight.set_result((False, "not-connected: AUTH abandoned"))
        accepted, message = flight.result()
        if self.conn is conn:
            if unconfirmed:
                await self._set_state(RelayState.CONNECTED, message)
            else:
                await self._set_state(RelayState.AUTHENTICATED if accepted else RelayState.CONNECTED,
                                      None if accepted else f"AUTH refused: {message}")

    # Outgoing ---------------------------------------------------------------------------------

    def _group_filters(self, group: _Group) -> list[Filter]:
        filters: list[Filter] = []
        for key in group.keys:
            sub = self.pool._subscriptions.get(key)
            if sub is not None:
                filters += _merge_since(sub.filters, self._since(sub))
        return filters

    def _since(self, sub: _Subscription) -> int | None:
        """The subscription's resume point for this relay; a failing callback means "from the start"."""
        if sub.since is None:
            return None
        try:
            return sub.since(sub.spelling.get(self.url, self.url))
        except Exception:
            self.log.exception("subscription %s: since callback failed for relay %s", sub.key, self.url)
            return None

    async def send_group(self, group: _Group) -> None:
        """(Re)send a REQ: the relay replays stored events for every member, so each member
        (whose ``since`` was asked again) hears EOSE again."""
        conn = self.conn
        if conn is None or group.subscription_id not in self.groups:
            return
        filters = self._group_filters(group)
        if filters:
            group.eose_keys.clear()
            await self.send(conn.request(group.subscription_id, filters))

    async def _send_fetch(self, subscription_id: str, sink: _FetchSink) -> None:
        conn = self.conn
        if conn is not None and subscription_id in self.fetches:
            await self.send(conn.request(subscription_id, sink.filters))

    def _open_count(self) -> int:
        return len(self.groups) + len(self.fetches)

    def _room(self) -> int | None:
        """How many REQs may carry subscriptions: M - 1 of NIP-11 ``max_subscriptions`` = M,
        keeping one slot for fetches."""
        cap = self.limits.max_subscriptions
        return None if cap is None else max(1, cap - 1)

    def _repack(self) -> None:
        """Regroup subscriptions added before the relay's limits were known."""
        room = self._room()
        if room is None or len(self.groups) <= room:
            return
        keys = [key for group in self.groups.values() for key in group.keys]
        packed = [_Group(self.new_subscription_id("s"), []) for _ in range(room)]
        for i, key in enumerate(keys):
            packed[i % room].keys.append(key)
        self.groups = {g.subscription_id: g for g in packed}

    async def attach(self, key: str) -> None:
        """Carry subscription ``key`` on this relay; when NIP-11 caps subscriptions and every
        slot is taken, it joins the REQ with the fewest members (events are then sorted back to
        each subscription by its own filters)."""
        room = self._room()
        if room is not None and len(self.groups) >= room:
            group = min(self.groups.values(), key=lambda g: len(g.keys))
            group.keys.append(key)
        else:
            group = _Group(self.new_subscription_id("s"), [key])
            self.groups[group.subscription_id] = group
        await self.send_group(group)

    async def detach(self, key: str) -> None:
        for group in list(self.groups.values()):
            if key not in group.keys:
                continue
            group.keys.remove(key)
            group.eose_keys.discard(key)
            if group.keys:
                await self.send_group(group)
            else:
                del self.groups[group.subscription_id]
                if self.conn is not None:
                    await self.send(self.conn.close_subscription(group.subscription_id))
                async with self.changed:
                    self.changed.notify_all()

    async def fetch(self, filters: tuple[Filter, ...], into: dict[str, Event]) -> None:
        """REQ, collect into ``into`` until EOSE/CLOSED/disconnect, CLOSE; waits for a free slot."""
        if not await self.wait_ready():
            return
        cap = self.limits.max_subscriptions
        async with self.changed:
            await self.changed.wait_for(lambda: self.conn is None or cap is None or self._open_count() < cap)
        conn = self.conn
        if conn is None:
            return
        subscription_id = self.new_subscription_id("f")
        sink = _FetchSink(into, asyncio.get_running_loop().create_future(), filters)
        self.fetches[subscription_id] = sink
        try:
            await self._send_fetch(subscription_id, sink)
            await sink.done
        finally:
            del self.fetches[subscription_id]
            if self.conn is conn and subscription_id in conn.subscriptions:
                await self.send(conn.close_subscription(subscription_id))
            async with self.changed:
                self.changed.notify_all()

    async def publish(self, event: Event) -> PublishResult:
        if not await self.wait_ready():
            return PublishResult(False, f"not-connected: {self.last_error or 'relay unreachable'}")
        before_auth = not self.auth_flight
        answer = await self._send_event(event)
        if not answer.accepted and self._auth_may_help(answer.message, before_auth):
            accepted, message = await self.authenticate()
            if not accepted:
                return PublishResult(False, message if reason_prefix(message) else f"auth-required: {message}")
            answer = await self._send_event(event)
        return PublishResult(answer.accepted, answer.message)

    def _auth_may_help(self, refusal: str, before_auth: bool) -> bool:
        """``auth-required:``, or ``restricted:`` for an EVENT sent before any AUTH to a relay
        that challenged us: nostr-relay 1.14 refuses the unauthenticated that way."""
        if self.pool._sign is None:
            return False
        prefix = reason_prefix(refusal)
        conn = self.conn
        return prefix == "auth-required" or (
            prefix == "restricted" and before_auth and conn is not None and conn.challenge is not None
        )

    async def _send_event(self, event: Event) -> PublishAnswered:
        conn = self.conn
        if conn is None:
            return PublishAnswered(event.id, False, f"not-connected: {self.last_error or 'relay unreachable'}")
        try:
            frame = conn.publish(event, now=self.pool._clock.now())
        except RelayRefused as exc:
            return PublishAnswered(event.id, False, str(exc).removeprefix(f"{self.url}: "))
        fut: asyncio.Future[PublishAnswered] = asyncio.get_running_loop().create_future()
        waiters = self.publishing.setdefault(event.id, [])
        waiters.append(fut)
        try:
            if not await self.send(frame):
                return PublishAnswered(event.id, False, "not-connected: could not send")
            return await fut
        finally:
            waiters.remove(fut)
            if not waiters:
                del self.publishing[event.id]
                conn.forget_publish(event.id)

    async def stop(self) -> None:
        self.stopping = True
        # Python 3.11 can lose a cancellation that lands as an inner await completes; the
        # ``stopping`` flag ends the loop anyway, and the cancel is repeated until it is done.
        while self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=1)
        ws = self.ws
        self._teardown()
        if ws is not None:
            await _close_quietly(ws)
        await self._set_state(RelayState.CLOSED)


async def _close_quietly(ws: Any) -> None:
    try:
        async with asyncio.timeout(2):
            await ws.close()
    except Exception:
        pass


class RelayPool:
    """Connections to many relays, shared by subscriptions, publishes and fetches (the ``Pool``
    of ``daemon/pool.py``).

    Relays named in ``publish``/``subscribe``/``fetch`` are added on first use and stay until
    ``remove_relay``. Callbacks run in one task per subscription, so a slow or publishing
    callback never stalls a relay's reader. ``auth_timeout`` bounds the wait for the OK of a
    NIP-42 AUTH, which some relays never send.
    """

    def __init__(
        self,
        *,
        sign: Sign | None = None,
        verify: Callable[[Event], Event] = verify_event,
        backoff: Callable[[], Iterator[float]] = default_backoff,
        clock: Clock | None = None,
        connect: Callable[..., Awaitable[Any]] = websockets.connect,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        max_incoming_length: int = DEFAULT_MAX_INCOMING_LENGTH,
        auth_timeout: float = DEFAULT_AUTH_TIMEOUT,
    ):
        self._sign = sign
        self._auth_timeout = auth_timeout
        self._verify = _CachingVerifier(verify)
        self._backoff = backoff
        self._clock: Clock = clock or SystemClock()
        self._connect = connect
        self._log = logger or logging.getLogger("nostr_training.relays")
        self._max_incoming_length = max_incoming_length
        self._relays: dict[str, _Relay] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._closed = False

    # Relays -----------------------------------------------------------------------------------

    def _relay(self, url: str) -> _Relay:
        if self._closed:
            raise RelayError("the relay pool is closed")
        key = normalize_relay_url(url)
        relay = self._relays.get(key)
        if relay is None:
            relay = _Relay(self, key)
            self._relays[key] = relay
            relay.start()
        return relay

    async def add_relay(self, url: str) -> None:
        """Start connecting to ``url`` (no-op when already in the pool)."""
        self._relay(url)

    async def remove_relay(self, url: str) -> None:
        """Disconnect and forget ``url``; subscriptions carry on with their other relays."""
        relay = self._relays.pop(normalize_relay_url(url), None)
        if relay is None:
            return
        for sub in self._subscriptions.values():
            sub.relays.discard(relay.url)
        await relay.stop()

    # Publishing -------------------------------------------------------------------------------

    async def publish(self, event: Event, relays: Sequence[str], timeout: float = 10) -> dict[str, PublishResult]:
        """Send ``event`` to each relay and collect every answer, keyed by the URLs as given.

        Never raises for a relay's failure: a relay that is down answers ``not-connected:``, one
        that is too slow ``timeout:``. An ``auth-required:`` refusal triggers NIP-42 AUTH (when
        the pool has a signer) and one resend.
        """
        urls = list(dict.fromkeys(relays))

        async def one(url: str) -> PublishResult:
            try:
                relay = self._relay(url)
            except Exception as exc:
                return PublishResult(False, f"invalid: {exc}")
            try:
                async with asyncio.timeout(timeout):
                    return await relay.publish(event)
            except TimeoutError:
                return PublishResult(False, f"timeout: no answer within {timeout:g} s")

        results = await asyncio.gather(*(one(url) for url in urls))
        return dict(zip(urls, results, strict=True))

    # Subscriptions ----------------------------------------------------------------------------

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
        """Keep ``filters`` open on ``relays`` under ``key`` until ``unsubscribe(key)``.

        ``on_event(relay, event)`` gets each verified event once across all relays (``relay`` as
        spelled in ``relays``); ``since``
        is asked on every (re)connect for the ``since`` to merge into the filters, so a
        resumed subscription replays only what may have been missed; ``on_eose(relay)``
        follows the stored events of each relay, once per connection. Subscribing again with
        the same key replaces the subscription.
        """
        if not filters:
            raise MalformedEvent("a subscription needs at least one filter", field="filters")
        if key in self._subscriptions:
            await self.unsubscribe(key)
        spelling: dict[str, str] = {}
        for url in relays:
            spelling.setdefault(normalize_relay_url(url), url)
        targets = [self._relay(url) for url in spelling]
        sub = _Subscription(
            key=key,
            filters=tuple(filters),
            relays=set(spelling),
            on_event=on_event,
            since=since,
            on_eose=on_eose,
            seen=_RecentIds(_SEEN_PER_SUBSCRIPTION),
            queue=asyncio.Queue(),
            spelling=spelling,
        )
        sub.task = asyncio.create_task(self._deliver(sub), name=f"subscription {key}")
        self._subscriptions[key] = sub
        for relay in targets:
            await relay.attach(key)

    async def unsubscribe(self, key: str) -> None:
        sub = self._subscriptions.pop(key, None)
        if sub is None:
            return
        for url in sub.relays:
            relay = self._relays.get(url)
            if relay is not None:
                await relay.detach(key)
        if sub.task is not None:
            sub.task.cancel()
            await asyncio.gather(sub.task, return_exceptions=True)

    def _dispatch(self, url: str, group: _Group, event: Event) -> None:
        for key in group.keys:
            sub = self._subscriptions.get(key)
            if sub is not None and matches_any(sub.filters, event) and sub.seen.add(event.id):
                sub.queue.put_nowait((sub.spelling.get(url, url), "event", event))

    def _dispatch_eose(self, url: str, keys: Sequence[str]) -> None:
        for key in keys:
            sub = self._subscriptions.get(key)
            if sub is not None and sub.on_eose is not None:
                sub.queue.put_nowait((sub.spelling.get(url, url), "eose", None))

    async def _deliver(self, sub: _Subscription) -> None:
        while True:
            url, what, event = await sub.queue.get()
            try:
                if event is not None:
                    await sub.on_event(url, event)
                elif sub.on_eose is not None:
                    await sub.on_eose(url)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("subscription %s: %s callback failed for relay %s", sub.key, what, url)

    # Fetching ---------------------------------------------------------------------------------

    async def fetch(self, filters: Sequence[Filter], relays: Sequence[str], timeout: float = 10) -> list[Event]:
        """Stored events matching ``filters`` from every relay, until each sends EOSE (or
        ``timeout``), verified, de-duplicated by id, newest first."""
        if not filters:
            raise MalformedEvent("a fetch needs at least one filter", field="filters")
        found: dict[str, Event] = {}
        targets = [self._relay(url) for url in dict.fromkeys(relays)]
        frozen = tuple(filters)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(relay.fetch(frozen, found) for relay in targets))
        except TimeoutError:
            self._log.info("fetch: timed out after %g s with %d events", timeout, len(found))
        return sorted(found.values(), key=order_key)

    # Status and shutdown ----------------------------------------------------------------------

    def status(self) -> list[RelayStatus]:
        out = []
        for relay in self._relays.values():
            c = relay.counters
            out.append(RelayStatus(
                url=relay.url,
                state=relay.state,
                last_error=relay.last_error,
                since=relay.state_since,
                events_received=c.events_received,
                malformed_dropped=c.malformed_dropped,
                invalid_signature_dropped=c.invalid_signature_dropped,
                unexpected_dropped=c.unexpected_dropped,
                notices=c.notices,
                subscriptions=len(relay.groups),
                limits=relay.information.limitation if relay.information is not None else None,
            ))
        return out

    async def close(self) -> None:
        """Close every connection and stop every subscription task."""
        self._closed = True
        for key in list(self._subscriptions):
            sub = self._subscriptions.pop(key)
            if sub.task is not None:
                sub.task.cancel()
                await asyncio.gather(sub.task, return_exceptions=True)
        relays = list(self._relays.values())
        self._relays.clear()
        await asyncio.gather(*(relay.stop() for relay in relays), return_exceptions=True)

    async def __aenter__(self) -> "RelayPool":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
