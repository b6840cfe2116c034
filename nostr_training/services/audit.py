"""``nostr-training audit``: read the relays as an outsider would, and say what they show.

The reader is a fresh key (it answers NIP-42 AUTH as nobody the user knows), asking every relay
for every kind we know plus an unfiltered page, the way anyone may. What must not show comes
from the user's own index: the titles, descriptions and addresses of their private items, and
the learners of them (``rules.privacy``); only events by the people of those items (the user,
the hosts, the learners) are checked, so another user's note quoting a title is not a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import kinds
from ..errors import ConfigError, RelayUnreachable
from ..event import Event
from ..filters import Filter
from ..keys import Keys
from ..kinds.private import ENVELOPED_KINDS, is_marked_private
from ..rules.privacy import Leak, Secrets, find_leaks
from ..signer import LocalSigner
from .context import ServiceContext

__all__ = ["AuditReport", "privacy_secrets", "audit_relays", "OPERATIONS"]

#: Kinds whose authors took part in a private item (their ``a`` names it).
_LEARNER_KINDS = frozenset(
    {kinds.RSVP, kinds.JOIN_REQUEST, kinds.ATTENDANCE_CLAIM, kinds.RECORDING_CONSENT, kinds.ROOM_PRESENCE}
)
#: Kinds that name the learner they are about in ``p``.
_ABOUT_LEARNER_KINDS = frozenset(
    {kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD, kinds.WAITING_ROOM_DECISION, kinds.BADGE_AWARD}
)
_TEXT_TAGS = ("title", "name", "summary", "room", "description", "location", "service", "streaming", "endpoint", "r")
_SHORTEST_DESCRIPTION = 12
_PAGE = 5000
_FILTERS_PER_REQ = 10


@dataclass(frozen=True)
class AuditReport:
    relays: tuple[str, ...]
    events: int
    by_kind: dict[int, int]
    leaks: tuple[Leak, ...]
    private_items: int
    learners: int
    unanswered: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "relays": list(self.relays),
            "events": self.events,
            "by_kind": {str(k): v for k, v in sorted(self.by_kind.items())},
            "leaks": [leak.to_dict() for leak in self.leaks],
            "private_items": self.private_items,
            "learners": self.learners,
            "unanswered": list(self.unanswered),
        }


async def privacy_secrets(ctx: ServiceContext) -> tuple[Secrets, int]:
    """What must not show on a relay, from the user's index; and how many private items."""
    now = ctx.clock.now()
    me = await ctx.signer.get_public_key() if ctx.signer is not None else None
    items = await ctx.store.query([Filter(kinds=frozenset(ENVELOPED_KINDS))], now=now, include_private=True)
    texts: dict[str, str] = {}
    learners: set[str] = set()
    private: set[str] = set()
    public: set[str] = set()
    for item in items:
        if item.address is None:
            continue
        if not is_marked_private(item):
            public.add(item.address)
            continue
        private.add(item.address)
        texts[item.address] = f"address of the private item {item.address[:40]}..."
        texts[item.d] = f"d of the private item {item.address[:40]}..."
        for tag in item.tags:
            if len(tag) > 1 and tag[0] in _TEXT_TAGS and tag[1]:
                texts[tag[1]] = f"{tag[0]} of the private item {item.address[:40]}..."
            if len(tag) > 3 and tag[0] == "p" and tag[3] == "participant":
                learners.add(tag[1])
        if len(item.content) >= _SHORTEST_DESCRIPTION:
            texts[item.content] = f"description of the private item {item.address[:40]}..."
    if private:
        about = {"a": frozenset(private)}
        for event in await ctx.store.query([Filter(kinds=_LEARNER_KINDS, tags=about)], now=now, include_private=True):
            learners.add(event.pubkey)
        for event in await ctx.store.query([Filter(kinds=_ABOUT_LEARNER_KINDS, tags=about)], now=now, include_private=True):
            learners.update(event.tag_values("p"))
    learners.discard(me or "")
    hosts = {item.pubkey for item in items if item.address in private}
    people = frozenset(learners | hosts | ({me} if me else set()))
    return Secrets(texts, frozenset(learners), frozenset(public), people or None), len(private)


async def _read_as_outsider(relays: Sequence[str], timeout: float, clock: Any) -> tuple[list[Event], list[str]]:
    from ..daemon.app import make_pool

    pool = make_pool(signer=LocalSigner(Keys.generate()), clock=clock)
    filters = [Filter(kinds=frozenset({k}), limit=_PAGE) for k in sorted(kinds.KINDS)]
    filters.append(Filter(limit=_PAGE))
    found: dict[str, Event] = {}
    try:
        for start in range(0, len(filters), _FILTERS_PER_REQ):  # relays cap the filters of one REQ
            for event in await pool.fetch(filters[start:start + _FILTERS_PER_REQ], list(relays), timeout=timeout):
                found.setdefault(event.id, event)
        events = list(found.values())
        down = [s.url for s in pool.status() if not s.state.is_up and s.events_received == 0]
    finally:
        await pool.close()
    return events, down


async def audit_relays(ctx: ServiceContext, relays: Sequence[str] = (), *, timeout: float = 10.0) -> AuditReport:
    """Everything ``relays`` (default: the user's) serve to a stranger, checked for leaks."""
    targets = tuple(relays or ctx.config.relays)
    if not targets:
        raise ConfigError("no relays to read: pass --relay, or set yours with 'nostr-training relays set'")
    secrets, private_items = await privacy_secrets(ctx)
    events, down = await _read_as_outsider(targets, timeout, ctx.clock)
    if down and len(down) == len(targets) and not events:
        raise RelayUnreachable("; ".join(f"{url} did not answer" for url in down))
    by_kind: dict[int, int] = {}
    for event in events:
        by_kind[event.kind] = by_kind.get(event.kind, 0) + 1
    leaks = find_leaks(events, secrets)
    return AuditReport(targets, len(events), by_kind, tuple(leaks), private_items, len(secrets.learners), tuple(down))


async def _audit(ctx: ServiceContext, body: dict[str, Any]) -> dict[str, Any]:
    report = await audit_relays(ctx, body.get("relays") or (), timeout=float(body.get("timeout", 10.0)))
    return report.to_dict()


OPERATIONS = {"audit": _audit}
