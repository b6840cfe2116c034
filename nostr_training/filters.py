"""NIP-01 filters: validation and matching, shared by the store and the local relay endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .errors import MalformedEvent
from .event import Event

__all__ = ["Filter", "matches_any", "order_key"]

_HEX = frozenset("0123456789abcdef")
#: Times and limits beyond what SQLite (and every relay's 64-bit integers) hold are refused here,
#: before they reach a store.
MAX_INTEGER = 2**63 - 1


def _text(value: str) -> bool:
    """Encodable as UTF-8: JSON admits lone surrogates ("\\ud800") that no store or socket can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _hex_list(name: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and len(v) == 64 and _HEX.issuperset(v) for v in value
    ):
        raise MalformedEvent("must be a list of 64-character lowercase hex strings", field=name)
    return frozenset(value)


@dataclass(frozen=True)
class Filter:
    """One NIP-01 filter; every condition present must hold (AND)."""

    ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    kinds: frozenset[int] | None = None
    tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    since: int | None = None
    until: int | None = None
    limit: int | None = None

    @classmethod
    def from_dict(cls, data: Any) -> "Filter":
        if not isinstance(data, Mapping):
            raise MalformedEvent("a filter must be a JSON object", field="filter")
        kw: dict[str, Any] = {}
        tags: dict[str, frozenset[str]] = {}
        for key, value in data.items():
            if key in ("ids", "authors"):
                kw[key] = _hex_list(key, value)
            elif key == "kinds":
                if not isinstance(value, list) or not all(type(k) is int and 0 <= k <= 65535 for k in value):
                    raise MalformedEvent("must be a list of integers 0..65535", field="kinds")
                kw["kinds"] = frozenset(value)
            elif key in ("since", "until", "limit"):
                if type(value) is not int or not 0 <= value <= MAX_INTEGER:
                    raise MalformedEvent("must be an integer from 0 to 2^63-1", field=key)
                kw[key] = value
            elif len(key) == 2 and key[0] == "#" and key[1].isalpha():
                if not isinstance(value, list) or not all(isinstance(v, str) and _text(v) for v in value):
                    raise MalformedEvent("must be a list of strings (valid Unicode)", field=key)
                if key in ("#e", "#p"):
                    _hex_list(key, value)
                tags[key[1]] = frozenset(value)
            # Unknown keys (search, NIP-50 and others) are ignored as relays do.
        return cls(tags=tags, **kw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ids is not None:
            out["ids"] = sorted(self.ids)
        if self.authors is not None:
            out["authors"] = sorted(self.authors)
        if self.kinds is not None:
            out["kinds"] = sorted(self.kinds)
        for name, values in sorted(self.tags.items()):
            out[f"#{name}"] = sorted(values)
        for key in ("since", "until", "limit"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def matches(self, event: Event) -> bool:
        """Does the event satisfy every condition? ``limit`` is not a matching condition."""
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.authors is not None and event.pubkey not in self.authors:
            return False
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.since is not None and event.created_at < self.since:
            return False
        if self.until is not None and event.created_at > self.until:
            return False
        for name, wanted in self.tags.items():
            if not any(len(t) > 1 and t[0] == name and t[1] in wanted for t in event.tags):
                return False
        return True


def matches_any(filters: Iterable[Filter], event: Event) -> bool:
    """A REQ with several filters returns the union (OR)."""
    return any(f.matches(event) for f in filters)


def order_key(event: Event) -> tuple[int, str]:
    """Sort key for query results: newest first, then lowest id (use with reverse=False)."""
    return (-event.created_at, event.id)
