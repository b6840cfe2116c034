"""A data dir made by an earlier version opens and upgrades: nothing queued or done is lost."""

from __future__ import annotations

import sqlite3
from importlib import resources

import pytest

from nostr_training.errors import DatabaseTooNew
from nostr_training.store import LOOKUP, OutboxState, OutboxTarget, SqliteStore
from nostr_training.store.sqlite import SCHEMA_VERSION

from .factories import signed

T = 1_800_000_000
RELAY = "wss://relay.example"


def _migration(number: int) -> str:
    folder = resources.files("nostr_training.store").joinpath("schema")
    (entry,) = [e for e in folder.iterdir() if e.name.startswith(f"{number:04d}_")]
    return entry.read_text("utf-8")


def make_v1(path, note, wrap, recipient: str) -> None:
    """The database exactly as the first schema's code wrote it: markers in the relay column,
    once-only keys in ``done``."""
    conn = sqlite3.connect(path)
    conn.executescript(f"BEGIN;\n{_migration(1)}\nPRAGMA user_version = 1;\nCOMMIT;")
    for seq, event in enumerate((note, wrap), start=1):
        conn.execute(
            "INSERT INTO events (seq, id, pubkey, created_at, kind, raw) VALUES (?,?,?,?,?,?)",
            (seq, event.id, event.pubkey, event.created_at, event.kind, event.to_json()),
        )
        conn.execute("INSERT INTO outbox_events VALUES (?,?,?)", (event.id, event.kind, event.to_json()))
    rows = [
        (note.id, RELAY, "delivered", 1, "", T, None, T),
        (note.id, "targets:unresolved", "retrying", 2, "error: no relay answered", T, T + 60, T),
        (wrap.id, f"no-inbox:{recipient}", "refused", 1, "blocked: no inbox relays", T, None, T),
    ]
    conn.executemany(
        "INSERT INTO outbox (event_id, relay, state, attempts, last_message, enqueued_at, next_attempt_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.execute("INSERT INTO done VALUES ('reminder:l1:24h', ?)", (T,))
    conn.commit()
    conn.close()


async def test_a_v1_data_dir_upgrades_with_typed_targets_and_its_actions(tmp_path, alice, bob):
    path = tmp_path / "index.sqlite"
    note = signed(alice, 1, content="queued before the upgrade")
    wrap = signed(alice, 1059, tags=[("p", bob.public_key)], content="x")
    make_v1(path, note, wrap, bob.public_key)

    store = await SqliteStore.open(path)
    try:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        states = {e.target: (e.state, e.attempts) for e in await store.outbox_entries(note.id)}
        assert states == {OutboxTarget.relay(RELAY): (OutboxState.DELIVERED, 1), LOOKUP: (OutboxState.RETRYING, 2)}
        (refused,) = await store.outbox_entries(wrap.id)
        assert refused.target == OutboxTarget.recipient(bob.public_key) and refused.state is OutboxState.REFUSED
        assert [i.target for i in await store.outbox_due(T + 60)] == [LOOKUP]
        assert await store.is_done("reminder:l1:24h")
        (action,) = await store.actions(action="once")
        assert (action.key, action.done_at) == ("reminder:l1:24h", T)
        assert await store.get(note.id) == note
    finally:
        await store.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatabaseTooNew):
        await SqliteStore.open(path)
