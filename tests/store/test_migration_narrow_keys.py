"""Migration 0006: a data dir at schema 5 (pubkeys and addresses as text in every event row, a
unique index on the 32-byte id, current versions keyed by address) is upgraded to interned
authors, an id index keyed by the id's first 8 bytes and current versions keyed by (author, kind,
d), and answers by author, by id and by address as before, for the rows it moved and for arrivals
after it."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from nostr_training.event import Event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.store import SCHEMA_VERSION, AddOutcome, MemoryStore, SqliteStore
from nostr_training.store.sqlite import _sql_id_key, _unhex

from .factories import address_of, addressable, deletion, signed
from .test_migration_interned_tags import LESSON, RSVP, T, answers, history, write_v1  # noqa: F401 (a fixture)


def migrate_to(path: Path, version: int) -> None:
    """Apply the numbered migrations after what the file holds, up to ``version`` only."""
    folder = resources.files("nostr_training.store").joinpath("schema")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("unhex", 1, _unhex, deterministic=True)
    (current,), = conn.execute("PRAGMA user_version").fetchall()
    for number in range(current + 1, version + 1):
        (script,) = [e.read_text("utf-8") for e in folder.iterdir() if e.name.startswith(f"{number:04d}_")]
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.close()


async def by_author(store, events: list[Event]) -> list:
    authors = sorted({e.pubkey for e in events})
    kinds = sorted({e.kind for e in events})
    out: list = []
    for f in (
        [Filter(authors=authors)],
        [Filter(authors=authors[:1], kinds=kinds[:2])],
        [Filter(authors=authors[-1:], limit=2)],
        [Filter(authors=["ff" * 32])],  # an author never seen
        [Filter(authors=authors[:1]), Filter(ids=[events[-1].id])],
        [Filter(ids=[e.id for e in events] + ["00" * 32, "not-an-id"])],
    ):
        out.append([e.id for e in await store.query(f, include_superseded=True, include_private=True)])
        out.append(await store.count(f))
    out.append(await store.first_seen([e.id for e in events]))
    return out


async def test_a_schema_5_data_dir_is_upgraded_and_answers_by_author_and_id_as_the_reference(
    tmp_path: Path, alice: Keys, bob: Keys, history
):
    published, private = history
    path = tmp_path / "index.db"
    write_v1(path, published, private)
    migrate_to(path, 5)
    reference = MemoryStore()
    await reference.add_many(published)
    for event, container in private:
        await reference.add_private(event, container_id=container)
    every_event = published + [e for e, _ in private]

    store = await SqliteStore.open(path)
    try:
        assert SCHEMA_VERSION >= 6
        assert await answers(store, alice, bob, every_event) == await answers(reference, alice, bob, every_event)
        assert await by_author(store, every_event) == await by_author(reference, every_event)

        # After the upgrade: a new author, a known one, and a deletion by address of a moved row.
        carol = Keys.generate()
        lesson = address_of(alice, LESSON, "l1")
        late = [
            addressable(carol, RSVP, "r1", at=T + 70, tags=[("a", lesson), ("p", alice.public_key)]),
            signed(bob, 1, tags=[("t", "py")], content="after", at=T + 71),
            deletion(alice, addresses=[lesson], at=T + 72),
        ]
        assert await store.add_many(late) == [AddOutcome.STORED] * 3
        await reference.add_many(late)
        every_event += late
        assert await answers(store, alice, bob, every_event) == await answers(reference, alice, bob, every_event)
        assert await by_author(store, every_event) == await by_author(reference, every_event)
        assert await store.add_many(published) == [AddOutcome.DUPLICATE] * len(published)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        pubkeys = {e.pubkey for e in every_event}
        assert {row[0] for row in conn.execute("SELECT pubkey FROM authors")} == pubkeys
        assert conn.execute("SELECT count(*) FROM events e JOIN authors a ON a.aid = e.author").fetchone()[0] == len(every_event)
        keys = conn.execute("SELECT id, id_key FROM events").fetchall()
        assert keys and all(_sql_id_key(event_id) == key for event_id, key in keys)
        addresses = conn.execute(
            "SELECT e.kind || ':' || a.pubkey || ':' || e.d FROM events e JOIN authors a ON a.aid = e.author"
            " WHERE e.d IS NOT NULL"
        ).fetchall()
        assert sorted(row[0] for row in addresses) == sorted(e.address for e in every_event if e.address is not None)
        current = conn.execute(
            "SELECT c.kind || ':' || a.pubkey || ':' || c.d, c.private FROM current_versions c JOIN authors a ON a.aid = c.author"
        ).fetchall()
        assert sorted(current) == sorted({(e.address, int(e.sig is None)) for e in every_event if e.address is not None})
    finally:
        conn.close()


def _unsigned(event_id: str, content: str, at: int) -> Event:
    return Event(event_id, "ab" * 32, at, 1, (("t", "same-key"),), content, "00" * 64)


async def test_ids_that_share_their_first_8_bytes_are_told_apart(tmp_path: Path):
    """The id index is keyed by 8 bytes; a look-up compares the whole id (an attacker can find
    two ids with the same first 8 bytes, so they must not be taken for one another)."""
    first = _unsigned("11" * 8 + "aa" * 24, "first", T)
    second = _unsigned("11" * 8 + "bb" * 24, "second", T + 1)
    store = await SqliteStore.open(tmp_path / "index.db")
    try:
        assert await store.add_many([first], verified=True, now=T + 10) == [AddOutcome.STORED]
        assert await store.add_many([second, first], verified=True, now=T + 11) == [AddOutcome.STORED, AddOutcome.DUPLICATE]
        assert await store.get(first.id) == first and await store.get(second.id) == second
        assert await store.get("11" * 8 + "cc" * 24) is None
        assert [e.content for e in await store.query([Filter(ids=[second.id])])] == ["second"]
        assert await store.count([Filter(ids=[first.id, "11" * 8 + "cc" * 24])]) == 1
        assert await store.first_seen([first.id, second.id]) == {first.id: T + 10, second.id: T + 11}
        assert await store.add_many([second], verified=True) == [AddOutcome.DUPLICATE]
    finally:
        await store.close()
