"""NIP-46 remote signing, the pure part: connection URIs, messages and permissions.

A remote signer ("bunker") holds the user's key; we hold only a throwaway client session key.
Both sides talk in kind 24133 events whose content is NIP-44 encrypted JSON between the session
key and the remote-signer key: a request ``{"id", "method", "params": [strings]}`` p-tags the
remote signer, a response ``{"id", "result", "error"?}`` p-tags the client.

Two ways to pair:
- ``bunker://<remote-signer-pubkey>?relay=…&secret=…``, made by the signer and pasted into us;
  we send ``connect`` with the (single-use) secret;
- ``nostrconnect://<client-pubkey>?relay=…&secret=…&perms=…&name=…``, made by us and scanned by
  the signer app, which answers with a response whose ``result`` is our secret. We must check it.

The remote-signer pubkey may differ from the user's pubkey: ask ``get_public_key`` after
connecting. A signer may answer ``result: "auth_url"`` with a URL in ``error``: show it to the
user and keep waiting on the same request id.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from ..errors import EncodingError, MalformedEvent
from ..event import Event, EventTemplate, sign_event
from . import nip44
from .nip65 import normalize_relay_url

__all__ = [
    "ENCRYPTION_PERMISSIONS",
    "KIND_NOSTR_CONNECT",
    "METHODS",
    "BunkerUri",
    "NostrConnectUri",
    "Request",
    "Response",
    "check_auth_url",
    "default_permissions",
    "message_event",
    "new_request_id",
    "new_secret",
    "open_message",
    "parse_bunker_uri",
    "parse_connection_uri",
    "parse_message",
    "parse_nostrconnect_uri",
    "parse_permissions",
    "sign_event_permission",
    "signing_permissions",
]

KIND_NOSTR_CONNECT = 24133

METHODS = frozenset({
    "connect",
    "sign_event",
    "get_public_key",
    "ping",
    "switch_relays",
    "logout",
    "nip04_encrypt",
    "nip04_decrypt",
    "nip44_encrypt",
    "nip44_decrypt",
})

ENCRYPTION_PERMISSIONS = ("nip44_encrypt", "nip44_decrypt")

_BUNKER = "bunker"
_NOSTRCONNECT = "nostrconnect"


def _is_pubkey(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _split(text: str, scheme: str) -> tuple[str, list[tuple[str, str]]]:
    if not isinstance(text, str):
        raise EncodingError(f"a {scheme}:// URI is a string")
    stripped = text.strip()
    try:
        parts = urlsplit(stripped)
    except ValueError as exc:
        raise EncodingError(f"not a {scheme}:// URI: {exc}") from None
    if parts.scheme.lower() != scheme:
        raise EncodingError(f"expected a {scheme}:// URI, got {stripped[:40]!r}")
    # ``bunker://<hex>`` puts the key in the netloc; some signers write ``bunker:<hex>``.
    pubkey = (parts.netloc or parts.path).strip("/").lower()
    if not _is_pubkey(pubkey):
        raise EncodingError(f"{scheme}:// URI: {pubkey[:70]!r} is not a 64-hex public key")
    return pubkey, parse_qsl(parts.query, keep_blank_values=True)


def _relays(scheme: str, pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    relays: dict[str, None] = {}
    for key, value in pairs:
        if key != "relay":
            continue
        try:
            relays[normalize_relay_url(value)] = None
        except MalformedEvent as exc:
            raise EncodingError(f"{scheme}:// URI: bad relay {value[:80]!r} ({exc})") from None
    if not relays:
        raise EncodingError(f"a {scheme}:// URI names at least one relay")
    return tuple(relays)


def _first(pairs: list[tuple[str, str]], key: str) -> str | None:
    for k, v in pairs:
        if k == key and v != "":
            return v
    return None


def _query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


@dataclass(frozen=True, slots=True)
class BunkerUri:
    """``bunker://``: where the remote signer listens and the one-time secret it expects."""

    remote_signer_pubkey: str
    relays: tuple[str, ...]
    secret: str | None = None

    def __str__(self) -> str:
        pairs = [("relay", r) for r in self.relays]
        if self.secret:
            pairs.append(("secret", self.secret))
        return f"{_BUNKER}://{self.remote_signer_pubkey}?{_query(pairs)}"

    def without_secret(self) -> BunkerUri:
        """The form to keep once the secret is spent (NIP-46 secrets are single-use)."""
        return BunkerUri(self.remote_signer_pubkey, self.relays, None)


@dataclass(frozen=True, slots=True)
class NostrConnectUri:
    """``nostrconnect://``: our session pubkey, where to answer, the secret and what we ask for."""

    client_pubkey: str
    relays: tuple[str, ...]
    secret: str
    perms: tuple[str, ...] = ()
    name: str | None = None
    url: str | None = None
    image: str | None = None

    def __str__(self) -> str:
        pairs = [("relay", r) for r in self.relays]
        pairs.append(("secret", self.secret))
        if self.perms:
            pairs.append(("perms", ",".join(self.perms)))
        for key in ("name", "url", "image"):
            value = getattr(self, key)
            if value:
                pairs.append((key, value))
        return f"{_NOSTRCONNECT}://{self.client_pubkey}?{_query(pairs)}"


def parse_bunker_uri(text: str) -> BunkerUri:
    pubkey, pairs = _split(text, _BUNKER)
    return BunkerUri(pubkey, _relays(_BUNKER, pairs), _first(pairs, "secret"))


def parse_nostrconnect_uri(text: str) -> NostrConnectUri:
    pubkey, pairs = _split(text, _NOSTRCONNECT)
    secret = _first(pairs, "secret")
    if secret is None:
        raise EncodingError("a nostrconnect:// URI needs a secret (the client checks the signer echoes it)")
    perms = _first(pairs, "perms")
    return NostrConnectUri(
        pubkey,
        _relays(_NOSTRCONNECT, pairs),
        secret,
        parse_permissions(perms) if perms else (),
        _first(pairs, "name"),
        _first(pairs, "url"),
        _first(pairs, "image"),
    )


def parse_connection_uri(text: str) -> BunkerUri | NostrConnectUri:
    """Either kind of connection string, told apart by its scheme."""
    scheme = text.strip().split(":", 1)[0].lower() if isinstance(text, str) else ""
    if scheme == _BUNKER:
        return parse_bunker_uri(text)
    if scheme == _NOSTRCONNECT:
        return parse_nostrconnect_uri(text)
    raise EncodingError("a remote signer is given as bunker://… or nostrconnect://…")


def new_secret() -> str:
    """A fresh connection secret (128 bits, URL-safe)."""
    return secrets.token_hex(16)


def new_request_id() -> str:
    return secrets.token_hex(8)


# Messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    method: str
    params: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "method": self.method, "params": list(self.params)},
                          ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Response:
    id: str
    result: Any
    """A string for every method; ``switch_relays`` may answer a JSON array or null."""
    error: str | None = None

    @property
    def auth_url(self) -> str | None:
        """The URL the user must open when the signer answers with an auth challenge."""
        if self.result == "auth_url" and self.error:
            return self.error
        return None

    @property
    def refused(self) -> bool:
        """An error answer that is not an auth challenge."""
        return self.auth_url is None and (bool(self.error) or self.result == "error")

    def to_json(self) -> str:
        body: dict[str, Any] = {"id": self.id, "result": self.result}
        if self.error is not None:
            body["error"] = self.error
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def parse_message(text: str) -> Request | Response:
    """Read decrypted content: a request has ``method``, a response has ``result`` or ``error``."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise MalformedEvent(f"NIP-46 content is not JSON ({exc})", field="content") from None
    if not isinstance(body, Mapping):
        raise MalformedEvent("NIP-46 content is not a JSON object", field="content")
    message_id = body.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedEvent("NIP-46 message without a string id", field="id")
    if "method" in body:
        method, params = body["method"], body.get("params", [])
        if not isinstance(method, str) or not method:
            raise MalformedEvent("method must be a non-empty string", field="method")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise MalformedEvent("params must be a list of strings", field="params")
        return Request(message_id, method, tuple(params))
    if "result" not in body and "error" not in body:
        raise MalformedEvent("a NIP-46 response has a result or an error", field="result")
    error = body.get("error")
    if error is not None and not isinstance(error, str):
        error = json.dumps(error)
    return Response(message_id, body.get("result"), error or None)


def message_event(
    message: Request | Response, sender_secret: bytes, recipient_pubkey: str, *, created_at: int,
    conversation_key: bytes | None = None,
) -> Event:
    """A signed kind 24133 carrying ``message`` to ``recipient_pubkey``."""
    key = conversation_key or nip44.get_conversation_key(sender_secret, recipient_pubkey)
    template = EventTemplate(
        KIND_NOSTR_CONNECT, (("p", recipient_pubkey),), nip44.encrypt(message.to_json(), key), created_at
    )
    return sign_event(template, sender_secret)


def open_message(event: Event, recipient_secret: bytes, *, conversation_key: bytes | None = None) -> Request | Response:
    """Decrypt and read a kind 24133 addressed to us (the caller has verified the event)."""
    if event.kind != KIND_NOSTR_CONNECT:
        raise MalformedEvent(f"a NIP-46 message is kind {KIND_NOSTR_CONNECT}, not {event.kind}",
                             field="kind", event_id=event.id)
    key = conversation_key or nip44.get_conversation_key(recipient_secret, event.pubkey)
    return parse_message(nip44.decrypt(event.content, key))


# Permissions ------------------------------------------------------------------------------


def sign_event_permission(kind: int) -> str:
    return f"sign_event:{kind}"


def signing_permissions() -> tuple[str, ...]:
    """``sign_event:<kind>`` for every kind this program signs with the user's key.

    Every kind in ``kinds.KINDS`` is one we read or write, except those that are never signed by
    the user: rumors (the private kinds other than the seal, which the author does sign) and gift
    wraps, which carry a one-time key's signature.
    """
    from .. import kinds

    never_signed = (kinds.PRIVATE_KINDS - {kinds.SEAL}) | {kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL}
    return tuple(sign_event_permission(k) for k in sorted(kinds.KINDS) if k not in never_signed)


def default_permissions() -> tuple[str, ...]:
    """What we ask a signer for at connect: our kinds, then NIP-44 both ways."""
    return signing_permissions() + ENCRYPTION_PERMISSIONS


def parse_permissions(text: str) -> tuple[str, ...]:
    """``nip44_encrypt,sign_event:14`` into its items; unknown methods are refused."""
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        method, _, param = item.partition(":")
        if method not in METHODS:
            raise EncodingError(f"unknown NIP-46 permission {item!r}")
        if method == "sign_event" and param and not param.isdigit():
            raise EncodingError(f"sign_event permission takes a kind number, got {item!r}")
        out.append(item)
    return tuple(dict.fromkeys(out))


def check_auth_url(url: str) -> str:
    """An auth challenge URL is shown to the user, so it must be plain http(s) and printable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or not url.isprintable():
        raise EncodingError(f"remote signer sent an auth URL that is not http(s): {url[:80]!r}")
    return url
