"""A wire for private-lesson tests: every event the outboxes send, as a relay would hold it, and
what an outsider reading it all may not find there."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from daemon.daemon_fakes import FakePool

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.config import DaemonConfig
from nostr_training.daemon.outbox import Outbox
from nostr_training.event import Event, sign_event
from nostr_training.keys import Keys
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.services import private
from nostr_training.services.context import ServiceContext
from nostr_training.signer import LocalSigner
from nostr_training.store.memory import MemoryStore

R = "wss://relay.example"

#: What a private lesson's session must never show in the clear.
SESSION_KINDS = frozenset({
    kinds.LESSON, kinds.ROOM, kinds.MEETING, kinds.ROOM_PRESENCE, kinds.JOIN_REQUEST, kinds.ATTENDANCE_CLAIM,
    kinds.WAITING_ROOM_DECISION, kinds.RECORDING_CONSENT, kinds.FILE_METADATA, kinds.RSVP,
})
WRAPS = frozenset({kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL})


@dataclass
class Wire(FakePool):
    """A FakePool that keeps every event published through it (the relay's view)."""

    events: dict[str, Event] = field(default_factory=dict)
    handed: set[str] = field(default_factory=set)

    async def publish(self, event: Event, relays: Sequence[str], timeout: float = 10):  # type: ignore[override]
        self.events[event.id] = event
        return await super().publish(event, relays, timeout)


async def people(home: Path, clock: ManualClock, *keys: Keys) -> tuple[Wire, list[ServiceContext]]:
    """One context per key on a shared wire (data dirs under ``home``); every store knows
    everyone's inbox relay (10050)."""
    wire = Wire()
    inboxes = [sign_event(inbox_relays_template([R], created_at=clock.now() - 10), k.secret) for k in keys]
    out = []
    for key in keys:
        store = await MemoryStore.open()
        for inbox in inboxes:
            await store.add(inbox, now=clock.now())
        outbox = Outbox(store, wire, clock=clock, default_relays=[R])
        out.append(ServiceContext(config=DaemonConfig(home / key.public_key[:8], home / key.public_key[:8] / "config.toml",
                                                         relays=(R,), publish_timeout=0), store=store, outbox=outbox,
                                  clock=clock, signer=LocalSigner(key)))
    return wire, out


async def exchange(wire: Wire, *ctxs: ServiceContext, drop_ephemeral: bool = False) -> list[Event]:
    """Send what every outbox holds, then hand each context what the relay carries, as a
    daemon would: stored events into its index, ephemeral wraps to it opened as they arrive
    (``drop_ephemeral``: its daemon was offline, so they are lost). Returns the new events."""
    for ctx in ctxs:
        while await ctx.outbox.deliver_due():
            pass
    new = [e for i, e in wire.events.items() if i not in wire.handed]
    wire.handed.update(e.id for e in new)
    for ctx in ctxs:
        me = await ctx.require_signer().get_public_key()
        for event in new:
            if event.kind != kinds.GIFT_WRAP_EPHEMERAL:
                await ctx.store.add(event, now=ctx.clock.now())
        ephemeral = [e for e in new if e.kind == kinds.GIFT_WRAP_EPHEMERAL and me in e.tag_values("p")]
        if ephemeral and not drop_ephemeral:
            await private.open_inbox(ctx, wraps=ephemeral)
        await private.open_inbox(ctx)
    return new


def assert_nothing_in_clear(events: Sequence[Event], *, learners: Sequence[str], secrets: Sequence[str]) -> None:
    """What an outsider reads: no session event of the lesson, none of ``secrets`` (titles,
    coordinates' d), no learner's pubkey outside the ``p`` of a gift wrap (a learner's own
    relay lists, 10002 and 10050, say where to reach them, nothing about a lesson)."""
    assert events, "nothing was sent at all"
    shown = {e.kind for e in events}
    assert not shown & SESSION_KINDS, f"in the clear: {sorted(shown & SESSION_KINDS)}"
    for event in events:
        text = event.to_json()
        for secret in secrets:
            assert secret not in text, f"{secret!r} in a kind {event.kind}"
        if event.pubkey in learners and event.kind in (kinds.DM_RELAYS, kinds.RELAY_LIST):
            continue
        outside_p = json.dumps([list(t) for t in event.tags if not (event.kind in WRAPS and t[0] == "p")])
        for learner in learners:
            assert learner != event.pubkey or event.kind in WRAPS, f"a kind {event.kind} signed by a learner"
            assert learner not in outside_p and learner not in event.content, f"a learner named in a kind {event.kind}"
