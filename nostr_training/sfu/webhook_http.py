"""The HTTP end of SFU webhooks: an aiohttp handler the daemon mounts on its control API server.

The SFU POSTs each event with its signature in ``Authorization``; the handler reads a bounded
body, lets the adapter verify it, and hands the typed event to ``on_event`` (which records it
in a ``WebhookLedger`` and the store). A refused webhook gets 401 and is not passed on; a
verified one gets 200 even when it is a duplicate, so the SFU stops re-sending it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import WebhookRefused
from .base import SfuAdapter, SfuEvent

__all__ = ["MAX_WEBHOOK_BODY", "webhook_handler"]

MAX_WEBHOOK_BODY = 1 << 20
_log = logging.getLogger(__name__)


def webhook_handler(
    adapter: SfuAdapter, on_event: Callable[[SfuEvent], Awaitable[object]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST handler verifying each webhook with ``adapter`` before ``on_event`` sees it."""

    async def handle(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
            return web.Response(status=413, text="webhook body too large")
        body = await request.content.read(MAX_WEBHOOK_BODY + 1)
        if len(body) > MAX_WEBHOOK_BODY:
            return web.Response(status=413, text="webhook body too large")
        try:
            event = adapter.parse_webhook(body, request.headers.get("Authorization"))
        except WebhookRefused as exc:
            _log.warning("%s webhook refused from %s: %s", adapter.name, request.remote, exc)
            return web.Response(status=401, text="webhook refused")
        await on_event(event)
        return web.Response(status=200, text="ok")

    return handle
