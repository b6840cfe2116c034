"""Control-API routes for RSVPs and calendars, and the subscribable calendar feed.

- ``POST /api/rsvp`` {lesson, status, note?}: answer a lesson (``services.rsvp.rsvp_to_lesson``);
- ``GET /api/rsvp/list?lesson=``: the instructor's view (``services.rsvp.rsvp_list``);
- ``GET /api/ics?target=``: a lesson's or course's iCalendar text, for ``nostr-training ics``;
- ``GET /calendar/<course or lesson coordinate>.ics?token=<feed token>``: the same file as
  ``text/calendar``, read-only, for calendar apps that subscribe to a URL. They cannot send a
  header, so this one route takes its own token (``feed.token`` in the data dir, not the control
  API's secret, and the same across restarts) in the query (or as ``Authorization:
  Bearer``), compared in constant time; it lives outside ``/api`` for that reason.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import MalformedEvent, NostrTrainingError, NotFound
from ..paths import make_private_file
from ..services.calendar import calendar_ics
from ..services.rsvp import rsvp_list, rsvp_to_lesson
from .http import Route, json_error

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["routes", "FEED_PREFIX", "feed_path"]

FEED_PREFIX = "/calendar/"
FEED_TOKEN_FILE = "feed.token"


def feed_token(data_dir: Path) -> str:
    """The calendar feed's own secret: read-only (it opens calendars, never the control API) and
    kept across restarts in the data dir (0600), so a subscribed calendar keeps working."""
    path = data_dir / FEED_TOKEN_FILE
    try:
        text = path.read_text("utf-8").strip()
        if len(text) >= 32:
            return text
    except OSError:
        pass
    token = secrets.token_urlsafe(32)
    make_private_file(path).write_text(token, "utf-8")
    return token


def feed_path(target: str) -> str:
    """The feed's path for a lesson or course coordinate (token not included)."""
    return f"{FEED_PREFIX}{target}.ics"


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedEvent(f"'{name}' must be a non-empty string", field=name)
    return value


def routes(daemon: "Daemon") -> list[Route]:
    """The RSVP and calendar routes; registers the calendar feed on the daemon's server too
    (raw aiohttp routes must be added before the server starts, which is now)."""

    async def answer(body: dict[str, Any]) -> Any:
        wait = body.get("wait", 10.0)
        if not isinstance(wait, (int, float)) or not 0 <= wait <= 300:
            raise MalformedEvent("'wait' must be 0..300 seconds", field="wait")
        result = await rsvp_to_lesson(daemon.services, _text(body, "lesson"), _text(body, "status"),
                                      _text(body, "note", required=False), wait=float(wait))
        return result.to_dict()

    async def listing(body: dict[str, Any]) -> Any:
        return (await rsvp_list(daemon.services, _text(body, "lesson"))).to_dict()

    async def ics(body: dict[str, Any]) -> Any:
        name, data = await calendar_ics(daemon.services, _text(body, "target"))
        return {"name": name, "ics": data.decode("utf-8")}

    token = feed_token(daemon.config.data_dir)

    async def feed(request: web.Request) -> web.StreamResponse:
        given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return json_error(401, "missing or wrong token")
        target = request.match_info["target"]
        try:
            _, data = await calendar_ics(daemon.services, target)
        except NotFound as exc:
            return json_error(404, str(exc))
        except NostrTrainingError as exc:
            return json_error(400, str(exc))
        return web.Response(body=data, content_type="text/calendar", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    if daemon.server is not None:
        daemon.server.add_raw("GET", FEED_PREFIX + "{target}.ics", feed)
    return [
        Route("POST", "/rsvp", answer),
        Route("GET", "/rsvp/list", listing),
        Route("GET", "/ics", ics),
    ]
