"""Private delivery: a DM reaches the recipient's inbox once, whatever retries; an unreachable
recipient is said so."""

from __future__ import annotations

from daemon.daemon_fakes import FakePool, signed

from nostr_training import kinds
from nostr_training.daemon.outbox import Outbox
from nostr_training.keys import Keys
from nostr_training.nips.nip59 import unwrap
from nostr_training.services.context import ServiceContext
from nostr_training.services.messages import WRAP_EXPIRATION_JITTER, reachability, send_dm
from nostr_training.signer import LocalSigner
from nostr_training.store import ActionRecord
from nostr_training.store.memory import MemoryStore

INBOX = "wss://inbox.example"


async def test_a_dm_is_sent_once_and_opens_as_a_kind_14(alice, bob, clock):
    store = await MemoryStore.open()
    pool = FakePool()
    ctx = ServiceContext(config=None, store=store, outbox=Outbox(store, pool, clock=clock, default_relays=[INBOX]),  # type: ignore[arg-type]
                         clock=clock, signer=LocalSigner(alice))
    await store.add(signed(bob, kinds.DM_RELAYS, tags=[("relay", INBOX)], created_at=clock.now()))
    action = ActionRecord("reminder|l1|bob|1h", "reminder", clock.now(), subject="31923:x:l1")
    first = await send_dm(ctx, bob.public_key, "Role-play starting in 1 hour", action=action, expiration=clock.now() + 7200)
    again = await send_dm(ctx, bob.public_key, "Role-play starting in 1 hour", action=action)
    assert first.sent and first.wrap_id and not again.sent
    await ctx.outbox.deliver_due()
    assert pool.published == [(INBOX, first.wrap_id)]
    assert await reachability(ctx, first.wrap_id) == "delivered"
    logged = await store.get_action(action.key)
    assert logged.event_id == first.wrap_id and logged.pubkey == bob.public_key
    opened = await unwrap(await store.get(first.wrap_id), LocalSigner(bob))
    assert opened.rumor.kind == kinds.DIRECT_MESSAGE and opened.rumor.pubkey == alice.public_key
    assert opened.rumor.content == "Role-play starting in 1 hour"
    assert opened.rumor.tag_value("expiration") == str(clock.now() + 7200)


async def test_a_recipient_without_an_inbox_is_reported_unreachable(alice, clock):
    store = await MemoryStore.open()
    ctx = ServiceContext(config=None, store=store, outbox=Outbox(store, FakePool(), clock=clock, default_relays=[INBOX]),  # type: ignore[arg-type]
                         clock=clock, signer=LocalSigner(alice))
    carol = Keys.generate()
    sent = await send_dm(ctx, carol.public_key, "hello")
    assert sent.unreachable and "10050" in sent.unreachable
    assert (await reachability(ctx, sent.wrap_id)).startswith("unreachable:")


async def test_wraps_of_one_moment_do_not_share_their_public_expiration(alice, bob, clock):
    """Reminders or room keys of one lesson expire at one moment; their wraps must not all say so
    in the clear, or a relay groups the lesson's members by it. The rumor keeps the exact time."""
    store = await MemoryStore.open()
    ctx = ServiceContext(config=None, store=store, outbox=Outbox(store, FakePool(), clock=clock, default_relays=[INBOX]),  # type: ignore[arg-type]
                         clock=clock, signer=LocalSigner(alice))
    await store.add(signed(bob, kinds.DM_RELAYS, tags=[("relay", INBOX)], created_at=clock.now()))
    ends = clock.now() + 7200
    wraps = [await store.get((await send_dm(ctx, bob.public_key, f"reminder {n}", expiration=ends)).wrap_id) for n in range(8)]
    outer = [int(w.tag_value("expiration")) for w in wraps]
    assert all(ends <= e < ends + WRAP_EXPIRATION_JITTER for e in outer) and len(set(outer)) > 1
    for wrap in wraps:
        assert (await unwrap(wrap, LocalSigner(bob))).rumor.tag_value("expiration") == str(ends)
