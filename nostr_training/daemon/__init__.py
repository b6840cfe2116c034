"""The daemon: relay pool, follows, outbox, local relay endpoint, and the app that wires them."""

from __future__ import annotations

import asyncio
from typing import Any


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable: pools, listeners and test fakes may be sync or async."""
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value
