"""NIP-19 bech32-encoded entities: npub, nsec, note, nprofile, nevent, naddr, ncryptsec.

For display and input only; events and filters always carry hex. A ``nostr:`` prefix (NIP-21)
is accepted on input. Unknown TLV records are skipped, as the NIP asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from coincurve import PublicKeyXOnly

from ..errors import EncodingError
from . import SECP256K1_ORDER
from .bech32 import bech32_decode, bech32_encode

__all__ = [
    "ProfilePointer",
    "EventPointer",
    "AddressPointer",
    "Decoded",
    "npub_encode",
    "nsec_encode",
    "note_encode",
    "nprofile_encode",
    "nevent_encode",
    "naddr_encode",
    "ncryptsec_encode",
    "encode",
    "decode",
    "pubkey_from_text",
]

URI_PREFIX = "nostr:"
TLV_SPECIAL = 0
TLV_RELAY = 1
TLV_AUTHOR = 2
TLV_KIND = 3
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class ProfilePointer:
    pubkey: str
    relays: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventPointer:
    id: str
    relays: tuple[str, ...] = ()
    author: str | None = None
    kind: int | None = None


@dataclass(frozen=True, slots=True)
class AddressPointer:
    kind: int
    pubkey: str
    identifier: str
    relays: tuple[str, ...] = ()


class Decoded(NamedTuple):
    """What ``decode`` found: the prefix and its value (hex, bytes or a pointer)."""

    hrp: str
    data: Any


def _hex32(value: str, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64 or not _HEX.issuperset(value.lower()):
        raise EncodingError(f"{what} must be 64 hex characters")
    return bytes.fromhex(value)


def _secret_bytes(secret: bytes | str) -> bytes:
    raw = _hex32(secret, "secret key") if isinstance(secret, str) else bytes(secret)
    if len(raw) != 32:
        raise EncodingError("secret key must be 32 bytes")
    if not 0 < int.from_bytes(raw, "big") < SECP256K1_ORDER:
        raise EncodingError("secret key must be between 1 and the secp256k1 group order - 1")
    return raw


def _kind_bytes(kind: int, limit: int) -> bytes:
    if type(kind) is not int or not 0 <= kind <= limit:
        raise EncodingError(f"kind must be an integer 0..{limit}")
    return kind.to_bytes(4, "big")


def _tlv(record_type: int, value: bytes, what: str) -> bytes:
    if len(value) > 255:
        raise EncodingError(f"{what} is {len(value)} bytes; a NIP-19 TLV value holds at most 255")
    return bytes([record_type, len(value)]) + value


def _relay_records(relays: Iterable[str]) -> bytes:
    if isinstance(relays, str):
        raise EncodingError("relays must be a list of URLs, not one string")
    return b"".join(_tlv(TLV_RELAY, r.encode("utf-8"), f"relay {r[:40]!r}") for r in relays)


def npub_encode(pubkey_hex: str) -> str:
    return bech32_encode("npub", _hex32(pubkey_hex, "pubkey"))


def nsec_encode(secret: bytes | str) -> str:
    return bech32_encode("nsec", _secret_bytes(secret))


def note_encode(event_id_hex: str) -> str:
    return bech32_encode("note", _hex32(event_id_hex, "event id"))


def nprofile_encode(pubkey: str, relays: Iterable[str] = ()) -> str:
    data = _tlv(TLV_SPECIAL, _hex32(pubkey, "pubkey"), "pubkey") + _relay_records(relays)
    return bech32_encode("nprofile", data)


def nevent_encode(
    event_id: str, relays: Iterable[str] = (), author: str | None = None, kind: int | None = None
) -> str:
    data = _tlv(TLV_SPECIAL, _hex32(event_id, "event id"), "event id") + _relay_records(relays)
    if author is not None:
        data += _tlv(TLV_AUTHOR, _hex32(author, "author"), "author")
    if kind is not None:
        data += _tlv(TLV_KIND, _kind_bytes(kind, 2**32 - 1), "kind")
    return bech32_encode("nevent", data)


def naddr_encode(kind: int, pubkey: str, identifier: str, relays: Iterable[str] = ()) -> str:
    """An address; ``identifier`` is the ``d`` value ("" for plain replaceable kinds)."""
    if not isinstance(identifier, str):
        raise EncodingError("naddr identifier (d) must be text")
    try:
        d = identifier.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError("naddr identifier (d) contains a lone surrogate") from exc
    data = (
        _tlv(TLV_SPECIAL, d, "naddr identifier (d)")
        + _relay_records(relays)
        + _tlv(TLV_AUTHOR, _hex32(pubkey, "pubkey"), "pubkey")
        + _tlv(TLV_KIND, _kind_bytes(kind, 2**32 - 1), "kind")
    )
    return bech32_encode("naddr", data)


def ncryptsec_encode(raw: bytes) -> str:
    """Bech32 of an already built NIP-49 payload (see ``nips.nip49``)."""
    return bech32_encode("ncryptsec", bytes(raw))


_ENCODERS: dict[str, Callable[..., str]] = {
    "npub": npub_encode,
    "nsec": nsec_encode,
    "note": note_encode,
    "nprofile": nprofile_encode,
    "nevent": nevent_encode,
    "naddr": naddr_encode,
    "ncryptsec": ncryptsec_encode,
}


def encode(kind_name: str, *values: Any) -> str:
    """Encode by entity name, e.g. ``encode("naddr", 31923, pubkey, "lesson-1", ["wss://r"])``."""
    encoder = _ENCODERS.get(kind_name)
    if encoder is None:
        raise EncodingError(f"unknown NIP-19 entity {kind_name!r}; one of {', '.join(_ENCODERS)}")
    try:
        return encoder(*values)
    except TypeError as exc:
        raise EncodingError(f"wrong arguments for {kind_name}: {exc}") from exc


def _parse_tlv(data: bytes, hrp: str) -> dict[int, list[bytes]]:
    records: dict[int, list[bytes]] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise EncodingError(f"{hrp}: truncated TLV record header")
        record_type, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if len(value) != length:
            raise EncodingError(f"{hrp}: TLV record {record_type} is truncated")
        records.setdefault(record_type, []).append(value)
        i += 2 + length
    return records


def _one(records: dict[int, list[bytes]], record_type: int, hrp: str, what: str, size: int | None) -> bytes | None:
    values = records.get(record_type)
    if not values:
        return None
    value = values[0]
    if size is not None and len(value) != size:
        raise EncodingError(f"{hrp}: {what} is {len(value)} bytes, expected {size}")
    return value


def _relays(records: dict[int, list[bytes]], hrp: str) -> tuple[str, ...]:
    try:
        return tuple(r.decode("utf-8") for r in records.get(TLV_RELAY, ()))
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{hrp}: relay URL is not UTF-8") from exc


def _required(value: bytes | None, hrp: str, what: str) -> bytes:
    if value is None:
        raise EncodingError(f"{hrp}: missing required {what}")
    return value


def _fixed(data: bytes, hrp: str, size: int = 32) -> bytes:
    if len(data) != size:
        raise EncodingError(f"{hrp}: payload is {len(data)} bytes, expected {size}")
    return data


def _strip(text: str) -> str:
    if not isinstance(text, str):
        raise EncodingError("NIP-19 input must be text")
    text = text.strip()
    if text[: len(URI_PREFIX)].lower() == URI_PREFIX:
        text = text[len(URI_PREFIX) :]
    return text


def decode(text: str) -> Decoded:
    """Decode any NIP-19 entity; the data type depends on the prefix (see module docs)."""
    hrp, data = bech32_decode(_strip(text))
    if hrp == "npub":
        return Decoded(hrp, _fixed(data, hrp).hex())
    if hrp == "nsec":
        return Decoded(hrp, _fixed(data, hrp))
    if hrp == "note":
        return Decoded(hrp, _fixed(data, hrp).hex())
    if hrp == "ncryptsec":
        return Decoded(hrp, data)
    if hrp not in ("nprofile", "nevent", "naddr"):
        raise EncodingError(f"unknown NIP-19 prefix {hrp!r}")
    records = _parse_tlv(data, hrp)
    relays = _relays(records, hrp)
    if hrp == "nprofile":
        pubkey = _required(_one(records, TLV_SPECIAL, hrp, "pubkey", 32), hrp, "pubkey")
        return Decoded(hrp, ProfilePointer(pubkey.hex(), relays))
    if hrp == "nevent":
        event_id = _required(_one(records, TLV_SPECIAL, hrp, "event id", 32), hrp, "event id")
        author = _one(records, TLV_AUTHOR, hrp, "author", 32)
        kind = _one(records, TLV_KIND, hrp, "kind", 4)
        return Decoded(
            hrp,
            EventPointer(
                event_id.hex(),
                relays,
                author.hex() if author is not None else None,
                int.from_bytes(kind, "big") if kind is not None else None,
            ),
        )
    identifier = _required(_one(records, TLV_SPECIAL, hrp, "identifier", None), hrp, "identifier (d)")
    author = _required(_one(records, TLV_AUTHOR, hrp, "author", 32), hrp, "author")
    kind = _required(_one(records, TLV_KIND, hrp, "kind", 4), hrp, "kind")
    try:
        d = identifier.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{hrp}: identifier (d) is not UTF-8") from exc
    return Decoded(hrp, AddressPointer(int.from_bytes(kind, "big"), author.hex(), d, relays))


def pubkey_from_text(text: str) -> str:
    """A pubkey as lowercase hex from an npub, an nprofile or 64 hex characters."""
    stripped = _strip(text)
    if len(stripped) == 64 and _HEX.issuperset(stripped.lower()):
        pubkey = stripped.lower()
    else:
        decoded = decode(stripped)
        if decoded.hrp == "npub":
            pubkey = decoded.data
        elif decoded.hrp == "nprofile":
            pubkey = decoded.data.pubkey
        else:
            raise EncodingError(f"expected an npub, nprofile or hex pubkey, got {decoded.hrp}")
    try:
        PublicKeyXOnly(bytes.fromhex(pubkey))
    except Exception as exc:
        raise EncodingError(f"pubkey {pubkey[:16]}… is not a point on secp256k1") from exc
    return pubkey
