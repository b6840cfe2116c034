"""What the daemon follows, and the per-relay cursors that make a restart resume."""

from __future__ import annotations

import asyncio

import pytest

from nostr_training import kinds
from nostr_training.daemon.follows import BACKFILL_THRESHOLD, GIFT_WRAP_LOOKBACK, RESUME_OVERLAP, Follows, plan_subscriptions
from nostr_training.event import coordinate
from nostr_training.store.memory import MemoryStore

from daemon_fakes import FakePool, signed

R = "ws://127.0.0.1:1"


def test_plan_for_a_user(alice, bob):
    course = coordinate(kinds.COURSE, bob.public_key, "py")
    taught = coordinate(kinds.COURSE, alice.public_key, "rust")
    lesson = coordinate(kinds.LESSON, alice.public_key, "rust-1")
    subs = {s.name: s for s in plan_subscriptions(
        me=alice.public_key, courses=[course], taught_courses=[taught], my_lessons=[lesson],
        correspondents=[bob.public_key, alice.public_key],
    )}
    assert set(subs) == {"own", "courses", "lessons", "rsvps", "awards", "giftwraps", "relay-lists"}
    (awards,) = subs["awards"].filters
    assert awards.kinds == {kinds.BADGE_AWARD, kinds.CERTIFICATE_REVOCATION} and awards.tags["p"] == {alice.public_key}
    assert subs["courses"].filters[-1].kinds == {kinds.BADGE_DEFINITION}
    assert subs["courses"].filters[-1].authors == {bob.public_key}, "the followed course's author's definitions"
    assert subs["own"].filters[0].authors == {alice.public_key}
    assert subs["lessons"].filters[0].tags["a"] == {course, taught}
    assert subs["lessons"].filters[0].kinds == {kinds.LESSON}
    rsvp_p, rsvp_a = subs["rsvps"].filters
    assert rsvp_p.tags["p"] == {alice.public_key} and rsvp_a.tags["a"] == {lesson}
    assert subs["giftwraps"].filters[0].kinds == {kinds.GIFT_WRAP}
    assert subs["giftwraps"].lookback == GIFT_WRAP_LOOKBACK
    assert subs["relay-lists"].filters[0].authors == {bob.public_key}
    assert subs["relay-lists"].filters[0].kinds == {kinds.RELAY_LIST, kinds.DM_RELAYS}


def test_plan_without_a_user_follows_only_configuration(bob):
    course = coordinate(kinds.COURSE, bob.public_key, "py")
    names = [s.name for s in plan_subscriptions(me=None, courses=[course])]
    assert names == ["courses", "lessons"]


def test_key_changes_with_filters(alice):
    one = plan_subscriptions(me=alice.public_key, my_lessons=["31923:" + alice.public_key + ":a"])
    two = plan_subscriptions(me=alice.public_key, my_lessons=["31923:" + alice.public_key + ":b"])

    def keys(subs):
        return {s.name: s.key for s in subs}

    assert keys(one)["rsvps"] != keys(two)["rsvps"]
    assert keys(one)["own"] == keys(two)["own"]


def test_gift_wrap_since_moves_back_two_days(alice):
    wraps = next(s for s in plan_subscriptions(me=alice.public_key) if s.name == "giftwraps")
    assert wraps.since(1_800_000_000) == 1_800_000_000 - GIFT_WRAP_LOOKBACK - RESUME_OVERLAP
    assert GIFT_WRAP_LOOKBACK == 2 * 86400
    assert wraps.since(None) is None


@pytest.fixture
async def store():
    s = await MemoryStore.open()
    yield s
    await s.close()


async def test_cursor_commits_at_eose_then_follows_live_events(store, alice, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    assert own.since(R) is None
    # Stored events come newest first; the cursor must not move before EOSE.
    for t in (300, 200, 100):
        await own.on_event(R, signed(alice, 1, content=str(t), created_at=1_700_000_000 + t))
    assert follows.cursor(R, own.key) is None
    await own.on_eose(R)
    assert follows.cursor(R, own.key) == 1_700_000_300
    await own.on_event(R, signed(alice, 1, content="live", created_at=1_700_000_400))
    assert follows.cursor(R, own.key) == 1_700_000_300, "a live event moves the cursor once it is indexed"
    await follows.flush()
    assert follows.cursor(R, own.key) == 1_700_000_400
    assert await store.get_cursor(R, own.key) == 1_700_000_400
    assert follows.counters.stored == 4

    # A restart reads the persisted cursor and asks again from an overlap before it.
    pool2 = FakePool()
    again = Follows(store, pool2, clock=clock, me=alice.public_key, relays=[R])
    await again.apply()
    own2 = pool2.subscriptions[own.key]
    assert own2.since(R) == 1_700_000_400 - RESUME_OVERLAP


async def test_kill_before_eose_resumes_from_the_old_cursor(store, alice, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    await own.on_event(R, signed(alice, 1, created_at=1_700_000_900))
    await follows.flush()  # no EOSE yet: older stored events may still be missing
    assert await store.get_cursor(R, own.key) is None


async def test_new_lesson_of_mine_replans_rsvps(store, alice, bob, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    before = {k for k in pool.subscriptions if k.startswith("rsvps:")}
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    lesson = signed(alice, kinds.LESSON, tags=[("d", "l1"), ("a", f"31924:{alice.public_key}:c")], created_at=clock.now())
    await own.on_event(R, lesson)
    await follows.commit()
    await follows.apply()
    after = {k for k in pool.subscriptions if k.startswith("rsvps:")}
    assert before and after and before != after
    rsvps = pool.subscriptions[after.pop()]
    assert any(f.tags.get("a") == {coordinate(kinds.LESSON, alice.public_key, "l1")} for f in rsvps.filters)
    assert any(k.startswith("lessons:") for k in pool.subscriptions)


async def test_indexed_events_reach_the_listener_once(store, alice, clock):
    seen = []
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R], on_indexed=seen.append)
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    note = signed(alice, 1, created_at=clock.now())
    await own.on_event(R, note)
    await own.on_event("ws://127.0.0.1:2", note)
    await follows.commit()
    assert seen == [note]
    assert follows.counters.duplicates == 1


async def test_a_future_dated_event_does_not_move_the_cursor_past_now(store, alice, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    own.since(R)
    await own.on_event(R, signed(alice, 1, created_at=clock.now() + 86400))
    await own.on_eose(R)
    await own.on_event(R, signed(alice, 1, content="live", created_at=clock.now() + 7200))
    await follows.flush()
    assert follows.cursor(R, own.key) == clock.now()


async def test_an_event_published_late_with_an_older_time_is_replayed_after_a_restart(store, alice, clock):
    """Kill, then a relay receives an event dated before our cursor: the overlap brings it."""
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    own.since(R)
    await own.on_event(R, signed(alice, 1, created_at=clock.now() - 10))
    await own.on_eose(R)
    await follows.flush()
    late = signed(alice, 1, content="late", created_at=clock.now() - 600)
    pool2 = FakePool(stored=[late])
    again = Follows(store, pool2, clock=clock, me=alice.public_key, relays=[R])
    await again.apply()
    since = pool2.subscriptions[own.key].since(R)
    assert since is not None and since <= late.created_at


class CappedPool(FakePool):
    """A relay that, like rust-nostr's, serves at most ``cap`` stored events a filter, newest first."""

    cap = 3 * BACKFILL_THRESHOLD // 2

    async def fetch(self, filters, relays, timeout=10):
        self.fetches.append(list(filters))
        got = [e for e in self.stored if any(f.matches(e) for f in filters)]
        return sorted(got, key=lambda e: -e.created_at)[: self.cap]


async def test_a_replay_cut_by_the_relay_cap_is_paged_back_before_the_cursor_moves(store, alice, clock):
    history = [signed(alice, 1, content=str(i), created_at=clock.now() - 5000 + i) for i in range(4 * CappedPool.cap)]
    pool = CappedPool(stored=history)
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    own.since(R)
    for event in sorted(history, key=lambda e: -e.created_at)[: CappedPool.cap]:
        await own.on_event(R, event)
    await own.on_eose(R)
    assert (await store.stats())["events"] == len(history)
    assert all(f.until is not None for page in pool.fetches for f in page)
    assert follows.cursor(R, own.key) == history[-1].created_at


async def test_a_short_replay_needs_no_backfill(store, alice, clock):
    pool = CappedPool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    own.since(R)
    for i in range(BACKFILL_THRESHOLD - 1):
        await own.on_event(R, signed(alice, 1, content=str(i), created_at=clock.now() - i))
    await own.on_eose(R)
    assert pool.fetches == []
    assert (await store.stats())["events"] == BACKFILL_THRESHOLD - 1


async def test_gift_wraps_are_also_read_from_my_inbox_relays(store, alice, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    (wraps,) = [s for s in pool.subscriptions.values() if s.key.startswith("giftwraps:")]
    assert wraps.relays == [R]
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    inbox = signed(alice, kinds.DM_RELAYS, tags=[("relay", "wss://inbox.example"), ("relay", R)], created_at=clock.now())
    await own.on_event(R, inbox)
    await follows.commit()
    await follows.apply()
    (wraps,) = [s for s in pool.subscriptions.values() if s.key.startswith("giftwraps:")]
    assert wraps.relays == [R, "wss://inbox.example"]
    assert [s.relays for s in pool.subscriptions.values() if s.key.startswith("own:")] == [[R]]


async def test_run_flushes_cursors_on_the_injected_clock(store, alice, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R], flush_interval=60)
    await follows.apply()
    own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
    own.since(R)
    await own.on_eose(R)
    runner = asyncio.create_task(follows.run())
    await asyncio.sleep(0)  # the runner starts its first wait
    seen = clock.now() - 5
    try:
        await own.on_event(R, signed(alice, 1, content="live", created_at=seen))
        await follows.commit()
        assert follows.cursor(R, own.key) == seen
        await clock.advance(59)
        assert await store.get_cursor(R, own.key) is None, "flushed before flush_interval of clock time"
        await clock.advance(1)
        for _ in range(100):
            if await store.get_cursor(R, own.key) is not None:
                break
            await asyncio.sleep(0)
        assert await store.get_cursor(R, own.key) == seen
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_the_plan_follows_the_markers_of_held_awards_and_leaves_private_courses_out(store, alice, bob, clock):
    """A private award's revocation is a hash-only marker (``#x``): only its holder can ask for
    it. A followed course the index holds as private is never named in a REQ."""
    public = coordinate(kinds.COURSE, bob.public_key, "py")
    hidden = coordinate(kinds.COURSE, bob.public_key, "4f1c9e")
    follows = Follows(store, FakePool(), clock=clock, me=alice.public_key, relays=[R], courses=[public, hidden])
    names = {s.name for s in await follows.plan()}
    assert "revocation-markers" not in names

    course = signed(bob, kinds.COURSE, tags=[("d", "4f1c9e"), ("title", "Jail support"), ("visibility", "private")],
                    created_at=clock.now())
    award = signed(bob, kinds.BADGE_AWARD, tags=[("a", f"30009:{bob.public_key}:cert"), ("p", alice.public_key)],
                   created_at=clock.now())
    await store.add_private(course)  # as the invitation's envelope and the record delivery index them
    await store.add_private(award)
    subs = {s.name: s for s in await follows.plan()}
    (markers,) = subs["revocation-markers"].filters
    assert markers.kinds == {kinds.CERTIFICATE_REVOCATION} and markers.authors == {bob.public_key}
    assert markers.tags == {"x": frozenset({kinds.award_hash(award.id)})}
    named = [f.to_dict() for s in subs.values() for f in s.filters]
    assert hidden not in str(named) and "4f1c9e" not in str(named)
    assert subs["lessons"].filters[0].tags["a"] == {public}


async def test_a_new_award_to_me_replans(store, alice, bob, clock):
    pool = FakePool()
    follows = Follows(store, pool, clock=clock, me=alice.public_key, relays=[R])
    await follows.apply()
    assert not any(k.startswith("revocation-markers:") for k in pool.subscriptions)
    awards = next(s for s in pool.subscriptions.values() if s.key.startswith("awards:"))
    award = signed(bob, kinds.BADGE_AWARD, tags=[("a", f"30009:{bob.public_key}:cert"), ("p", alice.public_key)],
                   created_at=clock.now())
    await awards.on_event(R, award)
    await follows.commit()
    assert follows._replan.is_set()
    await follows.apply()
    assert any(k.startswith("revocation-markers:") for k in pool.subscriptions)
