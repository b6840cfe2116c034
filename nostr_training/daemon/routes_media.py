"""The control API's media routes (join tokens, recordings) and the SFU webhook receiver.

``raw_routes`` mounts ``sfu.webhook_http.webhook_handler`` at ``POST /sfu/webhook`` when
``[sfu]`` is configured: it must be registered before the server starts (aiohttp freezes its
router), so ``Daemon._start`` adds it beside the control routes. Each verified webhook goes to
``services.media.record_webhook`` (the action log, once per event id). ``SfuStatus`` is the
component that shows in ``daemon status`` whether an SFU is configured (never its secret).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MalformedEvent
from ..services.media import join_token, record_webhook, sfu_adapter, sfu_config, sfu_status
from ..services.recordings import publish_recording, record_progress, recording_status
from ..sfu.base import SfuEvent
from ..sfu.webhook_http import webhook_handler
from .http import Handler, Route

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["WEBHOOK_PATH", "SfuStatus", "raw_routes", "routes"]

WEBHOOK_PATH = "/sfu/webhook"
log = logging.getLogger("nostr_training.daemon")


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"'{name}' must be a non-empty string", field=name)
    return value


def _seconds(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvent(f"'{name}' must be a number of seconds", field=name)
    return float(value)


def routes(daemon: "Daemon") -> list[Route]:
    """Media routes of the control API, bound to a started daemon."""

    async def token(body: dict[str, Any]) -> Any:
        key_hex = _text(body, "room_key", required=False)
        try:
            room_key = bytes.fromhex(key_hex) if key_hex else None
        except ValueError:
            raise MalformedEvent("'room_key' must be hex", field="room_key") from None
        ticket = await join_token(
            daemon.services, _text(body, "lesson") or "", _text(body, "pubkey") or "", room_key=room_key,
            promoted=bool(body.get("promoted", False)),
        )
        return ticket.to_dict()

    async def publish(body: dict[str, Any]) -> Any:
        duration = body.get("duration")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
            raise MalformedEvent("'duration' must be whole seconds", field="duration")
        result = await publish_recording(
            daemon.services, _text(body, "lesson") or "", _text(body, "source") or "",
            server=_text(body, "server", required=False), mime=_text(body, "mime", required=False),
            duration=duration, caption=str(body.get("caption", "")),
        )
        return result.to_dict()

    async def progress(body: dict[str, Any]) -> Any:
        result = await record_progress(
            daemon.services, _text(body, "lesson") or "", _seconds(body, "from"), _seconds(body, "to")
        )
        return result.to_dict()

    async def status(body: dict[str, Any]) -> Any:
        return (await recording_status(daemon.services, _text(body, "lesson") or "")).to_dict()

    return [
        Route("POST", "/media/token", token),
        Route("POST", "/recording/publish", publish),
        Route("POST", "/recording/progress", progress),
        Route("GET", "/recording/status", status),
    ]


def raw_routes(daemon: "Daemon") -> list[tuple[str, str, Handler]]:
    """The SFU webhook receiver, when an SFU is configured (none otherwise)."""
    try:
        config = sfu_config(daemon.services)
    except ConfigError as exc:
        log.warning("SFU webhooks not served: %s", exc)
        return []
    if config is None:
        return []

    async def on_event(event: SfuEvent) -> bool:
        return await record_webhook(daemon.services, event)

    return [("POST", WEBHOOK_PATH, webhook_handler(sfu_adapter(config), on_event))]


class SfuStatus:
    """Shows in ``daemon status`` whether an SFU is configured, where, and where its secret comes from."""

    name = "sfu"

    def __init__(self) -> None:
        self._status: dict[str, Any] = {}

    async def start(self, daemon: "Daemon") -> None:
        self._status = sfu_status(daemon.services)

    async def stop(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return dict(self._status)
