"""The outbox: target planning (NIP-65 / NIP-17), retry policy and the delivery lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from nostr_training import kinds
from nostr_training.daemon.outbox import Outbox, is_final_refusal, plan_targets, publish_refusal, retry_delay
from nostr_training.errors import MalformedEvent, RelayUnreachable
from nostr_training.keys import Keys
from nostr_training.nips.nip19 import npub_encode
from nostr_training.store.base import LOOKUP, OutboxState, OutboxTarget
from nostr_training.store.memory import MemoryStore
from nostr_training.store.sqlite import SqliteStore

from daemon_fakes import FakePool, signed

A = "wss://a.example"
B = "wss://b.example"
C = "wss://c.example"


def relay_list(keys: Keys, *tags, created_at=1_799_000_000):
    return signed(keys, kinds.RELAY_LIST, tags=[("r", *t) if isinstance(t, tuple) else ("r", t) for t in tags], created_at=created_at)


def test_author_write_relays_and_read_relays_of_p_tagged(alice, bob):
    note = signed(alice, 1, tags=[("p", bob.public_key)])
    lists = {
        alice.public_key: relay_list(alice, (A, "write"), (B, "read")),
        bob.public_key: relay_list(bob, (C, "read"), (B, "write")),
    }
    planned = plan_targets(note, relay_lists=lists, dm_relay_lists={}, default_relays=["wss://default.example"])
    assert planned.relays == (A, C)
    assert planned.refusals == ()


def test_author_without_relay_list_uses_configured_relays(alice, bob):
    note = signed(alice, 1, tags=[("p", bob.public_key)])
    planned = plan_targets(note, relay_lists={}, dm_relay_lists={}, default_relays=["WSS://Default.Example/"])
    assert planned.relays == ("wss://default.example",)


def test_gift_wrap_goes_only_to_recipient_inbox_relays(alice, bob):
    wrapper = Keys.generate()
    wrap = signed(wrapper, kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x")
    inbox = signed(bob, kinds.DM_RELAYS, tags=[("relay", C)])
    planned = plan_targets(
        wrap, relay_lists={bob.public_key: relay_list(bob, A)}, dm_relay_lists={bob.public_key: inbox},
        default_relays=[B],
    )
    assert planned.relays == (C,)


def test_gift_wrap_without_inbox_relays_is_refused_with_npub(bob):
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x")
    planned = plan_targets(wrap, relay_lists={}, dm_relay_lists={}, default_relays=[B])
    assert planned.relays == ()
    ((recipient, reason),) = planned.refusals
    assert recipient == bob.public_key
    assert npub_encode(bob.public_key) in reason and "10050" in reason


def test_auth_events_are_never_published(alice):
    auth = signed(alice, kinds.AUTH, tags=[("relay", A), ("challenge", "c")])
    assert "never broadcast" in publish_refusal(auth, 1_800_000_000)


def test_unknown_lists_are_unresolved_not_missing(alice, bob):
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x")
    planned = plan_targets(wrap, relay_lists={}, dm_relay_lists={}, default_relays=[B], unknown={bob.public_key})
    assert (planned.relays, planned.refusals, planned.unresolved) == ((), (), (bob.public_key,))
    note = signed(alice, 1, tags=[("p", bob.public_key)])
    lists = {alice.public_key: relay_list(alice, (A, "write"))}
    planned = plan_targets(note, relay_lists=lists, dm_relay_lists={}, default_relays=[B], unknown={bob.public_key})
    assert (planned.relays, planned.unresolved) == ((A,), (bob.public_key,))


@pytest.mark.parametrize(
    "message,final",
    [("invalid: bad", True), ("blocked: no", True), ("restricted: members", True), ("pow: 20 bits", True),
     ("rate-limited: slow", False), ("error: db", False), ("timeout: 10 s", False), ("not-connected: down", False),
     ("auth-required: who", False)],
)
def test_final_refusals(message, final):
    assert is_final_refusal(message) is final


def test_retry_delay_doubles_and_is_capped():
    top = [retry_delay(n, rng=lambda: 0.0) for n in range(1, 15)]
    assert top[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(top) == 3600.0
    low = [retry_delay(n, rng=lambda: 1.0) for n in range(1, 5)]
    assert low == [2.5, 5.0, 10.0, 20.0]


@pytest.fixture
async def store():
    s = await MemoryStore.open()
    yield s
    await s.close()


def states(entries):
    """Relay URL (or the target itself when it is not a relay) -> state."""
    return {e.relay or e.target: e.state for e in entries}


async def test_down_relay_is_retried_until_it_comes_up(store, alice, clock):
    pool = FakePool(down={B})
    outbox = Outbox(store, pool, clock=clock, default_relays=[A, B], rng=lambda: 0.0)
    note = signed(alice, 1, content="hello", created_at=clock.now())
    submission = await outbox.submit(note)
    assert submission.relays == (A, B)
    assert await store.outbox_depth() == 2  # committed before anything is sent
    await outbox.deliver_due()
    got = states(await store.outbox_entries(note.id))
    assert got == {A: OutboxState.DELIVERED, B: OutboxState.RETRYING}
    assert await outbox.deliver_due() == 0  # not due again yet
    pool.down.clear()
    await clock.advance(5)
    assert await outbox.deliver_due() == 1
    assert states(await store.outbox_entries(note.id)) == {A: OutboxState.DELIVERED, B: OutboxState.DELIVERED}
    assert await store.outbox_depth() == 0
    assert pool.published.count((B, note.id)) == 1


async def test_refusal_is_final_and_keeps_the_reason(store, alice, clock):
    pool = FakePool(answers={B: "blocked: not on the allow list"})
    outbox = Outbox(store, pool, clock=clock, default_relays=[A, B])
    note = signed(alice, 1, created_at=clock.now())
    await outbox.submit(note)
    await outbox.deliver_due()
    by_relay = {e.relay: e for e in await store.outbox_entries(note.id)}
    assert by_relay[B].state is OutboxState.REFUSED
    assert by_relay[B].last_message == "blocked: not on the allow list"
    await clock.advance(10_000)
    assert await outbox.deliver_due() == 0


async def test_duplicate_counts_as_delivered(store, alice, clock):
    pool = FakePool(answers={A: "duplicate: have it"})
    outbox = Outbox(store, pool, clock=clock, default_relays=[A])
    note = signed(alice, 1, created_at=clock.now())
    await outbox.submit(note)
    await outbox.deliver_due()
    assert states(await store.outbox_entries(note.id)) == {A: OutboxState.DELIVERED}


async def test_missing_relay_lists_are_fetched_and_indexed(store, alice, bob, clock):
    pool = FakePool(stored=[relay_list(bob, (C, "read"))])
    outbox = Outbox(store, pool, clock=clock, default_relays=[A])
    note = signed(alice, 1, tags=[("p", bob.public_key)], created_at=clock.now())
    submission = await outbox.submit(note)
    assert submission.relays == (A, C)
    assert pool.fetches, "the missing 10002s were asked for"
    # Known now: a second event needs no lookup for bob.
    pool.fetches.clear()
    await outbox.submit(signed(alice, 1, tags=[("p", bob.public_key)], content="again", created_at=clock.now()))
    assert all(bob.public_key not in (f.authors or ()) for fs in pool.fetches for f in fs)


async def test_gift_wrap_without_inbox_is_recorded_as_refused(store, bob, clock):
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[A])
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    submission = await outbox.submit(wrap)
    assert submission.relays == ()
    (entry,) = await store.outbox_entries(wrap.id)
    assert entry.state is OutboxState.REFUSED and "no inbox relays (10050)" in entry.last_message
    assert await store.outbox_depth() == 0


async def test_explicit_relays_override_targets(store, alice, clock):
    pool = FakePool()
    outbox = Outbox(store, pool, clock=clock, default_relays=[A])
    note = signed(alice, 1, created_at=clock.now())
    submission = await outbox.submit(note, relays=[C])
    assert submission.relays == (C,)
    await outbox.deliver_due()
    assert pool.published == [(C, note.id)]


class LookupPool(FakePool):
    """A FakePool whose fetch, like the real pool's, gets nothing from relays that are down;
    ``stall`` makes it wait out its timeout (or until ``release`` is set) first."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.stall = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def fetch(self, filters, relays, timeout=10):
        self.entered.set()
        if self.stall:
            try:
                async with asyncio.timeout(timeout):
                    await self.release.wait()
            except TimeoutError:
                return []
        if all(r in self.down for r in relays):
            self.fetches.append(list(filters))
            return []
        return await super().fetch(filters, relays, timeout)


async def offline_pool(*relays, stored=()) -> LookupPool:
    pool = LookupPool(down=set(relays), stored=list(stored))
    for url in relays:
        await pool.add_relay(url)
    return pool


async def test_submit_commits_before_any_lookup(store, alice, clock):
    pool = LookupPool()
    pool.stall = True
    outbox = Outbox(store, pool, clock=clock, default_relays=[A], fetch_timeout=30)
    note = signed(alice, 1, created_at=clock.now())
    submitting = asyncio.create_task(outbox.submit(note))
    await asyncio.wait_for(pool.entered.wait(), 5)
    assert not submitting.done()
    assert await store.get(note.id) == note
    assert states(await store.outbox_entries(note.id)) == {LOOKUP: OutboxState.PENDING}
    assert await outbox.deliver_due() == 0, "the sender leaves an event to the submit resolving it"
    pool.release.set()
    submission = await asyncio.wait_for(submitting, 5)
    assert submission.relays == (A,) and submission.unresolved == ()
    assert states(await store.outbox_entries(note.id)) == {A: OutboxState.PENDING}


async def test_gift_wrap_submitted_offline_reaches_the_inbox_relay_once_relays_are_back(store, bob, clock):
    pool = await offline_pool(A, stored=[signed(bob, kinds.DM_RELAYS, tags=[("relay", C)])])
    outbox = Outbox(store, pool, clock=clock, default_relays=[A], rng=lambda: 0.0)
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    submission = await outbox.submit(wrap)
    assert (submission.relays, submission.refusals, submission.unresolved) == ((), (), (bob.public_key,))
    (entry,) = await store.outbox_entries(wrap.id)
    assert (entry.target, entry.state) == (LOOKUP, OutboxState.RETRYING)
    assert entry.last_message.startswith("error:") and npub_encode(bob.public_key) in entry.last_message
    assert await store.outbox_depth() == 1
    await clock.advance(5)
    assert await outbox.deliver_due() == 1  # the first pass takes what is due
    assert (await store.outbox_entries(wrap.id))[0].attempts == 2  # looked again, still offline
    await clock.advance(600)
    assert await outbox.deliver_due() == 0, "no relay connected, no new list: the look-up waits"
    assert (await store.outbox_entries(wrap.id))[0].attempts == 2
    assert pool.published == []

    pool.down.clear()
    await clock.advance(10)
    await outbox.deliver_due()
    assert states(await store.outbox_entries(wrap.id)) == {C: OutboxState.DELIVERED}
    assert pool.published == [(C, wrap.id)]
    assert await store.outbox_depth() == 0


async def test_gift_wrap_is_refused_only_once_a_relay_answered_without_10050(store, bob, clock):
    pool = await offline_pool(A)
    outbox = Outbox(store, pool, clock=clock, default_relays=[A], rng=lambda: 0.0)
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    await outbox.submit(wrap)
    assert states(await store.outbox_entries(wrap.id)) == {LOOKUP: OutboxState.RETRYING}
    pool.down.clear()
    await clock.advance(5)
    await outbox.deliver_due()
    (entry,) = await store.outbox_entries(wrap.id)
    assert (entry.target, entry.state) == (OutboxTarget.recipient(bob.public_key), OutboxState.REFUSED)
    assert "no inbox relays (10050)" in entry.last_message and npub_encode(bob.public_key) in entry.last_message
    assert await store.outbox_depth() == 0 and pool.published == []


async def test_lookup_timeout_is_not_an_answer(store, bob, clock):
    pool = LookupPool()
    pool.stall = True
    outbox = Outbox(store, pool, clock=clock, default_relays=[A], fetch_timeout=0.05)
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    submission = await outbox.submit(wrap)
    assert submission.refusals == () and submission.unresolved == (bob.public_key,)
    assert states(await store.outbox_entries(wrap.id)) == {LOOKUP: OutboxState.RETRYING}


async def test_p_tagged_read_relay_is_added_once_their_relay_list_is_fetchable(store, alice, bob, clock):
    await store.add(relay_list(alice, (A, "write")))
    pool = await offline_pool(B, stored=[relay_list(bob, (C, "read"))])
    outbox = Outbox(store, pool, clock=clock, default_relays=[B], rng=lambda: 0.0)
    note = signed(alice, 1, tags=[("p", bob.public_key)], created_at=clock.now())
    submission = await outbox.submit(note)
    assert (submission.relays, submission.unresolved) == ((A,), (bob.public_key,))
    await outbox.deliver_due()
    assert states(await store.outbox_entries(note.id)) == {LOOKUP: OutboxState.RETRYING, A: OutboxState.DELIVERED}

    pool.down.clear()
    await clock.advance(5)
    await outbox.deliver_due()
    assert states(await store.outbox_entries(note.id)) == {A: OutboxState.DELIVERED, C: OutboxState.DELIVERED}
    assert pool.published == [(A, note.id), (C, note.id)]
    assert await store.outbox_depth() == 0


@pytest.mark.parametrize("kind", sorted(kinds.PRIVATE_KINDS))
async def test_rumor_only_kinds_are_never_queued(store, alice, clock, kind):
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[A])
    leak = signed(alice, kind, content="the room key", created_at=clock.now())
    with pytest.raises(MalformedEvent, match="gift wrap"):
        await outbox.submit(leak, [A])
    assert await store.outbox_entries(leak.id) == [] and await store.get(leak.id) is None


async def test_an_already_expired_event_is_not_queued(store, alice, clock):
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[A])
    stale = signed(alice, 1, tags=[("expiration", str(clock.now() - 1))], created_at=clock.now() - 60)
    with pytest.raises(MalformedEvent, match="expired"):
        await outbox.submit(stale)
    assert await store.outbox_depth() == 0
    fresh = signed(alice, 1, tags=[("expiration", str(clock.now() + 60))], created_at=clock.now())
    assert (await outbox.submit(fresh)).relays == (A,)


async def test_an_old_revision_still_queued_is_not_sent_once_a_newer_one_is(store, alice, clock):
    pool = FakePool(down={A})
    outbox = Outbox(store, pool, clock=clock, default_relays=[A])
    first = signed(alice, kinds.LESSON, tags=[("d", "l1"), ("title", "v1")], created_at=clock.now())
    await outbox.submit(first)
    await outbox.deliver_due()
    second = signed(alice, kinds.LESSON, tags=[("d", "l1"), ("title", "v2")], created_at=clock.now() + 1)
    await outbox.submit(second)
    pool.down.clear()
    await clock.advance(3600)
    await outbox.deliver_due()
    assert pool.published == [(A, second.id)]
    (old,) = await store.outbox_entries(first.id)
    assert old.state is OutboxState.REFUSED and old.last_message.startswith("superseded:")
    assert await outbox.deliver_due() == 0


async def test_a_refusal_for_want_of_an_inbox_goes_once_a_later_attempt_delivers(store, bob, clock):
    """Published again after bob announced his inbox, the wrap reaches it, and status no longer
    lists the old "no inbox relays" refusal as if it still held."""
    from nostr_training.services.context import ServiceContext
    from nostr_training.services.status import store_status

    pool = FakePool()
    outbox = Outbox(store, pool, clock=clock, default_relays=[A])
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    await outbox.submit(wrap)
    assert states(await store.outbox_entries(wrap.id)) == {OutboxTarget.recipient(bob.public_key): OutboxState.REFUSED}
    await store.add(signed(bob, kinds.DM_RELAYS, tags=[("relay", C)], created_at=clock.now()))
    await outbox.submit(wrap)
    await outbox.deliver_due()
    assert states(await store.outbox_entries(wrap.id)) == {C: OutboxState.DELIVERED}
    ctx = ServiceContext(config=None, store=store, outbox=outbox, clock=clock)  # type: ignore[arg-type]
    assert (await store_status(ctx))["outbox_refused"] == []


async def test_an_outbox_without_a_pool_queues_and_says_it_cannot_send(store, alice, clock):
    """The CLI's outbox when a daemon runs: it commits, and delivering is the daemon's job."""
    outbox = Outbox(store, None, clock=clock, default_relays=[A])
    note = signed(alice, 1, created_at=clock.now())
    assert (await outbox.submit(note)).relays == (A,)
    with pytest.raises(RelayUnreachable, match="no relay pool"):
        await outbox.deliver_due()
    assert states(await store.outbox_entries(note.id))[A] is OutboxState.PENDING


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_cached_relay_lists_follow_what_the_store_holds(backend, tmp_path, alice, bob, clock):
    """The outbox remembers the lists (and their absence) it read for a group commit, and reads
    again once a list of that kind is stored by any path (here: indexed from a relay)."""
    store = await MemoryStore.open() if backend == "memory" else await SqliteStore.open(tmp_path / "index.db")
    try:
        outbox = Outbox(store, None, clock=clock, default_relays=[A])
        note = signed(alice, 1, tags=[("p", bob.public_key)], created_at=clock.now())
        assert (await outbox.targets(note, fetch=False)).relays == (A,)
        read = store.query
        calls = []

        async def counting(*args, **kw):
            calls.append(args)
            return await read(*args, **kw)

        store.query = counting  # type: ignore[method-assign]
        assert (await outbox.targets(note, fetch=False)).relays == (A,)
        assert calls == [], "the second plan reads no list again"
        await store.add(relay_list(bob, (C, "read")), now=clock.now())
        assert (await outbox.targets(note, fetch=False)).relays == (A, C), "a list stored since is seen"
        await store.add(relay_list(alice, (B, "write"), created_at=1_799_000_100), now=clock.now())
        assert (await outbox.targets(note, fetch=False)).relays == (B, C)
    finally:
        await store.close()


async def test_a_waiting_lookup_is_planned_again_when_a_list_comes_by_another_path(alice, clock):
    """No relay configured (or none connected): the look-up waits, and a relay list stored
    meanwhile (from the local endpoint, the CLI) sends the event to its relays."""
    store = await MemoryStore.open()
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[])
    note = signed(alice, 1, content="hi", created_at=clock.now())
    await outbox.submit_many([note])
    await outbox.deliver_due()
    await clock.advance(5)
    assert await outbox.deliver_due() == 0, "nothing new: the look-up waits"
    await store.add(relay_list(alice, (B, "write")), now=clock.now())
    await clock.advance(1)
    await outbox.deliver_due()
    assert states(await store.outbox_entries(note.id)) == {B: OutboxState.DELIVERED}


async def test_a_publisher_does_not_wait_for_a_lookup_no_relay_can_answer(bob, clock):
    store = await MemoryStore.open()
    outbox = Outbox(store, await offline_pool(A), clock=clock, default_relays=[A])
    await outbox.deliver_due()  # the daemon's first pass
    wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    await outbox.submit_many([wrap])
    assert states(await store.outbox_entries(wrap.id)) == {LOOKUP: OutboxState.PENDING}
    assert not await outbox.untried([wrap.id]), "waiting for a relay, not for a first try"
