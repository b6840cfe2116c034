"""Control-API routes for certificates, the CRM and training events: ``POST /<area>/<operation>``.

Each route runs the same operation the CLI runs without a daemon (``OPERATIONS`` in
``services.certificates``, ``services.crm``, ``services.events`` and ``services.audit``) in the daemon's context, so
the daemon's key signs and its outbox delivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..services import audit, certificates, crm, events, records
from ..services.context import ServiceContext
from .http import Route

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["routes", "AREAS"]

Operation = Callable[[ServiceContext, dict[str, Any]], Awaitable[Any]]

#: The areas and their operations, as the CLI names them.
AREAS: dict[str, dict[str, Operation]] = {
    "cert": certificates.OPERATIONS,
    "crm": crm.OPERATIONS,
    "event": events.OPERATIONS,
    "privacy": audit.OPERATIONS,
    "attendance": records.OPERATIONS,
}


def _bound(daemon: "Daemon", operation: Operation) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    async def handler(body: dict[str, Any]) -> Any:
        return await operation(daemon.services, body)

    return handler


def routes(daemon: "Daemon") -> list[Route]:
    return [
        Route("POST", f"/{area}/{name}", _bound(daemon, operation))
        for area, table in AREAS.items()
        for name, operation in table.items()
    ]
