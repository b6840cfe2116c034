"""Both stores remember when an event first reached the index: the time of its first ``add``."""

from __future__ import annotations

from pathlib import Path

import pytest

from nostr_training.keys import Keys
from nostr_training.store import MemoryStore, SqliteStore, Store

from .factories import signed


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    opened: Store = await SqliteStore.open(tmp_path / "index.db") if request.param == "sqlite" else MemoryStore()
    yield opened
    await opened.close()


async def test_first_seen_is_the_first_add_and_survives_a_second(store: Store):
    keys = Keys.generate()
    early = signed(keys, 1, content="a", at=100)
    late = signed(keys, 1, content="b", at=50)  # backdated: written before, seen after
    untimed = signed(keys, 1, content="c", at=60)
    await store.add(early, now=1_000)
    await store.add(late, now=2_000)
    await store.add(late, now=3_000)
    await store.add(untimed)
    many = [signed(keys, 1, content=str(n), at=n) for n in range(3)]
    await store.add_many(many, now=4_000)
    seen = await store.first_seen([early.id, late.id, untimed.id, "0" * 64, *(e.id for e in many)])
    assert seen[early.id] == 1_000 and seen[late.id] == 2_000
    assert untimed.id not in seen and "0" * 64 not in seen
    assert all(seen[e.id] == 4_000 for e in many)
