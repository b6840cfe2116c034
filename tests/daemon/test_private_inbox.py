"""The daemon's private inbox and what the follows do for it: the plan follows the 32678 items of
every host whose key the user holds and the ephemeral wraps to the user; an invitation, an
envelope and an ephemeral wrap are opened as they arrive, with no command, and a new key makes
the follows plan again."""

from __future__ import annotations

import asyncio

import pytest
from services.training_world import context

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.daemon.follows import plan_subscriptions
from nostr_training.daemon.private_inbox import PrivateInbox
from nostr_training.event import EventTemplate
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.nips.nip59 import gift_wrap, make_rumor
from nostr_training.services import private
from nostr_training.signer import LocalSigner

from daemon_fakes import FakePool

R = "wss://relay.example"
HOUR = 3600


def test_the_plan_follows_key_holding_hosts_and_ephemeral_wraps():
    me, host = Keys.generate().public_key, Keys.generate().public_key
    subs = {s.name: s for s in plan_subscriptions(me=me, private_hosts=[host, me])}
    (items,) = subs["private-items"].filters
    assert items.kinds == {kinds.PRIVATE_CALENDAR_ITEM} and items.authors == {host}
    lasting, ephemeral = subs["giftwraps"].filters
    assert lasting.kinds == {kinds.GIFT_WRAP} and ephemeral.kinds == {kinds.GIFT_WRAP_EPHEMERAL}
    assert ephemeral.tags["p"] == {me}
    assert "private-items" not in {s.name for s in plan_subscriptions(me=me)}


async def eventually(check, clock: ManualClock, tries: int = 200):
    for _ in range(tries):
        value = await check()
        if value:
            return value
        await clock.advance(3)  # the follows flush (and plan again) on the daemon's clock
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@pytest.fixture
async def learner_daemon(home, clock):
    keys = Keys.generate()
    pool = FakePool()
    inbox = PrivateInbox()
    daemon = Daemon(load_config().with_overrides(relays=[R], port=0), signer=LocalSigner(keys), pool=pool, clock=clock,
                    components=(inbox,))
    await daemon.start()
    yield daemon, keys, pool, inbox
    await daemon.stop()


def _subscription(pool: FakePool, name: str):
    return next(s for s in pool.subscriptions.values() if s.key.startswith(f"{name}:"))


async def test_an_invitation_opens_the_envelopes_already_indexed(learner_daemon, clock):
    daemon, keys, pool, inbox = learner_daemon
    host = Keys.generate()
    hosting = await context(host, clock)
    lesson = kinds.Lesson(author=host.public_key, d="0f" * 16, title="Street medic", start=clock.now() + 2 * HOUR,
                          end=clock.now() + 3 * HOUR, instructor=host.public_key)
    rumor = await private.publish_private_item(hosting, kinds.build_lesson(lesson, created_at=clock.now()))
    [sent] = await private.invite(hosting, rumor.address, [keys.public_key], text="Come")
    [envelope] = await hosting.store.query([Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}))])
    await daemon.store.add(envelope)  # it came first (a followed author), unreadable until the key
    assert await daemon.store.lesson(rumor.address) is None

    await _subscription(pool, "giftwraps").on_event(R, await hosting.store.get(sent.wrap_id))
    opened = await eventually(lambda: daemon.store.lesson(rumor.address), clock)
    assert opened.title == "Street medic" and opened.private and inbox.invitations == 1


async def test_the_envelope_arriving_after_the_key_is_opened_as_it_is_indexed(learner_daemon, clock):
    daemon, keys, pool, inbox = learner_daemon
    host = Keys.generate()
    hosting = await context(host, clock)
    first = kinds.Lesson(author=host.public_key, d="1a" * 16, title="Legal observer", start=clock.now() + 2 * HOUR,
                         end=clock.now() + 3 * HOUR, instructor=host.public_key)
    rumor = await private.publish_private_item(hosting, kinds.build_lesson(first, created_at=clock.now()))
    [sent] = await private.invite(hosting, rumor.address, [keys.public_key], text="Come")
    assert not [s for s in pool.subscriptions if s.startswith("private-items:")]
    await _subscription(pool, "giftwraps").on_event(R, await hosting.store.get(sent.wrap_id))

    async def planned():
        return any(s.startswith("private-items:") for s in pool.subscriptions)

    await eventually(planned, clock)  # the new key made the follows plan again
    items = _subscription(pool, "private-items")
    assert items.filters[0].authors == {host.public_key}

    await clock.advance(60)
    moved = kinds.build_lesson(kinds.Lesson(author=host.public_key, d="1a" * 16, title="Legal observer",
                                            start=clock.now() + 5 * HOUR, end=clock.now() + 6 * HOUR,
                                            instructor=host.public_key), created_at=clock.now())
    await private.publish_private_item(hosting, moved, key_of=rumor.address)
    [envelope] = await hosting.store.query([Filter(kinds=frozenset({kinds.PRIVATE_CALENDAR_ITEM}))])
    await items.on_event(R, envelope)  # the newest revision, live
    lesson = await eventually(lambda: _revision(daemon, rumor.address, moved.created_at), clock)
    assert lesson.title == "Legal observer" and inbox.items == 1


async def _revision(daemon, coord, created_at):
    lesson = await daemon.store.lesson(coord)
    return lesson if lesson is not None and lesson.created_at == created_at else None


async def test_an_ephemeral_wrap_is_opened_though_it_is_never_stored(learner_daemon, clock):
    daemon, keys, pool, inbox = learner_daemon
    sender = Keys.generate()
    room = f"30312:{keys.public_key}:room"
    presence = EventTemplate(kinds.ROOM_PRESENCE, (("a", room),), "", clock.now())
    wrap = await gift_wrap(presence, LocalSigner(sender), keys.public_key, now=clock.now(), ephemeral=True)
    rumor = make_rumor(presence, sender.public_key)
    assert wrap.kind == kinds.GIFT_WRAP_EPHEMERAL

    await _subscription(pool, "giftwraps").on_event(R, wrap)

    async def opened():
        return await daemon.store.get(rumor.id)

    assert (await eventually(opened, clock)).pubkey == sender.public_key
    assert await daemon.store.get(wrap.id) is None  # ephemeral: never stored
    assert inbox.rumors == 1 and inbox.status()["rumors"] == 1


async def test_the_hosts_reminders_cover_a_private_lesson_and_its_private_cancellation(home, clock):
    """The reminder scheduler reads private lessons, answers and cancellations like public ones."""
    from nostr_training.daemon.reminders import ReminderScheduler
    from nostr_training.services import live
    from nostr_training.services.rsvp import rsvp_list

    host, learner = Keys.generate(), Keys.generate()
    scheduler = ReminderScheduler(interval=60)
    daemon = Daemon(load_config().with_overrides(relays=[R], port=0), signer=LocalSigner(host), pool=FakePool(),
                    clock=clock, components=(scheduler,))
    await daemon.start()
    try:
        ctx = daemon.services
        await live.create_course(ctx, "medic", "Street medic", private=True)
        lesson = await live.schedule_lesson(ctx, "medic", "triage", "Triage", clock.now() + 3 * 86400, 60,
                                            requires_rsvp=True)
        answer = make_rumor(kinds.build_rsvp(lesson, "accepted", created_at=clock.now()), learner.public_key)
        await daemon.store.add_private(answer, now=clock.now())  # as the inbox indexes a private answer
        assert lesson.coordinate in await scheduler.hosted_lessons(clock.now())
        await live.cancel_lesson(ctx, "triage", reason="rain")

        async def told():
            listing = await rsvp_list(ctx, lesson.coordinate)
            [row] = listing.rows
            return listing.cancelled and [r.kind for r in row.reminders] == ["cancelled"]

        await eventually(told, clock)
    finally:
        await daemon.stop()
