"""The SQLite store: the daemon's index of events and its durable memory.

One aiosqlite connection owns every write (batches run in one ``BEGIN IMMEDIATE`` transaction,
serialised by a lock); a second connection reads, so queries see only committed batches and do
not wait behind a long ingest. WAL with ``synchronous=NORMAL``: a crash may lose the last
commits but never corrupts the file. Migrations are the numbered files in ``schema/``, applied
in order and recorded in ``PRAGMA user_version``; a database newer than the code is refused.

Superseded and deleted are flags kept true to their definitions (see ``base``) on every
arrival, so a query is a plain indexed read.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import aiosqlite

from ..crm import Contact, check_contact
from ..errors import DatabaseTooNew, InvalidEvent, MalformedEvent, NotFound, StoreError
from ..event import Event, verify_event
from ..filters import Filter
from ..kinds import DELETION
from .base import (
    ActionRecord,
    AddOutcome,
    Enqueue,
    OutboxEntry,
    OutboxItem,
    OutboxState,
    OutboxTarget,
    TargetKind,
    is_delivered_message,
)
from .serving import (
    GIFT_WRAP_KINDS,
    CourseQueries,
    DeletionMark,
    a_deletion_applies,
    check_private_id,
    deletion_marks,
    e_deletion_applies,
)

__all__ = ["SqliteStore", "SCHEMA_VERSION"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_loads = json.loads


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files(__package__).joinpath("schema")
    found = sorted(
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    if [number for number, _ in found] != list(range(1, len(found) + 1)):
        raise StoreError("store schema: migration files must be numbered 0001, 0002, ... without gaps")
    return found


_MIGRATIONS = _migrations()
SCHEMA_VERSION = len(_MIGRATIONS)

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA mmap_size = 0",
)
#: Page caches (KiB): the writer's holds the hot index pages inserts touch, the reader's serves
#: queries. Bounded and without mmap, the daemon's memory stays flat however large the index
#: grows; the OS page cache keeps the rest of the file warm. Checkpoints every 10,000 pages
#: (40 MiB of WAL) instead of 1,000: at a million events, random index pages dominate ingest,
#: and fewer, larger checkpoints write each of them back less often (+20 % measured).
_WRITER_CACHE = "PRAGMA cache_size = -32768"
_WRITER_CHECKPOINT = "PRAGMA wal_autocheckpoint = 10000"
_READER_CACHE = "PRAGMA cache_size = -16384"


def event_from_raw(raw: str) -> Event:
    """Rebuild an event from the JSON this store wrote (already checked when it was stored)."""
    d = _loads(raw)
    return Event(
        d["id"], d["pubkey"], d["created_at"], d["kind"], tuple(map(tuple, d["tags"])), d["content"], d.get("sig")
    )


_ACTION_COLUMNS = "key, action, done_at, subject, pubkey, event_id, detail"

_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _raw_json(event: Event) -> str:
    """The stored JSON of an event (field order as NIP-01 shows it; sig absent for a rumor)."""
    sig = "" if event.sig is None else f',"sig":{_quote(event.sig)}'
    return (
        f'{{"id":{_quote(event.id)},"pubkey":{_quote(event.pubkey)},"created_at":{event.created_at},'
        f'"kind":{event.kind},"tags":{_dumps(event.tags)},"content":{_quote(event.content)}{sig}}}'
    )


def _is_indexed_name(name: str) -> bool:
    return len(name) == 1 and name.isalpha()


@dataclass(slots=True)
class _Arrival:
    """An event that passed the checks that need no database, with its columns worked out."""

    event: Event
    private: bool
    container_id: str | None
    received_at: int | None
    address: str | None
    expiration: int | None
    tag_pairs: list[tuple[str, str]]


def _arrive(event: Event, private: bool, container_id: str | None, now: int | None) -> _Arrival | AddOutcome:
    """One pass over the tags: address, expiration and indexed tags, or why it is not stored.

    Must agree with ``serving.arrival_refusal`` and ``Event.address`` (the contract tests and the
    equivalence property check it against the memory store, which uses those).
    """
    kind = event.kind
    if 20000 <= kind < 30000:
        return AddOutcome.EPHEMERAL
    d = expiration = None
    pairs = []
    for tag in event.tags:
        if len(tag) > 1:
            name = tag[0]
            if len(name) == 1 and name.isalpha():
                pairs.append((name, tag[1]))
                if d is None and name == "d":
                    d = tag[1]
            elif expiration is None and name == "expiration":
                expiration = tag[1]
    expires = int(expiration) if expiration is not None and expiration.isdigit() else None
    if now is not None and expires is not None and expires <= now:
        return AddOutcome.EXPIRED
    if 30000 <= kind < 40000:
        address = f"{kind}:{event.pubkey}:{d or ''}"
    elif kind in (0, 3) or 10000 <= kind < 20000:
        address = f"{kind}:{event.pubkey}:"
    else:
        address = None
    return _Arrival(event, private, container_id, now, address, expires, pairs)


class SqliteStore(CourseQueries):
    """The store on disk; open with ``await SqliteStore.open(path)`` and ``close`` when done."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> "SqliteStore":
        """Open (creating if needed) and migrate; raises ``DatabaseTooNew`` for a newer file."""
        path = Path(path)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            for pragma in (*_PRAGMAS, _WRITER_CACHE, _WRITER_CHECKPOINT):
                await writer.execute(pragma)
            await _migrate(writer, path)
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        try:
            for pragma in (*_PRAGMAS[2:], _READER_CACHE):
                await reader.execute(pragma)
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        async with self._write_lock:
            await self._reader.close()
            await self._writer.close()

    # Writing -----------------------------------------------------------------------------

    async def _transaction(self, work) -> Any:
        """Run ``work()`` inside one immediate transaction on the writer; roll back on error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                result = await work()
            except sqlite3.DatabaseError as exc:
                await self._writer.execute("ROLLBACK")
                raise StoreError(f"store {self.path.name}: {exc}; the batch was not stored") from exc
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            try:
                await self._writer.execute("COMMIT")
            except sqlite3.DatabaseError as exc:  # a full disk shows here, at the commit
                if self._writer.in_transaction:
                    await self._writer.execute("ROLLBACK")
                raise StoreError(f"store {self.path.name}: {exc}; the batch was not stored") from exc
            return result

    async def add(self, event: Event, *, verified: bool = False, now: int | None = None) -> AddOutcome:
        if not verified:
            verify_event(event)
        arrival = _arrive(event, False, None, now)
        if isinstance(arrival, AddOutcome):
            return arrival
        return (await self._transaction(lambda: self._ingest([arrival])))[0]

    async def add_many(
        self, events: Sequence[Event], *, verified: bool = False, now: int | None = None
    ) -> list[AddOutcome]:
        outcomes: list[AddOutcome | None] = []
        arrivals: list[_Arrival] = []
        for event in events:
            if not verified:
                try:
                    verify_event(event)
                except (InvalidEvent, MalformedEvent):
                    outcomes.append(AddOutcome.INVALID)
                    continue
            arrival = _arrive(event, False, None, now)
            if isinstance(arrival, AddOutcome):
                outcomes.append(arrival)
                continue
            outcomes.append(None)
            arrivals.append(arrival)
        if arrivals:
            stored = iter(await self._transaction(lambda: self._ingest(arrivals)))
            outcomes = [o if o is not None else next(stored) for o in outcomes]
        return outcomes  # type: ignore[return-value]

    async def add_private(self, event: Event, *, container_id: str | None = None, now: int | None = None) -> AddOutcome:
        check_private_id(event)
        if event.sig is not None:
            verify_event(event)
        arrival = _arrive(event, True, container_id, now)
        if isinstance(arrival, AddOutcome):
            return arrival
        return (await self._transaction(lambda: self._ingest([arrival])))[0]

    async def _fetch(self, conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await conn.execute_fetchall(sql, params))

    async def _ingest(self, arrivals: list[_Arrival]) -> list[AddOutcome]:
        """Store a batch inside the open transaction, keeping the flags true to their definitions.

        A few set-wise look-ups first (known ids, deletions, current versions), then the batch is
        resolved in order in Python, then written with executemany.
        """
        w = self._writer
        ids = [a.event.id for a in arrivals]
        known = {row[0] for row in await self._fetch(w, "SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))", (_dumps(ids),))}
        addresses = sorted({a.address for a in arrivals if a.address is not None})
        marks: dict[str, list[DeletionMark]] = {}
        if (await self._fetch(w, "SELECT EXISTS (SELECT 1 FROM deletions)"))[0][0]:
            for target, deleter, created_at, deletion_id in await self._fetch(
                w,
                "SELECT target, deleter, created_at, deletion_id FROM deletions"
                " WHERE target IN (SELECT value FROM json_each(?))",
                (_dumps(ids + addresses),),
            ):
                marks.setdefault(target, []).append(DeletionMark(target, deleter, created_at, deletion_id))
        current: dict[tuple[str, int], tuple[Event | None, str, int]] = {}
        if addresses:
            for address, private, event_id, created_at in await self._fetch(
                w,
                "SELECT address, private, id, created_at FROM events"
                " WHERE address IN (SELECT value FROM json_each(?)) AND superseded = 0",
                (_dumps(addresses),),
            ):
                current[(address, private)] = (None, event_id, created_at)
        seq = (await self._fetch(w, "SELECT coalesce(max(seq), 0) FROM events"))[0][0]

        outcomes: list[AddOutcome] = []
        rows: list[list[Any]] = []
        row_of: dict[str, list[Any]] = {}
        tag_rows: list[tuple[str, str, int, int, int]] = []
        superseded_in_db: list[tuple[str]] = []
        new_marks: list[DeletionMark] = []
        for arrival in arrivals:
            event = arrival.event
            if event.id in known:
                outcomes.append(AddOutcome.DUPLICATE)
                continue
            known.add(event.id)
            seq += 1
            deleted = bool(marks) and (
                any(e_deletion_applies(m.deleter, event) for m in marks.get(event.id, ()))
                or (arrival.address is not None and any(a_deletion_applies(m, event) for m in marks.get(arrival.address, ())))
            )
            superseded = False
            if arrival.address is not None:
                key = (arrival.address, int(arrival.private))
                winner = current.get(key)
                if winner is None or _beats(event, winner):
                    if winner is not None:
                        if winner[1] in row_of:
                            row_of[winner[1]][6] = 1
                        else:
                            superseded_in_db.append((winner[1],))
                    current[key] = (event, event.id, event.created_at)
                else:
                    superseded = True
            row = [
                seq, event.id, event.pubkey, event.created_at, event.kind, arrival.address,
                int(superseded), int(deleted), arrival.expiration, int(arrival.private),
                arrival.container_id, arrival.received_at, _raw_json(event),
            ]
            rows.append(row)
            row_of[event.id] = row
            kind, created_at = event.kind, event.created_at
            tag_rows.extend([(name, value, kind, created_at, seq) for name, value in arrival.tag_pairs])
            if kind == DELETION and not arrival.private:
                for mark in deletion_marks(event):
                    marks.setdefault(mark.target, []).append(mark)
                    new_marks.append(mark)
            outcomes.append(
                AddOutcome.DELETED if deleted else AddOutcome.SUPERSEDED if superseded else AddOutcome.STORED
            )

        if rows:
            await w.executemany(
                "INSERT INTO events (seq, id, pubkey, created_at, kind, address, superseded, deleted,"
                " expiration, private, container_id, received_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        if tag_rows:
            await w.executemany("INSERT OR IGNORE INTO event_tags VALUES (?,?,?,?,?)", tag_rows)
        if superseded_in_db:
            await w.executemany("UPDATE events SET superseded = 1 WHERE id = ?", superseded_in_db)
        if new_marks:
            await self._apply_deletions(new_marks)
        return outcomes

    async def _apply_deletions(self, marks: list[DeletionMark]) -> None:
        """Record new deletion targets and flag every stored event they cover."""
        w = self._writer
        await w.executemany(
            "INSERT OR IGNORE INTO deletions (target, deletion_id, deleter, created_at) VALUES (?,?,?,?)",
            [(m.target, m.deletion_id, m.deleter, m.created_at) for m in marks],
        )
        for mark in marks:
            if ":" in mark.target:
                await w.execute(
                    "UPDATE events SET deleted = 1 WHERE address = ? AND pubkey = ? AND created_at <= ? AND kind != 5",
                    (mark.target, mark.deleter, mark.created_at),
                )
                continue
            for seq, raw in await self._fetch(w, "SELECT seq, raw FROM events WHERE id = ?", (mark.target,)):
                if e_deletion_applies(mark.deleter, event_from_raw(raw)):
                    await w.execute("UPDATE events SET deleted = 1 WHERE seq = ?", (seq,))

    # Reading -----------------------------------------------------------------------------

    async def get(self, event_id: str) -> Event | None:
        rows = await self._fetch(self._reader, "SELECT raw FROM events WHERE id = ?", (event_id,))
        return event_from_raw(rows[0][0]) if rows else None

    async def first_seen(self, event_ids: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(event_ids))
        out: dict[str, int] = {}
        for at in range(0, len(wanted), 500):
            marks, values = _placeholders(wanted[at:at + 500])
            rows = await self._fetch(
                self._reader, f"SELECT id, received_at FROM events WHERE id IN ({marks}) AND received_at IS NOT NULL", values
            )
            out.update((row[0], row[1]) for row in rows)
        return out

    async def query(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_superseded: bool = False,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> list[Event]:
        found: dict[str, tuple[int, str, str]] = {}
        for f in filters:
            built = _filter_sql(
                f, "e.created_at, e.id, e.raw", now, include_superseded, include_private, ordered=True,
                recipients=recipients,
            )
            if built is None:
                continue
            for row in await self._fetch(self._reader, *built):
                found[row[1]] = row
        ordered = sorted(found.values(), key=lambda r: (-r[0], r[1]))
        return [event_from_raw(r[2]) for r in ordered]

    async def count(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> int:
        parts: list[str] = []
        params: list[Any] = []
        for f in filters:
            unlimited = Filter(f.ids, f.authors, f.kinds, f.tags, f.since, f.until, None)
            built = _filter_sql(unlimited, "e.seq", now, False, include_private, ordered=False, recipients=recipients)
            if built is not None:
                parts.append(built[0])
                params.extend(built[1])
        if not parts:
            return 0
        rows = await self._fetch(self._reader, f"SELECT count(*) FROM ({' UNION '.join(parts)})", params)
        return rows[0][0]

    # Outbox ------------------------------------------------------------------------------

    async def enqueue(
        self,
        event: Event,
        targets: Sequence[OutboxTarget | str],
        *,
        now: int,
        action: ActionRecord | None = None,
    ) -> AddOutcome:
        verify_event(event)
        arrival = _arrive(event, False, None, now)
        rows = [(event.id, t.kind.value, t.value, now, now, now) for t in map(OutboxTarget.of, targets)]

        async def work() -> AddOutcome:
            w = self._writer
            if action is not None:
                cursor = await w.execute(
                    "INSERT OR IGNORE INTO actions (key, action, subject, pubkey, event_id, done_at, detail)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (action.key, action.action, action.subject, action.pubkey, event.id, action.done_at, action.detail),
                )
                if cursor.rowcount == 0:
                    return AddOutcome.ALREADY_DONE
            if isinstance(arrival, AddOutcome):
                outcome = arrival
            else:
                outcome = (await self._ingest([arrival]))[0]
            await w.execute(
                "INSERT OR IGNORE INTO outbox_events (event_id, kind, raw) VALUES (?,?,?)",
                (event.id, event.kind, _raw_json(event)),
            )
            await w.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, target_kind, target, state, enqueued_at, next_attempt_at,"
                " updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                rows,
            )
            return outcome

        return await self._transaction(work)

    async def enqueue_many(self, items: Sequence[Enqueue], *, now: int, verified: bool = False) -> list[AddOutcome]:
        outcomes: list[AddOutcome | None] = []
        arrivals: list[_Arrival] = []
        queued: list[Enqueue] = []
        for item in items:
            if not verified:
                try:
                    verify_event(item.event)
                except (InvalidEvent, MalformedEvent):
                    outcomes.append(AddOutcome.INVALID)
                    continue
            queued.append(item)
            arrival = _arrive(item.event, False, None, now)
            if isinstance(arrival, AddOutcome):
                outcomes.append(arrival)
            else:
                outcomes.append(None)
                arrivals.append(arrival)
        rows = []
        refused = []
        for item in queued:
            for target in map(OutboxTarget.of, item.targets):
                rows.append((item.event.id, target.kind.value, target.value, now, now, now))
            for target, message in item.refused:
                refused.append((item.event.id, target.kind.value, target.value, message, now, now))

        async def work() -> list[AddOutcome]:
            stored = iter(await self._ingest(arrivals)) if arrivals else iter(())
            w = self._writer
            await w.executemany(
                "INSERT OR IGNORE INTO outbox_events (event_id, kind, raw) VALUES (?,?,?)",
                [(i.event.id, i.event.kind, _raw_json(i.event)) for i in queued],
            )
            await w.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, target_kind, target, state, enqueued_at, next_attempt_at,"
                " updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                rows,
            )
            await w.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, target_kind, target, state, attempts, last_message,"
                " enqueued_at, next_attempt_at, updated_at) VALUES (?, ?, ?, 'refused', 1, ?, ?, NULL, ?)",
                refused,
            )
            return [o if o is not None else next(stored) for o in outcomes]

        if not queued:
            return [o for o in outcomes if o is not None]
        return await self._transaction(work)

    async def outbox_due(self, now: int, limit: int = 100) -> list[OutboxItem]:
        rows = await self._fetch(
            self._reader,
            "SELECT p.raw, o.target_kind, o.target, o.attempts, o.next_attempt_at, o.last_message"
            " FROM outbox o JOIN outbox_events p ON p.event_id = o.event_id"
            " WHERE o.next_attempt_at <= ? AND o.state IN ('pending', 'retrying')"
            " ORDER BY o.next_attempt_at, o.seq LIMIT ?",
            (now, limit),
        )
        return [
            OutboxItem(event_from_raw(raw), OutboxTarget(TargetKind(kind), value), attempts, due, last)
            for raw, kind, value, attempts, due, last in rows
        ]

    async def outbox_record(
        self, event_id: str, target: OutboxTarget | str, *, ok: bool, message: str, now: int, retry_at: int | None
    ) -> None:
        target = OutboxTarget.of(target)
        if is_delivered_message(ok, message):
            state, next_at = OutboxState.DELIVERED, None
        elif retry_at is None:
            state, next_at = OutboxState.REFUSED, None
        else:
            state, next_at = OutboxState.RETRYING, retry_at

        async def work() -> int:
            cursor = await self._writer.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_message = ?, updated_at = ?, state = ?,"
                " next_attempt_at = ? WHERE event_id = ? AND target_kind = ? AND target = ?",
                (message, now, state.value, next_at, event_id, target.kind.value, target.value),
            )
            return cursor.rowcount

        if await self._transaction(work) == 0:
            raise StoreError(f"outbox: event {event_id[:16]} was never queued for {target}")

    async def outbox_remove(self, event_id: str, target: OutboxTarget | str) -> None:
        target = OutboxTarget.of(target)

        async def work() -> None:
            await self._writer.execute(
                "DELETE FROM outbox WHERE event_id = ? AND target_kind = ? AND target = ?",
                (event_id, target.kind.value, target.value),
            )

        await self._transaction(work)

    async def outbox_entries(self, event_id: str | None = None) -> list[OutboxEntry]:
        where, params = ("WHERE o.event_id = ?", (event_id,)) if event_id is not None else ("", ())
        rows = await self._fetch(
            self._reader,
            "SELECT o.event_id, p.kind, o.target_kind, o.target, o.state, o.attempts, o.last_message, o.enqueued_at,"
            " o.next_attempt_at, o.updated_at FROM outbox o JOIN outbox_events p ON p.event_id = o.event_id"
            f" {where} ORDER BY o.enqueued_at, o.seq",
            params,
        )
        return [
            OutboxEntry(eid, kind, OutboxTarget(TargetKind(tkind), value), OutboxState(state), attempts, last, enqueued,
                        next_at, updated)
            for eid, kind, tkind, value, state, attempts, last, enqueued, next_at, updated in rows
        ]

    async def outbox_depth(self) -> int:
        rows = await self._fetch(self._reader, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'retrying') AND target_kind != 'recipient'")
        return rows[0][0]

    # Cursors and once-only actions -------------------------------------------------------

    async def get_cursor(self, relay: str, key: str) -> int | None:
        rows = await self._fetch(self._reader, "SELECT created_at FROM cursors WHERE relay = ? AND key = ?", (relay, key))
        return rows[0][0] if rows else None

    async def set_cursor(self, relay: str, key: str, created_at: int) -> None:
        async def work() -> None:
            await self._writer.execute(
                "INSERT INTO cursors (relay, key, created_at) VALUES (?, ?, ?) ON CONFLICT (relay, key)"
                " DO UPDATE SET created_at = max(created_at, excluded.created_at)",
                (relay, key, created_at),
            )

        await self._transaction(work)

    async def record_action(self, record: ActionRecord) -> bool:
        async def work() -> int:
            cursor = await self._writer.execute(
                "INSERT OR IGNORE INTO actions (key, action, subject, pubkey, event_id, done_at, detail)"
                " VALUES (?,?,?,?,?,?,?)",
                (record.key, record.action, record.subject, record.pubkey, record.event_id, record.done_at, record.detail),
            )
            return cursor.rowcount

        return await self._transaction(work) == 1

    async def get_action(self, key: str) -> ActionRecord | None:
        rows = await self._fetch(self._reader, f"SELECT {_ACTION_COLUMNS} FROM actions WHERE key = ?", (key,))
        return ActionRecord(*rows[0]) if rows else None

    async def actions(
        self, *, action: str | None = None, subject: str | None = None, pubkey: str | None = None
    ) -> list[ActionRecord]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("action", action), ("subject", subject), ("pubkey", pubkey)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._fetch(self._reader, f"SELECT {_ACTION_COLUMNS} FROM actions{clause} ORDER BY done_at, key", params)
        return [ActionRecord(*row) for row in rows]

    async def mark_done(self, key: str, *, now: int) -> bool:
        return await self.record_action(ActionRecord(key, "once", now))

    async def is_done(self, key: str) -> bool:
        return bool(await self._fetch(self._reader, "SELECT 1 FROM actions WHERE key = ?", (key,)))

    # Contacts (CRM) ----------------------------------------------------------------------

    _CONTACT_COLUMNS = "id, name, email, notes, tags, pubkey"

    async def _contact_write(self, sql: str, params: Sequence[Any], contact: Contact) -> int:
        """Run one contact write; a taken id or linked pubkey becomes a ``StoreError`` naming it."""

        async def work() -> int:
            if contact.pubkey is not None:
                rows = await self._fetch(
                    self._writer, "SELECT id FROM contacts WHERE pubkey = ? AND id IS NOT ?", (contact.pubkey, contact.id)
                )
                if rows:
                    raise StoreError(f"contact: pubkey {contact.pubkey[:16]} is already linked to contact {rows[0][0]}")
            if contact.id is not None and sql.startswith("INSERT"):
                if await self._fetch(self._writer, "SELECT 1 FROM contacts WHERE id = ?", (contact.id,)):
                    raise StoreError(f"contact: id {contact.id} is taken")
            cursor = await self._writer.execute(sql, params)
            return cursor.lastrowid if sql.startswith("INSERT") else cursor.rowcount

        return await self._transaction(work)

    async def add_contact(self, contact: Contact, *, now: int) -> Contact:
        contact = check_contact(contact)
        new_id = await self._contact_write(
            "INSERT INTO contacts (id, name, email, notes, tags, pubkey, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (contact.id, contact.name, contact.email, contact.notes, _dumps(list(contact.tags)), contact.pubkey, now, now),
            contact,
        )
        return replace(contact, id=new_id)

    async def update_contact(self, contact: Contact, *, now: int) -> Contact:
        contact = check_contact(contact)
        changed = 0
        if contact.id is not None:
            changed = await self._contact_write(
                "UPDATE contacts SET name = ?, email = ?, notes = ?, tags = ?, pubkey = ?, updated_at = ? WHERE id = ?",
                (contact.name, contact.email, contact.notes, _dumps(list(contact.tags)), contact.pubkey, now, contact.id),
                contact,
            )
        if not changed:
            raise NotFound(f"contact {contact.id}: no such contact")
        return contact

    async def get_contact(self, contact_id: int) -> Contact | None:
        rows = await self._fetch(self._reader, f"SELECT {self._CONTACT_COLUMNS} FROM contacts WHERE id = ?", (contact_id,))
        return _contact(rows[0]) if rows else None

    async def list_contacts(self, *, tag: str | None = None) -> list[Contact]:
        sql = f"SELECT {self._CONTACT_COLUMNS} FROM contacts"
        params: tuple[Any, ...] = ()
        if tag is not None:
            sql += " WHERE EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE json_each.value = ?)"
            params = (tag,)
        rows = await self._fetch(self._reader, sql + " ORDER BY name COLLATE NOCASE, id", params)
        return [_contact(row) for row in rows]

    async def delete_contact(self, contact_id: int) -> bool:
        async def work() -> int:
            cursor = await self._writer.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            return cursor.rowcount

        return await self._transaction(work) == 1

    async def find_contact_by_pubkey(self, pubkey: str) -> Contact | None:
        rows = await self._fetch(self._reader, f"SELECT {self._CONTACT_COLUMNS} FROM contacts WHERE pubkey = ?", (pubkey,))
        return _contact(rows[0]) if rows else None

    # Housekeeping ------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        r = self._reader
        (total, replaceable, addressable, private, superseded, deleted), = await self._fetch(
            r,
            "SELECT count(*),"
            " coalesce(sum(kind IN (0, 3) OR kind BETWEEN 10000 AND 19999), 0),"
            " coalesce(sum(kind BETWEEN 30000 AND 39999), 0),"
            " coalesce(sum(private), 0), coalesce(sum(superseded), 0), coalesce(sum(deleted), 0) FROM events",
        )
        (pages,), = await self._fetch(r, "PRAGMA page_count")
        (page_size,), = await self._fetch(r, "PRAGMA page_size")
        return {
            "events": total,
            "by_class": {
                "regular": total - replaceable - addressable,
                "replaceable": replaceable,
                "addressable": addressable,
            },
            "private": private,
            "superseded": superseded,
            "deleted": deleted,
            "outbox_depth": await self.outbox_depth(),
            "db_bytes": pages * page_size,
        }


def _contact(row: Sequence[Any]) -> Contact:
    contact_id, name, email, notes, tags, pubkey = row
    return Contact(name=name, email=email, notes=notes, tags=tuple(_loads(tags)), pubkey=pubkey, id=contact_id)


def _beats(event: Event, winner: tuple[Event | None, str, int]) -> bool:
    """The NIP-01 tie rule against the current version, known in full or by (id, created_at)."""
    _, winner_id, winner_created_at = winner
    if event.created_at != winner_created_at:
        return event.created_at > winner_created_at
    return event.id < winner_id


async def _migrate(conn: aiosqlite.Connection, path: Path) -> None:
    (version,), = await conn.execute_fetchall("PRAGMA user_version")
    if version > SCHEMA_VERSION:
        raise DatabaseTooNew(
            f"store {path}: schema version {version} is newer than this program's {SCHEMA_VERSION}; upgrade nostr-training"
        )
    for number, script in _MIGRATIONS[version:]:
        try:
            await conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise


def _placeholders(values: Iterable[Any]) -> tuple[str, list[Any]]:
    items = sorted(values)
    return ",".join("?" * len(items)), items


def _filter_sql(
    f: Filter,
    columns: str,
    now: int | None,
    include_superseded: bool,
    include_private: bool,
    *,
    ordered: bool,
    recipients: frozenset[str] | None = None,
) -> tuple[str, list[Any]] | None:
    """One NIP-01 filter as SQL over served events, or None when it cannot match anything.

    With a tag condition and no ids, the single-letter tag index drives the search (CROSS JOIN
    fixes the join order); other tag conditions become exact primary-key probes of that index.
    """
    if f.limit == 0 or any(not values for values in (f.ids, f.authors, f.kinds) if values is not None):
        return None
    if any(not values for values in f.tags.values()):
        return None
    where: list[str] = []
    params: list[Any] = []
    tags = dict(f.tags)
    driver = None
    if f.ids is None:
        indexed = sorted((n for n in tags if _is_indexed_name(n)), key=lambda n: (len(tags[n]), n))
        driver = indexed[0] if indexed else None
    if driver is not None:
        marks, values = _placeholders(tags.pop(driver))
        source = "event_tags t CROSS JOIN events e ON e.seq = t.seq"
        where.append(f"t.name = ? AND t.value IN ({marks})")
        params += [driver, *values]
        if f.kinds is not None:
            marks, values = _placeholders(f.kinds)
            where.append(f"t.kind IN ({marks})")
            params += values
        time_column = "t.created_at"
    else:
        source = "events e"
        time_column = "e.created_at"
    if f.ids is not None:
        marks, values = _placeholders(f.ids)
        where.append(f"e.id IN ({marks})")
        params += values
    if f.authors is not None:
        marks, values = _placeholders(f.authors)
        where.append(f"e.pubkey IN ({marks})")
        params += values
    if f.kinds is not None and driver is None:
        marks, values = _placeholders(f.kinds)
        where.append(f"e.kind IN ({marks})")
        params += values
    if f.since is not None:
        where.append(f"{time_column} >= ?")
        params.append(f.since)
    if f.until is not None:
        where.append(f"{time_column} <= ?")
        params.append(f.until)
    for name, wanted in sorted(tags.items()):
        marks, values = _placeholders(wanted)
        if _is_indexed_name(name):
            where.append(
                "EXISTS (SELECT 1 FROM event_tags x WHERE x.name = ? AND x.value IN"
                f" ({marks}) AND x.kind = e.kind AND x.created_at = e.created_at AND x.seq = e.seq)"
            )
        else:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(e.raw, '$.tags') j WHERE json_extract(j.value, '$[0]') = ?"
                f" AND json_array_length(j.value) > 1 AND json_extract(j.value, '$[1]') IN ({marks}))"
            )
        params += [name, *values]
    where.append("e.deleted = 0")
    if not include_superseded:
        where.append("e.superseded = 0")
    if not include_private:
        where.append("e.private = 0")
    if now is not None:
        where.append("(e.expiration IS NULL OR e.expiration > ?)")
        params.append(now)
    if recipients is not None:
        # serving.gift_wrap_visible, as SQL: a wrap only for a viewer it names in a p tag.
        marks, values = _placeholders(recipients) if recipients else ("NULL", [])
        where.append(
            f"(e.kind NOT IN ({','.join(map(str, sorted(GIFT_WRAP_KINDS)))}) OR EXISTS (SELECT 1 FROM event_tags v"
            f" WHERE v.name = 'p' AND v.value IN ({marks}) AND v.kind = e.kind AND v.created_at = e.created_at"
            " AND v.seq = e.seq))"
        )
        params += values
    distinct = "DISTINCT " if driver is not None else ""
    sql = f"SELECT {distinct}{columns} FROM {source} WHERE {' AND '.join(where)}"
    if ordered:
        sql += " ORDER BY e.created_at DESC, e.id"
        if f.limit is not None:
            sql += " LIMIT ?"
            params.append(f.limit)
    return sql, params
