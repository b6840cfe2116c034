"""NIP-11: relay information document.

Pure parsing of the JSON a relay serves over HTTP (``Accept: application/nostr+json``) at its own
URL. Every field is optional and unknown fields are ignored; a field of the wrong type is treated
as absent rather than failing the whole document, because one sloppy field must not cost us the
limits a relay does publish correctly. The client uses ``limitation`` to avoid sending what the
relay would refuse anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..errors import RelayError

__all__ = [
    "ACCEPT",
    "RelayLimits",
    "RelayInformation",
    "information_url",
    "parse_information",
]

ACCEPT = "application/nostr+json"

_INT_LIMITS = (
    "max_message_length",
    "max_subscriptions",
    "max_subid_length",
    "max_limit",
    "default_limit",
    "max_event_tags",
    "max_content_length",
    "min_pow_difficulty",
    "created_at_lower_limit",
    "created_at_upper_limit",
)
_BOOL_LIMITS = ("auth_required", "payment_required", "restricted_writes")


def _int(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _bool(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """The ``limitation`` object; None means the relay did not say."""

    max_message_length: int | None = None
    max_subscriptions: int | None = None
    max_subid_length: int | None = None
    max_limit: int | None = None
    default_limit: int | None = None
    max_event_tags: int | None = None
    max_content_length: int | None = None
    min_pow_difficulty: int | None = None
    created_at_lower_limit: int | None = None
    created_at_upper_limit: int | None = None
    auth_required: bool | None = None
    payment_required: bool | None = None
    restricted_writes: bool | None = None

    @classmethod
    def from_dict(cls, data: Any) -> "RelayLimits":
        if not isinstance(data, Mapping):
            return cls()
        kw: dict[str, Any] = {name: _int(data.get(name)) for name in _INT_LIMITS}
        kw.update({name: _bool(data.get(name)) for name in _BOOL_LIMITS})
        return cls(**kw)

    def event_refusal(self, *, message_length: int, content_length: int, tag_count: int,
                      created_at: int, now: int) -> str | None:
        """Why the relay would refuse this EVENT message, in OK-message form, or None.

        ``created_at_lower_limit``/``upper_limit`` are windows relative to ``now``: the event
        must not be older than now - lower nor newer than now + upper.
        """
        if self.max_message_length is not None and message_length > self.max_message_length:
            return (f"invalid: message is {message_length} bytes, over the relay's "
                    f"max_message_length of {self.max_message_length}")
        if self.max_content_length is not None and content_length > self.max_content_length:
            return (f"invalid: content is {content_length} characters, over the relay's "
                    f"max_content_length of {self.max_content_length}")
        if self.max_event_tags is not None and tag_count > self.max_event_tags:
            return f"invalid: {tag_count} tags, over the relay's max_event_tags of {self.max_event_tags}"
        if self.created_at_lower_limit is not None and created_at < now - self.created_at_lower_limit:
            return (f"invalid: created_at {created_at} is older than the relay's "
                    f"created_at_lower_limit of {self.created_at_lower_limit} s")
        if self.created_at_upper_limit is not None and created_at > now + self.created_at_upper_limit:
            return (f"invalid: created_at {created_at} is further in the future than the relay's "
                    f"created_at_upper_limit of {self.created_at_upper_limit} s")
        return None


@dataclass(frozen=True, slots=True)
class RelayInformation:
    """The parts of a NIP-11 document a client acts on, plus identity for display."""

    name: str | None = None
    description: str | None = None
    pubkey: str | None = None
    contact: str | None = None
    software: str | None = None
    version: str | None = None
    supported_nips: frozenset[int] = frozenset()
    limitation: RelayLimits = field(default_factory=RelayLimits)

    @classmethod
    def from_dict(cls, data: Any) -> "RelayInformation":
        if not isinstance(data, Mapping):
            raise RelayError("NIP-11 document is not a JSON object")
        nips = data.get("supported_nips")
        supported = (
            frozenset(n for n in nips if type(n) is int and n >= 0) if isinstance(nips, list) else frozenset()
        )
        return cls(
            name=_str(data.get("name")),
            description=_str(data.get("description")),
            pubkey=_str(data.get("pubkey")),
            contact=_str(data.get("contact")),
            software=_str(data.get("software")),
            version=_str(data.get("version")),
            supported_nips=supported,
            limitation=RelayLimits.from_dict(data.get("limitation")),
        )


def parse_information(text: str | bytes) -> RelayInformation:
    """Parse the body of a NIP-11 response."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RelayError(f"NIP-11 document is not valid JSON ({exc})") from exc
    return RelayInformation.from_dict(data)


def information_url(relay_url: str) -> str:
    """The HTTP(S) address of a relay's NIP-11 document: ws -> http, wss -> https."""
    parts = urlsplit(relay_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise RelayError(f"not a relay URL (ws:// or wss://): {relay_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))
