"""The daemon: one process that owns the index, the relay connections and the outbox.

``Daemon`` opens the store, the relay pool, the outbox, the follows and the local server (the
NIP-01 endpoint and the control API on one loopback port), then starts every registered
``Component`` (schedulers and services: they plug in with ``register`` instead of editing
``start``). ``stop`` undoes it in reverse; ``run`` serves until SIGINT or SIGTERM.

A lock file keeps a second daemon off the same data dir; the loser touches none of the winner's
files. The runtime file (``daemon.json``, readable by the user only) tells CLI commands where
the server is and carries the per-start secret the control API requires.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..event import verify_event
from ..paths import make_private_dir, make_private_file, secure_data_dir
from ..services.context import ServiceContext
from ..services.status import jsonable, store_status
from ..signer import Signer
from ..store.base import OutboxState, Store
from .components import Component
from .config import DaemonConfig
from .control import control_routes
from .follows import Follows
from .http import HttpServer
from .local_relay import LocalRelay
from .outbox import Outbox
from .pool import Pool

__all__ = ["Daemon", "RuntimeInfo", "read_runtime", "RUNTIME_FILE", "LOCK_FILE", "open_store", "make_pool"]

log = logging.getLogger("nostr_training.daemon")

RUNTIME_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"
#: How often relays that only the outbox needed (other people's relays) are let go.
PRUNE_INTERVAL = 300.0


@dataclass(frozen=True)
class RuntimeInfo:
    """What a running daemon publishes about itself in ``daemon.json``."""

    pid: int
    port: int
    url: str
    token: str
    started_at: int

    @property
    def http_url(self) -> str:
        return "http" + self.url[2:]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_held(data_dir: Path) -> bool:
    """Is some process holding the data dir's daemon lock? (a SIGKILLed daemon holds none)."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def read_runtime(data_dir: Path) -> RuntimeInfo | None:
    """The running daemon's runtime info, or None when there is none or the file is stale."""
    path = data_dir / RUNTIME_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
        info = RuntimeInfo(
            pid=int(raw["pid"]), port=int(raw["port"]), url=str(raw["url"]), token=str(raw["token"]),
            started_at=int(raw["started_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(info.pid) or not _lock_held(data_dir):
        return None
    return info


async def open_store(path: Path) -> Store:
    """The SQLite index at ``path``, in a private data dir; the database and the journal files
    SQLite makes beside it are created readable by the user only."""
    from ..store.sqlite import SqliteStore

    secure_data_dir(path.parent)
    previous = os.umask(0o077)
    try:
        return await SqliteStore.open(path)
    finally:
        os.umask(previous)


def make_pool(*, signer: Signer | None, clock: Clock) -> Pool:
    """The relay pool, answering NIP-42 challenges with the user's signer when there is one."""
    from .relays import RelayPool

    if signer is not None:
        return RelayPool(verify=verify_event, clock=clock, sign=signer.sign_event)
    return RelayPool(verify=verify_event, clock=clock)


class Daemon:
    """Index, follow, publish and serve for one user and one data dir."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        signer: Signer | None = None,
        store: Store | None = None,
        pool: Pool | None = None,
        clock: Clock | None = None,
        pool_factory: Callable[..., Pool] = make_pool,
        components: tuple[Component, ...] = (),
    ):
        self.config = config
        self.signer = signer
        self.clock = clock or SystemClock()
        self._store = store
        self._pool = pool
        self._pool_factory = pool_factory
        self.components: list[Component] = list(components)
        self.me: str | None = None
        self.outbox: Outbox | None = None
        self.follows: Follows | None = None
        self.local: LocalRelay | None = None
        self.server: HttpServer | None = None
        self.services: ServiceContext | None = None  # type: ignore[assignment]
        self.started_at: int | None = None
        self._started: list[Component] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._lock_fh: IO[str] | None = None
        self._owns_store = store is None
        self._owns_pool = pool is None

    def register(self, component: Component) -> None:
        """Add a component; registered before ``start`` it starts with the daemon."""
        self.components.append(component)

    @property
    def store(self) -> Store:
        assert self._store is not None, "daemon not started"
        return self._store

    @property
    def pool(self) -> Pool | None:
        return self._pool

    @property
    def url(self) -> str | None:
        return self.server.url if self.server else None

    # Lifecycle -----------------------------------------------------------------------------

    def _take_lock(self) -> None:
        make_private_dir(self.config.data_dir)
        fh = open(make_private_file(self.config.data_dir / LOCK_FILE), "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ConfigError(f"another daemon is running on {self.config.data_dir}") from None
        self._lock_fh = fh

    def _write_runtime(self, token: str) -> None:
        assert self.server is not None and self.started_at is not None
        info = {"pid": os.getpid(), "port": self.server.port, "url": self.server.url, "token": token, "started_at": self.started_at}
        path = self.config.runtime_path
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, path)

    async def start(self) -> None:
        """Open everything, in dependency order; the runtime file is written last."""
        self._take_lock()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.started_at = self.clock.now()
        if self.signer is not None:
            self.me = await self.signer.get_public_key()
        if self._store is None:
            self._store = await open_store(self.config.database_path)
        if self._pool is None:
            self._pool = self._pool_factory(signer=self.signer, clock=self.clock)
        for url in self.config.relays:
            await self._pool.add_relay(url)
        self.outbox = Outbox(
            self._store, self._pool, clock=self.clock, default_relays=self.config.relays,
            timeout=self.config.publish_timeout,
        )
        self.local = LocalRelay(self._store, submit_many=self.outbox.submit_many, clock=self.clock)
        self.follows = Follows(
            self._store, self._pool, clock=self.clock, me=self.me, relays=self.config.relays,
            courses=self.config.follow_courses, authors=self.config.follow_authors,
            on_indexed=self.local.broadcast,
        )
        self.services = ServiceContext(
            config=self.config, store=self._store, outbox=self.outbox, clock=self.clock, signer=self.signer,
            follows=self.follows, live=True,
        )
        token = secrets.token_urlsafe(32)
        self.server = HttpServer(self.local, host=self.config.host, port=self.config.port, token=token)
        for route in control_routes(self):
            self.server.add_route(route)
        try:
            await self.server.start()
        except OSError as exc:
            self.server = None
            raise ConfigError(
                f"cannot serve on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
                " (set [local] port in config.toml, or --port)"
            ) from None
        await self.follows.apply()
        self._tasks = [
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self.follows.run(), name="follows"),
            asyncio.create_task(self._prune_loop(), name="prune"),
        ]
        for component in self.components:
            await component.start(self)
            self._started.append(component)
        self._write_runtime(token)
        log.info(
            "daemon started",
            extra={"url": self.server.url, "relays": len(self.config.relays), "pubkey": self.me or "-", "pid": os.getpid()},
        )

    async def stop(self) -> None:
        """Close in reverse order; nothing queued is dropped (it stays in the store). A daemon
        that never got the lock stops nothing and removes nothing."""
        if self._lock_fh is None:
            return
        try:
            self.config.runtime_path.unlink(missing_ok=True)
        except OSError:
            pass
        for component in reversed(self._started):
            try:
                await component.stop()
            except Exception:
                log.exception("component %s failed while stopping", component.name)
        self._started = []
        if self.server is not None:
            await self.server.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("task %s failed while stopping", task.get_name())
        self._tasks = []
        if self._pool is not None and self._owns_pool:
            await self._pool.close()
        if self._store is not None and self._owns_store:
            await self._store.close()
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()
        self._lock_fh = None
        log.info("daemon stopped")

    async def prune_relays(self) -> list[str]:
        """Disconnect relays nothing needs any more: not configured, no subscription on them and
        no delivery to them still pending. The outbox adds other people's relays as it publishes;
        without this the daemon would keep reconnecting to every one of them forever."""
        if self._pool is None:
            return []
        keep = set(self.config.relays)
        keep.update(
            e.relay for e in await self.store.outbox_entries()
            if e.relay and e.state in (OutboxState.PENDING, OutboxState.RETRYING)
        )
        dropped = []
        for relay in self._pool.status():
            if relay.url not in keep and not relay.subscriptions:
                await self._pool.remove_relay(relay.url)
                dropped.append(relay.url)
        if dropped:
            log.info("let go of %d relays nothing needs", len(dropped), extra={"relays": dropped})
        return dropped

    async def _prune_loop(self) -> None:
        while True:
            await self.clock.sleep(PRUNE_INTERVAL)
            try:
                await self.prune_relays()
            except Exception:
                log.exception("pruning relays failed")

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM (or ``request_stop``), then stop cleanly."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s, stopping", sig.name)
        self._stop.set()

    # Status --------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """What ``daemon status`` shows: relays and their state, outbox, index, components."""
        assert self.services is not None
        relays = jsonable(self._pool.status()) if self._pool is not None else []
        out: dict[str, Any] = {
            "running": True,
            "pid": os.getpid(),
            "url": self.url,
            "started_at": self.started_at,
            "uptime": self.clock.now() - self.started_at if self.started_at is not None else None,
            "pubkey": self.me,
            "relays": relays,
            **await store_status(self.services),
            "indexing": {
                "ok": self.follows is None or self.follows.failing is None,
                "error": self.follows.failing if self.follows else None,
                "since": self.follows.failing_since if self.follows else None,
            },
            "subscriptions": [s.name for s in self.follows.subscriptions()] if self.follows else [],
            "follow": {"courses": list(self.services.config.follow_courses)},
            "counters": {
                "outbox": jsonable(self.outbox.counters) if self.outbox else {},
                "follows": jsonable(self.follows.counters) if self.follows else {},
                "local": jsonable(self.local.counters) if self.local else {},
            },
            "components": {c.name: jsonable(c.status()) for c in self._started},
        }
        return out
