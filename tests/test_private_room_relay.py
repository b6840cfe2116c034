"""Issue 15, rooms, over a real relay on loopback (rust-nostr's relay) with two daemons on one
ManualClock: a private lesson's room reaches its invitee, she asks to join from the CLI in an
ephemeral gift wrap (21059), the host's waiting room shows her, the host admits her, she gets
the decision and the room key, she leaves and the host rekeys. Then an outsider with a fresh
key REQs every kind the relay holds: no session event in the clear, no title, no learner
pubkey outside the ``p`` of a gift wrap.

Until the daemon's inbox component opens wraps as they arrive, the test does it where the
daemon would: the host keeps a subscription to its 21059s and opens them
(``services.private.open_inbox(ctx, wraps)``); the learner fetches her 1059s and the host's
envelopes and opens them."""

from __future__ import annotations

import asyncio
import time

import pytest
from services.private_wire import assert_nothing_in_clear
from test_live_end_to_end import MIN, Person, eventually, people, relay  # noqa: F401  (fixtures)

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import Event
from nostr_training.filters import Filter
from nostr_training.rules.rooms import current_room
from nostr_training.services import live, private
from nostr_training.services.relay_lists import plan_relays, set_relays

pytestmark = pytest.mark.relay

TITLE = "Legal observer briefing"


class EphemeralInbox:
    """What the host's daemon inbox will do: keep a REQ for 21059s to the user open and open
    each wrap as it arrives (an ephemeral wrap is never stored by the relay)."""

    def __init__(self, person: Person, url: str) -> None:
        self.person, self.url, self.arrived, self.ready = person, url, [], asyncio.Event()

    async def open(self) -> None:
        async def on_event(relay: str, event: Event) -> None:
            self.arrived.append(event)

        async def on_eose(relay: str) -> None:
            self.ready.set()

        wanted = Filter(kinds=frozenset({kinds.GIFT_WRAP_EPHEMERAL}), tags={"p": frozenset({self.person.pubkey})})
        await self.person.daemon.pool.subscribe("test-ephemeral-inbox", [wanted], [self.url], on_event, on_eose=on_eose)
        await asyncio.wait_for(self.ready.wait(), 10)

    async def received(self, count: int) -> bool:
        if len(self.arrived) < count:
            return False
        await private.open_inbox(self.person.ctx, wraps=list(self.arrived))
        return True


async def fetch_and_open(person: Person, host: Person, url: str) -> private.InboxReport:
    """What the learner's daemon will do: index the wraps to her and the host's envelopes, open them."""
    wanted = [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({person.pubkey})}),
              Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}), authors=frozenset({host.pubkey}))]
    for event in await person.daemon.pool.fetch(wanted, [url], timeout=5):
        await person.ctx.store.add(event, now=person.daemon.clock.now())
    return await private.open_inbox(person.ctx)


async def test_a_private_room_over_a_relay_leaves_nothing_in_the_clear(people, relay):
    host, ada, _ = people
    url = relay.url
    clock = ManualClock(int(time.time()) - 4 * 3600)
    await host.start(url, clock)
    await ada.start(url, clock)
    await set_relays(ada.ctx, plan_relays([url], inbox=[url]), wait=5)
    await set_relays(host.ctx, plan_relays([url], inbox=[url]), wait=5)
    inbox = EphemeralInbox(host, url)
    await inbox.open()

    # A private lesson (random d), its invitation to Ada; her daemon opens it.
    start = clock.now() + 30 * MIN
    lesson = kinds.Lesson(author=host.pubkey, d="3c9e2f7a1b6d4e80", title=TITLE, start=start, end=start + 60 * MIN,
                          instructor=host.pubkey, private=True, invitees=(ada.pubkey,), waiting_room=True,
                          e2ee_required=True)
    coord = lesson.coordinate
    await private.publish_private_item(host.ctx, kinds.build_lesson(lesson, created_at=clock.now()))
    await private.invite(host.ctx, coord, [ada.pubkey], text="You are invited")
    await eventually(lambda: _has_lesson(ada, host, url, coord))

    # The host creates the room from the CLI: envelopes only; Ada's daemon opens the room.
    await clock.advance(10 * MIN)
    created = await host.cli_json("session", "create", coord)
    assert created["room_id"].startswith("30312:") and created["published"] == []  # no signed event in clear
    await eventually(lambda: _state(ada, host, url, coord, "room_created"))

    # Ada asks to join from the CLI: an ephemeral wrap to the host, whose waiting room shows her.
    await clock.advance(MIN)
    asked = await ada.cli_json("join", coord)
    assert asked["url"] is None and len(asked["published"]) == 1
    await eventually(lambda: inbox.received(1))
    waiting = await host.cli_json("room", "waiting", coord)
    assert [w["pubkey"] for w in waiting["waiting"]] == [ada.pubkey]

    # The host admits her; the daemon sends the room key; she sees the decision and the key.
    await clock.advance(MIN)
    assert (await host.cli("room", "admit", coord, ada.pubkey)).code == 0
    await host.live.run_once()
    assert (await host.cli_json("room", "waiting", coord))["waiting"] == []
    await eventually(lambda: _admitted(ada, host, url, coord))
    assert [k.epoch for k in await live.room_keys(ada.ctx, lesson)] == [1]

    # The session goes live; her join gives the link and the key.
    await clock.advance(start - clock.now())
    assert (await host.cli("session", "start", coord)).code == 0
    await eventually(lambda: _state(ada, host, url, coord, "live"))
    joined = await ada.cli_json("join", coord)
    assert joined["url"] and joined["epoch"] == 1 and joined["room_key"]

    # She leaves (an ephemeral 8315): the host's daemon rekeys; the room she now reads says 2.
    await clock.advance(10 * MIN)
    assert (await ada.cli("leave", coord)).code == 0
    await eventually(lambda: inbox.received(2))
    await host.live.run_once()
    room = current_room(await live.load_evidence(host.ctx, lesson))
    assert room is not None and room.key_epoch == 2
    await eventually(lambda: _room_epoch(ada, host, url, lesson, 2))
    assert await live.room_keys(ada.ctx, lesson) == []  # epoch 1 retired, epoch 2 not hers

    # An outsider with a fresh key reads everything the relay holds, and asks for each kind.
    async with RelayPool() as outsider:
        everything = await outsider.fetch([Filter()], [url], timeout=10)
        by_kind = await outsider.fetch([Filter(kinds=frozenset({k})) for k in sorted(_SESSION_AND_WRAPS)], [url],
                                       timeout=10)
    events = list({e.id: e for e in [*everything, *by_kind]}.values())
    assert {kinds.PRIVATE_CALENDAR_ITEM, kinds.GIFT_WRAP} <= {e.kind for e in events}
    assert_nothing_in_clear(events, learners=[ada.pubkey], secrets=[TITLE, lesson.d])


_SESSION_AND_WRAPS = frozenset({
    kinds.LESSON, kinds.ROOM, kinds.MEETING, kinds.ROOM_PRESENCE, kinds.JOIN_REQUEST, kinds.ATTENDANCE_CLAIM,
    kinds.WAITING_ROOM_DECISION, kinds.RECORDING_CONSENT, kinds.GIFT_WRAP, kinds.PRIVATE_CALENDAR_ITEM,
})


async def _has_lesson(ada: Person, host: Person, url: str, coord: str) -> bool:
    await fetch_and_open(ada, host, url)
    return await ada.ctx.store.lesson(coord) is not None


async def _state(ada: Person, host: Person, url: str, coord: str, wanted: str) -> bool:
    await fetch_and_open(ada, host, url)
    return (await ada.cli_json("lesson", "show", coord))["state"] == wanted


async def _admitted(ada: Person, host: Person, url: str, coord: str) -> bool:
    await fetch_and_open(ada, host, url)
    return (await ada.cli_json("lesson", "status", coord))["admission"] == "admitted"


async def _room_epoch(ada: Person, host: Person, url: str, lesson: kinds.Lesson, epoch: int) -> bool:
    await fetch_and_open(ada, host, url)
    room = current_room(await live.load_evidence(ada.ctx, lesson))
    return room is not None and room.key_epoch == epoch
