"""The store contract: every test runs against the SQLite store and the in-memory store."""

from __future__ import annotations

from pathlib import Path

import pytest

from nostr_training.errors import InvalidId, InvalidSignature, MalformedEvent, StoreError
from nostr_training.event import Event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.store import LOOKUP, AddOutcome, MemoryStore, OutboxState, OutboxTarget, SqliteStore, Store

from .factories import address_of, addressable, deletion, rumor, signed, tampered

T = 1_800_000_000
LESSON, COURSE, RSVP, ATTENDANCE, AWARD, PRESENCE, GIFT_WRAP = 31923, 31924, 31925, 31930, 8, 10312, 1059


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    opened: Store = await SqliteStore.open(tmp_path / "index.db") if request.param == "sqlite" else MemoryStore()
    yield opened
    await opened.close()


@pytest.fixture
def carol() -> Keys:
    return Keys.from_hex("3b2d9a3f1c0e5e8c7a6b5d4c3b2a19080706050403020100f0e0d0c0b0a09080")


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def every(**kw) -> list[Filter]:
    return [Filter(**kw)]


# Adding --------------------------------------------------------------------------------------


async def test_added_event_is_served_and_second_copy_is_a_duplicate(store: Store, alice: Keys):
    note = signed(alice, 1, content="hello")
    assert await store.add(note) is AddOutcome.STORED
    assert await store.add(note) is AddOutcome.DUPLICATE
    assert await store.get(note.id) == note
    assert ids(await store.query(every())) == [note.id]


async def test_kind_version_moves_when_that_kind_or_a_deletion_is_stored(store: Store, alice: Keys):
    """What a cache of one kind checks: it changes with a stored event of that kind or any
    deletion, not with other kinds, duplicates or refused events."""
    relay_list = 10002
    start = store.kind_version(relay_list)
    await store.add(signed(alice, 1, content="a note"))
    await store.add_many([signed(alice, RSVP, tags=[("d", "x")])])
    assert store.kind_version(relay_list) == start
    listed = signed(alice, relay_list, tags=[("r", "wss://a.example")])
    await store.add(listed)
    after_list = store.kind_version(relay_list)
    assert after_list != start
    await store.add(listed)
    assert store.kind_version(relay_list) == after_list, "a duplicate changes nothing"
    with pytest.raises(InvalidSignature):
        await store.add(tampered(signed(alice, relay_list, at=T + 5), sig="00" * 64))
    assert store.kind_version(relay_list) == after_list
    await store.add(deletion(alice, ids=[listed.id], at=T + 10))
    assert store.kind_version(relay_list) != after_list


async def test_get_of_unknown_id_is_none(store: Store):
    assert await store.get("0" * 64) is None


async def test_bad_signature_raises_and_nothing_stored_is_lost(store: Store, alice: Keys):
    kept = signed(alice, 1, content="kept")
    await store.add(kept)
    forged = tampered(signed(alice, 1, content="x"), sig="00" * 64)
    with pytest.raises(InvalidSignature):
        await store.add(forged)
    assert await store.get(forged.id) is None
    assert ids(await store.query(every())) == [kept.id]


async def test_changed_content_raises_invalid_id(store: Store, alice: Keys):
    with pytest.raises(InvalidId):
        await store.add(tampered(signed(alice, 1, content="original"), content="edited"))
    assert (await store.stats())["events"] == 0


async def test_malformed_content_is_refused(store: Store, alice: Keys):
    broken = tampered(signed(alice, 1, content="x"), content="lone \ud800 surrogate")
    with pytest.raises(MalformedEvent):
        await store.add(broken)
    assert await store.add_many([broken]) == [AddOutcome.INVALID]
    assert (await store.stats())["events"] == 0


async def test_add_many_gives_an_outcome_per_event(store: Store, alice: Keys, bob: Keys):
    first = signed(alice, 1, content="one")
    forged = tampered(signed(bob, 1, content="two"), content="three")
    old = addressable(alice, LESSON, "l1", at=T)
    new = addressable(alice, LESSON, "l1", at=T + 10)
    flash = signed(alice, 20001, content="gone")
    outcomes = await store.add_many([first, forged, first, new, old, flash])
    assert outcomes == [
        AddOutcome.STORED, AddOutcome.INVALID, AddOutcome.DUPLICATE,
        AddOutcome.STORED, AddOutcome.SUPERSEDED, AddOutcome.EPHEMERAL,
    ]
    assert set(ids(await store.query(every()))) == {first.id, new.id}


async def test_a_large_batch_is_verified_and_resolved_in_order_across_chunks(store: Store, alice: Keys, bob: Keys):
    """Large enough for the SQLite store to verify it in its worker process, chunk by chunk."""
    notes = [signed(alice if i % 2 else bob, 1, content=f"note {i}", at=T + i) for i in range(1500)]
    forged_sig = tampered(signed(bob, 1, content="x"), sig="ab" * 64)
    forged_content = tampered(signed(alice, 1, content="y"), content="z")
    newer = addressable(alice, LESSON, "big", at=T + 50)
    older = addressable(alice, LESSON, "big", at=T + 5)
    batch = [*notes[:700], forged_sig, newer, *notes[700:1200], notes[3], forged_content, older, *notes[1200:]]
    outcomes = await store.add_many(batch)
    expected = [AddOutcome.STORED] * len(batch)
    expected[700] = AddOutcome.INVALID
    expected[1202] = AddOutcome.DUPLICATE
    expected[1203] = AddOutcome.INVALID
    expected[1204] = AddOutcome.SUPERSEDED
    assert outcomes == expected
    assert (await store.stats())["events"] == 1502
    assert ids(await store.query([Filter(kinds=[LESSON])])) == [newer.id]
    assert await store.get(forged_sig.id) is None and await store.get(forged_content.id) is None
    assert await store.add_many(batch) == [
        AddOutcome.INVALID if o is AddOutcome.INVALID else AddOutcome.DUPLICATE for o in expected
    ]


async def test_verified_flag_skips_verification(store: Store, alice: Keys):
    ev = signed(alice, 1, content="trusted")
    assert await store.add(ev, verified=True) is AddOutcome.STORED
    assert await store.add_many([ev], verified=True) == [AddOutcome.DUPLICATE]


async def test_ephemeral_events_are_not_stored(store: Store, alice: Keys):
    ev = signed(alice, 21059, content="live only")
    assert await store.add(ev) is AddOutcome.EPHEMERAL
    assert await store.get(ev.id) is None


# Replaceable and addressable -----------------------------------------------------------------


async def test_newer_version_replaces_and_older_is_kept_for_audit(store: Store, alice: Keys):
    old = signed(alice, 10002, tags=[("r", "wss://a.example")], at=T)
    new = signed(alice, 10002, tags=[("r", "wss://b.example")], at=T + 1)
    assert await store.add(old) is AddOutcome.STORED
    assert await store.add(new) is AddOutcome.STORED
    assert ids(await store.query(every(kinds=frozenset({10002})))) == [new.id]
    assert ids(await store.query(every(kinds=frozenset({10002})), include_superseded=True)) == [new.id, old.id]
    assert await store.get(old.id) == old


async def test_older_version_arriving_late_is_superseded(store: Store, alice: Keys):
    new = addressable(alice, LESSON, "l1", at=T + 5)
    old = addressable(alice, LESSON, "l1", at=T)
    await store.add(new)
    assert await store.add(old) is AddOutcome.SUPERSEDED
    assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [new.id]


@pytest.mark.parametrize("lowest_first", [True, False])
async def test_tie_on_created_at_goes_to_the_lowest_id(store: Store, alice: Keys, lowest_first: bool):
    a = addressable(alice, LESSON, "tie", at=T, content="a")
    b = addressable(alice, LESSON, "tie", at=T, content="b")
    low, high = sorted([a, b], key=lambda e: e.id)
    arrival = [low, high] if lowest_first else [high, low]
    outcomes = [await store.add(e) for e in arrival]
    assert outcomes == ([AddOutcome.STORED, AddOutcome.SUPERSEDED] if lowest_first else [AddOutcome.STORED] * 2)
    assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [low.id]


async def test_addresses_differ_by_d_and_by_author(store: Store, alice: Keys, bob: Keys):
    evs = [
        addressable(alice, LESSON, "l1", at=T),
        addressable(alice, LESSON, "l2", at=T + 1),
        addressable(bob, LESSON, "l1", at=T + 2),
    ]
    assert await store.add_many(evs) == [AddOutcome.STORED] * 3
    assert len(await store.query(every(kinds=frozenset({LESSON})))) == 3


async def test_missing_d_reads_as_empty(store: Store, alice: Keys):
    bare = signed(alice, LESSON, at=T)
    empty = addressable(alice, LESSON, "", at=T + 1)
    await store.add(bare)
    assert await store.add(empty) is AddOutcome.STORED
    assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [empty.id]


# Deletions -----------------------------------------------------------------------------------


async def test_deletion_by_the_author_hides_the_target_and_is_itself_served(store: Store, alice: Keys):
    note = signed(alice, 1, content="oops", at=T)
    await store.add(note)
    kill = deletion(alice, ids=[note.id], at=T + 1)
    assert await store.add(kill) is AddOutcome.STORED
    assert ids(await store.query(every())) == [kill.id]
    assert await store.get(note.id) == note
    assert (await store.stats())["deleted"] == 1


async def test_a_deletion_by_someone_else_is_ignored(store: Store, alice: Keys, bob: Keys):
    note = signed(alice, 1, content="mine", at=T)
    await store.add(note)
    await store.add(deletion(bob, ids=[note.id], at=T + 1))
    await store.add(deletion(bob, addresses=[address_of(alice, LESSON, "l1")], at=T + 1))
    lesson = addressable(alice, LESSON, "l1", at=T)
    assert await store.add(lesson) is AddOutcome.STORED
    assert {note.id, lesson.id} <= set(ids(await store.query(every())))


async def test_a_deletion_arriving_first_still_hides_its_target(store: Store, alice: Keys):
    note = signed(alice, 1, content="late", at=T)
    await store.add(deletion(alice, ids=[note.id], at=T + 1))
    assert await store.add(note) is AddOutcome.DELETED
    assert note.id not in ids(await store.query(every()))
    assert await store.get(note.id) == note


async def test_address_deletion_covers_versions_up_to_its_time_only(store: Store, alice: Keys):
    coord = address_of(alice, LESSON, "l1")
    v1 = addressable(alice, LESSON, "l1", at=T)
    v2 = addressable(alice, LESSON, "l1", at=T + 10)
    await store.add_many([v1, v2])
    await store.add(deletion(alice, addresses=[coord], at=T + 10))
    assert await store.query(every(kinds=frozenset({LESSON}))) == []
    assert await store.query(every(kinds=frozenset({LESSON})), include_superseded=True) == []
    again = addressable(alice, LESSON, "l1", at=T + 11)
    assert await store.add(again) is AddOutcome.STORED
    assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [again.id]


async def test_address_deletion_arriving_first_hides_older_versions(store: Store, alice: Keys):
    coord = address_of(alice, LESSON, "l1")
    await store.add(deletion(alice, addresses=[coord], at=T + 5))
    assert await store.add(addressable(alice, LESSON, "l1", at=T)) is AddOutcome.DELETED
    assert await store.add(addressable(alice, LESSON, "l1", at=T + 6)) is AddOutcome.STORED


async def test_address_deletion_in_the_same_batch_as_its_target(store: Store, alice: Keys):
    coord = address_of(alice, LESSON, "l1")
    before = addressable(alice, LESSON, "l1", at=T)
    kill = deletion(alice, addresses=[coord], at=T + 5)
    after = signed(alice, 1, content="unrelated", at=T + 6)
    assert await store.add_many([before, kill, after]) == [AddOutcome.STORED] * 3
    assert ids(await store.query(every())) == [after.id, kill.id]


async def test_gift_wrap_is_deleted_by_its_recipient_not_by_others(store: Store, alice: Keys, bob: Keys, carol: Keys):
    wrap = signed(carol, GIFT_WRAP, tags=[("p", bob.public_key)], content="sealed", at=T)
    other = signed(carol, GIFT_WRAP, tags=[("p", alice.public_key)], content="sealed too", at=T)
    await store.add_many([wrap, other])
    await store.add(deletion(bob, ids=[wrap.id, other.id], at=T + 1))
    shown = ids(await store.query(every(kinds=frozenset({GIFT_WRAP}))))
    assert shown == [other.id]


async def test_deleting_a_deletion_does_nothing(store: Store, alice: Keys):
    note = signed(alice, 1, content="gone", at=T)
    first = deletion(alice, ids=[note.id], at=T + 1)
    second = deletion(alice, ids=[first.id], at=T + 2)
    await store.add_many([note, first, second])
    assert ids(await store.query(every())) == [second.id, first.id]


# Expiration ----------------------------------------------------------------------------------


async def test_expired_on_arrival_is_not_stored(store: Store, alice: Keys):
    ev = signed(alice, 1, tags=[("expiration", str(T))], at=T - 100)
    assert await store.add(ev, now=T) is AddOutcome.EXPIRED
    assert await store.get(ev.id) is None


async def test_expiration_hides_at_query_time(store: Store, alice: Keys):
    ev = signed(alice, 1, tags=[("expiration", str(T + 60))], at=T)
    assert await store.add(ev, now=T) is AddOutcome.STORED
    assert ids(await store.query(every(), now=T + 59)) == [ev.id]
    assert await store.query(every(), now=T + 60) == []
    assert ids(await store.query(every())) == [ev.id]
    assert await store.count(every(), now=T + 60) == 0


# Queries -------------------------------------------------------------------------------------


async def test_results_are_newest_first_then_lowest_id_with_per_filter_limit(store: Store, alice: Keys, bob: Keys):
    evs = [signed(k, 1, content=f"{k.public_key[:4]}-{i}", at=T + i // 2) for i in range(6) for k in (alice, bob)]
    await store.add_many(evs)
    expected = sorted(evs, key=lambda e: (-e.created_at, e.id))
    assert ids(await store.query(every())) == ids(expected)
    assert ids(await store.query(every(limit=3))) == ids(expected[:3])
    by_alice = [e for e in expected if e.pubkey == alice.public_key]
    by_bob = [e for e in expected if e.pubkey == bob.public_key]
    union = await store.query(
        [Filter(authors=frozenset({alice.public_key}), limit=1), Filter(authors=frozenset({bob.public_key}), limit=2)]
    )
    assert ids(union) == ids(sorted(by_alice[:1] + by_bob[:2], key=lambda e: (-e.created_at, e.id)))
    assert await store.query(every(limit=0)) == []


async def test_overlapping_filters_return_each_event_once(store: Store, alice: Keys):
    ev = signed(alice, 1, tags=[("t", "python")], at=T)
    await store.add(ev)
    got = await store.query([Filter(kinds=frozenset({1})), Filter(tags={"t": frozenset({"python"})})])
    assert ids(got) == [ev.id]
    assert await store.count([Filter(kinds=frozenset({1})), Filter(tags={"t": frozenset({"python"})})]) == 1


async def test_since_and_until_are_inclusive(store: Store, alice: Keys):
    evs = [signed(alice, 1, content=str(i), at=T + i) for i in range(5)]
    await store.add_many(evs)
    got = await store.query(every(since=T + 1, until=T + 3))
    assert [e.created_at for e in got] == [T + 3, T + 2, T + 1]


async def test_tag_filters_match_the_first_value_only(store: Store, alice: Keys, bob: Keys):
    direct = signed(alice, 1, tags=[("p", bob.public_key)], content="direct", at=T)
    nested = signed(alice, 1, tags=[("x", "y", bob.public_key)], content="nested", at=T + 1)
    await store.add_many([direct, nested])
    assert ids(await store.query(every(tags={"p": frozenset({bob.public_key})}))) == [direct.id]
    assert await store.query(every(tags={"y": frozenset({bob.public_key})})) == []


async def test_several_tag_conditions_must_all_hold(store: Store, alice: Keys):
    both = signed(alice, 1, tags=[("t", "a"), ("t", "b"), ("r", "x")], content="both", at=T)
    one = signed(alice, 1, tags=[("t", "a")], content="one", at=T + 1)
    await store.add_many([both, one])
    assert ids(await store.query(every(tags={"t": frozenset({"a", "b"}), "r": frozenset({"x"})}))) == [both.id]
    assert ids(await store.query(every(tags={"t": frozenset({"a", "b"})}))) == [one.id, both.id]


async def test_ids_authors_and_kinds_filters(store: Store, alice: Keys, bob: Keys):
    a1 = signed(alice, 1, content="a1", at=T)
    a7 = signed(alice, 7, content="+", at=T + 1)
    b1 = signed(bob, 1, content="b1", at=T + 2)
    await store.add_many([a1, a7, b1])
    assert ids(await store.query(every(ids=frozenset({a1.id, b1.id})))) == [b1.id, a1.id]
    assert ids(await store.query(every(authors=frozenset({alice.public_key}), kinds=frozenset({1})))) == [a1.id]
    assert await store.query(every(ids=frozenset())) == []
    assert await store.count(every(authors=frozenset({alice.public_key}), limit=1)) == 2


async def test_multi_letter_tag_filter_matches_when_built_in_code(store: Store, alice: Keys):
    ev = addressable(alice, LESSON, "l1", at=T, tags=[("title", "Intro")])
    await store.add(ev)
    assert ids(await store.query(every(tags={"title": frozenset({"Intro"})}))) == [ev.id]


# Private events ------------------------------------------------------------------------------


async def test_private_rumor_is_kept_apart_from_published_events(store: Store, alice: Keys):
    dm = rumor(alice, 14, tags=[("p", alice.public_key)], content="see you at 10", at=T)
    assert await store.add_private(dm, container_id="f" * 64, now=T) is AddOutcome.STORED
    assert await store.add_private(dm, container_id="e" * 64, now=T) is AddOutcome.DUPLICATE
    assert await store.query(every()) == []
    assert ids(await store.query(every(), include_private=True)) == [dm.id]
    assert (await store.get(dm.id)).sig is None
    assert await store.count(every(), include_private=True) == 1


async def test_private_rumor_with_a_wrong_id_is_refused(store: Store, alice: Keys):
    dm = rumor(alice, 14, content="hi", at=T)
    with pytest.raises(InvalidId):
        await store.add_private(tampered(dm, content="changed"), container_id=None, now=T)


async def test_private_draft_does_not_hide_the_published_version(store: Store, alice: Keys):
    public = addressable(alice, LESSON, "l1", at=T)
    draft = rumor(alice, LESSON, tags=[("d", "l1")], content="draft", at=T + 100)
    await store.add(public)
    assert await store.add_private(draft, container_id=None, now=T) is AddOutcome.STORED
    assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [public.id]
    assert set(ids(await store.query(every(kinds=frozenset({LESSON})), include_private=True))) == {public.id, draft.id}


# Domain helpers ------------------------------------------------------------------------------


async def test_lessons_of_course(store: Store, alice: Keys):
    course = address_of(alice, COURSE, "python-101")
    l1 = addressable(alice, LESSON, "l1", at=T, tags=[("a", course)])
    l2 = addressable(alice, LESSON, "l2", at=T + 1, tags=[("a", course)])
    stray = addressable(alice, LESSON, "l3", at=T + 2, tags=[("a", address_of(alice, COURSE, "other"))])
    await store.add_many([l1, l2, stray])
    assert ids(await store.lessons_of_course(course)) == [l2.id, l1.id]


async def test_rsvps_of_lesson_keep_the_latest_per_author(store: Store, alice: Keys, bob: Keys, carol: Keys):
    lesson = address_of(alice, LESSON, "l1")
    bob_first = addressable(bob, RSVP, "phone", at=T, tags=[("a", lesson), ("status", "accepted")])
    bob_later = addressable(bob, RSVP, "laptop", at=T + 5, tags=[("a", lesson), ("status", "declined")])
    carol_rsvp = addressable(carol, RSVP, "r", at=T + 1, tags=[("a", lesson), ("status", "accepted")])
    other = addressable(carol, RSVP, "r2", at=T + 2, tags=[("a", address_of(alice, LESSON, "l2"))])
    await store.add_many([bob_first, bob_later, carol_rsvp, other])
    assert ids(await store.rsvps_of_lesson(lesson)) == [bob_later.id, carol_rsvp.id]


async def test_attendance_of_lesson(store: Store, alice: Keys, bob: Keys):
    lesson = address_of(alice, LESSON, "l1")
    rec = addressable(alice, ATTENDANCE, f"{bob.public_key}:l1", at=T, tags=[("a", lesson), ("p", bob.public_key)])
    await store.add_many([rec, addressable(alice, ATTENDANCE, "x", at=T, tags=[("a", "31923:" + "0" * 64 + ":l")])])
    assert ids(await store.attendance_of_lesson(lesson)) == [rec.id]


async def test_certificates_of_a_learner_hide_revoked_ones(store: Store, alice: Keys, bob: Keys):
    badge = address_of(alice, 30009, "python-101")
    kept = signed(alice, AWARD, tags=[("a", badge), ("p", bob.public_key)], at=T)
    revoked = signed(alice, AWARD, tags=[("a", badge), ("p", bob.public_key)], content="2nd", at=T + 1)
    await store.add_many([kept, revoked, deletion(alice, ids=[revoked.id], at=T + 2)])
    assert ids(await store.certificates_of(bob.public_key)) == [kept.id]
    assert await store.certificates_of(alice.public_key) == []


# Outbox --------------------------------------------------------------------------------------

A, B, C = "wss://a.example", "wss://b.example", "wss://c.example"
A_ = OutboxTarget.relay(A)


async def test_enqueue_commits_the_event_before_any_send(store: Store, alice: Keys):
    note = signed(alice, 1, content="announce", at=T)
    assert await store.enqueue(note, [A, B], now=T) is AddOutcome.STORED
    assert await store.get(note.id) == note
    assert await store.outbox_depth() == 2
    due = await store.outbox_due(T)
    assert [(i.event, i.relay, i.attempts, i.next_attempt_at, i.last_error) for i in due] == [
        (note, A, 0, T, None), (note, B, 0, T, None)
    ]
    assert [e.state for e in await store.outbox_entries(note.id)] == [OutboxState.PENDING] * 2


async def test_outbox_due_without_lookups_leaves_the_placeholders_out(store: Store, alice: Keys):
    waiting = signed(alice, 1, content="waits for relay lists", at=T)
    ready = signed(alice, 1, content="has its relays", at=T + 1)
    await store.enqueue(waiting, [LOOKUP], now=T)
    await store.enqueue(ready, [A], now=T + 1)
    assert [(i.event.id, i.target) for i in await store.outbox_due(T + 5)] == [(waiting.id, LOOKUP), (ready.id, A_)]
    assert [(i.event.id, i.target) for i in await store.outbox_due(T + 5, lookups=False)] == [(ready.id, A_)]


async def test_waiting_lookups_are_made_due_again(store: Store, alice: Keys):
    waiting = signed(alice, 1, content="waits for relay lists", at=T)
    ready = signed(alice, 1, content="has its relays", at=T + 1)
    await store.enqueue(waiting, [LOOKUP], now=T)
    await store.enqueue(ready, [A], now=T)
    await store.outbox_record(waiting.id, LOOKUP, ok=False, message="error: not looked up", now=T, retry_at=T + 600)
    await store.outbox_record(ready.id, A, ok=False, message="error: down", now=T, retry_at=T + 600)
    assert await store.outbox_due(T + 5) == []
    await store.outbox_lookups_due(T + 5)
    assert [(i.event.id, i.target) for i in await store.outbox_due(T + 5)] == [(waiting.id, LOOKUP)]


async def test_outbox_lifecycle(store: Store, alice: Keys):
    note = signed(alice, 1, content="announce", at=T)
    await store.enqueue(note, [A, B, C], now=T)
    await store.outbox_record(note.id, A, ok=True, message="", now=T + 1, retry_at=None)
    await store.outbox_record(note.id, B, ok=False, message="rate-limited: slow down", now=T + 1, retry_at=T + 30)
    await store.outbox_record(note.id, C, ok=False, message="blocked: not on the list", now=T + 1, retry_at=None)
    entries = {e.relay: e for e in await store.outbox_entries()}
    assert entries[A].state is OutboxState.DELIVERED and entries[A].next_attempt_at is None
    assert (entries[B].state, entries[B].attempts, entries[B].next_attempt_at) == (OutboxState.RETRYING, 1, T + 30)
    assert (entries[C].state, entries[C].last_message) == (OutboxState.REFUSED, "blocked: not on the list")
    assert await store.outbox_depth() == 1
    assert await store.outbox_due(T + 29) == []
    (retry,) = await store.outbox_due(T + 30)
    assert (retry.relay, retry.attempts, retry.last_error) == (B, 1, "rate-limited: slow down")
    await store.outbox_record(note.id, B, ok=False, message="duplicate: have it", now=T + 30, retry_at=T + 90)
    assert (await store.outbox_entries(note.id))[1].state is OutboxState.DELIVERED
    assert await store.outbox_depth() == 0
    assert await store.outbox_due(T + 1000) == []


async def test_enqueue_is_idempotent_and_keeps_state(store: Store, alice: Keys):
    note = signed(alice, 1, content="once", at=T)
    await store.enqueue(note, [A], now=T)
    await store.outbox_record(note.id, A, ok=True, message="", now=T, retry_at=None)
    assert await store.enqueue(note, [A, B], now=T + 5) is AddOutcome.DUPLICATE
    assert [(e.relay, e.state) for e in await store.outbox_entries(note.id)] == [
        (A, OutboxState.DELIVERED), (B, OutboxState.PENDING)
    ]


async def test_ephemeral_events_can_be_queued(store: Store, alice: Keys):
    wrap = signed(alice, 21059, tags=[("p", alice.public_key)], content="now", at=T)
    assert await store.enqueue(wrap, [A], now=T) is AddOutcome.EPHEMERAL
    assert [i.event for i in await store.outbox_due(T)] == [wrap]
    assert (await store.outbox_entries())[0].kind == 21059


async def test_outbox_due_is_oldest_first_and_limited(store: Store, alice: Keys):
    first = signed(alice, 1, content="1", at=T)
    second = signed(alice, 1, content="2", at=T)
    await store.enqueue(second, [A], now=T + 1)
    await store.enqueue(first, [A], now=T)
    assert [i.event.id for i in await store.outbox_due(T + 5)] == [first.id, second.id]
    assert [i.event.id for i in await store.outbox_due(T + 5, limit=1)] == [first.id]


async def test_outbox_remove_deletes_one_row(store: Store, alice: Keys):
    note = signed(alice, 1, content="placeholder", at=T)
    await store.enqueue(note, [A, "targets:unresolved"], now=T)
    await store.outbox_remove(note.id, "targets:unresolved")
    await store.outbox_remove(note.id, "targets:unresolved")  # already gone: ignored
    assert [e.relay for e in await store.outbox_entries(note.id)] == [A]
    assert await store.outbox_depth() == 1
    await store.enqueue(note, [B], now=T + 1)
    assert [e.relay for e in await store.outbox_entries(note.id)] == [A, B]


async def test_recording_an_unknown_delivery_raises(store: Store):
    with pytest.raises(StoreError):
        await store.outbox_record("0" * 64, A, ok=True, message="", now=T, retry_at=None)


async def test_enqueue_refuses_an_invalid_event(store: Store, alice: Keys):
    with pytest.raises(InvalidSignature):
        await store.enqueue(tampered(signed(alice, 1), sig="11" * 64), [A], now=T)
    assert await store.outbox_depth() == 0


# Cursors and once-only actions ---------------------------------------------------------------


async def test_cursors_only_move_forward(store: Store):
    assert await store.get_cursor(A, "lessons") is None
    await store.set_cursor(A, "lessons", T)
    await store.set_cursor(A, "lessons", T - 10)
    assert await store.get_cursor(A, "lessons") == T
    await store.set_cursor(A, "lessons", T + 10)
    assert await store.get_cursor(A, "lessons") == T + 10
    assert await store.get_cursor(B, "lessons") is None
    assert await store.get_cursor(A, "rsvps") is None


async def test_mark_done_is_true_once(store: Store):
    assert not await store.is_done("reminder:l1:24h")
    assert await store.mark_done("reminder:l1:24h", now=T) is True
    assert await store.mark_done("reminder:l1:24h", now=T + 1) is False
    assert await store.is_done("reminder:l1:24h")
    assert not await store.is_done("reminder:l1:1h")


async def test_stats_count_by_class(store: Store, alice: Keys):
    await store.add_many([
        signed(alice, 1, at=T),
        signed(alice, 0, content="{}", at=T),
        signed(alice, 0, content="{\"name\":\"a\"}", at=T + 1),
        addressable(alice, LESSON, "l1", at=T),
    ])
    await store.add_private(rumor(alice, 14, content="psst", at=T), container_id=None, now=T)
    await store.enqueue(signed(alice, 1, content="out", at=T), [A], now=T)
    stats = await store.stats()
    assert {k: v for k, v in stats.items() if k != "db_bytes"} == {
        "events": 6,
        "by_class": {"regular": 3, "replaceable": 2, "addressable": 1},
        "private": 1,
        "superseded": 1,
        "deleted": 0,
        "outbox_depth": 1,
    }


# SQLite only ---------------------------------------------------------------------------------


async def test_sqlite_survives_close_and_reopen(tmp_path: Path, alice: Keys):
    path = tmp_path / "index.db"
    store = await SqliteStore.open(path)
    old = addressable(alice, LESSON, "l1", at=T)
    new = addressable(alice, LESSON, "l1", at=T + 1)
    note = signed(alice, 1, content="queued", at=T)
    await store.add_many([old, new])
    await store.enqueue(note, [A], now=T)
    await store.set_cursor(A, "k", T)
    await store.mark_done("once", now=T)
    await store.close()
    store = await SqliteStore.open(path)
    try:
        assert ids(await store.query(every(kinds=frozenset({LESSON})))) == [new.id]
        assert [i.event for i in await store.outbox_due(T)] == [note]
        assert await store.get_cursor(A, "k") == T
        assert await store.mark_done("once", now=T) is False
        assert await store.add(old) is AddOutcome.DUPLICATE
    finally:
        await store.close()


async def test_sqlite_refuses_a_database_newer_than_the_code(tmp_path: Path):
    import sqlite3

    from nostr_training.errors import DatabaseTooNew
    from nostr_training.store import SCHEMA_VERSION

    path = tmp_path / "index.db"
    await (await SqliteStore.open(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DatabaseTooNew):
        await SqliteStore.open(path)


async def test_sqlite_failed_batch_rolls_back_whole(tmp_path: Path, alice: Keys):
    store = await SqliteStore.open(tmp_path / "index.db")
    try:
        kept = signed(alice, 1, content="kept", at=T)
        await store.add(kept)
        good = signed(alice, 1, content="good", at=T + 1)
        bad = Event("not-an-id", alice.public_key, T, 1, (), "", "00" * 64)
        with pytest.raises(StoreError):
            await store.add_many([good, bad], verified=True)
        assert ids(await store.query(every())) == [kept.id]
        assert await store.add(good) is AddOutcome.STORED
    finally:
        await store.close()


# The action log --------------------------------------------------------------------------------


async def test_action_log_records_once_and_answers_lookups(store: Store, alice: Keys):
    from nostr_training.store import ActionRecord

    lesson = f"{LESSON}:{alice.public_key}:l1"
    first = ActionRecord("reminder|l1|bob|24h", "reminder", T, subject=lesson, pubkey="b" * 64, detail="24h")
    assert await store.record_action(first) is True
    assert await store.record_action(ActionRecord("reminder|l1|bob|24h", "reminder", T + 5)) is False
    await store.record_action(ActionRecord("reminder|l1|carl|24h", "reminder", T + 1, subject=lesson, pubkey="c" * 64))
    await store.record_action(ActionRecord("key|l1|bob|1", "room_key", T + 2, subject=lesson, pubkey="b" * 64))
    assert await store.get_action("reminder|l1|bob|24h") == first
    assert await store.get_action("nothing") is None
    assert [a.key for a in await store.actions(subject=lesson)] == [
        "reminder|l1|bob|24h", "reminder|l1|carl|24h", "key|l1|bob|1"]
    assert [a.key for a in await store.actions(pubkey="b" * 64, action="reminder")] == ["reminder|l1|bob|24h"]
    assert [a.key for a in await store.actions(action="room_key")] == ["key|l1|bob|1"]


async def test_enqueue_with_an_action_queues_once(store: Store, alice: Keys):
    """The action and the event it causes commit together: a second try (a restart, another
    signature of the same reminder) queues nothing."""
    from nostr_training.store import ActionRecord

    action = ActionRecord("reminder|l1|bob|1h", "reminder", T, subject="s", pubkey="b" * 64)
    first = signed(alice, 1, content="starting in 1 hour")
    again = signed(alice, 1, content="starting in 1 hour", at=T + 1)
    assert await store.enqueue(first, [A], now=T, action=action) is AddOutcome.STORED
    assert await store.enqueue(again, [A], now=T + 1, action=action) is AddOutcome.ALREADY_DONE
    assert await store.outbox_entries(again.id) == [] and await store.get(again.id) is None
    logged = await store.get_action(action.key)
    assert logged is not None and logged.event_id == first.id
    assert [e.event_id for e in await store.outbox_entries()] == [first.id]


async def test_typed_targets_round_trip(store: Store, alice: Keys, bob: Keys):
    from nostr_training.store import LOOKUP, OutboxTarget, TargetKind

    wrap = signed(alice, GIFT_WRAP, tags=[("p", bob.public_key)], content="x")
    await store.enqueue(wrap, [A, LOOKUP, OutboxTarget.recipient(bob.public_key)], now=T)
    await store.outbox_record(wrap.id, OutboxTarget.recipient(bob.public_key), ok=False, message="blocked: no inbox",
                              now=T, retry_at=None)
    entries = {e.target: e for e in await store.outbox_entries(wrap.id)}
    assert entries[OutboxTarget.relay(A)].relay == A and entries[LOOKUP].relay == ""
    assert entries[OutboxTarget.recipient(bob.public_key)].state is OutboxState.REFUSED
    assert entries[LOOKUP].target.kind is TargetKind.LOOKUP
    assert await store.outbox_depth() == 2, "an unreachable recipient is not a delivery still to do"
    due = {i.target for i in await store.outbox_due(T)}
    assert due == {OutboxTarget.relay(A), LOOKUP}


async def test_typed_lookups_parse_and_skip_what_the_parsers_refuse(store: Store, alice: Keys, bob: Keys):
    from nostr_training.event import sign_event
    from nostr_training.kinds import Lesson, build_lesson, build_rsvp

    lesson = Lesson(author=alice.public_key, d="l1", title="Ownership", start=T + 3600, end=T + 7200,
                    instructor=alice.public_key)
    good = sign_event(build_lesson(lesson, created_at=T), alice.secret)
    await store.add(good)
    broken = signed(alice, LESSON, tags=[("d", "broken"), ("title", "no start")])
    await store.add(broken)
    assert (await store.lesson(lesson.coordinate)).title == "Ownership"
    assert await store.lesson(f"{LESSON}:{alice.public_key}:broken") is None
    assert await store.lesson(f"{LESSON}:{alice.public_key}:missing") is None
    answer = sign_event(build_rsvp(lesson, "accepted", created_at=T + 1), bob.secret)
    await store.add(answer)
    (rsvp,) = await store.rsvps(lesson.coordinate)
    assert rsvp.author == bob.public_key and rsvp.status.value == "accepted"
    with pytest.raises(MalformedEvent):
        await store.lesson(f"{COURSE}:{alice.public_key}:l1")


# Contacts (CRM) --------------------------------------------------------------------------------

from nostr_training.crm import Contact  # noqa: E402
from nostr_training.errors import ContactError, NotFound  # noqa: E402

PK1, PK2 = "1" * 64, "2" * 64


async def test_contacts_get_ids_and_come_back_as_stored(store: Store):
    alice = await store.add_contact(Contact("Alice", "alice@example.org", "medic", ("medic", "berlin"), PK1), now=T)
    bob = await store.add_contact(Contact("  Bob ", tags=("berlin", "berlin", " ")), now=T)
    assert alice.id is not None and bob.id is not None and alice.id != bob.id
    assert await store.get_contact(alice.id) == alice
    assert await store.get_contact(bob.id) == Contact("Bob", tags=("berlin",), id=bob.id)
    assert await store.get_contact(999) is None
    assert await store.find_contact_by_pubkey(PK1) == alice
    assert await store.find_contact_by_pubkey(PK2) is None


async def test_contacts_list_by_name_folding_ascii_case_and_filter_by_tag(store: Store):
    for name, tags in (("carol", ("a",)), ("Émile", ("b",)), ("Bob", ("a", "b")), ("alice", ())):
        await store.add_contact(Contact(name, tags=tags), now=T)
    assert [c.name for c in await store.list_contacts()] == ["alice", "Bob", "carol", "Émile"]
    assert [c.name for c in await store.list_contacts(tag="b")] == ["Bob", "Émile"]
    assert await store.list_contacts(tag="none") == []


async def test_contact_ids_can_be_given_but_not_reused(store: Store):
    kept = await store.add_contact(Contact("Kept", id=7), now=T)
    assert kept.id == 7
    with pytest.raises(StoreError):
        await store.add_contact(Contact("Other", id=7), now=T)
    assert (await store.add_contact(Contact("Next"), now=T)).id == 8
    assert [c.name for c in await store.list_contacts()] == ["Kept", "Next"]


async def test_one_contact_per_pubkey(store: Store):
    first = await store.add_contact(Contact("First", pubkey=PK1), now=T)
    second = await store.add_contact(Contact("Second"), now=T)
    with pytest.raises(StoreError):
        await store.add_contact(Contact("Again", pubkey=PK1), now=T)
    with pytest.raises(StoreError):
        await store.update_contact(Contact("Second", pubkey=PK1, id=second.id), now=T)
    assert await store.find_contact_by_pubkey(PK1) == first
    renamed = await store.update_contact(Contact("First, renamed", pubkey=PK1, id=first.id), now=T + 1)
    assert await store.find_contact_by_pubkey(PK1) == renamed


async def test_update_links_and_unlinks_a_pubkey(store: Store):
    contact = await store.add_contact(Contact("Dana"), now=T)
    linked = await store.update_contact(Contact("Dana", pubkey=PK2, id=contact.id), now=T + 1)
    assert await store.find_contact_by_pubkey(PK2) == linked
    await store.update_contact(Contact("Dana", id=contact.id), now=T + 2)
    assert await store.find_contact_by_pubkey(PK2) is None
    with pytest.raises(NotFound):
        await store.update_contact(Contact("Ghost", id=404), now=T)
    with pytest.raises(NotFound):
        await store.update_contact(Contact("No id"), now=T)


async def test_delete_contact(store: Store):
    contact = await store.add_contact(Contact("Eve", pubkey=PK1), now=T)
    assert await store.delete_contact(contact.id) is True
    assert await store.delete_contact(contact.id) is False
    assert await store.get_contact(contact.id) is None
    assert await store.find_contact_by_pubkey(PK1) is None
    assert (await store.add_contact(Contact("Eve again", pubkey=PK1), now=T)).pubkey == PK1


@pytest.mark.parametrize(
    "bad",
    [Contact(""), Contact("x", email="not an email"), Contact("x", tags=("a;b",)), Contact("x", pubkey="AB" * 32)],
)
async def test_contacts_with_bad_fields_are_refused(store: Store, bad: Contact):
    with pytest.raises(ContactError):
        await store.add_contact(bad, now=T)
    assert await store.list_contacts() == []


async def test_sqlite_contacts_survive_reopen_and_a_version_1_database_is_migrated(tmp_path: Path):
    import sqlite3

    path = tmp_path / "index.db"
    store = await SqliteStore.open(path)
    await store.add_contact(Contact("Kept", pubkey=PK1), now=T)
    await store.close()
    store = await SqliteStore.open(path)
    try:
        assert [c.name for c in await store.list_contacts()] == ["Kept"]
    finally:
        await store.close()
    old = tmp_path / "old.db"
    from importlib import resources

    folder = resources.files("nostr_training.store").joinpath("schema")
    with sqlite3.connect(old) as conn:  # the database as the version before contacts (0003) left it
        for number in (1, 2):
            (script,) = [e.read_text("utf-8") for e in folder.iterdir() if e.name.startswith(f"{number:04d}_")]
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    store = await SqliteStore.open(old)
    try:
        assert (await store.add_contact(Contact("Migrated"), now=T)).id == 1
    finally:
        await store.close()
