"""The SQLite store: the daemon's index of events and its durable memory.

Every write is one job on a single writer thread that owns a plain ``sqlite3`` connection:
jobs run one at a time in the order submitted, a whole ``add_many`` in one ``BEGIN IMMEDIATE``
transaction, without a thread hop per statement. A large unverified batch is a pipeline over two
cores: a worker process (``verifier``) checks signatures chunk by chunk while the writer stores
the chunks already checked (measured: verifying in a thread fights the writer for the GIL and
ran slower than verifying inline; a process keeps the writer at the store-only speed). The ids
are checked by whichever end is less busy, with the stored JSON written from the same encoding
(the verifier at 1M events, where the writer is the busier end). A second (aiosqlite)
connection reads, so queries see only committed batches and do not wait behind a long ingest.
WAL with ``synchronous=NORMAL``: a crash may lose the last commits but never corrupts the file. Migrations are the numbered files in ``schema/``, applied
in order and recorded in ``PRAGMA user_version``; a database newer than the code is refused.

Superseded and deleted are kept true to their definitions (see ``base``) on every arrival, so a
query is a plain indexed read: deleted is a flag on the event, superseded is "not the current
version of its address" (``current_versions`` names each address's winner, so a newer version
writes one narrow row instead of rewriting the old one's).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ..crm import Contact, check_contact
from ..errors import DatabaseTooNew, InvalidEvent, MalformedEvent, NotFound, StoreError
from ..event import Event, id_and_json, signature_holds, verify_event
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
from .verifier import VerifierGone, VerifierProcess

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
#: grows; the OS page cache keeps the rest of the file warm. Checkpoints every 50,000 pages
#: (200 MiB of WAL) instead of SQLite's 1,000: random index pages dominate ingest, and a page
#: changed by several batches between two checkpoints is copied back to the file once (at 200k
#: events: 1,000 -> 10,000 pages gave +20 % ingest; 10,000 -> 50,000 cut disk writes per
#: event from 7.5 to 6.1 KB). With schema 0005 at 1M events, neither 100,000 pages nor a 64 MiB
#: writer cache changed the bytes written per event (6.57 KB in all three runs): not taken. What
#: did cut them is narrower index keys (schema 0006: 6.4 -> 3.6 KB per event at 1M).
_WRITER_CACHE = "PRAGMA cache_size = -32768"
_WRITER_CHECKPOINT = "PRAGMA wal_autocheckpoint = 50000"
_READER_CACHE = "PRAGMA cache_size = -16384"


def event_from_raw(raw: str) -> Event:
    """Rebuild an event from the JSON this store wrote (already checked when it was stored)."""
    d = _loads(raw)
    return Event(
        d["id"], d["pubkey"], d["created_at"], d["kind"], tuple(map(tuple, d["tags"])), d["content"], d.get("sig")
    )


_ACTION_COLUMNS = "key, action, done_at, subject, pubkey, event_id, detail"

#: Outcomes that leave the event's signed JSON in ``events``: the outbox reads it there instead of
#: keeping a second copy (one random-keyed ~700-byte row fewer per queued event). An event not
#: stored there (ephemeral, expired) or already there (maybe as a private rumor without its
#: signature) keeps its own copy in ``outbox_events``.
_IN_EVENTS = frozenset({AddOutcome.STORED, AddOutcome.SUPERSEDED, AddOutcome.DELETED})
_OUTBOX_JOIN = (
    "outbox o LEFT JOIN outbox_events p ON p.event_id = o.event_id"
    " LEFT JOIN events e ON p.event_id IS NULL AND e.id_key = id_key(o.event_id) AND e.id = unhex(o.event_id)"
)

def _id_bytes(event_id: str) -> bytes | None:
    """An event id as the 32 bytes the index keeps, or None when it is not 64 lowercase hex
    (no stored event has such an id)."""
    if len(event_id) != 64 or event_id != event_id.lower():
        return None
    try:
        return bytes.fromhex(event_id)
    except ValueError:
        return None


def _id_key(id_bytes: bytes) -> int:
    """The number the id index is keyed by: an id's first 8 bytes (a quarter of the 32-byte key
    every arrival inserts at a random place). Ids that share it are told apart by the full id."""
    return int.from_bytes(id_bytes[:8], "big", signed=True)


def _sql_id_key(value: Any) -> int | None:
    """``id_key(x)`` in SQL: the key of an id given as its bytes or as hex."""
    if isinstance(value, str):
        value = _id_bytes(value)
    return _id_key(value) if isinstance(value, bytes) and len(value) == 32 else None


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
    d: str | None  # the address's last part (its kind and author are the event's own)
    expiration: int | None
    tag_pairs: list[tuple[str, str]]
    raw: str | None = None  # its stored JSON, when already written with the id check


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
        d = d or ""
    elif kind in (0, 3) or 10000 <= kind < 20000:
        d = ""
    else:
        d = None
    address = None if d is None else f"{kind}:{event.pubkey}:{d}"
    return _Arrival(event, private, container_id, now, address, d, expires, pairs)


_T = TypeVar("_T")

#: Interned tag values the writer remembers (about 10 MiB at most).
_INTERNED_CACHE = 50_000
#: Interned authors the writer remembers (about 10 MiB at most).
_AUTHORS_CACHE = 50_000
#: Events per verification job sent to the verifier process (see ``_chunk_sizes``).
_VERIFY_CHUNK = 1000
_FIRST_VERIFY_CHUNK = 100
#: The share of chunks the verifier checks whole moves in steps of 1/_SHARES (see _balance_whole_checks).
_SHARES = 8
#: Tag index rows worth inserting while the writer waits for the verifier (fewer are kept
#: for the batch's end, where sorted with the rest they touch fewer pages).
_TAGS_WHILE_WAITING = 5000
#: How many times a store starts its verifier process (the first time, then after it stopped).
_VERIFIER_STARTS = 3
#: Unverified batches at least this large are verified in a worker process (the second core);
#: smaller ones on the writer thread, where a process round trip would cost more than it saves.
_VERIFY_IN_PROCESS_FROM = 256


def _chunk_sizes(total: int) -> list[int]:
    """How a batch is cut for the verifier: small at both ends, where one end of the pipeline
    waits for the other (the writer for the first answer, the verifier's core for the writer to
    store the last chunk), ``_VERIFY_CHUNK`` between."""
    sizes = [min(total, _FIRST_VERIFY_CHUNK)]
    left = total - sizes[0]
    while left > 2 * _VERIFY_CHUNK:
        sizes.append(_VERIFY_CHUNK)
        left -= _VERIFY_CHUNK
    while left > 2 * _FIRST_VERIFY_CHUNK:
        sizes.append(left // 2)
        left -= left // 2
    return [*sizes, left] if left else sizes


class SqliteStore(CourseQueries):
    """The store on disk; open with ``await SqliteStore.open(path)`` and ``close`` when done."""

    def __init__(self, path: Path, writer: sqlite3.Connection, reader: aiosqlite.Connection, writer_thread: ThreadPoolExecutor):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._writer_thread = writer_thread
        self._verifier: VerifierProcess | None = None
        self._verifier_starts = 0
        self._whole_share = _SHARES // 2  # of every _SHARES chunks, how many the verifier checks whole (ids and JSON too)
        self._interned: dict[tuple[str, str], int] = {}
        self._kind_versions: dict[int, int] = {}
        self._kinds_written: set[int] = set()  # kinds stored by the open transaction
        self._authors: dict[str, int] = {}
        self._closing = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) and migrate; raises ``DatabaseTooNew`` for a newer file."""
        path = Path(path)
        writer_thread = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        loop = asyncio.get_running_loop()
        try:
            writer = await loop.run_in_executor(writer_thread, _open_writer, path)
        except BaseException:
            writer_thread.shutdown(wait=False)
            raise
        try:
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await loop.run_in_executor(writer_thread, writer.close)
            writer_thread.shutdown(wait=False)
            raise
        try:
            for pragma in (*_PRAGMAS[2:], _READER_CACHE):
                await reader.execute(pragma)
            await reader.execute("PRAGMA query_only = ON")
            await reader.create_function("unhex", 1, _unhex, deterministic=True)
            await reader.create_function("id_key", 1, _sql_id_key, deterministic=True)
        except BaseException:
            await reader.close()
            await loop.run_in_executor(writer_thread, writer.close)
            writer_thread.shutdown(wait=False)
            raise
        return cls(path, writer, reader, writer_thread)

    async def close(self) -> None:
        async with self._closing:
            await self._reader.close()
            await self._on_writer(self._writer.close)  # after every write already queued
            if self._verifier is not None:
                await self._on_writer(self._verifier.close)
                self._verifier = None
            self._writer_thread.shutdown(wait=True)

    # Writing -----------------------------------------------------------------------------

    async def _on_writer(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run one job on the writer thread; jobs run one at a time, in the order submitted.

        A job runs to its end even if the caller is cancelled meanwhile: a batch under way
        still commits (or rolls back) as a whole.
        """
        return await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._writer_thread, work, *args))

    def _run_transaction(self, work: Callable[[], _T]) -> _T:
        """On the writer thread: ``work()`` inside one immediate transaction, rolled back on error."""
        w = self._writer
        w.execute("BEGIN IMMEDIATE")
        try:
            result = work()
        except sqlite3.DatabaseError as exc:
            self._rollback()
            raise StoreError(f"store {self.path.name}: {exc}; the batch was not stored") from exc
        except BaseException:
            self._rollback()
            raise
        try:
            w.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # a full disk shows here, at the commit
            if w.in_transaction:
                self._rollback()
            raise StoreError(f"store {self.path.name}: {exc}; the batch was not stored") from exc
        if self._kinds_written:  # after the commit: a reader that sees the old number may cache only what it read before
            for kind in self._kinds_written:
                self._kind_versions[kind] = self._kind_versions.get(kind, 0) + 1
            self._kinds_written.clear()
        return result

    def _rollback(self) -> None:
        self._interned.clear()
        self._kinds_written.clear()
        self._authors.clear()
        self._writer.execute("ROLLBACK")

    async def _transaction(self, work: Callable[[], _T]) -> _T:
        return await self._on_writer(self._run_transaction, work)

    def kind_version(self, kind: int) -> int:
        return self._kind_versions.get(kind, 0) + self._kind_versions.get(DELETION, 0)

    async def add(self, event: Event, *, verified: bool = False, now: int | None = None) -> AddOutcome:
        if not verified:
            verify_event(event)
        arrival = _arrive(event, False, None, now)
        if isinstance(arrival, AddOutcome):
            return arrival
        return await self._transaction(lambda: self._ingest([arrival])[0])

    async def add_many(
        self, events: Sequence[Event], *, verified: bool = False, now: int | None = None
    ) -> list[AddOutcome]:
        """One transaction; a large unverified batch is verified chunk by chunk in the verifier
        process while the writer thread stores the chunks already verified (a pipeline over
        both cores: libsecp256k1 in a thread would fight the writer for the GIL)."""
        return await self._on_writer(self._run_transaction, lambda: self._store_chunks(events, verified, now))

    def _verifier_process(self) -> VerifierProcess | None:
        """The verifier, started on first use and started again after it stopped (a worker
        killed for memory, say), up to ``_VERIFIER_STARTS`` times; None once that is spent."""
        if self._verifier is None or (self._verifier.stopped and self._verifier_starts < _VERIFIER_STARTS):
            if self._verifier is not None:
                self._verifier.close()
            self._verifier = VerifierProcess()
            self._verifier_starts += 1
            self._verifier.start()
        return None if self._verifier.stopped else self._verifier

    def _store_chunks(self, events: Sequence[Event], verified: bool, now: int | None) -> list[AddOutcome]:
        """On the writer thread, inside the transaction: chunk after chunk, each verified by the
        verifier process once it is ready, else here (while it starts, or if it stops)."""
        verifier = None if verified or len(events) < _VERIFY_IN_PROCESS_FROM else self._verifier_process()
        chunks: list[Sequence[Event]] = [events]
        if verifier is not None:
            ends = list(itertools.accumulate(_chunk_sizes(len(events))))
            chunks = [events[a:b] for a, b in zip([0, *ends], ends, strict=False)]
        jobs: dict[int, int] = {}  # chunk number -> the verifier's job number
        outcomes: list[AddOutcome] = []
        tag_rows: list[tuple[int, int, int, int]] = []  # inserted while the writer waits, the rest at the end
        started = time.monotonic()
        waited = 0.0  # seconds the writer waited for answers (the first one aside)
        try:
            for number, chunk in enumerate(chunks):
                raws: list[str | None] | None = None
                if verifier is not None and not jobs and verifier.ready:
                    jobs = {n: verifier.submit(chunks[n], whole=n % _SHARES < self._whole_share) for n in range(number, len(chunks))}
                if verifier is not None and number in jobs:
                    wait_from = None
                    if number > min(jobs) and not verifier.answered:
                        if len(tag_rows) >= _TAGS_WHILE_WAITING:  # the writer is ahead: use the wait
                            self._insert_tags(tag_rows)
                            tag_rows.clear()
                        wait_from = time.monotonic()
                    try:
                        raws = verifier.answer(jobs[number])
                    except VerifierGone:
                        verifier = None  # this chunk and the rest are verified here
                    if wait_from is not None:
                        waited += time.monotonic() - wait_from
                outcomes.extend(self._store_chunk(chunk, raws, verified, now, tag_rows))
        except BaseException:
            if verifier is not None and jobs:
                verifier.abandon()  # the batch is rolled back: no use verifying the rest
            raise
        if verifier is not None and len(jobs) > 1:
            lagged = time.monotonic() - verifier.finished_at  # the writer still storing, the verifier done
            self._balance_whole_checks(waited, lagged, time.monotonic() - started)
        self._insert_tags(tag_rows)
        return outcomes

    def _store_chunk(
        self, chunk: Sequence[Event], raws: list[str | None] | None, verified: bool, now: int | None,
        tag_rows: list[tuple[int, int, int, int]],
    ) -> list[AddOutcome]:
        """One chunk, given the verifier's answers (see ``VerifierProcess.submit``; None: verify
        here unless ``verified``)."""
        checked: list[_Arrival | AddOutcome] = []
        for position, event in enumerate(chunk):
            raw = None if raws is None else raws[position]
            if raws is not None and raw is None:
                checked.append(AddOutcome.INVALID)
                continue
            if raw == "" or (raws is None and not verified):  # the id (inline: and signature) checked here
                try:
                    digest, raw = id_and_json(event)
                except MalformedEvent:
                    digest = ""
                if digest != event.id or (raws is None and not signature_holds(event.id, event.pubkey, event.sig)):
                    checked.append(AddOutcome.INVALID)
                    continue
            arrival = _arrive(event, False, None, now)
            if raw and isinstance(arrival, _Arrival):
                arrival.raw = raw
            checked.append(arrival)
        arrivals = [a for a in checked if isinstance(a, _Arrival)]
        stored = iter(self._ingest(arrivals, tag_rows) if arrivals else ())
        return [a if isinstance(a, AddOutcome) else next(stored) for a in checked]

    def _balance_whole_checks(self, waited: float, lagged: float, spent: float) -> None:
        """Move the checking of ids and the writing of stored JSON between the two ends of the
        pipeline, an eighth of the chunks at a time, away from the slower one: the writer waited
        for answers (the verifier is slower, as while the index is small), or went on storing
        after the verifier was done (the writer is slower, as once its indexes outgrow the page
        cache at 1M). A difference under 2 % of the batch's time is left as it is."""
        if lagged - waited > 0.02 * spent and self._whole_share < _SHARES:
            self._whole_share += 1
        elif waited - lagged > 0.02 * spent and self._whole_share > 0:
            self._whole_share -= 1

    async def add_private(self, event: Event, *, container_id: str | None = None, now: int | None = None) -> AddOutcome:
        check_private_id(event)
        if event.sig is not None:
            verify_event(event)
        arrival = _arrive(event, True, container_id, now)
        if isinstance(arrival, AddOutcome):
            return arrival
        return await self._transaction(lambda: self._ingest([arrival])[0])

    async def _fetch(self, conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await conn.execute_fetchall(sql, params))

    def _ingest(self, arrivals: list[_Arrival], tag_sink: list[tuple[int, int, int, int]] | None = None) -> list[AddOutcome]:
        """On the writer thread, inside the open transaction: store a batch, keeping the flags
        true to their definitions.

        A few set-wise look-ups first (known ids, deletions, current versions), then the batch is
        resolved in order in Python, then written with executemany. Given a ``tag_sink``, the tag
        index rows go there instead, for the caller to insert later in the same transaction
        (nothing in an ingest reads them).
        """
        w = self._writer
        ids = [a.event.id for a in arrivals]
        blobs = [_unhex(event_id) for event_id in ids]
        keys = [_sql_id_key(blob) for blob in blobs]  # None for a malformed id: refused at the insert
        known = {  # may hold other ids that share a key: only the full id is compared below
            row[0].hex() for row in w.execute("SELECT id FROM events WHERE id_key IN (SELECT value FROM json_each(?))", (_dumps(keys),))
        }
        addresses = sorted({a.address for a in arrivals if a.address is not None})
        marks: dict[str, list[DeletionMark]] = {}
        if w.execute("SELECT EXISTS (SELECT 1 FROM deletions)").fetchone()[0]:
            for target, deleter, created_at, deletion_id in w.execute(
                "SELECT target, deleter, created_at, deletion_id FROM deletions"
                " WHERE target IN (SELECT value FROM json_each(?))",
                (_dumps(ids + addresses),),
            ):
                marks.setdefault(target, []).append(DeletionMark(target, deleter, created_at, deletion_id))
        authors = self._author_ids({a.event.pubkey for a in arrivals})
        current: dict[tuple[str, int], tuple[Event | None, str, int]] = {}
        if addresses:
            named = {(authors[a.event.pubkey], a.event.kind, a.d): a.address for a in arrivals if a.address is not None}
            for author, kind, d, private, event_id, created_at in w.execute(
                "SELECT c.author, c.kind, c.d, c.private, e.id, e.created_at FROM json_each(?) j"
                " CROSS JOIN current_versions c ON c.author = json_extract(j.value, '$[0]')"
                " AND c.kind = json_extract(j.value, '$[1]') AND c.d = json_extract(j.value, '$[2]')"
                " CROSS JOIN events e ON e.seq = c.seq",
                (_dumps(list(named)),),
            ):
                current[(named[(author, kind, d)], private)] = (None, event_id.hex(), created_at)
        seq = w.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]

        outcomes: list[AddOutcome] = []
        rows: list[tuple[Any, ...]] = []
        winners: dict[tuple[str, int], tuple[int, int, str, int]] = {}  # (address, private) -> (author, kind, d, seq)
        tag_rows: list[tuple[str, str, int, int, int]] = []
        new_marks: list[DeletionMark] = []
        for position, arrival in enumerate(arrivals):
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
                    current[key] = (event, event.id, event.created_at)
                    winners[key] = (authors[event.pubkey], event.kind, arrival.d, seq)
                else:
                    superseded = True
            rows.append((
                seq, blobs[position], keys[position], authors[event.pubkey], event.created_at, event.kind, arrival.d,
                int(deleted), arrival.expiration, int(arrival.private),
                arrival.container_id, arrival.received_at, arrival.raw or event.to_json(),
            ))
            kind, created_at = event.kind, event.created_at
            self._kinds_written.add(kind)
            tag_rows.extend([(name, value, kind, created_at, seq) for name, value in arrival.tag_pairs])
            if kind == DELETION and not arrival.private:
                for mark in deletion_marks(event):
                    marks.setdefault(mark.target, []).append(mark)
                    new_marks.append(mark)
            outcomes.append(
                AddOutcome.DELETED if deleted else AddOutcome.SUPERSEDED if superseded else AddOutcome.STORED
            )

        if rows:
            w.executemany(
                "INSERT INTO events (seq, id, id_key, author, created_at, kind, d, deleted,"
                " expiration, private, container_id, received_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        if tag_rows:
            vids = self._value_ids({(row[0], row[1]) for row in tag_rows})
            index_rows = [(vids[(name, value)], kind, created_at, seq) for name, value, kind, created_at, seq in tag_rows]
            if tag_sink is None:
                self._insert_tags(index_rows)
            else:
                tag_sink.extend(index_rows)
        if winners:
            w.executemany(
                "INSERT INTO current_versions (author, kind, d, private, seq) VALUES (?,?,?,?,?)"
                " ON CONFLICT (author, kind, d, private) DO UPDATE SET seq = excluded.seq",
                [(author, kind, d, private, seq) for (_, private), (author, kind, d, seq) in winners.items()],
            )
        if new_marks:
            self._apply_deletions(new_marks)
        return outcomes

    def _insert_tags(self, index_rows: list[tuple[int, int, int, int]]) -> None:
        """Insert tag index rows in key order: the B-tree is walked once from left to right
        instead of at a random page per row (the index outgrows the writer's cache at 1M)."""
        index_rows.sort()
        self._writer.executemany("INSERT OR IGNORE INTO event_tags (vid, kind, created_at, seq) VALUES (?,?,?,?)", index_rows)

    def _value_ids(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """On the writer thread: the interned number of each (name, value), added if new.

        A bounded cache keeps the hot values (lesson coordinates, learners' pubkeys) out of the
        database; it is cleared whenever a transaction rolls back, as numbers given out inside
        it may be handed out again.
        """
        return self._intern(
            self._interned, pairs, _INTERNED_CACHE, lambda pair: pair,
            "INSERT OR IGNORE INTO tag_values (name, value) VALUES (?, ?)",
            "SELECT j.key, v.vid FROM json_each(?) j JOIN tag_values v ON v.name = j.value->>0 AND v.value = j.value->>1",
            "SELECT vid FROM tag_values WHERE name = ? AND value = ?",
        )

    def _author_ids(self, pubkeys: set[str]) -> dict[str, int]:
        """On the writer thread: the interned number of each author, added if new (a bounded
        cache, cleared on rollback like the tag values')."""
        return self._intern(
            self._authors, pubkeys, _AUTHORS_CACHE, lambda pubkey: (pubkey,),
            "INSERT OR IGNORE INTO authors (pubkey) VALUES (?)",
            "SELECT j.key, a.aid FROM json_each(?) j JOIN authors a ON a.pubkey = j.value->>0",
            "SELECT aid FROM authors WHERE pubkey = ?",
        )

    def _intern(
        self, cache: dict[Any, int], wanted: Iterable[Any], limit: int, as_row: Callable[[Any], tuple[str, ...]],
        insert: str, look_up_all: str, look_up_one: str,
    ) -> dict[Any, int]:
        """The numbers of ``wanted`` from a bounded cache, the missing ones added and read back
        in one look-up by position (a value JSON would not carry back exactly, a NUL, is not
        joined and is looked up alone)."""
        missing = [key for key in wanted if key not in cache]
        if len(cache) + len(missing) > limit:
            cache.clear()
            missing = list(wanted)
        if missing:
            w = self._writer
            rows = [as_row(key) for key in missing]
            w.executemany(insert, rows)
            found = dict(w.execute(look_up_all, (_dumps(rows),)))
            for position, (key, row) in enumerate(zip(missing, rows, strict=True)):
                number = found.get(position)
                if number is None:
                    number = w.execute(look_up_one, row).fetchone()[0]
                cache[key] = number
        return cache

    def _apply_deletions(self, marks: list[DeletionMark]) -> None:
        """Record new deletion targets and flag every stored event they cover."""
        w = self._writer
        w.executemany(
            "INSERT OR IGNORE INTO deletions (target, deletion_id, deleter, created_at) VALUES (?,?,?,?)",
            [(m.target, m.deletion_id, m.deleter, m.created_at) for m in marks],
        )
        for mark in marks:
            if ":" in mark.target:
                # kind:pubkey:d, by the author index; only the deleter's own address is covered.
                kind, _, rest = mark.target.partition(":")
                pubkey, colon, d = rest[:64], rest[64:65], rest[65:]
                if kind.isdigit() and str(int(kind)) == kind and colon == ":" and pubkey == mark.deleter:
                    w.execute(
                        "UPDATE events SET deleted = 1 WHERE author = (SELECT aid FROM authors WHERE pubkey = ?)"
                        " AND kind = ? AND created_at <= ? AND d = ? AND kind != 5",
                        (mark.deleter, int(kind), mark.created_at, d),
                    )
                continue
            target = _id_bytes(mark.target)
            if target is None:
                continue
            found = w.execute("SELECT seq, raw FROM events WHERE id_key = ? AND id = ?", (_id_key(target), target))
            for seq, raw in found.fetchall():
                if e_deletion_applies(mark.deleter, event_from_raw(raw)):
                    w.execute("UPDATE events SET deleted = 1 WHERE seq = ?", (seq,))

    # Reading -----------------------------------------------------------------------------

    async def get(self, event_id: str) -> Event | None:
        key = _id_bytes(event_id)
        if key is None:
            return None
        rows = await self._fetch(self._reader, "SELECT raw FROM events WHERE id_key = ? AND id = ?", (_id_key(key), key))
        return event_from_raw(rows[0][0]) if rows else None

    async def first_seen(self, event_ids: Iterable[str]) -> dict[str, int]:
        wanted = sorted({key for key in map(_id_bytes, set(event_ids)) if key is not None})
        out: dict[str, int] = {}
        for at in range(0, len(wanted), 500):
            part = wanted[at:at + 500]
            key_marks, keys = _placeholders({_id_key(key) for key in part})
            marks, values = _placeholders(part)
            rows = await self._fetch(
                self._reader,
                f"SELECT id, received_at FROM events WHERE id_key IN ({key_marks}) AND id IN ({marks})"
                " AND received_at IS NOT NULL",
                keys + values,
            )
            out.update((row[0].hex(), row[1]) for row in rows)
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
        authors = await self._author_numbers(filters)
        for f in filters:
            built = _filter_sql(
                f, "e.created_at, e.id, e.raw", now, include_superseded, include_private, ordered=True,
                recipients=recipients, authors=authors,
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
        authors = await self._author_numbers(filters)
        for f in filters:
            unlimited = Filter(f.ids, f.authors, f.kinds, f.tags, f.since, f.until, None)
            built = _filter_sql(
                unlimited, "e.seq", now, False, include_private, ordered=False, recipients=recipients, authors=authors
            )
            if built is not None:
                parts.append(built[0])
                params.extend(built[1])
        if not parts:
            return 0
        rows = await self._fetch(self._reader, f"SELECT count(*) FROM ({' UNION '.join(parts)})", params)
        return rows[0][0]

    async def _author_numbers(self, filters: Sequence[Filter]) -> dict[str, int]:
        """The interned numbers of the authors the filters name (those never seen have none):
        given to the query as values, so the planner walks the author index by (author, kind)."""
        wanted = sorted({pubkey for f in filters if f.authors for pubkey in f.authors})
        numbers: dict[str, int] = {}
        for at in range(0, len(wanted), 500):
            marks, values = _placeholders(wanted[at:at + 500])
            rows = await self._fetch(self._reader, f"SELECT pubkey, aid FROM authors WHERE pubkey IN ({marks})", values)
            numbers.update(rows)
        return numbers

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

        def work() -> AddOutcome:
            w = self._writer
            if action is not None:
                cursor = w.execute(
                    "INSERT OR IGNORE INTO actions (key, action, subject, pubkey, event_id, done_at, detail)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (action.key, action.action, action.subject, action.pubkey, event.id, action.done_at, action.detail),
                )
                if cursor.rowcount == 0:
                    return AddOutcome.ALREADY_DONE
            if isinstance(arrival, AddOutcome):
                outcome = arrival
            else:
                outcome = self._ingest([arrival])[0]
            if outcome not in _IN_EVENTS:
                w.execute(
                    "INSERT OR IGNORE INTO outbox_events (event_id, kind, raw) VALUES (?,?,?)",
                    (event.id, event.kind, event.to_json()),
                )
            w.executemany(
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
        queued_at: list[int] = []  # each queued item's place in outcomes
        for item in items:
            if not verified:
                try:
                    verify_event(item.event)
                except (InvalidEvent, MalformedEvent):
                    outcomes.append(AddOutcome.INVALID)
                    continue
            queued.append(item)
            queued_at.append(len(outcomes))
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

        def work() -> list[AddOutcome]:
            stored = iter(self._ingest(arrivals)) if arrivals else iter(())
            final = [o if o is not None else next(stored) for o in outcomes]
            w = self._writer
            w.executemany(
                "INSERT OR IGNORE INTO outbox_events (event_id, kind, raw) VALUES (?,?,?)",
                [(i.event.id, i.event.kind, i.event.to_json()) for i, at in zip(queued, queued_at, strict=True)
                 if final[at] not in _IN_EVENTS],
            )
            w.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, target_kind, target, state, enqueued_at, next_attempt_at,"
                " updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                rows,
            )
            w.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, target_kind, target, state, attempts, last_message,"
                " enqueued_at, next_attempt_at, updated_at) VALUES (?, ?, ?, 'refused', 1, ?, ?, NULL, ?)",
                refused,
            )
            return final

        if not queued:
            return [o for o in outcomes if o is not None]
        return await self._transaction(work)

    async def outbox_due(self, now: int, limit: int = 100, *, lookups: bool = True) -> list[OutboxItem]:
        rows = await self._fetch(
            self._reader,
            "SELECT coalesce(p.raw, e.raw), o.target_kind, o.target, o.attempts, o.next_attempt_at, o.last_message"
            f" FROM {_OUTBOX_JOIN}"
            " WHERE o.next_attempt_at <= ? AND o.state IN ('pending', 'retrying')"
            + ("" if lookups else " AND o.target_kind != 'lookup'")
            + " ORDER BY o.next_attempt_at, o.seq LIMIT ?",
            (now, limit),
        )
        return [
            OutboxItem(event_from_raw(raw), OutboxTarget(TargetKind(kind), value), attempts, due, last)
            for raw, kind, value, attempts, due, last in rows
        ]

    async def outbox_lookups_due(self, now: int) -> None:
        def work() -> None:
            self._writer.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE target_kind = 'lookup'"
                " AND state IN ('pending', 'retrying') AND next_attempt_at > ?",
                (now, now),
            )

        await self._transaction(work)

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

        def work() -> int:
            cursor = self._writer.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_message = ?, updated_at = ?, state = ?,"
                " next_attempt_at = ? WHERE event_id = ? AND target_kind = ? AND target = ?",
                (message, now, state.value, next_at, event_id, target.kind.value, target.value),
            )
            return cursor.rowcount

        if await self._transaction(work) == 0:
            raise StoreError(f"outbox: event {event_id[:16]} was never queued for {target}")

    async def outbox_remove(self, event_id: str, target: OutboxTarget | str) -> None:
        target = OutboxTarget.of(target)

        def work() -> None:
            self._writer.execute(
                "DELETE FROM outbox WHERE event_id = ? AND target_kind = ? AND target = ?",
                (event_id, target.kind.value, target.value),
            )

        await self._transaction(work)

    async def outbox_entries(self, event_id: str | None = None) -> list[OutboxEntry]:
        where, params = ("WHERE o.event_id = ?", (event_id,)) if event_id is not None else ("", ())
        rows = await self._fetch(
            self._reader,
            "SELECT o.event_id, coalesce(p.kind, e.kind), o.target_kind, o.target, o.state, o.attempts, o.last_message, o.enqueued_at,"
            f" o.next_attempt_at, o.updated_at FROM {_OUTBOX_JOIN}"
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
        def work() -> None:
            self._writer.execute(
                "INSERT INTO cursors (relay, key, created_at) VALUES (?, ?, ?) ON CONFLICT (relay, key)"
                " DO UPDATE SET created_at = max(created_at, excluded.created_at)",
                (relay, key, created_at),
            )

        await self._transaction(work)

    async def record_action(self, record: ActionRecord) -> bool:
        def work() -> int:
            cursor = self._writer.execute(
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

        def work() -> int:
            if contact.pubkey is not None:
                rows = self._writer.execute(
                    "SELECT id FROM contacts WHERE pubkey = ? AND id IS NOT ?", (contact.pubkey, contact.id)
                ).fetchall()
                if rows:
                    raise StoreError(f"contact: pubkey {contact.pubkey[:16]} is already linked to contact {rows[0][0]}")
            if contact.id is not None and sql.startswith("INSERT"):
                if self._writer.execute("SELECT 1 FROM contacts WHERE id = ?", (contact.id,)).fetchall():
                    raise StoreError(f"contact: id {contact.id} is taken")
            cursor = self._writer.execute(sql, params)
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
        def work() -> int:
            cursor = self._writer.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
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
            " coalesce(sum(private), 0), count(d) - (SELECT count(*) FROM current_versions),"
            " coalesce(sum(deleted), 0) FROM events",
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


def _open_writer(path: Path) -> sqlite3.Connection:
    """On the writer thread: connect, set the writer's pragmas and migrate."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # SQLite's own unhex() arrived in 3.41; migration 0005 and the ingest use it.
    writer.create_function("unhex", 1, _unhex, deterministic=True)
    writer.create_function("id_key", 1, _sql_id_key, deterministic=True)
    try:
        for pragma in (*_PRAGMAS, _WRITER_CACHE, _WRITER_CHECKPOINT):
            writer.execute(pragma)
        _migrate(writer, path)
    except BaseException:
        writer.close()
        raise
    return writer


def _unhex(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    (version,), = conn.execute("PRAGMA user_version").fetchall()
    if version > SCHEMA_VERSION:
        raise DatabaseTooNew(
            f"store {path}: schema version {version} is newer than this program's {SCHEMA_VERSION}; upgrade nostr-training"
        )
    for number, script in _MIGRATIONS[version:]:
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
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
    authors: dict[str, int],
) -> tuple[str, list[Any]] | None:
    """One NIP-01 filter as SQL over served events, or None when it cannot match anything;
    ``authors`` holds the interned number of every stored author the filter names.

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
        where.append(f"t.vid IN (SELECT vid FROM tag_values WHERE name = ? AND value IN ({marks}))")
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
        keys = {key for key in map(_id_bytes, f.ids) if key is not None}
        if not keys:
            return None
        key_marks, key_values = _placeholders({_id_key(key) for key in keys})
        marks, values = _placeholders(keys)
        where.append(f"e.id_key IN ({key_marks}) AND e.id IN ({marks})")
        params += key_values + values
    if f.authors is not None:
        numbers = {authors[pubkey] for pubkey in f.authors if pubkey in authors}
        if not numbers:
            return None
        marks, values = _placeholders(numbers)
        where.append(f"e.author IN ({marks})")
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
                "EXISTS (SELECT 1 FROM event_tags x WHERE x.vid IN (SELECT vid FROM tag_values WHERE name = ?"
                f" AND value IN ({marks})) AND x.kind = e.kind AND x.created_at = e.created_at AND x.seq = e.seq)"
            )
        else:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(e.raw, '$.tags') j WHERE json_extract(j.value, '$[0]') = ?"
                f" AND json_array_length(j.value) > 1 AND json_extract(j.value, '$[1]') IN ({marks}))"
            )
        params += [name, *values]
    where.append("e.deleted = 0")
    if not include_superseded:
        where.append(
            "(e.d IS NULL OR e.seq = (SELECT c.seq FROM current_versions c"
            " WHERE c.author = e.author AND c.kind = e.kind AND c.d = e.d AND c.private = e.private))"
        )
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
            f" WHERE v.vid IN (SELECT vid FROM tag_values WHERE name = 'p' AND value IN ({marks}))"
            " AND v.kind = e.kind AND v.created_at = e.created_at AND v.seq = e.seq))"
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
