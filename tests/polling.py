"""Waiting in tests for what arrives in real time (relay delivery, a daemon's loop)."""

from __future__ import annotations

import asyncio
from typing import Any


async def eventually(check: Any, *, tries: int = 400, delay: float = 0.05) -> Any:
    """Poll an async or sync predicate a bounded number of times; return its first true value."""
    for _ in range(tries):
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(delay)
    code = getattr(check, "__code__", None)
    where = f" ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})" if code is not None else ""
    raise AssertionError(f"condition never became true: {getattr(check, '__name__', check)}{where}")
