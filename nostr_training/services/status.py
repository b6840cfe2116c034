"""``daemon status``: relays and their state, outbox depth, refusals, the index, components."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from ..store.base import OutboxState, TargetKind
from .context import ServiceContext

__all__ = ["jsonable", "store_status", "REFUSALS_SHOWN"]

#: How many of the latest refusals ``status`` lists.
REFUSALS_SHOWN = 20


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


async def store_status(ctx: ServiceContext) -> dict[str, Any]:
    """What the store alone tells: index counts, outbox depth and the refusals still standing."""
    entries = await ctx.store.outbox_entries()
    refused = []
    for entry in entries:
        if entry.state is not OutboxState.REFUSED:
            continue
        target = entry.target.value if entry.target.kind is TargetKind.RELAY else f"{entry.target.kind.value}:{entry.target.value}"
        refused.append({
            "event_id": entry.event_id, "kind": entry.kind, "target": target, "relay": entry.relay,
            "message": entry.last_message or "", "at": entry.updated_at,
        })
    return {
        "store": jsonable(await ctx.store.stats()),
        "outbox_depth": await ctx.store.outbox_depth(),
        "outbox_refused": refused[-REFUSALS_SHOWN:],
    }
