"""The daemon's one local server (aiohttp): the NIP-01 endpoint, NIP-11, and the control API.

- ``GET /`` with a websocket upgrade: the local relay (``local_relay.RelaySession`` per client);
- ``GET /`` with ``Accept: application/nostr+json``: the NIP-11 document;
- ``/api/...``: the control API the CLI (and later the web view) drives, behind the per-start
  secret that only the user can read in the runtime file (``Authorization: Bearer <token>``).

Every request must name this endpoint exactly: ``Host`` is ``127.0.0.1``, ``localhost`` or
``[::1]`` with our port, and an ``Origin``, when sent, is ``http://`` one of those with our port.
Anything else is a website reaching in (DNS rebinding included) and gets 403. There is no CORS.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import ConfigError, MalformedEvent, NostrTrainingError, NotFound
from ..nips.nip11 import ACCEPT as NIP11_ACCEPT
from .local_relay import LOOPBACK_NAMES, LocalRelay

__all__ = ["HttpServer", "Route", "host_allowed", "origin_allowed", "json_error"]

log = logging.getLogger("nostr_training.http")


class _OneLineHttpErrors(logging.Filter):
    """aiohttp logs a malformed request (a duplicate Host, a bad request line) with a traceback;
    it is a client's mistake, not ours: one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"refused a malformed HTTP request: {exc.__class__.__name__}: {str(exc)[:200]}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("aiohttp.server").addFilter(_OneLineHttpErrors())

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _name_and_port(text: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit("//" + text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if host is None or parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return (f"[{host}]" if ":" in host else host.lower()), port


def host_allowed(host: str | None, port: int) -> bool:
    """Exactly a loopback name with our port (a missing Host is a local non-browser client)."""
    if host is None:
        return True
    parsed = _name_and_port(host.strip())
    return parsed is not None and parsed[0] in LOOPBACK_NAMES and parsed[1] == port


def origin_allowed(origin: str | None, port: int) -> bool:
    """No Origin (a local program), or exactly ``http://<loopback name>:<port>`` (our own page)."""
    if origin is None:
        return True
    text = origin.strip()
    if not text.startswith("http://"):
        return False
    parsed = _name_and_port(text[len("http://"):])
    return parsed is not None and parsed[0] in LOOPBACK_NAMES and parsed[1] == port


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})


class Route:
    """One control-API route: method, path under ``/api``, and a handler taking the parsed JSON
    body (or query) and returning a JSON value; library errors become 4xx answers."""

    def __init__(self, method: str, path: str, handler: Callable[[dict[str, Any]], Awaitable[Any]]):
        self.method = method
        self.path = path
        self.handler = handler


_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (MalformedEvent, 400),
    (ConfigError, 409),
    (NostrTrainingError, 422),
)


#: A run of frames is written straight to the socket while less than this is buffered for it.
_SEND_DIRECT_BELOW = 64 * 1024


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented RFC 6455 text frame, as a server sends it."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


class HttpServer:
    """The aiohttp application, its runner and site, bound to loopback."""

    def __init__(self, relay: LocalRelay, *, host: str, port: int, token: str, max_body: int = 16 * 1024 * 1024):
        self.relay = relay
        self.host = host
        self.port = port
        self.token = token
        self._routes: list[Route] = []
        self._app = web.Application(middlewares=[self._guard], client_max_size=max_body)
        self._app.router.add_get("/", self._root)
        self._runner: web.AppRunner | None = None
        self._websockets: set[web.WebSocketResponse] = set()

    def add_route(self, route: Route) -> None:
        """Register a control-API route (before ``start``)."""
        self._routes.append(route)
        self._app.router.add_route(route.method, "/api" + route.path, self._wrap(route))

    def add_raw(self, method: str, path: str, handler: Handler) -> None:
        """Register a plain aiohttp handler (web pages, webhooks, feeds), behind the same checks."""
        self._app.router.add_route(method, path, handler)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def http_url(self) -> str:
        return "http" + self.url[2:]

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.relay.bind(self.port)
        log.info("local endpoint listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Cut every client off first, so shutting down never waits on one."""
        self.relay.close_all()
        await self.relay.stop()
        for ws in list(self._websockets):
            transport = ws._req.transport if ws._req is not None else None  # noqa: SLF001
            if transport is not None:
                transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Checks --------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.headers.get("Host"), self.port):
            log.warning("refused a request for a foreign host", extra={"host": request.headers.get("Host", "")[:100]})
            return json_error(403, "forbidden host")
        if not origin_allowed(request.headers.get("Origin"), self.port):
            log.warning("refused a request from a foreign origin", extra={"origin": request.headers.get("Origin", "")[:100]})
            return json_error(403, "forbidden origin")
        if request.path.startswith("/api/") or request.path == "/api":
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return json_error(401, "missing or wrong token")
        return await handler(request)

    def _wrap(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
                try:
                    body = await request.json(loads=json.loads)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return json_error(400, "the body is not JSON")
                if not isinstance(body, dict):
                    return json_error(400, "the body must be a JSON object")
            else:
                body = dict(request.query)
            try:
                result = await route.handler(body)
            except NostrTrainingError as exc:
                status = next(code for kind, code in _ERROR_STATUS if isinstance(exc, kind))
                return json_error(status, str(exc))
            return web.json_response(result, headers={"Cache-Control": "no-store"})

        return handle

    # NIP-01 and NIP-11 ---------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if NIP11_ACCEPT in request.headers.get("Accept", ""):
                return web.Response(
                    body=json.dumps(self.relay.information()).encode(), content_type=NIP11_ACCEPT,
                    headers={"Cache-Control": "no-store"},
                )
            return web.Response(text="nostr-training local relay: connect with a Nostr client (NIP-01).\n")
        ws = web.WebSocketResponse(
            max_msg_size=self.relay.max_message_bytes, compress=False, heartbeat=30.0, timeout=2.0
        )
        await ws.prepare(request)
        self._websockets.add(ws)
        transport = request.transport

        def abort() -> None:
            if transport is not None:
                transport.abort()

        async def send(run: list[str]) -> None:
            """A run of text frames in one write to the socket, unless its buffer is already
            full (then frame by frame, waiting for the client as aiohttp does)."""
            if transport is None or transport.is_closing() or ws.closed:
                raise ConnectionResetError("the client is gone")
            if len(run) == 1 or transport.get_write_buffer_size() > _SEND_DIRECT_BELOW:
                for message in run:
                    await ws.send_str(message)
                return
            transport.writelines([text_frame(message.encode("utf-8")) for message in run])

        session = self.relay.open_session(send, abort)
        pump = asyncio.create_task(session.pump(), name="local relay writer")
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await session.handle(message.data)
                elif message.type == WSMsgType.BINARY:
                    await session.handle(message.data)
                elif message.type == WSMsgType.ERROR:
                    break
                if session.closed:
                    break
        except ConnectionError:
            pass
        finally:
            self.relay.close_session(session)
            pump.cancel()
            self._websockets.discard(ws)
            await asyncio.gather(pump, return_exceptions=True)
        return ws
