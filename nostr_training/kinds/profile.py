"""Profiles (kind 0, NIP-01/NIP-24) and what an imported key already publishes.

A kind 0 carries a JSON object in ``content``. We read and write ``name``, ``display_name``,
``picture``, ``about`` and ``nip05``; every other field a user's client put there (``banner``,
``lud16``, ``website``…) is kept in ``extra`` and written back untouched, so setting a name
here never erases what another client set. The content must be strict JSON: one object, no
NaN/Infinity, no duplicate keys; the known fields are strings when present (``null`` counts
as absent). The deprecated ``displayName`` is read when ``display_name`` is missing.

``identity_to_reuse`` picks, from the kind 0 / 10002 / 10050 events fetched for an imported
key, the newest of each, so ``keys import`` can offer the profile and relays the user has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MalformedEvent
from ..event import Event, EventTemplate
from ..nips.nip17 import parse_inbox_relays
from ..nips.nip65 import RelayList, parse_relay_list
from . import DM_RELAYS, METADATA, RELAY_LIST, _wire

__all__ = ["ExistingIdentity", "Profile", "build_profile", "identity_to_reuse", "parse_profile"]

PROFILE_FIELDS = ("name", "display_name", "picture", "about", "nip05")
_NIP05 = re.compile(r"[a-z0-9._-]+@[a-z0-9-]+(\.[a-z0-9-]+)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str | None = None
    display_name: str | None = None
    picture: str | None = None
    about: str | None = None
    nip05: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields we do not manage, kept as they came."""
    author: str | None = None
    created_at: int | None = None
    event_id: str | None = None

    def fields(self) -> dict[str, str]:
        """The managed fields that are set."""
        return {k: getattr(self, k) for k in PROFILE_FIELDS if getattr(self, k) is not None}


def _check_picture(url: str) -> str:
    _wire.check_text("picture", url)
    if not url.startswith(("https://", "http://")):
        raise _wire.malformed("picture", f"must be an http(s) URL, got {url[:80]!r}")
    return url


def _check_nip05(value: str) -> str:
    if not _NIP05.fullmatch(value):
        raise _wire.malformed("nip05", f"must look like name@domain.tld, got {value[:80]!r}")
    return value


def build_profile(profile: Profile, *, created_at: int) -> EventTemplate:
    """A kind 0 with the managed fields over ``profile.extra``; unset fields are left out."""
    for key in ("name", "display_name", "about"):
        value = getattr(profile, key)
        if value is not None and not isinstance(value, str):
            raise _wire.malformed(key, "must be a string")
    if profile.picture is not None:
        _check_picture(profile.picture)
    if profile.nip05 is not None:
        _check_nip05(profile.nip05)
    body: dict[str, Any] = {k: v for k, v in profile.extra.items() if k not in PROFILE_FIELDS}
    body.update(profile.fields())
    try:
        content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise _wire.malformed("content", f"extra profile fields are not JSON: {exc}") from None
    return EventTemplate(METADATA, (), content, created_at)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_profile(event: Event) -> Profile:
    _wire.Reader(event, METADATA)
    try:
        body = json.loads(event.content, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:
        raise _wire.malformed("content", f"not strict JSON ({exc})", event.id) from None
    if not isinstance(body, dict):
        raise _wire.malformed("content", "must be a JSON object", event.id)
    values: dict[str, str | None] = {}
    for key in PROFILE_FIELDS:
        value = body.get(key)
        if key == "display_name" and value is None:
            value = body.get("displayName")
        if value is not None and not isinstance(value, str):
            raise _wire.malformed(key, f"must be a string, got {type(value).__name__}", event.id)
        values[key] = value
    return Profile(
        **values,
        extra={k: v for k, v in body.items() if k not in PROFILE_FIELDS},
        author=event.pubkey,
        created_at=event.created_at,
        event_id=event.id,
    )


@dataclass(frozen=True, slots=True)
class ExistingIdentity:
    """What an imported key already has on its relays; ``None`` where nothing readable was found."""

    pubkey: str
    profile: Profile | None = None
    relay_list: RelayList | None = None
    dm_relays: tuple[str, ...] | None = None
    profile_event: Event | None = None
    relay_list_event: Event | None = None
    dm_relays_event: Event | None = None
    unreadable: tuple[str, ...] = ()
    """Ids of newer events skipped because they do not parse (what clients show may differ)."""


def identity_to_reuse(pubkey: str, events: Iterable[Event]) -> ExistingIdentity:
    """The newest readable kind 0, 10002 and 10050 by ``pubkey`` among verified ``events``.

    Events by other authors and other kinds are ignored. A newest version that does not parse
    is passed over for the next one and its id reported in ``unreadable``; a newest relay list
    that is empty means the user cleared it, so an older one is not brought back.
    """
    by_kind: dict[int, list[Event]] = {METADATA: [], RELAY_LIST: [], DM_RELAYS: []}
    for event in events:
        if event.pubkey == pubkey and event.kind in by_kind:
            by_kind[event.kind].append(event)
    unreadable: list[str] = []
    chosen: dict[int, tuple[Event, Any]] = {}
    parsers = {METADATA: parse_profile, RELAY_LIST: parse_relay_list, DM_RELAYS: parse_inbox_relays}
    for kind, candidates in by_kind.items():
        for event in sorted(candidates, key=lambda e: (-e.created_at, e.id)):
            try:
                value = parsers[kind](event)
            except MalformedEvent:
                unreadable.append(event.id)
                continue
            if kind == METADATA or (value.all if kind == RELAY_LIST else value):  # type: ignore[attr-defined]
                chosen[kind] = (event, value)
            break
    profile = chosen.get(METADATA)
    relays = chosen.get(RELAY_LIST)
    inbox = chosen.get(DM_RELAYS)
    return ExistingIdentity(
        pubkey=pubkey,
        profile=profile[1] if profile else None,
        relay_list=relays[1] if relays else None,
        dm_relays=inbox[1] if inbox else None,
        profile_event=profile[0] if profile else None,
        relay_list_event=relays[0] if relays else None,
        dm_relays_event=inbox[0] if inbox else None,
        unreadable=tuple(unreadable),
    )

