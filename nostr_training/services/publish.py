"""Publishing: commit to the durable outbox, deliver, and report per event and target.

The same function serves the daemon's control API (its outbox loop delivers; we wait for the
first attempt) and the CLI without a daemon (we deliver now with a short-lived pool); what is
not acknowledged stays queued for the daemon either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import NostrTrainingError
from ..event import Event, EventTemplate
from ..filters import Filter
from ..store.base import OutboxState, TargetKind
from .context import ServiceContext
from .validate import check_event, check_references

__all__ = ["Delivery", "PublishReport", "after_current", "publish_events"]


@dataclass(frozen=True)
class Delivery:
    """One target of one event: a relay, or a recipient that cannot be reached."""

    target: str
    state: str  # pending | retrying | delivered | refused
    message: str = ""


@dataclass(frozen=True)
class PublishReport:
    """What happened to one submitted event."""

    id: str
    accepted: bool
    error: str | None = None
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)

    @property
    def delivered(self) -> bool:
        return any(d.state == OutboxState.DELIVERED.value for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "accepted": self.accepted,
            "delivered": self.delivered,
            "error": self.error,
            "deliveries": [d.__dict__ for d in self.deliveries],
        }


async def _deliveries(ctx: ServiceContext, event_id: str) -> tuple[Delivery, ...]:
    out = []
    for entry in await ctx.outbox.store.outbox_entries(event_id):
        message = entry.last_message or ""
        if entry.target.kind is TargetKind.LOOKUP:
            target = "(relay lists being looked up)"
            if not message and not ctx.outbox.can_look_up():
                message = "waiting: no relay is connected to look up relay lists"
        elif entry.target.kind is TargetKind.RECIPIENT:
            target = f"recipient:{entry.target.value}"
        else:
            target = entry.target.value
        out.append(Delivery(target, entry.state.value, message))
    return tuple(out)


async def publish_events(
    ctx: ServiceContext,
    events: Sequence[Event],
    *,
    relays: Sequence[str] | None = None,
    wait: float = 10.0,
    check_lessons: bool = True,
) -> list[PublishReport]:
    """Check, commit and deliver ``events`` (verified already); one report each.

    Our training kinds are checked with the strict parsers, and an RSVP must answer a lesson
    the index knows (``check_lessons``). An event refused before commit gets ``accepted``
    False with the reason; nothing of it is queued.
    """
    now = ctx.clock.now()
    reports: dict[str, PublishReport] = {}
    accepted: list[str] = []
    checked: list[Event] = []
    for event in events:
        try:
            check_event(event)
            if check_lessons:
                await check_references(event, ctx.store, now=now)
        except NostrTrainingError as exc:
            reports[event.id] = PublishReport(event.id, False, str(exc))
            continue
        checked.append(event)
    if relays:
        for event in checked:
            try:
                await ctx.outbox.submit(event, relays)
            except NostrTrainingError as exc:
                reports[event.id] = PublishReport(event.id, False, str(exc))
                continue
            accepted.append(event.id)
    elif checked:
        # Committed first; relay lists still unknown are looked up by the sender afterwards,
        # so a slow relay costs this call at most ``wait``.
        for event, result in zip(checked, await ctx.outbox.submit_many(checked), strict=True):
            if isinstance(result, NostrTrainingError):
                reports[event.id] = PublishReport(event.id, False, str(result))
            else:
                accepted.append(event.id)
    if accepted:
        if ctx.live:
            await ctx.outbox.wait_attempted(accepted, wait)
        else:
            await _deliver_now(ctx, accepted, wait)
    for event_id in accepted:
        reports[event_id] = PublishReport(event_id, True, None, await _deliveries(ctx, event_id))
    return [reports[e.id] for e in events]


async def _deliver_now(ctx: ServiceContext, event_ids: list[str], wait: float) -> None:
    """Without a daemon: passes of the outbox until each delivery was tried once, or ``wait``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        handled = await ctx.outbox.deliver_due()
        if not handled or not await ctx.outbox.untried(event_ids):
            return


async def after_current(ctx: ServiceContext, me: str, template: EventTemplate, *,
                        private: bool = False) -> EventTemplate:
    """A revision of an addressable or replaceable event dated after the version in the index:
    in the same second, the NIP-01 tie rule (lowest id) could keep the old one."""
    d = next((t[1] for t in template.tags if len(t) > 1 and t[0] == "d"), "")
    kind = template.kind
    if not (30000 <= kind < 40000 or 10000 <= kind < 20000 or kind in (0, 3)):
        return template
    wanted = Filter(kinds=frozenset({kind}), authors=frozenset({me}),
                    tags={"d": frozenset({d})} if 30000 <= kind < 40000 else {}, limit=1)
    current = await ctx.store.query([wanted], include_private=private)
    if current and current[0].created_at >= template.created_at:
        return EventTemplate(kind, template.tags, template.content, current[0].created_at + 1)
    return template
