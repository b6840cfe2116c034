"""The daemon: one process that owns the index, the relay connections and the outbox.

``Daemon`` wires the configuration, the signer, the store, the relay pool, the outbox, the
follows and the local relay endpoint; ``start`` and ``stop`` are symmetrical and ``run`` serves
until SIGINT or SIGTERM. A runtime file (``daemon.json``, readable by the user only) tells CLI
commands where the endpoint is and carries the token that ``/status`` requires; a lock file
keeps a second daemon off the same data dir.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import fcntl
import json
import logging
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..event import verify_event
from ..signer import Signer
from ..store.base import Store
from .config import DaemonConfig
from .follows import Follows
from .local_relay import LocalRelay
from .outbox import Outbox

__all__ = ["Daemon", "RuntimeInfo", "read_runtime", "RUNTIME_FILE", "LOCK_FILE", "open_store", "make_pool", "jsonable"]

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


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values (for status output)."""
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


async def open_store(path: Path) -> Store:
    """The SQLite index at ``path``."""
    from ..store.sqlite import SqliteStore

    path.parent.mkdir(parents=True, exist_ok=True)
    return await SqliteStore.open(path)


def make_pool(*, signer: Signer | None, clock: Clock) -> Any:
    """The relay pool, answering NIP-42 challenges with the user's signer when there is one."""
    from .relays import RelayPool

    kwargs: dict[str, Any] = {"verify": verify_event, "clock": clock}
    if signer is not None:
        kwargs["sign"] = signer.sign_event
    return RelayPool(**kwargs)


class Daemon:
    """Index, follow, publish and serve for one user and one data dir."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        signer: Signer | None = None,
        store: Store | None = None,
        pool: Any = None,
        clock: Clock | None = None,
        pool_factory: Callable[..., Any] = make_pool,
    ):
        self.config = config
        self.signer = signer
        self.clock = clock or SystemClock()
        self._store = store
        self._pool = pool
        self._pool_factory = pool_factory
        self.me: str | None = None
        self.outbox: Outbox | None = None
        self.follows: Follows | None = None
        self.local: LocalRelay | None = None
        self.started_at: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._lock_fh: Any = None
        self._owns_store = store is None
        self._owns_pool = pool is None

    @property
    def store(self) -> Store:
        assert self._store is not None, "daemon not started"
        return self._store

    @property
    def pool(self) -> Any:
        return self._pool

    # Lifecycle -----------------------------------------------------------------------------

    def _take_lock(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.config.data_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ConfigError(f"another daemon is running on {self.config.data_dir}") from None
        self._lock_fh = fh

    def _write_runtime(self, token: str) -> None:
        assert self.local is not None and self.started_at is not None
        info = {"pid": os.getpid(), "port": self.local.port, "url": self.local.url, "token": token, "started_at": self.started_at}
        path = self.config.runtime_path
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, path)

    async def start(self) -> None:
        """Open everything, in dependency order; the runtime file is written last."""
        self._take_lock()
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
        token = secrets.token_urlsafe(32)
        self.local = LocalRelay(
            self._store, submit=self.outbox.submit, clock=self.clock, host=self.config.host,
            port=self.config.port, token=token, status=self.status,
        )
        self.follows = Follows(
            self._store, self._pool, clock=self.clock, me=self.me, relays=self.config.relays,
            courses=self.config.follow_courses, authors=self.config.follow_authors,
            on_indexed=self.local.broadcast,
        )
        try:
            await self.local.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the local relay on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
                " (set [local] port in config.toml, or --port)"
            ) from None
        await self.follows.apply()
        self._tasks = [
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self.follows.run(), name="follows"),
            asyncio.create_task(self._prune_loop(), name="prune"),
        ]
        self._write_runtime(token)
        log.info(
            "daemon started",
            extra={"url": self.local.url, "relays": len(self.config.relays), "pubkey": self.me or "-", "pid": os.getpid()},
        )

    async def stop(self) -> None:
        """Close in reverse order; cursors are flushed, nothing queued is dropped (it stays in the store)."""
        try:
            self.config.runtime_path.unlink(missing_ok=True)
        except OSError:
            pass
        if self.local is not None:
            await self.local.stop()
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
        if self._lock_fh is not None:
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
        keep.update(e.relay for e in await self.store.outbox_entries() if e.state.value in ("pending", "retrying"))
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
            await asyncio.sleep(PRUNE_INTERVAL)
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
        """What ``daemon status`` shows: relays and their state, outbox, index counts."""
        relays = []
        if self._pool is not None:
            relays = jsonable(self._pool.status())
        entries = await self.store.outbox_entries()
        refused = [jsonable(e) for e in entries if getattr(e.state, "value", e.state) == "refused"][-20:]
        out: dict[str, Any] = {
            "running": True,
            "pid": os.getpid(),
            "url": self.local.url if self.local else None,
            "started_at": self.started_at,
            "uptime": self.clock.now() - self.started_at if self.started_at is not None else None,
            "pubkey": self.me,
            "relays": relays,
            "outbox_depth": await self.store.outbox_depth(),
            "outbox_refused": refused,
            "store": jsonable(await self.store.stats()),
            "subscriptions": [s.name for s in self.follows.subscriptions()] if self.follows else [],
            "counters": {
                "outbox": jsonable(self.outbox.counters) if self.outbox else {},
                "follows": jsonable(self.follows.counters) if self.follows else {},
                "local": jsonable(self.local.counters) if self.local else {},
            },
        }
        return out

