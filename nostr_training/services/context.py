"""The context every service runs in: inside the daemon, or in a CLI process without one."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator

from ..clock import Clock
from ..errors import ConfigError
from ..signer import Signer
from ..store.base import Store

if TYPE_CHECKING:
    from ..daemon.config import DaemonConfig
    from ..daemon.follows import Follows
    from ..daemon.outbox import Outbox

__all__ = ["ServiceContext", "offline_context"]


@dataclass
class ServiceContext:
    """What a service may use. ``follows`` is None without a daemon; ``live`` says whether a
    daemon's outbox loop delivers what is submitted (otherwise the caller delivers it now)."""

    config: "DaemonConfig"
    store: Store
    outbox: "Outbox"
    clock: Clock
    signer: Signer | None = None
    follows: "Follows | None" = None
    live: bool = False

    def require_signer(self) -> Signer:
        if self.signer is None:
            raise ConfigError("no key: create one with 'nostr-training keys generate' (or pass --key-file)")
        return self.signer


@asynccontextmanager
async def offline_context(
    config: "DaemonConfig", signer: Signer | None, *, connect: bool = True, clock: Clock | None = None
) -> AsyncIterator[ServiceContext]:
    """The context of a CLI command with no daemon running: the data dir's own store and outbox
    (so whatever is queued now is delivered by the daemon when it next runs) and, with
    ``connect``, a short-lived relay pool to deliver at once."""
    from ..clock import SystemClock
    from ..daemon.app import make_pool, open_store
    from ..daemon.outbox import Outbox

    clock = clock or SystemClock()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(config.database_path)
    pool = make_pool(signer=signer, clock=clock) if connect else None
    try:
        outbox = Outbox(
            store, pool, clock=clock, default_relays=config.relays, timeout=config.publish_timeout,
            fetch_timeout=min(config.publish_timeout, 5.0),
        )
        yield ServiceContext(config=config, store=store, outbox=outbox, clock=clock, signer=signer)
    finally:
        if pool is not None:
            await pool.close()
        await store.close()
