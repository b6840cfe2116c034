"""Property: the SQLite store and the in-memory reference agree on every outcome and query.

Random histories mix replaceable and addressable versions with tied timestamps, deletions (by
the author, by strangers, by address, arriving before or after their targets, in the same batch),
expirations, gift wraps and private rumors; random filters then ask both stores.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nostr_training.event import Event, coordinate
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.store import MemoryStore, SqliteStore

from .factories import rumor, signed

T = 1_800_000_000
PEOPLE = [Keys.from_hex(f"{i:02x}" * 32) for i in (1, 2, 3)]
KINDS = [1, 0, 10002, 31923, 31925, 1059, 8, 5, 20001]
TOPICS = ["py", "rs"]
D_VALUES = ["", "l1", "l2"]


def _tags(draw, kind: int) -> list[tuple[str, ...]]:
    tags: list[tuple[str, ...]] = []
    if 30000 <= kind < 40000 and draw(st.booleans()):
        tags.append(("d", draw(st.sampled_from(D_VALUES))))
    for _ in range(draw(st.integers(0, 2))):
        choice = draw(st.sampled_from(["p", "t", "a", "x"]))
        if choice == "p":
            tags.append(("p", draw(st.sampled_from(PEOPLE)).public_key))
        elif choice == "t":
            tags.append(("t", draw(st.sampled_from(TOPICS))))
        elif choice == "a":
            tags.append(("a", coordinate(31923, draw(st.sampled_from(PEOPLE)).public_key, draw(st.sampled_from(D_VALUES)))))
        else:
            tags.append(("x", "y", draw(st.sampled_from(TOPICS))))
    if draw(st.integers(0, 4)) == 0:
        tags.append(("expiration", str(T + draw(st.integers(0, 6)))))
    return tags


def _deletion_tags(draw, made: list[Event]) -> list[tuple[str, ...]]:
    tags: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 2))):
        if made and draw(st.booleans()):
            target = draw(st.sampled_from(made))
            if target.address is not None and draw(st.booleans()):
                tags.append(("a", target.address))
            else:
                tags.append(("e", target.id))
        else:
            author = draw(st.sampled_from(PEOPLE)).public_key
            tags.append(("a", coordinate(draw(st.sampled_from([31923, 0])), author, draw(st.sampled_from(D_VALUES)))))
    return tags


@st.composite
def histories(draw) -> list[tuple[str, list[Event]]]:
    """Steps of ("public", batch) or ("private", [one rumor])."""
    made: list[Event] = []
    steps: list[tuple[str, list[Event]]] = []
    for _ in range(draw(st.integers(1, 8))):
        batch: list[Event] = []
        private = draw(st.integers(0, 5)) == 0
        for _ in range(1 if private else draw(st.integers(1, 4))):
            author = draw(st.sampled_from(PEOPLE))
            kind = draw(st.sampled_from(KINDS))
            at = T + draw(st.integers(0, 5))
            tags = _deletion_tags(draw, made) if kind == 5 else _tags(draw, kind)
            content = draw(st.sampled_from(["", "a", "b"]))
            if private:
                ev = rumor(author, kind if kind != 5 else 14, tags=tags, content=content, at=at)
            else:
                ev = signed(author, kind, tags=tags, content=content, at=at)
            same_mode = [e for e in made if (e.sig is None) == private]
            if same_mode and draw(st.integers(0, 6)) == 0:
                ev = draw(st.sampled_from(same_mode))  # a duplicate
            batch.append(ev)
            made.append(ev)
        steps.append(("private" if private else "public", batch))
    return steps


def _filters(draw, events: list[Event]) -> list[Filter]:
    out = []
    for _ in range(draw(st.integers(1, 2))):
        kw: dict = {}
        if events and draw(st.integers(0, 4)) == 0:
            kw["ids"] = frozenset(draw(st.lists(st.sampled_from([e.id for e in events]), max_size=3)))
        if draw(st.integers(0, 2)) == 0:
            kw["authors"] = frozenset(draw(st.lists(st.sampled_from([p.public_key for p in PEOPLE]), min_size=1, max_size=2)))
        if draw(st.booleans()):
            kw["kinds"] = frozenset(draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3)))
        tags = {}
        if draw(st.integers(0, 2)) == 0:
            tags["t"] = frozenset(draw(st.lists(st.sampled_from(TOPICS), min_size=1)))
        if draw(st.integers(0, 3)) == 0:
            tags["p"] = frozenset(draw(st.lists(st.sampled_from([p.public_key for p in PEOPLE]), min_size=1, max_size=2)))
        if draw(st.integers(0, 4)) == 0:
            tags["d"] = frozenset(draw(st.lists(st.sampled_from(D_VALUES), min_size=1)))
        if draw(st.integers(0, 6)) == 0:
            tags["x"] = frozenset(draw(st.lists(st.sampled_from(TOPICS), min_size=1)))
        kw["tags"] = tags
        if draw(st.booleans()):
            kw["since"] = T + draw(st.integers(0, 5))
        if draw(st.booleans()):
            kw["until"] = T + draw(st.integers(0, 5))
        if draw(st.booleans()):
            kw["limit"] = draw(st.integers(0, 4))
        out.append(Filter(**kw))
    return out


async def _run(steps, queries, now) -> None:
    folder = Path(tempfile.mkdtemp(prefix="store-eq-"))
    sqlite = await SqliteStore.open(folder / "index.db")
    memory = MemoryStore()
    try:
        for mode, batch in steps:
            if mode == "private":
                got = [await s.add_private(batch[0], container_id=None, now=now) for s in (sqlite, memory)]
            elif len(batch) == 1:
                got = [await s.add(batch[0], now=now) for s in (sqlite, memory)]
            else:
                got = [await s.add_many(batch, now=now) for s in (sqlite, memory)]
            assert got[0] == got[1], (mode, batch)
        for filters, query_now, superseded, private in queries:
            a = await sqlite.query(filters, now=query_now, include_superseded=superseded, include_private=private)
            b = await memory.query(filters, now=query_now, include_superseded=superseded, include_private=private)
            assert [e.id for e in a] == [e.id for e in b], filters
            assert a == b
            assert await sqlite.count(filters, now=query_now, include_private=private) == await memory.count(
                filters, now=query_now, include_private=private
            )
        lesson = coordinate(31923, PEOPLE[0].public_key, "l1")
        assert await sqlite.rsvps_of_lesson(lesson) == await memory.rsvps_of_lesson(lesson)
        assert await sqlite.certificates_of(PEOPLE[1].public_key) == await memory.certificates_of(PEOPLE[1].public_key)
        stats_sqlite, stats_memory = await sqlite.stats(), await memory.stats()
        stats_sqlite.pop("db_bytes"), stats_memory.pop("db_bytes")
        assert stats_sqlite == stats_memory
    finally:
        await sqlite.close()
        shutil.rmtree(folder, ignore_errors=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sqlite_and_memory_stores_agree(data: st.DataObject) -> None:
    steps = data.draw(histories())
    now = data.draw(st.one_of(st.none(), st.integers(T, T + 6)))
    events = [e for _, batch in steps for e in batch]
    queries = [
        (
            _filters(data.draw, events),
            data.draw(st.one_of(st.none(), st.integers(T, T + 7))),
            data.draw(st.booleans()),
            data.draw(st.booleans()),
        )
        for _ in range(data.draw(st.integers(1, 4)))
    ]
    asyncio.run(_run(steps, queries, now))
