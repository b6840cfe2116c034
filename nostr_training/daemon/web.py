"""The web view on the daemon's one server: learner, instructor, course and certificate pages.

``raw_routes(daemon)`` returns the page routes (registered with the control API's raw routes,
before the server starts); ``[web] enabled = false`` in config.toml turns them all off. Every
route but the login needs the session cookie (``web.security``); every POST also needs the
session's CSRF token and an exact same-origin ``Origin``. Live parts (the learner's countdown
and join link, the host's waiting room) update through server-sent events: ``WebHub`` is told
of every event the daemon indexes (the follows' ``on_indexed`` hook, chained) and of what the
pages themselves publish, and each stream also wakes at the lesson's next moment on the
daemon's clock (start, join window, closing); the browser then fetches the fresh fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from ..errors import MalformedEvent, NostrTrainingError, NotFound
from ..event import Event
from ..services import live
from ..services.recordings import publish_recording, record_progress
from ..services.rsvp import rsvp_list, rsvp_to_lesson
from ..web import pages
from ..web.security import SECURITY_HEADERS, SessionBook, WebSession, cookie_name
from .http import Handler, origin_allowed

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["WebHub", "WebView", "enabled", "raw_routes"]

log = logging.getLogger("nostr_training.web")

#: How long an idle event stream waits before a keep-alive comment (transport, not domain time).
KEEPALIVE_SECONDS = 15.0
_STATIC_TYPES = {".css": "text/css", ".js": "application/javascript", ".svg": "image/svg+xml"}
PageHandler = Callable[[web.Request, WebSession], Awaitable[web.StreamResponse]]


def enabled(config: Any) -> bool:
    """``[web] enabled`` (default true)."""
    section = (getattr(config, "extra", {}) or {}).get("web", {}) or {}
    value = section.get("enabled", True) if isinstance(section, dict) else True
    return bool(value)


class WebHub:
    """A small pub/sub: each open event stream gets a queue of "something changed" signals."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str]] = set()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._queues.discard(queue)

    def publish(self, topic: str) -> None:
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):  # a full queue already says "refresh"
                queue.put_nowait(topic)

    def on_event(self, event: Event) -> None:
        """An indexed event: its lesson and room coordinates, the people it names (a gift-wrapped
        room key names only its recipient) and its author are the topics."""
        for topic in {*event.tag_values("a"), *event.tag_values("p"), event.pubkey}:
            self.publish(topic)

    def __len__(self) -> int:
        return len(self._queues)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nostr_training.web", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


class WebView:
    """The page handlers of one daemon, with its sessions and its hub."""

    def __init__(self, daemon: "Daemon"):
        assert daemon.server is not None
        self.daemon = daemon
        self.sessions = SessionBook(daemon.server.token)
        self.hub = WebHub()
        self.env = _environment()
        self.counters = {"logins": 0, "refused": 0, "streams": 0}
        follows = daemon.follows
        if follows is not None:
            previous = follows.on_indexed

            def on_indexed(event: Event) -> None:
                if previous is not None:
                    previous(event)
                self.hub.on_event(event)

            follows.on_indexed = on_indexed

    @property
    def ctx(self) -> Any:
        return self.daemon.services

    @property
    def cookie(self) -> str:
        assert self.daemon.server is not None
        return cookie_name(self.daemon.server.port)

    # Plumbing ------------------------------------------------------------------------------

    def _secure(self, response: web.StreamResponse) -> web.StreamResponse:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _refuse(self, status: int, message: str) -> web.StreamResponse:
        self.counters["refused"] += 1
        return self._secure(web.Response(status=status, text=message + "\n", content_type="text/plain"))

    def page(self, handler: PageHandler, *, post: bool = False) -> Handler:
        """Wrap a handler: cookie session required; on POST, exact Origin and CSRF token too."""

        async def handle(request: web.Request) -> web.StreamResponse:
            session = self.sessions.find(request.cookies.get(self.cookie))
            if session is None:
                return self._refuse(401, "not logged in: open the link `nostr-training open` prints")
            if post:
                origin = request.headers.get("Origin")
                assert self.daemon.server is not None
                if origin is None or not origin_allowed(origin, self.daemon.server.port):
                    return self._refuse(403, "forbidden origin")
                given = request.headers.get("X-CSRF-Token")
                if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    form = await request.post()
                    value = form.get("csrf")
                    given = value if isinstance(value, str) else None
                if not self.sessions.csrf_ok(session, given):
                    return self._refuse(403, "missing or wrong CSRF token")
            try:
                response = await handler(request, session)
            except NotFound as exc:
                return self._secure(self.render("error.html", session, status=404, message=str(exc)))
            except NostrTrainingError as exc:
                return self._secure(self.render("error.html", session, status=422, message=str(exc)))
            except web.HTTPException:
                raise
            except Exception:
                log.exception("web page %s failed", request.path)
                return self._refuse(500, "the daemon failed to answer this page (see its log)")
            return self._secure(response)

        return handle

    def render(self, template: str, session: WebSession, *, status: int = 200, **context: Any) -> web.Response:
        html = self.env.get_template(template).render(csrf=session.csrf, **context)
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")

    @staticmethod
    def _lesson_ref(request: web.Request, source: Any = None) -> str:
        value = (source or request.query).get("l")
        if not isinstance(value, str) or not value:
            raise MalformedEvent("which lesson? (?l=<lesson coordinate>)", field="l")
        return value

    def _back(self, path: str, ref: str) -> web.Response:
        raise web.HTTPSeeOther(f"{path}?l={quote(ref, safe='')}")

    # Login ----------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        if not self.sessions.secret_matches(request.query.get("token")):
            return self._refuse(401, "wrong or missing login secret: open the link `nostr-training open` prints")
        session = self.sessions.open(self.daemon.clock.now())
        self.counters["logins"] += 1
        target = request.query.get("next", "/web/")
        if not target.startswith("/web/") or target.startswith("//") or "\\" in target:
            target = "/web/"
        response = web.HTTPSeeOther(target)
        response.set_cookie(self.cookie, session.session_id, httponly=True, samesite="Strict", path="/")
        self._secure(response)
        raise response

    # Static ---------------------------------------------------------------------------------

    async def static(self, request: web.Request, _: WebSession) -> web.StreamResponse:
        name = request.match_info["name"]
        suffix = name[name.rfind("."):] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
            raise NotFound(f"no static file {name}")
        try:
            body = resources.files("nostr_training.web").joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no static file {name}") from None
        return web.Response(body=body, content_type=_STATIC_TYPES[suffix], charset="utf-8" if suffix != ".svg" else None)

    # Pages ----------------------------------------------------------------------------------

    async def home(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        return self.render("home.html", session, page=await pages.home_page(self.ctx))

    async def lesson(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        ref = self._lesson_ref(request)
        return self.render("lesson.html", session, page=await pages.lesson_page(self.ctx, ref))

    async def lesson_fragment(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        ref = self._lesson_ref(request)
        return self.render("lesson_live.html", session, page=await pages.lesson_page(self.ctx, ref))

    async def rsvp(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        ref = self._lesson_ref(request, form)
        status = str(form.get("status", ""))
        lesson = await live.resolve_lesson(self.ctx, ref)
        await rsvp_to_lesson(self.ctx, lesson.coordinate, status, wait=self.ctx.config.publish_timeout)
        self.hub.publish(lesson.coordinate)
        return self._back("/web/lesson", lesson.coordinate)

    async def join(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        ref = self._lesson_ref(request, form)
        consent = form.get("consent")
        result = await live.join_session(self.ctx, ref, consent=None if consent is None else consent == "yes")
        self.hub.publish(result.lesson)
        return self._back("/web/lesson", result.lesson)

    async def leave(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        lesson = await live.resolve_lesson(self.ctx, self._lesson_ref(request, form))
        await live.leave_session(self.ctx, lesson.coordinate)
        self.hub.publish(lesson.coordinate)
        return self._back("/web/lesson", lesson.coordinate)

    async def progress(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        """A played range from the page's video element: the same service as ``recording progress``."""
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._refuse(400, "the body is not JSON")
        if not isinstance(body, dict):
            return self._refuse(400, "the body must be a JSON object")
        start, end = body.get("from"), body.get("to")
        if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, (int, float)) \
                or not isinstance(end, (int, float)):
            return self._refuse(400, "'from' and 'to' must be seconds")
        try:
            result = await record_progress(self.ctx, str(body.get("lesson", "")), float(start), float(end))
        except NostrTrainingError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response(result.to_dict())

    # Host -----------------------------------------------------------------------------------

    async def _teach_context(self, ref: str) -> dict[str, Any]:
        lesson = await live.resolve_lesson(self.ctx, ref)
        try:
            listing = await rsvp_list(self.ctx, lesson.coordinate)
        except NotFound:
            listing = None
        return {"page": await pages.teach_page(self.ctx, ref, rsvps=listing)}

    async def teach(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        return self.render("teach.html", session, **await self._teach_context(self._lesson_ref(request)))

    async def teach_fragment(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        return self.render("teach_live.html", session, **await self._teach_context(self._lesson_ref(request)))

    async def decide(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        lesson = await live.resolve_lesson(self.ctx, self._lesson_ref(request, form))
        decision = str(form.get("decision", ""))
        if decision not in ("admit", "deny"):
            raise MalformedEvent("decision must be admit or deny", field="decision")
        participant = str(form.get("participant", ""))
        await live.decide(self.ctx, lesson.coordinate, participant, decision)
        self.hub.publish(lesson.coordinate)
        if request.headers.get("X-CSRF-Token"):  # from the page's script: no navigation
            return web.json_response({"ok": True})
        return self._back("/web/teach", lesson.coordinate)

    async def session_action(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        lesson = await live.resolve_lesson(self.ctx, self._lesson_ref(request, form))
        action = request.match_info["action"]
        if action == "create":
            await live.create_live_session(self.ctx, lesson.coordinate, live.ConferenceConfig.for_lesson(lesson))
        elif action == "start":
            await live.start_live_session(self.ctx, lesson.coordinate)
        else:
            await live.end_live_session(self.ctx, lesson.coordinate)
        self.hub.publish(lesson.coordinate)
        return self._back("/web/teach", lesson.coordinate)

    async def attendance_csv(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        table = await live.attendance_table(self.ctx, self._lesson_ref(request))
        name = table["lesson"].rsplit(":", 1)[-1] or "lesson"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return web.Response(
            text=pages.attendance_csv(table), content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="attendance-{safe}.csv"'},
        )

    async def publish_recording(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        form = await request.post()
        lesson = await live.resolve_lesson(self.ctx, self._lesson_ref(request, form))
        source = str(form.get("source", "")).strip()
        duration_text = str(form.get("duration", "")).strip()
        duration = None
        if duration_text:
            if not duration_text.isdigit():
                raise MalformedEvent("duration must be whole seconds", field="duration")
            duration = int(duration_text)
        server = str(form.get("server", "")).strip() or None
        await publish_recording(self.ctx, lesson.coordinate, source, server=server, duration=duration)
        self.hub.publish(lesson.coordinate)
        return self._back("/web/teach", lesson.coordinate)

    # Course and certificate -----------------------------------------------------------------

    async def course(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        ref = request.query.get("c", "")
        return self.render("course.html", session, page=await pages.course_page(self.ctx, ref))

    async def certificate(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        verdict = None
        code = request.query.get("code")
        if request.method == "POST":
            form = await request.post()
            code = str(form.get("code", "")).strip() or None
            upload = form.get("bundle")
            text = None
            if upload is not None and not isinstance(upload, str):
                raw = upload.file.read(2 * 1024 * 1024 + 1)
                if len(raw) > 2 * 1024 * 1024:
                    raise MalformedEvent("a certificate file is at most 2 MiB", field="bundle")
                text = raw.decode("utf-8", errors="replace") if raw else None
            if code or text:
                verdict = await pages.certificate_verdict(self.ctx, code=code, bundle_text=text)
        elif code:
            verdict = await pages.certificate_verdict(self.ctx, code=code, bundle_text=None)
        return self.render("certificate.html", session, verdict=verdict.to_dict() if verdict else None, code=code or "")

    # Live updates ---------------------------------------------------------------------------

    async def events(self, request: web.Request, session: WebSession) -> web.StreamResponse:
        """Server-sent events for one lesson: ``changed`` when something indexed or published
        concerns it, or when the daemon's clock reaches its next moment."""
        lesson = await live.resolve_lesson(self.ctx, self._lesson_ref(request))
        topics = {lesson.coordinate, lesson.author, lesson.instructor, *([self.daemon.me] if self.daemon.me else [])}
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        self._secure(response)
        await response.prepare(request)
        queue = self.hub.subscribe()
        self.counters["streams"] += 1
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                moment = await pages.next_change(self.ctx, lesson.coordinate)
                if await self._wait(queue, topics, moment):
                    await response.write(f"event: changed\ndata: {json.dumps(lesson.coordinate)}\n\n".encode())
                else:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:
            pass
        finally:
            self.hub.unsubscribe(queue)
        return response

    async def _wait(self, queue: asyncio.Queue[str], topics: set[str], moment: int | None) -> bool:
        """True when the page should refresh: a signal about this lesson, one of its rooms or the
        user, or the lesson's next moment on the daemon's clock; False after a quiet keep-alive
        period. Signals about anything else are drained here, without touching the index."""
        clock = self.daemon.clock
        timer = asyncio.ensure_future(clock.sleep(moment - clock.now())) if moment is not None else None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                waiters: set[asyncio.Future[Any]] = {getter} | ({timer} if timer is not None else set())
                done, _ = await asyncio.wait(waiters, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return timer is not None and timer in done
                topic = getter.result()
                if topic in topics or topic.startswith(("30312:", "30313:")):
                    return True
        finally:
            if timer is not None and not timer.done():
                timer.cancel()

    # Routes ---------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Handler]]:
        page, post = self.page, (lambda h: self.page(h, post=True))
        return [
            ("GET", "/web/login", self.login),
            ("GET", "/web/static/{name}", page(self.static)),
            ("GET", "/web/", page(self.home)),
            ("GET", "/web/lesson", page(self.lesson)),
            ("GET", "/web/lesson/live", page(self.lesson_fragment)),
            ("GET", "/web/events", page(self.events)),
            ("POST", "/web/lesson/rsvp", post(self.rsvp)),
            ("POST", "/web/lesson/join", post(self.join)),
            ("POST", "/web/lesson/leave", post(self.leave)),
            ("POST", "/web/recording/progress", post(self.progress)),
            ("GET", "/web/teach", page(self.teach)),
            ("GET", "/web/teach/live", page(self.teach_fragment)),
            ("POST", "/web/teach/decide", post(self.decide)),
            ("POST", "/web/teach/session/{action:create|start|end}", post(self.session_action)),
            ("GET", "/web/teach/attendance.csv", page(self.attendance_csv)),
            ("POST", "/web/teach/recording", post(self.publish_recording)),
            ("GET", "/web/course", page(self.course)),
            ("GET", "/web/certificate", page(self.certificate)),
            ("POST", "/web/certificate", post(self.certificate)),
        ]


def raw_routes(daemon: "Daemon") -> list[tuple[str, str, Handler]]:
    """The web view's routes, or none when ``[web] enabled = false``."""
    if not enabled(daemon.config) or daemon.server is None or daemon.services is None:
        return []
    view = WebView(daemon)
    daemon.web = view  # type: ignore[attr-defined]
    return view.routes()
