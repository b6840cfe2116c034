"""NIP-01 events: canonical serialisation, id, BIP-340 signature, strict shape checks.

Pure: no sockets, clocks or database. The id is always recomputed from the fields; a received
id is only ever compared, never trusted.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping, Sequence

from coincurve import PrivateKey, PublicKeyXOnly

from .errors import InvalidId, InvalidKey, InvalidSignature, MalformedEvent

__all__ = [
    "Event",
    "EventTemplate",
    "KindClass",
    "kind_class",
    "serialize",
    "compute_id",
    "id_and_json",
    "sign_event",
    "signature_holds",
    "verify_event",
    "is_valid",
    "supersedes",
    "latest",
    "coordinate",
    "parse_coordinate",
    "Tags",
]

Tags = tuple[tuple[str, ...], ...]

_HEX = frozenset("0123456789abcdef")

#: The largest created_at we accept: what SQLite's INTEGER and rust-nostr's timestamp both hold.
MAX_TIMESTAMP = 2**63 - 1
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_quote = json.encoder.encode_basestring  # what _dumps writes a str as


class KindClass(enum.Enum):
    """How relays store a kind (NIP-01)."""

    REGULAR = "regular"
    REPLACEABLE = "replaceable"
    EPHEMERAL = "ephemeral"
    ADDRESSABLE = "addressable"


def kind_class(kind: int) -> KindClass:
    """The NIP-01 storage class of a kind; kinds 45-999 are stored like regular events."""
    if kind in (0, 3) or 10000 <= kind < 20000:
        return KindClass.REPLACEABLE
    if 20000 <= kind < 30000:
        return KindClass.EPHEMERAL
    if 30000 <= kind < 40000:
        return KindClass.ADDRESSABLE
    return KindClass.REGULAR


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and _HEX.issuperset(value)


def _check_tags(tags: Any, event_id: str | None) -> Tags:
    if not isinstance(tags, (list, tuple)):
        raise MalformedEvent("must be an array of arrays", field="tags", event_id=event_id)
    out = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, (list, tuple)):
            raise MalformedEvent(f"tag {i} is not an array", field="tags", event_id=event_id)
        for item in tag:
            if type(item) is not str:
                raise MalformedEvent(
                    f"tag {i} has a non-string item {item!r}", field="tags", event_id=event_id
                )
        out.append(tuple(tag))
    return tuple(out)


def serialize(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str) -> bytes:
    """The exact bytes whose SHA-256 is the event id.

    Compact JSON, non-ASCII written as-is; a lone surrogate cannot be UTF-8 and is refused.
    """
    text = _dumps([0, pubkey, created_at, kind, tags, content])
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        field = "content" if _has_surrogate(content) else "tags"
        raise MalformedEvent("contains a lone surrogate, which UTF-8 cannot carry", field=field) from exc


def _has_surrogate(value: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in value)


def id_and_json(event: Event) -> tuple[str, str]:
    """The id the event's fields hash to, and its JSON (as ``Event.to_json``), from one encoding
    of its tags and content: the store checks the id of every event it indexes and writes its
    JSON. Raises MalformedEvent for what ``serialize`` would refuse (a lone surrogate) and for
    fields of the wrong type, which an Event built by hand rather than parsed may carry."""
    named = event.id if type(event.id) is str else None
    if type(event.created_at) is not int or type(event.kind) is not int:
        raise MalformedEvent("created_at and kind must be integers", event_id=named)
    try:
        tags, content, pubkey = _dumps(event.tags), _quote(event.content), _quote(event.pubkey)
        digest = hashlib.sha256(f"[0,{pubkey},{event.created_at},{event.kind},{tags},{content}]".encode()).hexdigest()
        sig = "" if event.sig is None else f',"sig":{_quote(event.sig)}'
        return digest, (
            f'{{"id":{_quote(event.id)},"pubkey":{pubkey},"created_at":{event.created_at},'
            f'"kind":{event.kind},"tags":{tags},"content":{content}{sig}}}'
        )
    except UnicodeEncodeError as exc:
        field = "content" if _has_surrogate(event.content) else "tags"
        raise MalformedEvent("contains a lone surrogate, which UTF-8 cannot carry", field=field) from exc
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"a field is not JSON text ({exc})", event_id=named) from exc


def signature_holds(event_id: str, pubkey: str, sig: str | None) -> bool:
    """Does ``sig`` sign the id as given (which says nothing of the id matching the fields)?"""
    try:
        return bool(_xonly(pubkey).verify(bytes.fromhex(sig), bytes.fromhex(event_id)))  # type: ignore[arg-type]
    except Exception:  # a missing or malformed signature, id or key: it does not hold
        return False


def compute_id(pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str) -> str:
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """An unsigned event: what builders return and signers sign."""

    kind: int
    tags: Tags
    content: str
    created_at: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", _check_tags(self.tags, None))
        if type(self.kind) is not int or not 0 <= self.kind <= 65535:
            raise MalformedEvent("must be an integer 0..65535", field="kind")
        if type(self.created_at) is not int or not 0 <= self.created_at <= MAX_TIMESTAMP:
            raise MalformedEvent(f"must be an integer 0..{MAX_TIMESTAMP}", field="created_at")
        if not isinstance(self.content, str):
            raise MalformedEvent("must be a string", field="content")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_created_at: int | None = None) -> "EventTemplate":
        """Read a template as a user writes it: kind, tags, content, optional created_at."""
        if not isinstance(data, Mapping):
            raise MalformedEvent("an event template must be a JSON object")
        created_at = data.get("created_at", default_created_at)
        if created_at is None:
            raise MalformedEvent("is required", field="created_at")
        if "kind" not in data:
            raise MalformedEvent("is required", field="kind")
        return cls(
            kind=data["kind"],
            tags=data.get("tags", []),
            content=data.get("content", ""),
            created_at=created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tags": [list(t) for t in self.tags],
            "content": self.content,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """A signed event, or a rumor (NIP-59) when ``sig`` is None.

    Constructing one checks only the shape; ``verify_event`` checks authenticity.
    """

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str
    sig: str | None

    @classmethod
    def from_dict(cls, data: Any, *, rumor: bool = False) -> "Event":
        """Strictly read an event object; the error names the first bad field."""
        if not isinstance(data, Mapping):
            raise MalformedEvent("an event must be a JSON object")
        raw_id = data.get("id")
        event_id = raw_id if isinstance(raw_id, str) else None
        if not isinstance(raw_id, str) or not _is_hex(raw_id, 64):
            raise MalformedEvent("must be 64 lowercase hex characters", field="id", event_id=None)
        if not _is_hex(data.get("pubkey"), 64):
            raise MalformedEvent("must be 64 lowercase hex characters", field="pubkey", event_id=event_id)
        created_at = data.get("created_at")
        if type(created_at) is not int or not 0 <= created_at <= MAX_TIMESTAMP:
            raise MalformedEvent(f"must be an integer 0..{MAX_TIMESTAMP}", field="created_at", event_id=event_id)
        kind = data.get("kind")
        if type(kind) is not int or not 0 <= kind <= 65535:
            raise MalformedEvent("must be an integer 0..65535", field="kind", event_id=event_id)
        content = data.get("content")
        if not isinstance(content, str):
            raise MalformedEvent("must be a string", field="content", event_id=event_id)
        tags = _check_tags(data.get("tags"), event_id)
        sig = data.get("sig")
        if rumor:
            sig = None
        elif not _is_hex(sig, 128):
            raise MalformedEvent("must be 128 lowercase hex characters", field="sig", event_id=event_id)
        return cls(raw_id, data["pubkey"], created_at, kind, tags, content, sig)

    @classmethod
    def from_json(cls, text: str | bytes, *, rumor: bool = False) -> "Event":
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedEvent(f"not valid JSON ({exc})") from exc
        return cls.from_dict(data, rumor=rumor)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(t) for t in self.tags],
            "content": self.content,
        }
        if self.sig is not None:
            out["sig"] = self.sig
        return out

    def to_json(self) -> str:
        """Compact, in NIP-01's field order (sig absent for a rumor); written from its parts, as
        the store writes one per event it indexes."""
        sig = "" if self.sig is None else f',"sig":{_quote(self.sig)}'
        return (
            f'{{"id":{_quote(self.id)},"pubkey":{_quote(self.pubkey)},"created_at":{self.created_at},'
            f'"kind":{self.kind},"tags":{_dumps(self.tags)},"content":{_quote(self.content)}{sig}}}'
        )

    # Tag access -----------------------------------------------------------------------------

    def tags_named(self, name: str) -> Iterator[tuple[str, ...]]:
        return (t for t in self.tags if t and t[0] == name)

    def tag_value(self, name: str) -> str | None:
        """The first value of the first tag called ``name``."""
        for t in self.tags:
            if len(t) > 1 and t[0] == name:
                return t[1]
        return None

    def tag_values(self, name: str) -> list[str]:
        return [t[1] for t in self.tags if len(t) > 1 and t[0] == name]

    @property
    def d(self) -> str:
        """The ``d`` value; a missing ``d`` reads as "" as relays do."""
        return self.tag_value("d") or ""

    @property
    def kind_class(self) -> KindClass:
        return kind_class(self.kind)

    @property
    def address(self) -> str | None:
        """``kind:pubkey:d`` for replaceable and addressable events, else None."""
        cls = kind_class(self.kind)
        if cls is KindClass.ADDRESSABLE:
            return coordinate(self.kind, self.pubkey, self.d)
        if cls is KindClass.REPLACEABLE:
            return coordinate(self.kind, self.pubkey, "")
        return None

    def template(self) -> EventTemplate:
        return EventTemplate(self.kind, self.tags, self.content, self.created_at)


def coordinate(kind: int, pubkey: str, d: str) -> str:
    """An ``a`` tag value; the trailing colon stays for plain replaceable kinds."""
    return f"{kind}:{pubkey}:{d}"


def parse_coordinate(value: str) -> tuple[int, str, str]:
    """Split ``kind:pubkey:d``; ``d`` may itself contain colons."""
    parts = value.split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not _is_hex(parts[1], 64):
        raise MalformedEvent(f"not a kind:pubkey:d coordinate: {value!r}", field="a")
    kind = int(parts[0])
    if kind > 65535:
        raise MalformedEvent(f"kind out of range in coordinate {value!r}", field="a")
    return kind, parts[1], parts[2]


# Signing and verification ----------------------------------------------------------------


def _secret(secret_key: bytes | str) -> PrivateKey:
    raw = bytes.fromhex(secret_key) if isinstance(secret_key, str) else secret_key
    if len(raw) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    try:
        return PrivateKey(raw)
    except Exception as exc:  # coincurve raises ValueError for 0 or >= n
        raise InvalidKey("secret key out of range") from exc


def sign_event(template: EventTemplate, secret_key: bytes | str, *, aux: bytes | None = None) -> Event:
    """Sign a template with BIP-340 over the 32 raw id bytes, with fresh aux randomness."""
    sk = _secret(secret_key)
    pubkey = sk.public_key_xonly.format().hex()
    event_id = compute_id(pubkey, template.created_at, template.kind, template.tags, template.content)
    sig = sk.sign_schnorr(bytes.fromhex(event_id), aux if aux is not None else os.urandom(32))
    return Event(event_id, pubkey, template.created_at, template.kind, template.tags, template.content, sig.hex())


@lru_cache(maxsize=4096)
def _xonly(pubkey: str) -> PublicKeyXOnly:
    try:
        return PublicKeyXOnly(bytes.fromhex(pubkey))
    except Exception as exc:
        raise InvalidSignature(f"pubkey {pubkey[:16]} is not a point on the curve") from exc


def verify_event(event: Event) -> Event:
    """Recompute the id, compare it, then check the signature; return the event or raise."""
    expected = hashlib.sha256(
        serialize(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    ).digest()
    if expected.hex() != event.id:
        raise InvalidId(f"event {event.id[:16]}: id does not match its fields")
    if event.sig is None:
        raise InvalidSignature(f"event {event.id[:16]}: no signature")
    try:
        ok = _xonly(event.pubkey).verify(bytes.fromhex(event.sig), expected)
    except InvalidSignature:
        raise
    except Exception:
        ok = False
    if not ok:
        raise InvalidSignature(f"event {event.id[:16]}: signature does not verify")
    return event


def is_valid(event: Event) -> bool:
    try:
        verify_event(event)
    except (InvalidId, InvalidSignature, MalformedEvent):
        return False
    return True


def supersedes(new: Event, old: Event) -> bool:
    """NIP-01 tie rule for replaceable/addressable events: newer wins, then the lowest id."""
    if new.created_at != old.created_at:
        return new.created_at > old.created_at
    return new.id < old.id


def latest(events: Iterable[Event]) -> dict[str, Event]:
    """The winning version per address among replaceable/addressable events."""
    out: dict[str, Event] = {}
    for ev in events:
        addr = ev.address
        if addr is None:
            continue
        cur = out.get(addr)
        if cur is None or supersedes(ev, cur):
            out[addr] = ev
    return out
