"""The user's signer, built one way for the CLI and the daemon: a key file, or a NIP-46 bunker.

``open_user_signer`` reads the choice in this order: a ``bunker://`` URI given for this run
(``--signer``), an explicit key file (``--key-file``), the ``[signer]`` table of config.toml,
then the key file of config.toml or the data dir's default key.

A bunker is reached by ``BunkerSigner``: a ``Signer`` with its own small relay pool to the
bunker's relays, whose NIP-42 AUTH is signed by the client session key. The user's main pool
answers AUTH with the user's signer, which for a bunker is a round trip over *other* sockets:
a bunker relay that demands AUTH never waits on the bunker itself. The pool is opened lazily
in the running event loop (a CLI command may run several loops) and closed by ``close`` or
``close_signer_sessions``.

A profile remembers the user's pubkey once a connect has told it, so the daemon starts (and
queues) while the bunker is offline; work that needs a signature then fails with
``SignerUnavailable`` and is retried by whoever asked, never logged as done.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import Clock, SystemClock
from .errors import ConfigError, EncodingError, SignerError
from .event import Event, EventTemplate
from .keys import Keys, load_key_file
from .nips import nip46
from .remote_signer import RemoteSigner, SignerProfile, create_session_key
from .signer import LocalSigner, Signer

if TYPE_CHECKING:
    from .daemon.config import DaemonConfig
    from .daemon.pool import Pool

__all__ = [
    "SESSION_KEY_FILE",
    "BunkerSigner",
    "close_signer_sessions",
    "open_user_signer",
    "session_key_path",
    "signer_description",
]

SESSION_KEY_FILE = "signer-session.ncryptsec"
"""The client session key of a bunker profile, in the data dir (the user's key is never here)."""

Password = Callable[[], str]
OnConnected = Callable[[SignerProfile], None]

log = logging.getLogger("nostr_training.user_signer")
_open_sessions: weakref.WeakSet[BunkerSigner] = weakref.WeakSet()


class BunkerSigner:
    """A ``Signer`` for a bunker profile: one ``RemoteSigner`` per event loop, over its own pool.

    ``on_connected`` gets the profile to keep after the first connect: the spent secret gone and
    the user's pubkey learnt (the caller writes it to config.toml).
    """

    def __init__(
        self,
        profile: SignerProfile,
        session: Keys,
        *,
        clock: Clock | None = None,
        on_connected: OnConnected | None = None,
        on_auth_url: Callable[[str], None] | None = None,
        permissions: tuple[str, ...] | None = None,
    ):
        if profile.kind != "bunker":
            raise ConfigError("a BunkerSigner needs a bunker signer profile")
        self.profile = profile
        self._session = session
        self._clock = clock or SystemClock()
        self._on_connected = on_connected
        self._on_auth_url = on_auth_url
        self._permissions = permissions
        self._remote: RemoteSigner | None = None
        self._pool: Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        _open_sessions.add(self)

    def __repr__(self) -> str:
        return f"BunkerSigner(remote_signer={self.profile.bunker.remote_signer_pubkey!r}, user={self.profile.pubkey!r})"

    @property
    def session_pubkey(self) -> str:
        return self._session.public_key

    async def _signer(self) -> RemoteSigner:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._remote, self._pool, self._loop, self._lock = None, None, loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._remote is None:
                from .daemon.app import make_pool

                self._pool = make_pool(signer=LocalSigner(self._session), clock=self._clock)
                kwargs: dict[str, Any] = {"clock": self._clock, "request_timeout": self.profile.request_timeout}
                if self._on_auth_url is not None:
                    kwargs["on_auth_url"] = self._on_auth_url
                if self._permissions is not None:
                    kwargs["permissions"] = self._permissions
                self._remote = RemoteSigner(self._pool, self._session, self.profile.bunker, **kwargs)
            remote = self._remote
        user = await remote.connect()
        self._learnt(remote, user)
        return remote

    def _learnt(self, remote: RemoteSigner, user: str) -> None:
        if self.profile.pubkey is not None and self.profile.pubkey != user:
            raise SignerError(
                f"the bunker now signs for {user[:16]}, not {self.profile.pubkey[:16]} as configured: "
                "run 'nostr-training signer connect' again"
            )
        kept = replace(self.profile, uri=str(remote.connection_uri), pubkey=user)
        if kept != self.profile:
            self.profile = kept
            if self._on_connected is not None:
                self._on_connected(kept)

    async def connect(self) -> str:
        """Connect now (pairing checks it); the user's pubkey."""
        remote = await self._signer()
        return await remote.get_public_key()

    async def get_public_key(self) -> str:
        if self.profile.pubkey is not None:
            return self.profile.pubkey
        return await self.connect()

    async def sign_event(self, template: EventTemplate) -> Event:
        return await (await self._signer()).sign_event(template)

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        return await (await self._signer()).nip44_encrypt(peer_pubkey, plaintext)

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        return await (await self._signer()).nip44_decrypt(peer_pubkey, payload)

    async def close(self) -> None:
        """Close this loop's session and its pool (another loop's pool died with its loop)."""
        remote, pool = self._remote, self._pool
        self._remote, self._pool = None, None
        if self._loop is not asyncio.get_running_loop():
            return
        if remote is not None:
            await remote.close()
        if pool is not None:
            await pool.close()


async def close_signer_sessions() -> None:
    """Close every bunker session opened in the running loop (a CLI command's last step)."""
    for signer in list(_open_sessions):
        await signer.close()


def session_key_path(config: DaemonConfig) -> Path:
    return config.data_dir / SESSION_KEY_FILE


def _bunker_profile(config: DaemonConfig, uri: str, password: Password, log_n: int) -> tuple[SignerProfile, Keys]:
    """The profile for ``uri``: the configured session when it is this bunker's (its secret is
    spent then), else a new session key."""
    try:
        bunker = nip46.parse_bunker_uri(uri)
    except EncodingError as exc:
        raise ConfigError(f"--signer: {exc}") from None
    stored = config.signer
    if (
        stored is not None and stored.kind == "bunker" and stored.pubkey is not None
        and stored.bunker.remote_signer_pubkey == bunker.remote_signer_pubkey and stored.key_file.exists()
    ):
        profile = replace(stored, uri=str(nip46.BunkerUri(bunker.remote_signer_pubkey, bunker.relays)))
        return profile, load_key_file(stored.key_file, password())
    path = session_key_path(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        session = load_key_file(path, password())
    else:
        session = create_session_key(path, password(), log_n=log_n)
    return SignerProfile.remote(bunker, path), session


def open_user_signer(
    config: DaemonConfig,
    *,
    password: Password,
    key_file: str | Path | None = None,
    bunker_uri: str | None = None,
    required: bool = True,
    clock: Clock | None = None,
    on_connected: OnConnected | None = None,
    on_auth_url: Callable[[str], None] | None = None,
    log_n: int = 16,
) -> Signer | None:
    """The user's signer for this run (see the module docstring for the order of choices).

    ``password`` is called only when a key file must be opened. None when no key is configured
    and ``required`` is false.
    """
    if bunker_uri:
        profile, session = _bunker_profile(config, bunker_uri, password, log_n)
        return BunkerSigner(profile, session, clock=clock, on_connected=on_connected, on_auth_url=on_auth_url)
    if key_file is None and config.signer is not None:
        profile = config.signer
        if not profile.key_file.exists():
            what = "session key" if profile.kind == "bunker" else "key"
            raise ConfigError(f"[signer] in {config.config_path}: no {what} at {profile.key_file}")
        keys = load_key_file(profile.key_file, password())
        if profile.kind == "local":
            return LocalSigner(keys)
        return BunkerSigner(profile, keys, clock=clock, on_connected=on_connected, on_auth_url=on_auth_url)
    from .paths import resolve_key_file

    path = Path(key_file) if key_file else (config.key_file or resolve_key_file(None, str(config.data_dir)))
    if not path.exists():
        if key_file or required:
            raise ConfigError(
                f"no key at {path}: create one with 'nostr-training keys generate', "
                "or use a bunker with 'nostr-training signer connect bunker://...'"
            )
        return None
    return LocalSigner(load_key_file(path, password()))


def signer_description(signer: Signer) -> str:
    """How a signer holds the key, for the stderr note of a command that signs."""
    if isinstance(signer, BunkerSigner):
        return f"bunker {signer.profile.bunker.remote_signer_pubkey[:16]}... via {', '.join(signer.profile.bunker.relays)}"
    return "local key file"
