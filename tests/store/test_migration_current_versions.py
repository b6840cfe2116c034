"""Migration 0005: an upgraded data dir keeps serving the right version of every address, and
versions arriving after the upgrade supersede (or lose to) the ones the migration found current."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.store import AddOutcome, MemoryStore, SqliteStore

from .factories import address_of, addressable
from .test_migration_interned_tags import LESSON, RSVP, T, answers, history, write_v1  # noqa: F401 (a fixture)


async def test_versions_after_the_upgrade_compete_with_the_migrated_current_ones(tmp_path: Path, alice: Keys, bob: Keys, history):
    published, private = history
    write_v1(tmp_path / "index.db", published, private)
    reference = MemoryStore()
    await reference.add_many(published)
    for event, container in private:
        await reference.add_private(event, container_id=container)
    every_event = published + [e for e, _ in private]
    course = address_of(alice, 31924, "py")
    lesson = address_of(alice, LESSON, "l1")
    newer = addressable(alice, LESSON, "l1", at=T + 100, tags=[("a", course)], content="v3")
    older = addressable(alice, LESSON, "l1", at=T + 1, tags=[("a", course)], content="v0.5")
    answer = addressable(bob, RSVP, "r1", at=T + 15, tags=[("a", lesson), ("p", alice.public_key)])

    store = await SqliteStore.open(tmp_path / "index.db")
    try:
        assert await store.add(newer) is AddOutcome.STORED
        assert await store.add(older) is AddOutcome.SUPERSEDED
        assert await store.add(answer) is AddOutcome.SUPERSEDED  # r1 at T+20 was current before the upgrade
        for event in (newer, older, answer):
            await reference.add(event)
            every_event.append(event)
        assert [e.content for e in await store.query([Filter(kinds=[LESSON], tags={"d": ["l1"]})])] == ["v3"]
        assert await answers(store, alice, bob, every_event) == await answers(reference, alice, bob, every_event)
        assert (await store.stats())["superseded"] == 5
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "index.db")
    try:
        assert conn.execute("SELECT DISTINCT typeof(id), length(id) FROM events").fetchall() == [("blob", 32)]
        assert conn.execute("SELECT count(*) FROM current_versions").fetchone()[0] == 5  # py, l1, l2, r1, r2
    finally:
        conn.close()
