"""The daemon's local relay endpoint: NIP-01 over the index, for any Nostr client on the machine.

Clients read lessons and RSVPs from it; events written to it are verified and go through the
durable outbox to the real relays. It speaks NIP-42: a challenge is sent on connect, and gift
wraps (1059, 21059) are served and counted only for their authenticated ``p`` recipient (one
serving rule, ``store.serving.gift_wrap_visible``, decides REQ, COUNT and live events).

This module is the protocol, not the transport: ``daemon/http.py`` carries frames between a
websocket and a ``RelaySession``. Every session's outgoing buffer is bounded in bytes; a client
that stops reading is cut off after ``send_timeout`` instead of growing the daemon's memory, and
stopping the daemon never waits on a client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from .. import kinds
from ..clock import Clock
from ..errors import InvalidEvent, MalformedEvent, PrivacyRefused, StoreError
from ..event import Event, KindClass, verify_event
from ..filters import Filter
from ..nips.nip42 import check_auth
from ..store.base import AddOutcome, Store
from ..store.serving import GIFT_WRAP_KINDS, gift_wrap_visible
from .intake import EventIntake, Verdict, echoed_id, event_of

__all__ = ["LocalRelay", "RelaySession", "RelayCounters", "LOOPBACK_NAMES", "loopback_urls"]

log = logging.getLogger("nostr_training.local_relay")

#: The names this machine answers to on loopback; a Host or Origin naming anything else is a
#: website (DNS rebinding included), and a NIP-42 AUTH for anything else is for another relay.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode

SubmitMany = Callable[[list[Event]], Awaitable[list[Any]]]
#: Sends a run of text frames, in order.
Send = Callable[[list[str]], Awaitable[None]]
#: At most about this many bytes (characters) of frames go to the transport in one write.
_RUN_BYTES = 256 * 1024


def loopback_urls(port: int, scheme: str = "ws") -> frozenset[str]:
    """Every spelling of this endpoint's own URL (with and without a trailing slash)."""
    out = set()
    for name in LOOPBACK_NAMES:
        base = f"{scheme}://{name}:{port}"
        out.update({base, base + "/"})
    return frozenset(out)


def _auth_url(claimed: str) -> str:
    """A claimed relay URL in one spelling: lowercase scheme and host, as NIP-42 compares them."""
    try:
        parts = urlsplit(claimed.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    path = parts.path if parts.path not in ("", "/") else "/"
    return f"{parts.scheme.lower()}://{host.lower()}:{port}{path}" if port else ""


@dataclasses.dataclass
class RelayCounters:
    connections: int = 0
    malformed: int = 0
    events_accepted: int = 0
    events_refused: int = 0
    auths: int = 0
    slow_clients_dropped: int = 0
    checker_failures: int = 0  # the EVENT checker process stopped: checking went back to the loop
    internal_errors: int = 0  # a bug of ours answered with a NOTICE: must stay 0


class _SlowClient(Exception):
    """The client stopped reading: its buffer stayed full for ``send_timeout``."""


def _safe_subid(value: Any) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


class RelaySession:
    """One client connection: its challenge, authenticated keys, subscriptions and send buffer."""

    def __init__(self, relay: "LocalRelay", send: Send, abort: Callable[[], None]):
        self.relay = relay
        self._send = send
        self._abort = abort
        self.challenge = secrets.token_hex(16)
        self.authed: set[str] = set()
        self.subs: dict[str, tuple[Filter, ...]] = {}
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()  # something to send
        self._room = asyncio.Event()  # the buffer has room
        self._room.set()
        self._in_flight = 0  # EVENTs waiting for their commit
        self._drained = asyncio.Event()
        self._drained.set()
        self._answering: set[asyncio.Task[None]] = set()
        self.closed = False

    @property
    def recipients(self) -> frozenset[str]:
        return frozenset(self.authed)

    # Outgoing ------------------------------------------------------------------------------

    def push(self, message: str) -> bool:
        """Queue without waiting; False (and the client is cut off) when the buffer is full."""
        if self.closed:
            return False
        if self._queued_bytes + len(message) > self.relay.max_buffer_bytes and self._queue:
            self.cut_off("buffer full")
            return False
        self._enqueue(message)
        return True

    def _full(self, size: int) -> bool:
        """No room for ``size`` more bytes: this session's buffer, or all sessions' together, is
        at its cap (a session with nothing queued may always send one frame: progress)."""
        if not self._queue:
            return False
        relay = self.relay
        return self._queued_bytes + size > relay.max_buffer_bytes or relay.queued_bytes + size > relay.max_total_buffer_bytes

    async def put(self, message: str) -> None:
        """Queue, waiting for room at most ``send_timeout`` (a stored-event replay)."""
        while not self.closed and self._full(len(message)):
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), self.relay.send_timeout)
            except TimeoutError:
                self.cut_off("did not read for %g s" % self.relay.send_timeout)
        if self.closed:
            raise _SlowClient()
        self._enqueue(message)

    def _enqueue(self, message: str) -> None:
        self._queue.append(message)
        self._queued_bytes += len(message)
        self.relay.queued_bytes += len(message)
        self._ready.set()

    async def pump(self) -> None:
        """Send queued frames until the session closes, what is queued at once in one write (a
        group commit's OKs); a send stuck past ``send_timeout`` cuts the client off."""
        while not self.closed:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            run: list[str] = []
            size = 0
            while self._queue and size < _RUN_BYTES:
                message = self._queue.popleft()
                run.append(message)
                size += len(message)
            self._queued_bytes -= size
            self.relay.queued_bytes -= size
            self._room.set()
            try:
                async with asyncio.timeout(self.relay.send_timeout):
                    await self._send(run)
            except TimeoutError:
                self.cut_off("send timed out")
            except Exception:
                self.close()

    def cut_off(self, why: str) -> None:
        if self.closed:
            return
        self.relay.counters.slow_clients_dropped += 1
        log.info("cut off a local client that stopped reading: %s", why)
        self.close()
        self._abort()

    def close(self) -> None:
        self.closed = True
        self.subs.clear()
        self._queue.clear()
        self.relay.queued_bytes -= self._queued_bytes
        self._queued_bytes = 0
        self._ready.set()
        self._room.set()

    # Incoming ------------------------------------------------------------------------------

    def _notice(self, text: str) -> None:
        self.relay.counters.malformed += 1
        log.info("malformed message from a local client: %s", text)
        self.push(_dumps(["NOTICE", text]))

    async def handle(self, message: str | bytes) -> None:
        """Answer one frame: every frame gets a NIP-01 answer or a NOTICE, never an exception.

        An ``EVENT`` goes to the intake (parsed and verified in batches on the second core);
        its OK follows the commit that holds it.
        """
        if self.closed:
            return
        if type(message) is str and message.startswith('["EVENT",'):
            await self._admit()
            self.relay.intake.check(message, lambda verdict: self._checked(message, verdict))
            return
        await self._answer(message)

    async def _answer(self, message: str | bytes) -> None:
        try:
            await self._handle(message)
        except _SlowClient:
            return
        except StoreError as exc:
            log.error("store error answering a local client: %s", exc)
            self.push(_dumps(["NOTICE", f"error: {exc}"]))
        except (MalformedEvent, InvalidEvent) as exc:
            self._notice(f"invalid: {exc}")
        except Exception as exc:  # a bug of ours: the client gets an answer, the log one line
            if self.closed:
                return  # the daemon stopped under this frame: nothing to answer
            self.relay.counters.internal_errors += 1
            log.error("answering a local client failed: %s: %s", exc.__class__.__name__, exc)
            self.push(_dumps(["NOTICE", "error: the daemon could not answer this message"]))

    async def _handle(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._notice("invalid: message is not JSON")
            return
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            self._notice("invalid: message is not a JSON array starting with a type")
            return
        verb = data[0]
        if verb == "REQ":
            await self._req(data)
        elif verb == "EVENT":
            await self._event(data)
        elif verb == "CLOSE":
            subid = _safe_subid(data[1]) if len(data) == 2 else None
            if subid is None:
                self._notice("invalid: CLOSE takes one subscription id")
            else:
                self.subs.pop(subid, None)
        elif verb == "AUTH":
            self._auth(data)
        elif verb == "COUNT":
            await self._count(data)
        else:
            self._notice("invalid: unknown message type")

    def _filters(self, data: list[Any]) -> tuple[str, tuple[Filter, ...]] | None:
        subid = _safe_subid(data[1]) if len(data) > 1 else None
        if subid is None:
            self._notice("invalid: subscription id must be a string of 1 to 64 characters")
            return None
        try:
            filters = tuple(Filter.from_dict(f) for f in data[2:])
        except MalformedEvent as exc:
            self.push(_dumps(["CLOSED", subid, f"invalid: {exc}"]))
            return None
        if not filters:
            self.push(_dumps(["CLOSED", subid, "invalid: a REQ needs at least one filter"]))
            return None
        return subid, filters

    def _asks_for_wraps_unauthenticated(self, subid: str, filters: tuple[Filter, ...]) -> bool:
        """A filter naming gift-wrap kinds before any AUTH is told to authenticate (clients
        such as ours and nostr-sdk answer that with AUTH and ask again)."""
        if self.authed or not any(f.kinds is not None and f.kinds & GIFT_WRAP_KINDS for f in filters):
            return False
        self.push(_dumps(["CLOSED", subid, "auth-required: gift wraps are served only to their authenticated recipient"]))
        return True

    async def _req(self, data: list[Any]) -> None:
        parsed = self._filters(data)
        if parsed is None:
            return
        subid, filters = parsed
        if self._asks_for_wraps_unauthenticated(subid, filters):
            return
        relay = self.relay
        if subid not in self.subs and len(self.subs) >= relay.max_subscriptions:
            self.push(_dumps(["CLOSED", subid, f"rate-limited: at most {relay.max_subscriptions} subscriptions"]))
            return
        self.subs[subid] = filters
        prefix = '["EVENT",' + _dumps(subid) + ","
        sent: set[str] = set()
        for f in filters:
            limit = min(f.limit if f.limit is not None else relay.max_limit, relay.max_limit)
            async for ev in self._pages(f, limit):
                if ev.id not in sent:
                    sent.add(ev.id)
                    await self.put(prefix + ev.to_json() + "]")
        await self.put(_dumps(["EOSE", subid]))

    async def _pages(self, f: Filter, limit: int) -> AsyncIterator[Event]:
        """A filter's stored events, newest first, read a page at a time (keyset on created_at,
        then id), so a large replay to a slow client holds one page in memory, not all of it."""
        relay = self.relay
        until = f.until
        seen_at_until: set[str] = set()
        page = relay.page_size
        left = limit
        while left > 0:
            if self.closed:
                raise _SlowClient()
            want = min(page, left + len(seen_at_until))
            async with relay.replays:  # held while reading a page, never while waiting on the client
                if self.closed:
                    raise _SlowClient()
                got = await relay.store.query(
                    [dataclasses.replace(f, until=until, limit=want)], now=relay.clock.now(), recipients=self.recipients
                )
            fresh = [e for e in got if not (e.created_at == until and e.id in seen_at_until)]
            for ev in fresh[:left]:
                yield ev
            left -= min(len(fresh), left)
            if len(got) < want:
                return
            last = got[-1].created_at
            if not fresh:  # a whole page at one second, all sent: ask for more at once
                page *= 2
                continue
            seen_at_until = {e.id for e in got if e.created_at == last} | (seen_at_until if last == until else set())
            until = last

    async def _count(self, data: list[Any]) -> None:
        parsed = self._filters(data)
        if parsed is None:
            return
        subid, filters = parsed
        if self._asks_for_wraps_unauthenticated(subid, filters):
            return
        n = await self.relay.store.count(list(filters), now=self.relay.clock.now(), recipients=self.recipients)
        self.push(_dumps(["COUNT", subid, {"count": n}]))

    def _ok(self, event_id: str, ok: bool, message: str) -> None:
        if ok and not message:  # the common answer, without the encoder (the id is 64 hex)
            self.push(f'["OK","{event_id}",true,""]')
        else:
            self.push(_dumps(["OK", event_id, ok, message]))

    async def _admit(self) -> None:
        """Back-pressure: past ``max_in_flight`` unanswered EVENTs, this client waits for its
        commits to catch up before the next one is read."""
        if self._in_flight >= self.relay.max_in_flight:
            await self._drained.wait()
        self._in_flight += 1
        self._drained.clear()

    def _answered(self) -> None:
        self._in_flight -= 1
        if self._in_flight < self.relay.max_in_flight:
            self._drained.set()

    def _checked(self, message: str, verdict: Verdict) -> None:
        """The intake's verdict on an EVENT: commit it (also when the client left meanwhile:
        only its OK is lost), refuse it, or answer the frame as any other."""
        try:
            if verdict is not None and verdict[0]:
                self._commit(event_of(verdict[1]))
                return
            self._answered()
            if self.closed:
                return
            if verdict is None:  # not a plain EVENT: answered as any other frame
                task = asyncio.create_task(self._answer(message))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
            else:
                self.relay.counters.events_refused += 1
                raw_id, reason = verdict[1]
                self._ok(raw_id, False, f"invalid: {reason}")
        except Exception as exc:  # a bug of ours: this EVENT only, never the rest of the batch
            self._failed(exc)

    async def _event(self, data: list[Any]) -> None:
        relay = self.relay
        raw = data[1] if len(data) == 2 else None
        raw_id = echoed_id(raw.get("id")) if isinstance(raw, dict) else ""
        try:
            event = verify_event(Event.from_dict(raw))
        except (MalformedEvent, InvalidEvent) as exc:
            relay.counters.events_refused += 1
            self._ok(raw_id, False, f"invalid: {exc}")
            return
        await self._admit()
        self._commit(event)

    def _commit(self, event: Event) -> None:
        if event.kind == kinds.AUTH:
            self._answered()
            self._ok(event.id, False, "invalid: AUTH events are sent with AUTH, not EVENT")
            return
        self.relay.committer.submit(event, lambda result: self._committed(event, result))

    def _failed(self, exc: Exception) -> None:
        self.relay.counters.internal_errors += 1
        log.error("answering a local client's EVENT failed: %s: %s", exc.__class__.__name__, exc)

    def _committed(self, event: Event, result: Any) -> None:
        try:
            self._answer_commit(event, result)
        except Exception as exc:  # a bug of ours: this EVENT only, never the rest of the batch
            self._failed(exc)

    def _answer_commit(self, event: Event, result: Any) -> None:
        """Answer an EVENT once the group commit that holds it is done (OK only after commit)."""
        relay = self.relay
        self._answered()
        if isinstance(result, MalformedEvent):
            relay.counters.events_refused += 1
            self._ok(event.id, False, f"invalid: {result}")
            return
        if isinstance(result, PrivacyRefused):
            relay.counters.events_refused += 1
            self._ok(event.id, False, f"blocked: {result}")
            return
        if isinstance(result, Exception):
            relay.counters.events_refused += 1
            self._ok(event.id, False, f"error: {result}")
            return
        submission = result
        relay.counters.events_accepted += 1
        outcome = submission.outcome
        if submission.refusals and not submission.relays and not submission.unresolved:
            self._ok(event.id, False, submission.refusals[0][1])
        elif outcome is AddOutcome.DUPLICATE:
            self._ok(event.id, True, "duplicate: already have this event")
        else:
            self._ok(event.id, True, "")
        if outcome in (AddOutcome.STORED, AddOutcome.EPHEMERAL) or event.kind_class is KindClass.EPHEMERAL:
            relay.broadcast(event)

    def _auth(self, data: list[Any]) -> None:
        relay = self.relay
        raw = data[1] if len(data) == 2 else None
        raw_id = echoed_id(raw.get("id")) if isinstance(raw, dict) else ""
        try:
            event = Event.from_dict(raw)
            claimed = _auth_url(event.tag_value("relay") or "")
            if claimed not in relay.auth_urls:
                raise MalformedEvent("relay: this AUTH is for another relay", field="relay", event_id=event.id)
            pubkey = check_auth(event, challenge=self.challenge, relay_url=claimed, now=relay.clock.now())
        except (MalformedEvent, InvalidEvent) as exc:
            self._ok(raw_id, False, f"invalid: {exc}")
            return
        self.authed.add(pubkey)
        relay.counters.auths += 1
        self._ok(event.id, True, "")

    # Live ----------------------------------------------------------------------------------

    def offer(self, event: Event) -> None:
        """Send a newly indexed event to each open subscription it matches (NIP-01)."""
        if not gift_wrap_visible(event, self.recipients):
            return
        for subid, filters in list(self.subs.items()):
            if any(f.matches(event) for f in filters):
                self.push('["EVENT",' + _dumps(subid) + "," + event.to_json() + "]")


class GroupCommitter:
    """Commits the EVENTs of every connection together: whatever arrived while the previous
    commit ran goes into the next one (one transaction for up to ``max_batch`` events).

    Each EVENT's callback gets its result when its commit is done (a ``Submission``, or the
    error that refused it): the ``OK`` a client gets always follows the commit that holds its
    event. Events left when the committer stops get no callback: they were not committed.
    """

    def __init__(self, submit_many: SubmitMany, *, max_batch: int = 1000, linger: float = 0.002):
        self.submit_many = submit_many
        self.max_batch = max_batch
        self.linger = linger
        self.batches = 0
        self.events = 0
        self._pending: list[tuple[Event, Callable[[Any], None]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, event: Event, on_result: Callable[[Any], None]) -> None:
        self._pending.append((event, on_result))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group commit")

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let the other connections' frames of this moment join
            if len(self._pending) < self.max_batch // 10:
                await asyncio.sleep(self.linger)  # a little longer under load: fewer, larger commits
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            results: list[Any]
            try:
                results = await self.submit_many([event for event, _ in batch])
            except Exception as exc:  # the store failed: every event of the batch gets error:
                results = [exc] * len(batch)
            else:
                self.batches += 1
                self.events += len(batch)
            for (_, on_result), result in zip(batch, results, strict=True):
                try:
                    on_result(result)
                except Exception:  # the callbacks catch their own errors; this keeps the committer alive
                    log.exception("a group commit callback failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pending = []


class LocalRelay:
    """Serves the index over NIP-01 and hands written events to ``submit_many`` (the outbox)."""

    def __init__(
        self,
        store: Store,
        *,
        submit_many: SubmitMany,
        clock: Clock,
        info: dict[str, Any] | None = None,
        max_message_bytes: int = 512 * 1024,
        max_subscriptions: int = 64,
        max_limit: int = 5000,
        max_buffer_bytes: int = 512 * 1024,
        max_total_buffer_bytes: int = 32 * 1024 * 1024,
        send_timeout: float = 10.0,
        page_size: int = 50,
        concurrent_replays: int = 4,
        max_in_flight: int = 1000,
    ):
        self.store = store
        self.counters = RelayCounters()
        self.intake = EventIntake(on_failure=self._checker_failed)
        self.committer = GroupCommitter(submit_many)
        self.clock = clock
        self.extra_info = info or {}
        self.max_message_bytes = max_message_bytes
        self.max_subscriptions = max_subscriptions
        self.max_limit = max_limit
        self.max_buffer_bytes = max_buffer_bytes
        #: All sessions' outgoing buffers together: the daemon's memory for slow clients is
        #: bounded by this, however many connect.
        self.max_total_buffer_bytes = max_total_buffer_bytes
        self.queued_bytes = 0
        self.send_timeout = send_timeout
        self.page_size = page_size
        self.max_in_flight = max_in_flight
        #: Page reads of stored-event replays run a few at a time (each session then holds one page).
        self.replays = asyncio.Semaphore(concurrent_replays)
        self.sessions: set[RelaySession] = set()
        self.auth_urls: frozenset[str] = frozenset()

    def _checker_failed(self) -> None:
        self.counters.checker_failures += 1

    def bind(self, port: int) -> None:
        """Learn the port we serve on: NIP-42 AUTH is accepted only for this endpoint's URLs."""
        self.auth_urls = frozenset(_auth_url(u) for u in loopback_urls(port))

    def information(self) -> dict[str, Any]:
        """The NIP-11 document; it names no user, since any local process may read it."""
        doc = {
            "name": "nostr-training local relay",
            "description": "The nostr-training daemon's index of lessons, RSVPs and the user's events.",
            "software": "nostr-training",
            "supported_nips": [1, 9, 11, 17, 40, 42, 45, 59, 65],
            "limitation": {
                "max_message_length": self.max_message_bytes,
                "max_subscriptions": self.max_subscriptions,
                "max_subid_length": 64,
                "max_limit": self.max_limit,
                "auth_required": False,
                "restricted_writes": False,
            },
        }
        doc.update(self.extra_info)
        return doc

    def open_session(self, send: Send, abort: Callable[[], None]) -> RelaySession:
        session = RelaySession(self, send, abort)
        self.sessions.add(session)
        self.counters.connections += 1
        session.push(_dumps(["AUTH", session.challenge]))
        return session

    def close_session(self, session: RelaySession) -> None:
        session.close()
        self.sessions.discard(session)

    async def stop(self) -> None:
        """Stop checking and committing; EVENTs not yet committed get no OK."""
        await self.intake.stop()
        await self.committer.stop()

    def close_all(self) -> None:
        """Cut every client off at once (the daemon is stopping and waits for none of them).
        EVENTs of theirs still waiting for a commit get no OK: they were not acknowledged."""
        for session in list(self.sessions):
            session.close()
            session._abort()
        self.sessions.clear()

    def broadcast(self, event: Event) -> None:
        """Send a newly indexed event to every open subscription it matches."""
        for session in list(self.sessions):
            session.offer(event)
