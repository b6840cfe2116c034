"""A ``Signer`` whose key lives in a NIP-46 remote signer (a bunker), reached over relays.

We hold only a client session key (at rest as ncryptsec, like any key); the user's key stays in
the bunker. Every call is one kind 24133 request through the relay pool and one response,
bounded by ``request_timeout``:

- no answer in time, or no relay took the request: ``SignerUnavailable``;
- an error answer (permission denied, wrong secret): ``SignerRefused``;
- an answer we cannot use (an event that does not verify or is not the one we asked for):
  ``SignerError``. NIP-46 says to verify every event a signer returns. Signers built on NDK
  (nsecBunker among them) run the template through NDK's content tagger: it appends a ``t``
  tag per ``#hashtag`` in the content, and merges away any tag that is a prefix of another
  (or a duplicate). Appended tags are accepted (except on seals, which must stay tagless);
  a changed, dropped or reordered tag, content or time is refused.

An ``auth_url`` answer is shown through ``on_auth_url`` and the same request keeps waiting, for
``auth_timeout`` (a human is clicking). The first call connects (with the bunker secret, once)
and asks ``get_public_key``: the remote-signer key may differ from the user's key.

``SignerProfile`` says which kind of signer a configuration uses; ``open_signer`` builds it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .clock import Clock, SystemClock
from .errors import (
    ConfigError,
    EncodingError,
    InvalidEvent,
    MalformedEvent,
    NostrTrainingError,
    SignerError,
    SignerRefused,
    SignerUnavailable,
)
from .event import Event, EventTemplate, verify_event
from .filters import Filter
from .keys import Keys, load_key_file, save_key_file
from .kinds import PRIVATE_KINDS
from .nips import nip44, nip46
from .nips.nip46 import BunkerUri, NostrConnectUri, Request, Response
from .nips.nip65 import normalize_relay_url
from .signer import LocalSigner, Signer

if TYPE_CHECKING:
    from .daemon.relays import RelayPool

__all__ = [
    "DEFAULT_AUTH_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "RemoteSigner",
    "SignerProfile",
    "create_session_key",
    "open_signer",
]

DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_AUTH_TIMEOUT = 300.0
_SINCE_SLACK = 60
"""Seconds of clock skew tolerated between us, the relay and the signer."""

OnAuthUrl = Callable[[str], None]
_instances = itertools.count(1)


def _report_auth_url(url: str) -> None:
    logging.getLogger("nostr_training.remote_signer").warning("the remote signer asks you to approve at %s", url)


class RemoteSigner:
    """NIP-46 client: a ``Signer`` over ``pool`` for the bunker at ``bunker``.

    ``session`` is the client session key. ``permissions`` are asked for at connect (by default
    every kind we sign and NIP-44 both ways).
    """

    def __init__(
        self,
        pool: RelayPool,
        session: Keys,
        bunker: BunkerUri,
        *,
        clock: Clock | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        auth_timeout: float = DEFAULT_AUTH_TIMEOUT,
        on_auth_url: OnAuthUrl = _report_auth_url,
        permissions: Sequence[str] | None = None,
        logger: logging.Logger | None = None,
    ):
        self._pool = pool
        self._session = session
        self._bunker = bunker
        self._clock = clock or SystemClock()
        self._request_timeout = request_timeout
        self._auth_timeout = auth_timeout
        self._on_auth_url = on_auth_url
        self._permissions = tuple(permissions) if permissions is not None else nip46.default_permissions()
        self._log = logger or logging.getLogger("nostr_training.remote_signer")
        self._conversation_key = nip44.get_conversation_key(session.secret, bunker.remote_signer_pubkey)
        self._waiting: dict[str, asyncio.Queue[Response]] = {}
        self._subscription = f"nip46:{session.public_key[:16]}:{next(_instances)}"
        self._subscribed: asyncio.Event | None = None
        self._subscribe_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._user_pubkey: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"RemoteSigner(remote_signer={self._bunker.remote_signer_pubkey!r}, user={self._user_pubkey!r})"

    @property
    def session_pubkey(self) -> str:
        return self._session.public_key

    @property
    def connection_uri(self) -> BunkerUri:
        """The bunker URI to keep in the configuration: the secret goes once it is spent."""
        return self._bunker.without_secret() if self._user_pubkey is not None else self._bunker

    @property
    def relays(self) -> tuple[str, ...]:
        return self._bunker.relays

    # Pairing by nostrconnect:// ---------------------------------------------------------------

    @classmethod
    def nostrconnect_uri(
        cls, session: Keys, relays: Sequence[str], *, name: str = "nostr-training", secret: str | None = None,
        permissions: Sequence[str] | None = None,
    ) -> NostrConnectUri:
        """The URI to show (as text or QR) for the user to scan in their signer app."""
        return NostrConnectUri(
            session.public_key,
            tuple(dict.fromkeys(normalize_relay_url(r) for r in relays)),
            secret or nip46.new_secret(),
            tuple(permissions) if permissions is not None else nip46.default_permissions(),
            name,
        )

    @classmethod
    async def pair(
        cls, pool: RelayPool, session: Keys, uri: NostrConnectUri, *, timeout: float = DEFAULT_AUTH_TIMEOUT,
        on_listening: Callable[[], None] | None = None, **kwargs: Any,
    ) -> RemoteSigner:
        """Wait for a signer app to answer ``uri`` with its secret; return the connected signer.

        Whoever echoes the secret becomes the remote signer; any other answer is ignored.
        ``on_listening`` runs once a relay is live: show the URI (or its QR code) then, since
        an answer sent before that is lost (kind 24133 is ephemeral).
        """
        if uri.client_pubkey != session.public_key:
            raise ConfigError("the nostrconnect:// URI was made for another session key")
        clock: Clock = kwargs.get("clock") or SystemClock()
        found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        log = kwargs.get("logger") or logging.getLogger("nostr_training.remote_signer")

        async def on_event(relay: str, event: Event) -> None:
            if found.done() or event.kind != nip46.KIND_NOSTR_CONNECT:
                return
            try:
                message = nip46.open_message(event, session.secret)
            except NostrTrainingError as exc:
                log.debug("nostrconnect: unreadable message from %s: %s", event.pubkey[:16], exc)
                return
            if isinstance(message, Response) and message.result == uri.secret:
                found.set_result(event.pubkey)

        listening = False

        async def on_eose(relay: str) -> None:
            nonlocal listening
            if not listening and on_listening is not None:
                on_listening()
            listening = True

        key = f"nip46-pair:{session.public_key[:16]}"
        await pool.subscribe(key, [_inbox_filter(session.public_key, clock.now())], list(uri.relays), on_event,
                             on_eose=on_eose)
        try:
            async with asyncio.timeout(timeout):
                remote_pubkey = await found
        except TimeoutError:
            raise SignerUnavailable(f"no signer answered the nostrconnect:// URI within {timeout:g} s") from None
        finally:
            await pool.unsubscribe(key)
        signer = cls(pool, session, BunkerUri(remote_pubkey, uri.relays), **kwargs)
        await signer._subscribe()
        signer._user_pubkey = await signer._get_public_key()
        return signer

    # Session ----------------------------------------------------------------------------------

    async def connect(self) -> str:
        """Connect (once) and return the user's pubkey; later calls return it at once."""
        async with self._connect_lock:
            if self._user_pubkey is not None:
                return self._user_pubkey
            await self._subscribe()
            params = [self._bunker.remote_signer_pubkey, self._bunker.secret or "", ",".join(self._permissions)]
            answer = await self._call("connect", params)
            if answer != "ack" and (self._bunker.secret is None or answer != self._bunker.secret):
                raise SignerError(f"remote signer answered connect with {str(answer)[:60]!r}, not ack")
            self._user_pubkey = await self._get_public_key()
            self._log.info("remote signer %s connected for %s", self._bunker.remote_signer_pubkey[:16],
                           self._user_pubkey[:16])
            return self._user_pubkey

    async def ping(self) -> None:
        await self.connect()
        answer = await self._call("ping", [])
        if answer != "pong":
            raise SignerError(f"remote signer answered ping with {str(answer)[:60]!r}")

    async def switch_relays(self) -> tuple[str, ...]:
        """Ask the signer where it wants to talk now; move there when it names relays."""
        await self.connect()
        answer = await self._call("switch_relays", [])
        if answer is None:
            return self._bunker.relays
        relays: Any = json.loads(answer) if isinstance(answer, str) else answer
        if not isinstance(relays, list) or not relays or not all(isinstance(r, str) for r in relays):
            raise SignerError("remote signer answered switch_relays with something that is not a relay list")
        try:
            normalized = tuple(dict.fromkeys(normalize_relay_url(r) for r in relays))
        except MalformedEvent as exc:
            raise SignerError(f"remote signer named a bad relay: {exc}") from None
        if normalized != self._bunker.relays:
            await self._pool.unsubscribe(self._subscription)
            self._subscribed = None
            self._bunker = BunkerUri(self._bunker.remote_signer_pubkey, normalized, self._bunker.secret)
            await self._subscribe()
        return normalized

    async def close(self) -> None:
        """Stop listening; pending calls fail as unavailable. The pool stays open (it is shared)."""
        self._closed = True
        await self._pool.unsubscribe(self._subscription)
        self._subscribed = None

    # Signer -----------------------------------------------------------------------------------

    async def get_public_key(self) -> str:
        return await self.connect()

    async def sign_event(self, template: EventTemplate) -> Event:
        user = await self.connect()
        body = json.dumps(
            {"kind": template.kind, "content": template.content, "tags": [list(t) for t in template.tags],
             "created_at": template.created_at},
            ensure_ascii=False, separators=(",", ":"),
        )
        answer = await self._call("sign_event", [body], kind=template.kind)
        try:
            event = verify_event(Event.from_json(answer if isinstance(answer, str) else json.dumps(answer)))
        except (MalformedEvent, InvalidEvent) as exc:
            raise SignerError(f"remote signer returned an event that does not verify: {exc}") from None
        if event.pubkey != user:
            raise SignerError(f"remote signer signed as {event.pubkey[:16]}, not the user {user[:16]}")
        if (event.kind, event.content, event.created_at) != (template.kind, template.content, template.created_at):
            raise SignerError(f"remote signer changed the kind {template.kind} event it was asked to sign")
        if event.tags != template.tags:
            extended = event.tags[: len(template.tags)] == template.tags and template.kind not in PRIVATE_KINDS
            if not extended:
                raise SignerError(
                    f"remote signer changed the tags of the kind {template.kind} event it was asked to sign"
                )
            self._log.info("remote signer added tags to kind %d: %s", template.kind,
                           [t[0] for t in event.tags[len(template.tags):]])
        return event

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        await self.connect()
        return self._text(await self._call("nip44_encrypt", [peer_pubkey, plaintext]), "nip44_encrypt")

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        await self.connect()
        return self._text(await self._call("nip44_decrypt", [peer_pubkey, payload]), "nip44_decrypt")

    # Transport --------------------------------------------------------------------------------

    @staticmethod
    def _text(answer: Any, method: str) -> str:
        if not isinstance(answer, str):
            raise SignerError(f"remote signer answered {method} with a {type(answer).__name__}, not text")
        return answer

    async def _get_public_key(self) -> str:
        answer = self._text(await self._call("get_public_key", []), "get_public_key").lower()
        if len(answer) != 64 or any(c not in "0123456789abcdef" for c in answer):
            raise SignerError(f"remote signer answered get_public_key with {answer[:70]!r}")
        return answer

    async def _subscribe(self) -> None:
        """Listen for answers, and wait until a relay is live: kind 24133 is ephemeral, so an
        answer sent before our REQ is open is lost."""
        async with self._subscribe_lock:
            await self._subscribe_once()

    async def _subscribe_once(self) -> None:
        if self._subscribed is not None and self._subscribed.is_set():
            return
        if self._closed:
            raise SignerUnavailable("the remote signer session is closed")
        live = asyncio.Event()
        self._subscribed = live

        async def on_eose(relay: str) -> None:
            live.set()

        await self._pool.subscribe(
            self._subscription,
            [_inbox_filter(self._session.public_key, self._clock.now(), self._bunker.remote_signer_pubkey)],
            list(self._bunker.relays),
            self._on_event,
            on_eose=on_eose,
        )
        try:
            async with asyncio.timeout(self._request_timeout):
                await live.wait()
        except TimeoutError:
            await self._pool.unsubscribe(self._subscription)
            self._subscribed = None
            raise SignerUnavailable(
                f"no relay of the remote signer answered within {self._request_timeout:g} s: {', '.join(self.relays)}"
            ) from None

    async def _on_event(self, relay: str, event: Event) -> None:
        if event.pubkey != self._bunker.remote_signer_pubkey or event.kind != nip46.KIND_NOSTR_CONNECT:
            return
        try:
            message = nip46.open_message(event, self._session.secret, conversation_key=self._conversation_key)
        except NostrTrainingError as exc:
            self._log.info("remote signer message %s from %s unreadable: %s", event.id[:16], relay, exc)
            return
        if isinstance(message, Response):
            queue = self._waiting.get(message.id)
            if queue is not None:
                queue.put_nowait(message)

    async def _call(self, method: str, params: Sequence[str], *, kind: int | None = None) -> Any:
        """One request, one answer (after any auth challenges); raises on refusal or silence."""
        await self._subscribe()
        request = Request(nip46.new_request_id(), method, tuple(params))
        event = nip46.message_event(
            request, self._session.secret, self._bunker.remote_signer_pubkey,
            created_at=self._clock.now(), conversation_key=self._conversation_key,
        )
        queue: asyncio.Queue[Response] = asyncio.Queue()
        self._waiting[request.id] = queue
        what = f"{method}" + (f" (kind {kind})" if kind is not None else "")
        try:
            results = await self._pool.publish(event, list(self._bunker.relays), timeout=self._request_timeout)
            if not any(r.ok for r in results.values()):
                reasons = "; ".join(f"{url}: {r.message}" for url, r in results.items())
                raise SignerUnavailable(f"no relay of the remote signer took the {what} request: {reasons}")
            timeout = self._request_timeout
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        response = await queue.get()
                except TimeoutError:
                    raise SignerUnavailable(
                        f"remote signer {self._bunker.remote_signer_pubkey[:16]} did not answer {what} "
                        f"within {timeout:g} s"
                    ) from None
                if response.auth_url is not None:
                    try:
                        url = nip46.check_auth_url(response.auth_url)
                    except EncodingError as exc:
                        raise SignerError(str(exc)) from None
                    self._on_auth_url(url)
                    timeout = self._auth_timeout
                    continue
                if response.refused:
                    raise SignerRefused(
                        f"remote signer refused {what}: {response.error or 'no reason given'}", method=method
                    )
                return response.result
        finally:
            self._waiting.pop(request.id, None)


def _inbox_filter(session_pubkey: str, now: int, remote_pubkey: str | None = None) -> Filter:
    return Filter(
        kinds=frozenset({nip46.KIND_NOSTR_CONNECT}),
        authors=frozenset({remote_pubkey}) if remote_pubkey else None,
        tags={"p": frozenset({session_pubkey})},
        since=max(0, now - _SINCE_SLACK),
    )


# Profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerProfile:
    """Which signer a configuration uses.

    ``local``: ``key_file`` is the user's own key (ncryptsec). ``bunker``: ``uri`` is the
    ``bunker://`` URI and ``key_file`` the client session key (ncryptsec); the user's key is
    never on this machine.
    """

    kind: Literal["local", "bunker"]
    key_file: Path
    uri: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    pubkey: str | None = None
    """The user's pubkey once a connect told it: a daemon starts without asking the signer."""

    def __post_init__(self) -> None:
        if self.kind not in ("local", "bunker"):
            raise ConfigError(f"signer kind is local or bunker, not {self.kind!r}")
        object.__setattr__(self, "key_file", Path(self.key_file))
        if self.kind == "bunker":
            if not self.uri:
                raise ConfigError("a bunker signer profile needs its bunker:// URI")
            try:
                nip46.parse_bunker_uri(self.uri)
            except EncodingError as exc:
                raise ConfigError(f"signer URI: {exc}") from None
        elif self.uri is not None:
            raise ConfigError("a local signer profile has no URI")
        if not self.request_timeout > 0:
            raise ConfigError("signer request timeout must be positive")
        if self.pubkey is not None and not nip46._is_pubkey(self.pubkey):
            raise ConfigError(f"signer pubkey is 64 lowercase hex, not {self.pubkey[:70]!r}")

    @property
    def bunker(self) -> BunkerUri:
        if self.uri is None:
            raise ConfigError("a local signer profile has no bunker URI")
        return nip46.parse_bunker_uri(self.uri)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "key_file": str(self.key_file)}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.request_timeout != DEFAULT_REQUEST_TIMEOUT:
            out["request_timeout"] = self.request_timeout
        if self.pubkey is not None:
            out["pubkey"] = self.pubkey
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignerProfile:
        if not isinstance(data, Mapping):
            raise ConfigError("a signer profile is a table")
        unknown = set(data) - {"kind", "key_file", "uri", "request_timeout", "pubkey"}
        if unknown:
            raise ConfigError(f"signer profile: unknown settings {', '.join(sorted(unknown))}")
        if "key_file" not in data or "kind" not in data:
            raise ConfigError("signer profile needs kind and key_file")
        timeout = data.get("request_timeout", DEFAULT_REQUEST_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ConfigError("signer request_timeout is a number of seconds")
        pubkey = data.get("pubkey")
        if pubkey is not None and not isinstance(pubkey, str):
            raise ConfigError("signer pubkey is a 64-hex string")
        return cls(data["kind"], Path(data["key_file"]), data.get("uri"), float(timeout), pubkey)

    @classmethod
    def local(cls, key_file: str | Path) -> SignerProfile:
        return cls("local", Path(key_file))

    @classmethod
    def remote(cls, uri: str | BunkerUri, session_key_file: str | Path, **kwargs: Any) -> SignerProfile:
        return cls("bunker", Path(session_key_file), str(uri), **kwargs)


def create_session_key(path: str | Path, password: str, *, log_n: int = 16) -> Keys:
    """A fresh client session key, saved as ncryptsec (the bunker learns its pubkey at connect)."""
    keys = Keys.generate()
    save_key_file(path, keys, password, log_n=log_n)
    return keys


def open_signer(
    profile: SignerProfile,
    password: str,
    *,
    pool: RelayPool | None = None,
    clock: Clock | None = None,
    on_auth_url: OnAuthUrl = _report_auth_url,
) -> Signer:
    """The ``Signer`` a profile describes: its key file is decrypted with ``password``.

    A bunker profile needs the relay pool it talks through; it connects on first use.
    """
    keys = load_key_file(profile.key_file, password)
    if profile.kind == "local":
        return LocalSigner(keys)
    if pool is None:
        raise ConfigError("a bunker signer needs a relay pool")
    return RemoteSigner(pool, keys, profile.bunker, clock=clock, request_timeout=profile.request_timeout,
                        on_auth_url=on_auth_url)
