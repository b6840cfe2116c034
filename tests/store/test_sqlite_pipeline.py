"""The SQLite store's ingest pipeline: large batches verified in a worker process, the writer
thread storing chunk after chunk in one transaction (issue 10)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from polling import eventually

from nostr_training.errors import StoreError
from nostr_training.event import Event
from nostr_training.keys import Keys
from nostr_training.store import AddOutcome, SqliteStore
from nostr_training.store import sqlite as sqlite_store
from nostr_training.store.verifier import VerifierProcess

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


async def ready_verifier(store: SqliteStore, alice: Keys) -> VerifierProcess:
    """Start the store's verifier with a first batch and wait until it says it is ready."""
    await store.add_many([signed(alice, 1, content=f"warm {i}", at=T - i) for i in range(sqlite_store._VERIFY_IN_PROCESS_FROM)])
    verifier = store._verifier
    assert verifier is not None
    await eventually(lambda: verifier.ready, tries=600)
    return verifier


def before_chunk(monkeypatch: pytest.MonkeyPatch, number: int, action: Callable[[], None]) -> None:
    """Run ``action`` on the writer thread just before it stores the ``number``-th chunk (from 1)."""
    real = SqliteStore._store_chunk
    calls = 0

    def store_chunk(self, *args):
        nonlocal calls
        calls += 1
        if calls == number:
            action()
        return real(self, *args)

    monkeypatch.setattr(SqliteStore, "_store_chunk", store_chunk)


def disk_error() -> None:
    raise sqlite3.OperationalError("disk I/O error")


def invalid_positions(outcomes: list[AddOutcome]) -> list[int]:
    return [i for i, o in enumerate(outcomes) if o is AddOutcome.INVALID]


async def test_a_large_batch_is_verified_in_the_worker_process(store: SqliteStore, alice: Keys):
    verifier = await ready_verifier(store, alice)
    before = verifier.verified
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK + 300)
    outcomes = await store.add_many(events)
    assert verifier.verified - before == len(events) and not verifier.broken
    assert invalid_positions(outcomes) == sorted(forged)
    assert (await store.stats())["events"] == len(events) - len(forged) + sqlite_store._VERIFY_IN_PROCESS_FROM


async def test_the_first_batch_does_not_wait_for_the_worker_to_start(store: SqliteStore, alice: Keys):
    """While the worker imports, the writer verifies the chunks itself; the answers are the same."""
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 2)
    outcomes = await store.add_many(events)
    assert invalid_positions(outcomes) == sorted(forged)
    assert store._verifier is not None and store._verifier.verified < len(events)


async def test_without_the_worker_the_writer_thread_verifies(store: SqliteStore, alice: Keys):
    store._verifier = VerifierProcess()
    store._verifier.broken = True  # as after a worker that could not start, as often as allowed
    store._verifier_starts = sqlite_store._VERIFIER_STARTS
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_IN_PROCESS_FROM + 10)
    outcomes = await store.add_many(events)
    assert invalid_positions(outcomes) == sorted(forged)
    assert store._verifier.verified == 0


async def test_a_worker_killed_mid_way_leaves_the_batch_to_the_writer(
    store: SqliteStore, alice: Keys, caplog, monkeypatch: pytest.MonkeyPatch
):
    verifier = await ready_verifier(store, alice)

    def kill_the_worker() -> None:
        assert verifier._process is not None
        os.kill(verifier._process.pid, signal.SIGKILL)
        verifier._process.join(10)

    before_chunk(monkeypatch, 2, kill_the_worker)
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 6)
    outcomes = await store.add_many(events)
    assert invalid_positions(outcomes) == sorted(forged)
    assert verifier.broken and verifier.verified < len(events) and "verifying on the writer thread" in caplog.text
    assert (await store.stats())["events"] == len(events) - len(forged) + sqlite_store._VERIFY_IN_PROCESS_FROM


async def test_a_worker_that_stops_answering_is_killed_and_the_batch_finished_here(store: SqliteStore, alice: Keys, caplog):
    verifier = await ready_verifier(store, alice)
    assert verifier._process is not None
    verifier.answer_within = 0.3
    os.kill(verifier._process.pid, signal.SIGSTOP)  # alive, but it will never answer
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 2)
    assert invalid_positions(await store.add_many(events)) == sorted(forged)
    assert verifier.broken and "did not answer in 0.3 s and was killed" in caplog.text
    verifier._process.join(10)
    assert verifier._process.exitcode == -signal.SIGKILL


async def test_a_feeder_that_fails_leaves_the_batch_to_the_writer(store: SqliteStore, alice: Keys, caplog):
    """A field pickle cannot carry (here a str subclass defined in a function) stops the feeder
    thread; the writer must not wait for answers that never come."""

    class LocalText(str):
        pass

    verifier = await ready_verifier(store, alice)
    store._whole_share = sqlite_store._SHARES  # every chunk sent whole, content included
    events = [signed(alice, 1, content=f"local {i}", at=T + i) for i in range(sqlite_store._VERIFY_CHUNK * 3)]
    odd = events[1500]
    events[1500] = Event(odd.id, odd.pubkey, odd.created_at, odd.kind, odd.tags, LocalText(odd.content), odd.sig)
    outcomes = await asyncio.wait_for(store.add_many(events), 60)
    assert set(outcomes) == {AddOutcome.STORED}
    assert verifier.broken and "Can't pickle" in caplog.text


async def test_closing_after_a_rolled_back_batch_is_prompt(tmp_path: Path, alice: Keys, monkeypatch: pytest.MonkeyPatch):
    """The worker may be blocked sending answers nobody will read (the rolled-back batch's)."""
    store = await SqliteStore.open(tmp_path / "index.db")
    verifier = await ready_verifier(store, alice)
    store._whole_share = sqlite_store._SHARES  # large answers: the answer pipe fills

    def wait_then_fail() -> None:
        time.sleep(1.0)  # the worker runs ahead and fills the answer pipe
        disk_error()

    before_chunk(monkeypatch, 3, wait_then_fail)
    events = [signed(alice, 1, tags=[("t", "x" * 200)], content="y" * 300 + str(i), at=T + i) for i in range(20_000)]
    with pytest.raises(StoreError):
        await store.add_many(events)
    started = time.monotonic()
    await store.close()
    assert time.monotonic() - started < 2
    assert verifier._process is None and verifier._feeder is None


async def test_a_stopped_worker_is_started_again_with_the_next_batch(store: SqliteStore, alice: Keys, caplog):
    killed = await ready_verifier(store, alice)
    assert killed._process is not None
    os.kill(killed._process.pid, signal.SIGKILL)
    killed._process.join(10)
    await store.add_many([signed(alice, 1, content=f"after {i}", at=T + i) for i in range(sqlite_store._VERIFY_IN_PROCESS_FROM)])
    assert killed.broken and store._verifier is not killed and store._verifier_starts == 2
    assert "the worker exited with code -9" in caplog.text
    fresh = store._verifier
    assert fresh is not None
    await eventually(lambda: fresh.ready, tries=600)
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 2)
    assert invalid_positions(await store.add_many(events)) == sorted(forged)
    assert fresh.verified == len(events) and not fresh.broken


async def test_answers_of_a_rolled_back_batch_are_not_taken_for_the_next(
    store: SqliteStore, alice: Keys, monkeypatch: pytest.MonkeyPatch
):
    """A batch that fails after its chunks went to the worker leaves answers due; the next batch
    (forgeries elsewhere) gets its own."""
    await ready_verifier(store, alice)
    first, _ = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 4)
    before_chunk(monkeypatch, 2, disk_error)
    with pytest.raises(StoreError):
        await store.add_many(first)
    monkeypatch.undo()
    second = [signed(alice, 1, content=f"second {i}", at=T + i) for i in range(sqlite_store._VERIFY_CHUNK * 2)]
    forged = {0, 1500}
    for i in forged:
        second[i] = tampered(second[i], sig="ef" * 64)
    assert invalid_positions(await store.add_many(second)) == sorted(forged)
    assert (await store.stats())["events"] == len(second) - len(forged) + sqlite_store._VERIFY_IN_PROCESS_FROM


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


@pytest.mark.parametrize("share", [0, sqlite_store._SHARES // 2, sqlite_store._SHARES])
async def test_ids_and_stored_json_are_the_same_whichever_end_checks_them(store: SqliteStore, alice: Keys, share: int):
    """The verifier checks ``share`` of every ``_SHARES`` chunks whole (ids too, and writes the
    stored JSON); of the others it checks the signatures, and the writer the ids."""
    await ready_verifier(store, alice)
    store._whole_share = share
    events, forged = batch_with_forgeries(alice, sqlite_store._VERIFY_CHUNK * 4 + 10)
    events[7] = signed(alice, 1, tags=[("t", "é \"quoted\""), ("p", "ab" * 32, "wss://r")], content="ünï\n\"x\"", at=T)
    # Signed as they are, with fields changed after: only the id check catches these.
    events[11] = tampered(events[11], content="changed after signing")
    events[1500] = tampered(events[1500], content="lone \ud800 surrogate")
    forged |= {11, 1500}
    outcomes = await store.add_many(events)
    assert invalid_positions(outcomes) == sorted(forged)
    for i, event in enumerate(events):
        assert await store.get(event.id) == (None if i in forged else event)


def test_the_whole_checks_move_a_step_at_a_time_away_from_the_slower_end(tmp_path: Path):
    store = SqliteStore.__new__(SqliteStore)
    shares = sqlite_store._SHARES
    store._whole_share = shares - 2
    for expected in (shares - 1, shares, shares):  # the writer stored on for 0.3 s after the verifier was done
        store._balance_whole_checks(waited=0.05, lagged=0.3, spent=2.0)
        assert store._whole_share == expected
    store._balance_whole_checks(waited=0.1, lagged=0.12, spent=2.0)  # within 2 % of the batch: stays
    assert store._whole_share == shares
    for _ in range(shares):  # the writer waited 0.5 s for answers: the verifier is slower
        store._balance_whole_checks(waited=0.5, lagged=0.01, spent=2.0)
    assert store._whole_share == 0
    store._balance_whole_checks(waited=0.5, lagged=0.01, spent=2.0)
    assert store._whole_share == 0


@pytest.mark.parametrize("total", [1, 99, 100, 256, 1_000, 2_301, 50_000, 123_457])
def test_a_batch_is_cut_small_at_both_ends(total: int):
    """The writer waits for the first chunk and the verifier's core idles while the writer stores
    the last: both are small; the ones between are full."""
    sizes = sqlite_store._chunk_sizes(total)
    assert sum(sizes) == total and all(sizes)
    assert sizes[0] <= sqlite_store._FIRST_VERIFY_CHUNK
    assert max(sizes) <= sqlite_store._VERIFY_CHUNK
    if total > 2 * sqlite_store._VERIFY_CHUNK:
        assert sizes[-1] <= 2 * sqlite_store._FIRST_VERIFY_CHUNK
        assert sizes.count(sqlite_store._VERIFY_CHUNK) >= total // sqlite_store._VERIFY_CHUNK - 2
