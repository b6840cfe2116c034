"""Who the user is on Nostr: their profile (kind 0) and what an imported key already publishes.

``set_profile`` edits the newest known profile (fields another client set are kept), signs it
with the user's signer (a bunker included) and publishes it like any event. ``find_identity``
fetches a key's kind 0, 10002 and 10050 from the relays given and keeps them in the index, so
``keys import`` can offer them and ``profile show`` finds them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, MalformedEvent
from ..event import Event
from ..filters import Filter
from ..kinds import DM_RELAYS, METADATA, RELAY_LIST
from ..kinds.profile import PROFILE_FIELDS, ExistingIdentity, Profile, build_profile, identity_to_reuse, parse_profile
from .context import ServiceContext
from .publish import PublishReport, publish_events

__all__ = ["ProfileUpdate", "existing_identity_dict", "find_identity", "profile_dict", "read_profile", "set_profile"]


def profile_dict(profile: Profile | None) -> dict[str, Any] | None:
    """A profile as JSON: the managed fields, the others as they came, and where it comes from."""
    if profile is None:
        return None
    return {**profile.fields(), "extra": dict(profile.extra), "pubkey": profile.author,
            "created_at": profile.created_at, "event_id": profile.event_id}


def existing_identity_dict(found: ExistingIdentity) -> dict[str, Any]:
    """What ``keys import`` reports as found: null where nothing readable was published."""
    relays = found.relay_list
    return {
        "profile": profile_dict(found.profile),
        "relays": {"read": list(relays.read), "write": list(relays.write)} if relays is not None else None,
        "inbox": list(found.dm_relays) if found.dm_relays is not None else None,
        "unreadable": list(found.unreadable),
    }


async def _fetch(ctx: ServiceContext, filters: list[Filter], relays: Sequence[str], timeout: float) -> list[Event]:
    """Fetch from ``relays`` and index what comes back (verified by the pool)."""
    pool = ctx.outbox.pool
    if pool is None or not relays:
        return []
    events = await pool.fetch(filters, list(relays), timeout=timeout)
    now = ctx.clock.now()
    for event in events:
        await ctx.store.add(event, verified=True, now=now)
    return events


async def find_identity(ctx: ServiceContext, pubkey: str, relays: Sequence[str], *, timeout: float = 5.0) -> ExistingIdentity:
    """The newest readable kind 0, 10002 and 10050 of ``pubkey`` on ``relays`` (and the index)."""
    if not relays:
        raise ConfigError("name the relays to look on (--relay URL)")
    wanted = [Filter(kinds=frozenset({METADATA, RELAY_LIST, DM_RELAYS}), authors=frozenset({pubkey}))]
    fetched = await _fetch(ctx, wanted, relays, timeout)
    indexed = await ctx.store.query(wanted, now=ctx.clock.now())
    return identity_to_reuse(pubkey, [*fetched, *indexed])


async def read_profile(ctx: ServiceContext, pubkey: str, *, relays: Sequence[str] = (), timeout: float = 5.0) -> Profile | None:
    """The newest readable kind 0 of ``pubkey``: from the index, refreshed from ``relays`` (the
    configured ones when none are given) when a pool is at hand."""
    wanted = [Filter(kinds=frozenset({METADATA}), authors=frozenset({pubkey}))]
    fetched = await _fetch(ctx, wanted, tuple(relays) or ctx.config.relays, timeout)
    indexed = await ctx.store.query(wanted, now=ctx.clock.now())
    return identity_to_reuse(pubkey, [*fetched, *indexed]).profile


@dataclass(frozen=True)
class ProfileUpdate:
    profile: Profile
    report: PublishReport

    def to_dict(self) -> dict[str, Any]:
        return {"profile": profile_dict(self.profile), "result": self.report.to_dict()}


def _changed(current: Profile, changes: Mapping[str, str | None]) -> Profile:
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise MalformedEvent(f"profile fields are {', '.join(PROFILE_FIELDS)}; not {', '.join(sorted(unknown))}",
                             field=sorted(unknown)[0])
    values: dict[str, str | None] = {}
    for key, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise MalformedEvent(f"profile {key} must be a string", field=key)
        values[key] = value or None  # an empty string clears the field
    return replace(current, **values)  # type: ignore[arg-type]


async def set_profile(
    ctx: ServiceContext, changes: Mapping[str, str | None], *, wait: float = 10.0
) -> ProfileUpdate:
    """Sign and publish the user's profile with ``changes`` over the newest one known.

    Fields not named keep their value, including those other clients manage. The new kind 0 is
    dated after the one it replaces, so it wins even within the same second.
    """
    signer = ctx.require_signer()
    pubkey = await signer.get_public_key()
    current = await read_profile(ctx, pubkey) or Profile()
    updated = _changed(current, changes)
    created_at = max(ctx.clock.now(), (current.created_at or 0) + 1)
    event = await signer.sign_event(build_profile(updated, created_at=created_at))
    (report,) = await publish_events(ctx, [event], wait=wait)
    return ProfileUpdate(parse_profile(event), report)
