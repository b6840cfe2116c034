"""The control API: the daemon's services over HTTP for the CLI (and later the web view).

Each route is a thin translation: JSON in, a service call, JSON out. Errors from the error tree
become 4xx answers with the message (``http.Route``); the CLI prints that message as its one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import MalformedEvent
from ..event import Event, EventTemplate, verify_event
from ..services.follows import follow_course, followed_courses, unfollow_course
from ..services.publish import publish_events
from ..services.query import parse_filters, query_index
from ..services.relay_lists import plan_relays, set_relays
from ..services.validate import check_template
from . import routes_media
from .http import Handler, Route
from .routes_live import routes as live_routes
from .routes_rsvp import routes as rsvp_routes

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["control_routes", "raw_routes"]


def _events(body: dict[str, Any]) -> list[Event]:
    raw = body.get("events")
    if not isinstance(raw, list):
        raise MalformedEvent("'events' must be a list of signed events", field="events")
    return [verify_event(Event.from_dict(item)) for item in raw]


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedEvent(f"'{name}' must be a list of strings", field=name)
    return value


def _wait(body: dict[str, Any]) -> float:
    wait = body.get("wait", 10.0)
    if not isinstance(wait, (int, float)) or not 0 <= wait <= 300:
        raise MalformedEvent("'wait' must be 0..300 seconds", field="wait")
    return float(wait)


def control_routes(daemon: "Daemon") -> list[Route]:
    """The routes of the control API, bound to a started daemon."""

    async def status(_: dict[str, Any]) -> Any:
        return await daemon.status()

    async def publish(body: dict[str, Any]) -> Any:
        reports = await publish_events(
            daemon.services, _events(body), relays=_strings(body, "relays") or None, wait=_wait(body),
            check_lessons=not body.get("allow_unknown_lessons", False),
        )
        return {"results": [r.to_dict() for r in reports]}

    async def req(body: dict[str, Any]) -> Any:
        events = await query_index(daemon.services, parse_filters(body.get("filters", {})))
        return {"events": [e.to_dict() for e in events]}

    async def sign(body: dict[str, Any]) -> Any:
        signer = daemon.services.require_signer()
        raw = body.get("template")
        if not isinstance(raw, dict):
            raise MalformedEvent("'template' must be an event template", field="template")
        template = EventTemplate.from_dict(raw, default_created_at=daemon.clock.now())
        check_template(template, await signer.get_public_key())
        return {"event": (await signer.sign_event(template)).to_dict()}

    async def follows_list(_: dict[str, Any]) -> Any:
        return {"courses": followed_courses(daemon.services)}

    async def follows_add(body: dict[str, Any]) -> Any:
        return {"courses": await follow_course(daemon.services, str(body.get("course", "")))}

    async def follows_remove(body: dict[str, Any]) -> Any:
        return {"courses": await unfollow_course(daemon.services, str(body.get("course", "")))}

    async def relays_set(body: dict[str, Any]) -> Any:
        plan = plan_relays(
            _strings(body, "relays"), read_only=_strings(body, "read"), write_only=_strings(body, "write"),
            inbox=_strings(body, "inbox"),
        )
        reports = await set_relays(daemon.services, plan, wait=_wait(body))
        return {"read": plan.read, "write": plan.write, "inbox": plan.inbox, "results": [r.to_dict() for r in reports]}

    from .routes_identity import routes as identity_routes
    from .routes_training import routes as training_routes

    return live_routes(daemon) + [
        *identity_routes(daemon),
        *rsvp_routes(daemon),
        *training_routes(daemon),
        Route("GET", "/status", status),
        Route("POST", "/publish", publish),
        Route("POST", "/req", req),
        Route("POST", "/sign", sign),
        Route("GET", "/follows", follows_list),
        Route("POST", "/follows", follows_add),
        Route("DELETE", "/follows", follows_remove),
        Route("POST", "/relays", relays_set),
        *routes_media.routes(daemon),
    ]


def raw_routes(daemon: "Daemon") -> list[tuple[str, str, Handler]]:
    """Plain aiohttp handlers (webhooks, feeds): registered with the control routes, before the
    server starts, since aiohttp takes no route once it runs."""
    from .web import raw_routes as web_routes

    return [*routes_media.raw_routes(daemon), *web_routes(daemon)]
