"""Upgrading a data dir: a database written by the v1 schema (migration 0001 only, rows as the
v1 store wrote them) opens with today's code, is migrated, and answers every query as before."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from nostr_training.event import Event, supersedes
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.store import SCHEMA_VERSION, AddOutcome, MemoryStore, SqliteStore
from nostr_training.store.serving import deletion_marks

from .factories import address_of, addressable, deletion, rumor, signed

T = 1_800_000_000
LESSON, COURSE, RSVP, AWARD, GIFT_WRAP = 31923, 31924, 31925, 8, 1059


def v1_raw(event: Event) -> str:
    """The JSON the v1 store kept (NIP-01 field order, compact, no sig for a rumor)."""
    fields = {"id": event.id, "pubkey": event.pubkey, "created_at": event.created_at, "kind": event.kind,
              "tags": [list(t) for t in event.tags], "content": event.content}
    if event.sig is not None:
        fields["sig"] = event.sig
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def write_v1(path: Path, published: list[Event], private: list[tuple[Event, str]]) -> None:
    """Apply migration 0001 alone and insert rows the way the v1 store's ingest did."""
    script = resources.files("nostr_training.store").joinpath("schema", "0001_init.sql").read_text(encoding="utf-8")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = 1;\nCOMMIT;")
    rows = [(e, False, None) for e in published] + [(e, True, c) for e, c in private]
    marks = [m for e in published for m in deletion_marks(e)]
    conn.execute("BEGIN")
    for seq, (event, is_private, container) in enumerate(rows, start=1):
        address = event.address
        rivals = [o for o, p, _ in rows if p == is_private and address is not None and o.address == address]
        superseded = any(supersedes(o, event) for o in rivals if o.id != event.id)
        deleted = any(
            (m.target == event.id and m.deleter == event.pubkey)
            or (m.target == address and m.deleter == event.pubkey and event.created_at <= m.created_at)
            for m in marks
        ) and event.kind != 5 and not is_private
        conn.execute(
            "INSERT INTO events (seq, id, pubkey, created_at, kind, address, superseded, deleted, expiration,"
            " private, container_id, received_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (seq, event.id, event.pubkey, event.created_at, event.kind, address, int(superseded), int(deleted),
             None, int(is_private), container, None, v1_raw(event)),
        )
        for tag in event.tags:
            if len(tag) > 1 and len(tag[0]) == 1 and tag[0].isalpha():
                conn.execute("INSERT OR IGNORE INTO event_tags VALUES (?,?,?,?,?)", (tag[0], tag[1], event.kind, event.created_at, seq))
    conn.executemany(
        "INSERT OR IGNORE INTO deletions (target, deletion_id, deleter, created_at) VALUES (?,?,?,?)",
        [(m.target, m.deletion_id, m.deleter, m.created_at) for m in marks],
    )
    conn.execute("COMMIT")
    conn.close()


@pytest.fixture
def history(alice: Keys, bob: Keys) -> tuple[list[Event], list[tuple[Event, str]]]:
    course = address_of(alice, COURSE, "py")
    lesson = address_of(alice, LESSON, "l1")
    other_lesson = address_of(alice, LESSON, "l2")
    published = [
        addressable(alice, COURSE, "py", at=T, content="Python"),
        addressable(alice, LESSON, "l1", at=T, tags=[("a", course), ("t", "py")], content="v1"),
        addressable(alice, LESSON, "l1", at=T + 60, tags=[("a", course), ("t", "py")], content="v2"),
        addressable(alice, LESSON, "l2", at=T + 5, tags=[("a", course), ("t", "rs")]),
        addressable(bob, RSVP, "r1", at=T + 10, tags=[("a", lesson), ("p", alice.public_key), ("status", "accepted")]),
        addressable(bob, RSVP, "r1", at=T + 20, tags=[("a", lesson), ("p", alice.public_key), ("status", "declined")]),
        addressable(bob, RSVP, "r2", at=T + 30, tags=[("a", other_lesson), ("p", alice.public_key)]),
        signed(alice, AWARD, tags=[("a", address_of(alice, 30009, "cert")), ("p", bob.public_key)], at=T + 40),
        signed(bob, 1, tags=[("t", "py"), ("e", "ab" * 32)], content="hello", at=T + 41),
        signed(bob, 1, tags=[("t", "rs")], content="gone", at=T + 42),
        signed(alice, GIFT_WRAP, tags=[("p", bob.public_key)], content="sealed", at=T + 43),
    ]
    published.append(deletion(bob, ids=[published[-2].id], at=T + 50))
    published.append(deletion(alice, addresses=[other_lesson], at=T + 51))
    private = [(rumor(bob, 14, tags=[("p", alice.public_key)], content="dm", at=T + 44), published[10].id)]
    return published, private


FILTERS = [
    [Filter()],
    [Filter(kinds=[LESSON])],
    [Filter(kinds=[RSVP])],
    [Filter(limit=3)],
    [Filter(since=T + 20, until=T + 45)],
]


async def answers(store, alice: Keys, bob: Keys, events: list[Event]) -> list:
    course = address_of(alice, COURSE, "py")
    lesson = address_of(alice, LESSON, "l1")
    filters = [*FILTERS]
    for name in ("a", "p", "t", "e", "d"):
        values = sorted({v for e in events for t in e.tags if len(t) > 1 and t[0] == name for v in [t[1]]})
        filters += [[Filter(tags={name: [v]})] for v in values]
        filters.append([Filter(tags={name: values}, limit=4)])
    filters += [
        [Filter(kinds=[RSVP], tags={"a": [lesson], "p": [alice.public_key]})],
        [Filter(authors=[bob.public_key], tags={"t": ["py", "rs"]})],
        [Filter(ids=[e.id for e in events[:6]])],
        [Filter(kinds=[LESSON], tags={"t": ["py"]}), Filter(kinds=[1])],
        [Filter(tags={"x": ["nothing"]})],
    ]
    out: list = []
    for f in filters:
        out.append([e.id for e in await store.query(f)])
        out.append([e.id for e in await store.query(f, include_superseded=True, include_private=True)])
        out.append(await store.count(f))
    out.append([e.id for e in await store.lessons_of_course(course)])
    out.append([e.id for e in await store.rsvps_of_lesson(lesson)])
    out.append([e.id for e in await store.certificates_of(bob.public_key)])
    out.append([(await store.get(e.id)) == e for e in events])
    return out


async def test_a_v1_database_is_migrated_and_answers_as_the_reference(tmp_path: Path, alice: Keys, bob: Keys, history):
    published, private = history
    write_v1(tmp_path / "index.db", published, private)
    reference = MemoryStore()
    await reference.add_many(published)
    for event, container in private:
        await reference.add_private(event, container_id=container)
    every_event = published + [e for e, _ in private]

    upgraded = await SqliteStore.open(tmp_path / "index.db")
    try:
        (version,), = await upgraded._reader.execute_fetchall("PRAGMA user_version")
        assert version == SCHEMA_VERSION >= 2
        assert await answers(upgraded, alice, bob, every_event) == await answers(reference, alice, bob, every_event)
        stats = await upgraded.stats()
        assert (stats["events"], stats["superseded"], stats["deleted"], stats["private"]) == (14, 2, 2, 1)

        # New arrivals share the interned values the migration made, old and new rows both found.
        lesson = address_of(alice, LESSON, "l1")
        late = addressable(alice, RSVP, "r9", at=T + 70, tags=[("a", lesson), ("p", alice.public_key)])
        assert await upgraded.add(late) is AddOutcome.STORED
        await reference.add(late)
        every_event.append(late)
        assert await answers(upgraded, alice, bob, every_event) == await answers(reference, alice, bob, every_event)
        assert await upgraded.add_many(published) == [AddOutcome.DUPLICATE] * len(published)
    finally:
        await upgraded.close()


async def test_a_fresh_database_and_an_upgraded_one_answer_alike(tmp_path: Path, alice: Keys, bob: Keys, history):
    published, private = history
    write_v1(tmp_path / "old.db", published, private)
    fresh = await SqliteStore.open(tmp_path / "new.db")
    upgraded = await SqliteStore.open(tmp_path / "old.db")
    try:
        await fresh.add_many(published)
        for event, container in private:
            await fresh.add_private(event, container_id=container)
        every_event = published + [e for e, _ in private]
        assert await answers(upgraded, alice, bob, every_event) == await answers(fresh, alice, bob, every_event)
    finally:
        await fresh.close()
        await upgraded.close()
