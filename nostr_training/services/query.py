"""``req``: the user's view of the index (their own gift wraps included)."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import MalformedEvent
from ..event import Event
from ..filters import Filter
from .context import ServiceContext

__all__ = ["parse_filters", "query_index", "MAX_RESULTS"]

#: A filter without a limit gets this one: a REQ never pulls a whole index by accident.
MAX_RESULTS = 5000


def parse_filters(raw: Any) -> list[Filter]:
    """One filter object or a list of them, as NIP-01 JSON."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedEvent("at least one filter is needed", field="filter")
    return [Filter.from_dict(item) for item in items]


async def query_index(ctx: ServiceContext, filters: Sequence[Filter]) -> list[Event]:
    """Served events matching the filters, newest first, as the user sees them: gift wraps only
    those addressed to the user (none without a key)."""
    me = await ctx.signer.get_public_key() if ctx.signer is not None else None
    capped = [f if f.limit is not None and f.limit <= MAX_RESULTS else _with_limit(f) for f in filters]
    return await ctx.store.query(capped, now=ctx.clock.now(), recipients=frozenset({me}) if me else frozenset())


def _with_limit(f: Filter) -> Filter:
    return Filter(f.ids, f.authors, f.kinds, f.tags, f.since, f.until, MAX_RESULTS)
