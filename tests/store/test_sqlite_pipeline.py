"""The SQLite store's ingest pipeline: large batches verified in a worker process, the writer
thread storing chunk after chunk in one transaction (issue 10)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nostr_training.keys import Keys
from nostr_training.store import AddOutcome, SqliteStore
from nostr_training.store import sqlite as sqlite_store

from .factories import signed, tampered

T = 1_800_000_000


@pytest.fixture
async def store(tmp_path: Path):
    opened = await SqliteStore.open(tmp_path / "index.db")
    yield opened
    await opened.close()


def batch_with_forgeries(alice: Keys, size: int) -> tuple[list, set[int]]:
    events = [signed(alice, 1, content=f"n{i}", at=T + i) for i in range(size)]
    forged = {3, size // 2, size - 1}
    for i in forged:
        events[i] = tampered(events[i], sig="cd" * 64)
    return events, forged


async def test_a_large_batch_is_verified_in_the_worker_process(store: SqliteStore, alice: Keys):
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK + 300)
    outcomes = await store.add_many(events)
    assert store._verifier is not None and not store._verifier_broken
    assert [i for i, o in enumerate(outcomes) if o is AddOutcome.INVALID] == sorted(forged)
    assert (await store.stats())["events"] == len(events) - len(forged)


async def test_without_the_worker_the_writer_thread_verifies(store: SqliteStore, alice: Keys):
    store._verifier_broken = True  # as after a worker that could not start
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_IN_PROCESS_FROM + 10)
    outcomes = await store.add_many(events)
    assert store._verifier is None
    assert [i for i, o in enumerate(outcomes) if o is AddOutcome.INVALID] == sorted(forged)


async def test_a_batch_whose_caller_is_cancelled_still_commits_whole(store: SqliteStore, alice: Keys):
    events = [signed(alice, 1, content=f"c{i}", at=T + i) for i in range(600)]
    task = asyncio.create_task(store.add_many(events))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The next write queues behind the batch on the one writer thread, so it sees it committed.
    assert await store.add_many(events[:1]) == [AddOutcome.DUPLICATE]
    assert (await store.stats())["events"] == 600


async def test_writes_from_many_tasks_are_serialised(store: SqliteStore, alice: Keys):
    groups = [[signed(alice, 1, content=f"g{g}-{i}", at=T + i) for i in range(40)] for g in range(8)]
    results = await asyncio.gather(*(store.add_many(g) for g in groups), store.set_cursor("wss://r", "k", T))
    assert all(r == [AddOutcome.STORED] * 40 for r in results[:-1])
    assert (await store.stats())["events"] == 320
    assert await store.get_cursor("wss://r", "k") == T


@pytest.mark.parametrize("quarters", [0, 2, 4])
async def test_the_stored_json_is_the_same_whichever_end_writes_it(store: SqliteStore, alice: Keys, quarters: int):
    """The verifier writes the stored JSON of ``quarters`` of every 4 chunks, the writer the rest."""
    store._json_quarters = quarters
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 4 + 10)
    events[7] = signed(alice, 1, tags=[("t", "é \"quoted\""), ("p", "ab" * 32, "wss://r")], content="ünï\n\"x\"", at=T)
    outcomes = await store.add_many(events)
    assert [i for i, o in enumerate(outcomes) if o is AddOutcome.INVALID] == sorted(forged)
    for i, event in enumerate(events):
        assert await store.get(event.id) == (None if i in forged else event)


def test_the_json_moves_a_quarter_at_a_time_towards_the_end_that_waits(tmp_path: Path):
    store = SqliteStore.__new__(SqliteStore)
    store._json_quarters = 0
    for expected in (1, 2, 3, 4, 4):  # the writer never waited: it is the slower end
        store._balance_json(0, 50)
        assert store._json_quarters == expected
    store._balance_json(5, 50)  # a few waits: stays
    assert store._json_quarters == 4
    for expected in (3, 2, 1, 0, 0):  # the writer waited for most chunks: the verifier is slower
        store._balance_json(40, 50)
        assert store._json_quarters == expected
