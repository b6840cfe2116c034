"""Blossom (BUD-01, BUD-02, BUD-11): blobs addressed by sha256, and kind 24242 authorisation.

A Blossom server stores bytes under their sha256 (``GET|HEAD /<sha256>[.ext]``, ``PUT /upload``)
and answers uploads with a blob descriptor ``{url, sha256, size, type, uploaded}``. Requests it
wants authorised carry ``Authorization: Nostr <base64url of a signed kind 24242 event>`` whose
tags say the verb (``t``), until when (``expiration``), and optionally for which blobs (``x``) and
which servers (``server``, a lowercase domain, not a URL). We always scope our tokens to the hash
and the server: an unscoped token can be replayed on every other server until it expires.

BUD-11 says base64url without padding; servers in the wild also send standard base64, so both
alphabets are read, padded or not. Pure: no sockets, no clock (``now`` is an argument).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import BlossomError, InvalidEvent, MalformedEvent, MissingTag
from ..event import Event, EventTemplate, verify_event
from ..kinds import BLOSSOM_AUTH

__all__ = [
    "AUTH_SCHEME",
    "KIND_BLOSSOM_AUTH",
    "VERBS",
    "BlobDescriptor",
    "authorization_template",
    "blob_url",
    "check_authorization",
    "decode_authorization",
    "encode_authorization",
    "is_sha256",
    "parse_blob_descriptor",
    "server_domain",
    "sha256_from_url",
    "sha256_hex",
]

KIND_BLOSSOM_AUTH = BLOSSOM_AUTH
VERBS = ("get", "upload", "list", "delete", "media")
AUTH_SCHEME = "Nostr"
_HEX = frozenset("0123456789abcdef")
_HASH_IN_URL = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
_PURPOSE = {
    "get": "Get Blob",
    "upload": "Upload Blob",
    "list": "List Blobs",
    "delete": "Delete Blob",
    "media": "Upload Media",
}
_MAX_HEADER = 64 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: Any) -> bool:
    """A lowercase 64-hex sha256, as Blossom paths, ``x`` tags and descriptors spell it."""
    return isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)


def sha256_from_url(url: str) -> str | None:
    """The last 64-hex hash in a URL's path (BUD-03: try it on the author's other servers)."""
    found = _HASH_IN_URL.findall(urlsplit(url).path.lower())
    return found[-1] if found else None


def server_domain(server: str) -> str:
    """The lowercase domain a ``server`` tag names: from a URL or a bare host, never with a port."""
    text = server.strip()
    host = urlsplit(text if "://" in text else f"//{text}").hostname
    if not host:
        raise MalformedEvent(f"no domain in {server[:80]!r}", field="server")
    return host.lower()


def blob_url(server: str, sha256: str, ext: str = "") -> str:
    """``<server>/<sha256>[.ext]``: every endpoint sits at the server's root (BUD-01)."""
    if not is_sha256(sha256):
        raise MalformedEvent(f"not a lowercase sha256: {sha256[:80]!r}", field="x")
    base = server.rstrip("/")
    suffix = f".{ext.lstrip('.')}" if ext else ""
    return f"{base}/{sha256}{suffix}"


def authorization_template(
    verb: str,
    *,
    created_at: int,
    expiration: int,
    sha256: Iterable[str] = (),
    servers: Iterable[str] = (),
    content: str | None = None,
) -> EventTemplate:
    """An unsigned kind 24242 token for ``verb``, scoped to the hashes and servers given."""
    if verb not in VERBS:
        raise MalformedEvent(f"must be one of {', '.join(VERBS)}, got {verb!r}", field="t")
    if expiration <= created_at:
        raise MalformedEvent(f"must be after created_at ({created_at}), got {expiration}", field="expiration")
    tags: list[tuple[str, ...]] = [("t", verb), ("expiration", str(expiration))]
    for value in sha256:
        if not is_sha256(value):
            raise MalformedEvent(f"not a lowercase sha256: {value[:80]!r}", field="x")
        tags.append(("x", value))
    for server in servers:
        tags.append(("server", server_domain(server)))
    return EventTemplate(KIND_BLOSSOM_AUTH, tuple(tags), _PURPOSE[verb] if content is None else content, created_at)


def encode_authorization(event: Event) -> str:
    """The ``Authorization`` header value: ``Nostr`` and the event JSON in base64url, unpadded."""
    payload = base64.urlsafe_b64encode(event.to_json().encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{AUTH_SCHEME} {payload}"


def decode_authorization(header: str) -> Event:
    """The 24242 event in an ``Authorization: Nostr ...`` value; base64url or standard, padded or not."""
    if len(header) > _MAX_HEADER:
        raise MalformedEvent("authorization header is too long")
    scheme, _, payload = header.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower():
        raise MalformedEvent(f"authorization scheme must be {AUTH_SCHEME!r}, got {scheme[:20]!r}")
    payload = payload.strip().rstrip("=")
    if not payload:
        raise MalformedEvent("authorization header carries no token")
    standard = payload.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvent(f"authorization token is not base64 ({exc})") from None
    return Event.from_json(raw)


def check_authorization(
    event: Event,
    *,
    verb: str,
    server: str,
    now: int,
    sha256: str | None = None,
    x_required: bool = False,
) -> str:
    """BUD-11's validation for one request to ``server``; returns the authorising pubkey.

    ``sha256`` is the blob the endpoint implies (URL path or ``X-SHA-256``); ``x_required`` is
    set for the endpoints whose table row says so (upload, delete, mirror, media). Where ``x``
    tags are present they bind the token to those blobs on every endpoint.
    """
    where = f"event {event.id[:16]}"
    if event.kind != KIND_BLOSSOM_AUTH:
        raise MalformedEvent(
            f"an authorization token is kind {KIND_BLOSSOM_AUTH}, not {event.kind}", field="kind", event_id=event.id
        )
    if event.created_at > now:
        raise InvalidEvent(f"{where}: created_at is {event.created_at - now} s in the future")
    expiration = event.tag_value("expiration")
    if expiration is None:
        raise MissingTag("expiration", event_id=event.id)
    if not expiration.isascii() or not expiration.isdigit():
        raise MalformedEvent(f"must be decimal digits, got {expiration[:40]!r}", field="expiration", event_id=event.id)
    if int(expiration) <= now:
        raise InvalidEvent(f"{where}: the token expired at {expiration}")
    verbs = event.tag_values("t")
    if not verbs:
        raise MissingTag("t", event_id=event.id)
    if verb not in verbs:
        raise InvalidEvent(f"{where}: the token allows {', '.join(verbs)!s}, not {verb}")
    scoped_servers = event.tag_values("server")
    if scoped_servers and server_domain(server) not in {s.strip().lower() for s in scoped_servers}:
        raise InvalidEvent(f"{where}: the token is scoped to other servers, not {server_domain(server)}")
    hashes = set(event.tag_values("x"))
    if x_required and not hashes:
        raise MissingTag("x", event_id=event.id)
    if hashes and (sha256 is None or sha256 not in hashes):
        raise InvalidEvent(f"{where}: the token is scoped to other blobs, not {sha256 or 'this request'}")
    verify_event(event)
    return event.pubkey


@dataclass(frozen=True, slots=True)
class BlobDescriptor:
    """What a server says it holds (BUD-02); ``uploaded`` is None when it came from a HEAD."""

    url: str
    sha256: str
    size: int
    type: str
    uploaded: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "sha256": self.sha256, "size": self.size, "type": self.type}
        if self.uploaded is not None:
            out["uploaded"] = self.uploaded
        return out


def parse_blob_descriptor(data: Any, *, server: str | None = None) -> BlobDescriptor:
    """Strictly read a descriptor; extra fields (``nip94``, ``magnet``...) are allowed and ignored."""
    if not isinstance(data, Mapping):
        raise BlossomError("blob descriptor is not a JSON object", server=server)

    def fail(name: str, why: str) -> BlossomError:
        return BlossomError(f"blob descriptor {name}: {why}", server=server)

    url, digest, size, mime = data.get("url"), data.get("sha256"), data.get("size"), data.get("type")
    uploaded = data.get("uploaded")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise fail("url", f"must be an http(s) URL, got {str(url)[:80]!r}")
    if not is_sha256(digest):
        raise fail("sha256", f"must be 64 lowercase hex, got {str(digest)[:80]!r}")
    if type(size) is not int or size < 0:
        raise fail("size", f"must be a non-negative integer, got {size!r}")
    if mime is None or mime == "":
        mime = "application/octet-stream"
    if not isinstance(mime, str):
        raise fail("type", f"must be a MIME type string, got {mime!r}")
    if uploaded is not None and (type(uploaded) is not int or uploaded < 0):
        raise fail("uploaded", f"must be a unix timestamp, got {uploaded!r}")
    assert isinstance(digest, str)
    return BlobDescriptor(url=url, sha256=digest, size=size, type=mime, uploaded=uploaded)
