"""The daemon's local relay endpoint: NIP-01 from the index on ws://127.0.0.1, plus control.

Any Nostr client on the machine can read lessons and RSVPs from it; events written to it are
verified and go through the durable outbox to the real relays. It speaks NIP-42: a challenge is
sent on connect, and gift wraps (1059) are served only to their authenticated ``p`` recipient.

HTTP on the same port: ``Accept: application/nostr+json`` gets the NIP-11 document, and
``GET /status`` with ``Authorization: Bearer <token>`` (the token is in the runtime file, which
only the user can read) gets the daemon's status as JSON. A request from a browser page that is
not itself on loopback (a non-loopback ``Origin`` or ``Host``) is refused, so a website cannot
drive the daemon.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import http
import json
import logging
import secrets
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import kinds
from ..clock import Clock
from ..errors import InvalidEvent, MalformedEvent, NostrTrainingError
from ..event import Event, KindClass, verify_event
from ..filters import Filter
from ..nips.nip11 import ACCEPT as NIP11_ACCEPT
from ..nips.nip42 import check_auth
from ..store.base import AddOutcome, Store

__all__ = ["LocalRelay", "LOOPBACK_HOSTS", "is_loopback_origin"]

log = logging.getLogger("nostr_training.local_relay")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_GIFT_WRAPS = frozenset({kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def is_loopback_origin(origin: str) -> bool:
    """An ``Origin`` (or ``Host``) naming this machine; anything else is a website."""
    text = origin.strip()
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return False
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


Submit = Callable[[Event], Awaitable[Any]]
StatusSource = Callable[[], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class RelayCounters:
    connections: int = 0
    malformed: int = 0
    events_accepted: int = 0
    events_refused: int = 0
    auths: int = 0
    slow_clients_dropped: int = 0


class _Client:
    """One websocket connection: its challenge, authenticated keys, subscriptions, send queue."""

    def __init__(self, ws: ServerConnection, queue_size: int):
        self.ws = ws
        self.challenge = secrets.token_hex(16)
        self.authed: set[str] = set()
        self.subs: dict[str, tuple[Filter, ...]] = {}
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)

    def may_see(self, event: Event) -> bool:
        if event.kind not in _GIFT_WRAPS:
            return True
        return any(p in self.authed for p in event.tag_values("p"))

    def push(self, message: str) -> bool:
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            return False


class LocalRelay:
    """Serves the index over NIP-01 and hands written events to ``submit`` (the outbox)."""

    def __init__(
        self,
        store: Store,
        *,
        submit: Submit,
        clock: Clock,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        status: StatusSource | None = None,
        info: dict[str, Any] | None = None,
        max_message_bytes: int = 512 * 1024,
        max_subscriptions: int = 64,
        max_limit: int = 5000,
        queue_size: int = 10000,
    ):
        self.store = store
        self.submit = submit
        self.clock = clock
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.status_source = status
        self.extra_info = info or {}
        self.max_message_bytes = max_message_bytes
        self.max_subscriptions = max_subscriptions
        self.max_limit = max_limit
        self.queue_size = queue_size
        self.counters = RelayCounters()
        self._clients: set[_Client] = set()
        self._server: Server | None = None

    # Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._connection,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=self.max_message_bytes,
            server_header="nostr-training",
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("local relay listening", extra={"url": self.url})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

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

    # HTTP ----------------------------------------------------------------------------------

    @staticmethod
    def _json_response(status: http.HTTPStatus, body: Any, content_type: str = "application/json") -> Response:
        data = json.dumps(body).encode()
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
        return Response(status.value, status.phrase, headers, data)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and not is_loopback_origin(origin):
            log.warning("refused a request from a non-loopback origin", extra={"origin": origin[:100]})
            return self._json_response(http.HTTPStatus.FORBIDDEN, {"error": "forbidden origin"})
        host = request.headers.get("Host")
        if host is not None and not is_loopback_origin(host) and self.host in LOOPBACK_HOSTS:
            return self._json_response(http.HTTPStatus.FORBIDDEN, {"error": "forbidden host"})
        path = request.path.split("?", 1)[0]
        if path == "/status":
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return self._json_response(http.HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong token"})
            body = await self.status_source() if self.status_source else {}
            return self._json_response(http.HTTPStatus.OK, body)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not upgrade and NIP11_ACCEPT in request.headers.get("Accept", ""):
            return self._json_response(http.HTTPStatus.OK, self.information(), NIP11_ACCEPT)
        return None

    # Websocket -----------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        client = _Client(ws, self.queue_size)
        self._clients.add(client)
        self.counters.connections += 1
        writer = asyncio.create_task(self._writer(client))
        client.push(_dumps(["AUTH", client.challenge]))
        try:
            async for message in ws:
                if not await self._handle(client, message):
                    break
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, ConnectionClosed):
                pass

    async def _writer(self, client: _Client) -> None:
        while True:
            message = await client.queue.get()
            if message is None:
                return
            await client.ws.send(message)

    def _notice(self, client: _Client, text: str) -> None:
        self.counters.malformed += 1
        log.info("malformed message from a local client: %s", text)
        client.push(_dumps(["NOTICE", text]))

    async def _handle(self, client: _Client, message: str | bytes) -> bool:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._notice(client, "invalid: message is not JSON")
            return True
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            self._notice(client, "invalid: message is not a JSON array starting with a type")
            return True
        verb = data[0]
        if verb == "REQ":
            await self._req(client, data)
        elif verb == "EVENT":
            await self._event(client, data)
        elif verb == "CLOSE":
            if len(data) == 2 and isinstance(data[1], str):
                client.subs.pop(data[1], None)
            else:
                self._notice(client, "invalid: CLOSE takes one subscription id")
        elif verb == "AUTH":
            await self._auth(client, data)
        elif verb == "COUNT":
            await self._count(client, data)
        else:
            self._notice(client, f"invalid: unknown message type {verb[:20]!r}")
        return True

    def _filters(self, client: _Client, data: list[Any]) -> tuple[str, tuple[Filter, ...]] | None:
        subid = data[1] if len(data) > 1 else None
        if not isinstance(subid, str) or not 1 <= len(subid) <= 64:
            self._notice(client, "invalid: subscription id must be a string of 1 to 64 characters")
            return None
        try:
            filters = tuple(Filter.from_dict(f) for f in data[2:])
        except MalformedEvent as exc:
            client.push(_dumps(["CLOSED", subid, f"invalid: {exc}"]))
            return None
        if not filters:
            client.push(_dumps(["CLOSED", subid, "invalid: a REQ needs at least one filter"]))
            return None
        return subid, filters

    def _wants_gift_wraps_unauthenticated(self, client: _Client, filters: tuple[Filter, ...]) -> bool:
        if client.authed:
            return False
        return any(f.kinds is not None and f.kinds & _GIFT_WRAPS for f in filters)

    async def _req(self, client: _Client, data: list[Any]) -> None:
        parsed = self._filters(client, data)
        if parsed is None:
            return
        subid, filters = parsed
        if self._wants_gift_wraps_unauthenticated(client, filters):
            client.push(_dumps(["CLOSED", subid, "auth-required: gift wraps are served only to their authenticated recipient"]))
            return
        if subid not in client.subs and len(client.subs) >= self.max_subscriptions:
            client.push(_dumps(["CLOSED", subid, f"rate-limited: at most {self.max_subscriptions} subscriptions"]))
            return
        client.subs[subid] = filters
        clamped = [dataclasses.replace(f, limit=min(f.limit if f.limit is not None else self.max_limit, self.max_limit)) for f in filters]
        events = await self.store.query(clamped, now=self.clock.now())
        prefix = '["EVENT",' + _dumps(subid) + ","
        for ev in events:
            if client.may_see(ev):
                await client.queue.put(prefix + ev.to_json() + "]")
        await client.queue.put(_dumps(["EOSE", subid]))

    async def _count(self, client: _Client, data: list[Any]) -> None:
        parsed = self._filters(client, data)
        if parsed is None:
            return
        subid, filters = parsed
        if self._wants_gift_wraps_unauthenticated(client, filters):
            client.push(_dumps(["CLOSED", subid, "auth-required: gift wraps are counted only for their recipient"]))
            return
        n = await self.store.count(list(filters), now=self.clock.now())
        client.push(_dumps(["COUNT", subid, {"count": n}]))

    def _ok(self, client: _Client, event_id: str, ok: bool, message: str) -> None:
        client.push(_dumps(["OK", event_id, ok, message]))

    async def _event(self, client: _Client, data: list[Any]) -> None:
        raw = data[1] if len(data) == 2 else None
        raw_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
        try:
            event = verify_event(Event.from_dict(raw))
        except (MalformedEvent, InvalidEvent) as exc:
            self.counters.events_refused += 1
            self._ok(client, raw_id, False, f"invalid: {exc}")
            return
        if event.kind == kinds.AUTH:
            self._ok(client, event.id, False, "invalid: AUTH events are sent with AUTH, not EVENT")
            return
        try:
            submission = await self.submit(event)
        except NostrTrainingError as exc:
            self.counters.events_refused += 1
            prefix = "invalid" if isinstance(exc, MalformedEvent) else "error"
            self._ok(client, event.id, False, f"{prefix}: {exc}")
            return
        self.counters.events_accepted += 1
        outcome = getattr(submission, "outcome", None)
        relays = getattr(submission, "relays", ())
        refusals = getattr(submission, "refusals", ())
        if refusals and not relays:
            self._ok(client, event.id, False, refusals[0][1])
        elif outcome is AddOutcome.DUPLICATE:
            self._ok(client, event.id, True, "duplicate: already have this event")
        else:
            self._ok(client, event.id, True, "")
        if outcome in (AddOutcome.STORED, AddOutcome.EPHEMERAL) or event.kind_class is KindClass.EPHEMERAL:
            self.broadcast(event)

    async def _auth(self, client: _Client, data: list[Any]) -> None:
        raw = data[1] if len(data) == 2 else None
        raw_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
        try:
            event = Event.from_dict(raw)
            # On loopback, 127.0.0.1, localhost and ::1 all name this endpoint.
            claimed = event.tag_value("relay") or ""
            relay_url = claimed if self.host in LOOPBACK_HOSTS and is_loopback_origin(claimed) else self.url
            pubkey = check_auth(event, challenge=client.challenge, relay_url=relay_url, now=self.clock.now())
        except (MalformedEvent, InvalidEvent) as exc:
            self._ok(client, raw_id, False, f"invalid: {exc}")
            return
        client.authed.add(pubkey)
        self.counters.auths += 1
        self._ok(client, event.id, True, "")

    # Live ----------------------------------------------------------------------------------

    def broadcast(self, event: Event) -> None:
        """Send a newly indexed event to every open subscription it matches."""
        for client in list(self._clients):
            if not client.may_see(event):
                continue
            for subid, filters in client.subs.items():
                if any(f.matches(event) for f in filters):
                    if not client.push('["EVENT",' + _dumps(subid) + "," + event.to_json() + "]"):
                        self.counters.slow_clients_dropped += 1
                        client.subs.clear()
                        asyncio.ensure_future(client.ws.close(1008, "client too slow"))
                    break
