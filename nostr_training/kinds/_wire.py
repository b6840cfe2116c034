"""Strict tag reading and writing shared by every kind module.

Readers take a verified ``Event`` and raise ``MalformedEvent``/``MissingTag`` naming the event
id and the tag; writers check values before they reach a template, so a builder never emits
what the matching parser would refuse.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from ..errors import MalformedEvent, MissingTag
from ..event import Event, parse_coordinate

_HEX = frozenset("0123456789abcdef")
_D_MAX_BYTES = 255  # NIP-19 TLV length byte: longer d values cannot be shared as naddr


def malformed(field: str, message: str, event_id: str | None = None) -> MalformedEvent:
    """A MalformedEvent whose text always reads ``<field>: <message>``, even for one-letter tags."""
    return MalformedEvent(f"{field}: {message}", field=field, event_id=event_id)


def is_hex(value: str, length: int) -> bool:
    return len(value) == length and _HEX.issuperset(value)


def deterministic_d(*parts: str) -> str:
    """A stable ``d`` from the parts that identify one record, so a newer version replaces it."""
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def alt(text: str) -> tuple[str, str]:
    return ("alt", text)


class Reader:
    """Typed access to one event's tags; every failure names the event and the field."""

    __slots__ = ("event",)

    def __init__(self, event: Event, kind: int | Iterable[int]):
        self.event = event
        kinds = (kind,) if isinstance(kind, int) else tuple(kind)
        if event.kind not in kinds:
            wanted = " or ".join(str(k) for k in kinds)
            raise MalformedEvent(f"expected kind {wanted}, got {event.kind}", field="kind", event_id=event.id)

    def fail(self, field: str, message: str) -> MalformedEvent:
        return malformed(field, message, self.event.id)

    def optional(self, name: str) -> str | None:
        return self.event.tag_value(name)

    def required(self, name: str, *, allow_empty: bool = False) -> str:
        value = self.event.tag_value(name)
        if value is None:
            raise MissingTag(name, event_id=self.event.id)
        if not allow_empty and not value:
            raise self.fail(name, "must not be empty")
        return value

    def all(self, name: str) -> list[str]:
        return self.event.tag_values(name)

    def tags(self, name: str) -> list[tuple[str, ...]]:
        return [t for t in self.event.tags_named(name) if len(t) > 1]

    def integer(self, name: str, value: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        if not value.isascii() or not value.isdigit():
            raise self.fail(name, f"must be decimal digits, got {value!r}")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(name, f"must be {bound}, got {number}")
        return number

    def required_int(self, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        return self.integer(name, self.required(name), minimum=minimum, maximum=maximum)

    def optional_int(self, name: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self.optional(name)
        return None if value is None else self.integer(name, value, minimum=minimum, maximum=maximum)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value == "true":
            return True
        if value == "false":
            return False
        raise self.fail(name, f"must be 'true' or 'false', got {value!r}")

    def choice(self, name: str, value: str, allowed: Iterable[str]) -> str:
        options = tuple(allowed)
        if value not in options:
            raise self.fail(name, f"must be one of {'|'.join(options)}, got {value!r}")
        return value

    def pubkey(self, name: str, value: str) -> str:
        if not is_hex(value, 64):
            raise self.fail(name, f"must be a 64-character lowercase hex pubkey, got {value[:70]!r}")
        return value

    def event_id(self, name: str, value: str) -> str:
        if not is_hex(value, 64):
            raise self.fail(name, f"must be a 64-character lowercase hex event id, got {value[:70]!r}")
        return value

    def coordinate(self, name: str, value: str, kinds: Iterable[int] | None) -> str:
        """Check a ``kind:pubkey:d`` value; ``kinds=None`` accepts any kind."""
        try:
            kind, _, _ = parse_coordinate(value)
        except MalformedEvent as exc:
            raise self.fail(name, f"not a kind:pubkey:d coordinate: {value[:80]!r}") from exc
        if kinds is None:
            return value
        options = tuple(kinds)
        if kind not in options:
            wanted = "|".join(str(k) for k in options)
            raise self.fail(name, f"must point at kind {wanted}, got {value[:80]!r}")
        return value

    def coordinates(self, kinds: Iterable[int]) -> list[str]:
        """Every ``a`` value whose kind is one of ``kinds``, in order; malformed ``a`` values refused."""
        options = tuple(kinds)
        out = []
        for value in self.all("a"):
            try:
                kind, _, _ = parse_coordinate(value)
            except MalformedEvent as exc:
                raise self.fail("a", f"not a kind:pubkey:d coordinate: {value[:80]!r}") from exc
            if kind in options:
                out.append(value)
        return out

    def one_coordinate(self, kinds: Iterable[int]) -> str:
        found = self.coordinates(kinds)
        if not found:
            if not self.all("a"):
                raise MissingTag("a", event_id=self.event.id)
            wanted = "|".join(str(k) for k in kinds)
            raise self.fail("a", f"no a tag points at kind {wanted}")
        return found[0]

    def d(self) -> str:
        return self.required("d")


# Builder-side checks: the same rules as the readers, raised before an event exists.


def check_text(field: str, value: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise malformed(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise malformed(field, "must not be empty")
    return value


def check_d(value: str) -> str:
    check_text("d", value)
    if len(value.encode("utf-8")) > _D_MAX_BYTES:
        raise malformed("d", f"must be at most {_D_MAX_BYTES} bytes of UTF-8")
    return value


def check_int(field: str, value: int, *, minimum: int = 0, maximum: int | None = None) -> str:
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise malformed(field, f"must be an integer {bound}, got {value!r}")
    return str(value)


def check_pubkey(field: str, value: str) -> str:
    if not isinstance(value, str) or not is_hex(value, 64):
        raise malformed(field, f"must be a 64-character lowercase hex pubkey, got {value!r}")
    return value


def check_event_id(field: str, value: str) -> str:
    if not isinstance(value, str) or not is_hex(value, 64):
        raise malformed(field, f"must be a 64-character lowercase hex event id, got {value!r}")
    return value


def check_sha256(field: str, value: str) -> str:
    if not isinstance(value, str) or not is_hex(value, 64):
        raise malformed(field, f"must be a 64-character lowercase sha256 hex, got {value!r}")
    return value


def check_coordinate(field: str, value: str, kinds: Iterable[int]) -> str:
    try:
        kind, _, _ = parse_coordinate(value)
    except MalformedEvent:
        raise malformed(field, f"not a kind:pubkey:d coordinate: {value!r}") from None
    options = tuple(kinds)
    if kind not in options:
        wanted = "|".join(str(k) for k in options)
        raise malformed(field, f"must point at kind {wanted}, got {value!r}")
    return value


def coordinate_kind(field: str, value: str) -> int:
    try:
        return parse_coordinate(value)[0]
    except MalformedEvent:
        raise malformed(field, f"not a kind:pubkey:d coordinate: {value!r}") from None
