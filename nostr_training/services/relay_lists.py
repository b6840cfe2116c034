"""``relays set``: publish the user's NIP-65 relay list (10002) and NIP-17 inbox (10050).

Without them nobody can reach the user: other people's outboxes find no read relays for their
RSVP answers, and a DM or a room key to them has nowhere to go (NIP-17 says do not send).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import ConfigError, MalformedEvent
from ..nips.nip17 import inbox_relays_template
from ..nips.nip65 import RelayList, normalize_relay_url, relay_list_template
from .context import ServiceContext
from .publish import PublishReport, publish_events

__all__ = ["RelayPlan", "plan_relays", "set_relays"]


@dataclass(frozen=True)
class RelayPlan:
    read: tuple[str, ...]
    write: tuple[str, ...]
    inbox: tuple[str, ...]


def _urls(values: Sequence[str], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        try:
            out.append(normalize_relay_url(value))
        except MalformedEvent as exc:
            raise ConfigError(f"{what}: {exc}") from exc
    return tuple(dict.fromkeys(out))


def plan_relays(
    both: Sequence[str], *, read_only: Sequence[str] = (), write_only: Sequence[str] = (), inbox: Sequence[str] = ()
) -> RelayPlan:
    """Read and write relays, and the DM inbox (the read relays when none is named)."""
    both_ = _urls(both, "relays")
    read = tuple(dict.fromkeys([*both_, *_urls(read_only, "--read")]))
    write = tuple(dict.fromkeys([*both_, *_urls(write_only, "--write")]))
    if not read and not write:
        raise ConfigError("name at least one relay")
    return RelayPlan(read, write, _urls(inbox, "--inbox") or read or write)


async def set_relays(ctx: ServiceContext, plan: RelayPlan, *, wait: float = 10.0) -> list[PublishReport]:
    """Sign both lists and publish them to every relay named (and the configured ones)."""
    signer = ctx.require_signer()
    now = ctx.clock.now()
    relay_list = await signer.sign_event(relay_list_template(RelayList.of(read=plan.read, write=plan.write), created_at=now))
    inbox = await signer.sign_event(inbox_relays_template(plan.inbox, created_at=now))
    targets = tuple(dict.fromkeys([*plan.write, *plan.read, *plan.inbox, *ctx.config.relays]))
    return await publish_events(ctx, [relay_list, inbox], relays=targets, wait=wait)
