"""The outbox hands out each queued event whole and signed, wherever the store keeps its JSON: in
the index for a stored event, in the outbox's own copy for one the index does not keep (ephemeral,
expired) or keeps only as a private rumor without its signature."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nostr_training.keys import Keys
from nostr_training.store import AddOutcome, MemoryStore, OutboxTarget, SqliteStore, Store
from nostr_training.store.base import Enqueue

from .factories import addressable, signed

T = 1_800_000_000
RELAY = "wss://relay.example"


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    opened: Store = await SqliteStore.open(tmp_path / "index.db") if request.param == "sqlite" else MemoryStore()
    yield opened
    await opened.close()


async def test_every_queued_event_comes_back_signed_with_its_kind(store: Store, alice: Keys):
    note = signed(alice, 1, content="stored", at=T)
    presence = signed(alice, 20001, content="ephemeral", at=T)
    expired = signed(alice, 1, tags=[("expiration", str(T - 1))], content="expired", at=T - 10)
    newer = addressable(alice, 31923, "l1", at=T + 5)
    older = addressable(alice, 31923, "l1", at=T)
    draft = signed(alice, 1, content="drafted first", at=T + 1)
    assert await store.add_private(replace(draft, sig=None)) is AddOutcome.STORED

    outcomes = await store.enqueue_many(
        [Enqueue(e, [OutboxTarget.relay(RELAY)], ()) for e in (note, presence, expired, newer, older, draft)],
        now=T, verified=True,
    )
    assert outcomes == [AddOutcome.STORED, AddOutcome.EPHEMERAL, AddOutcome.EXPIRED, AddOutcome.STORED,
                        AddOutcome.SUPERSEDED, AddOutcome.DUPLICATE]
    assert await store.enqueue(signed(alice, 1, content="alone", at=T + 2), [RELAY], now=T) is AddOutcome.STORED

    due = await store.outbox_due(T, limit=10)
    assert {item.event.content for item in due} == {"stored", "ephemeral", "expired", "", "drafted first", "alone"}
    assert all(item.event.sig is not None for item in due)
    assert next(item.event for item in due if item.event.id == draft.id) == draft
    assert next(item.event for item in due if item.event.id == older.id) == older
    kinds = {entry.event_id: entry.kind for entry in await store.outbox_entries()}
    assert kinds[presence.id] == 20001 and kinds[newer.id] == 31923 and kinds[note.id] == 1
