"""An in-memory store: the reference the SQLite store is checked against, and a test double.

It decides what is served at query time straight from the definitions (tie rule over every
stored version, deletions over every stored event) with the pure filter matcher, so it shares
no bookkeeping with the SQLite store.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from ..crm import Contact, check_contact
from ..errors import InvalidEvent, MalformedEvent, NotFound, StoreError
from ..event import Event, KindClass, kind_class, supersedes, verify_event
from ..filters import Filter, order_key
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
    contact_sort_key,
    expiration_of,
    is_delivered_message,
)
from .serving import (
    CourseQueries,
    DeletionMark,
    a_deletion_applies,
    arrival_refusal,
    check_private_id,
    deletion_marks,
    e_deletion_applies,
    gift_wrap_visible,
)

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Stored:
    event: Event
    private: bool
    container_id: str | None
    received_at: int | None
    expiration: int | None


@dataclass(slots=True)
class _Delivery:
    event: Event
    target: OutboxTarget
    state: OutboxState
    attempts: int
    last_message: str | None
    enqueued_at: int
    next_attempt_at: int | None
    updated_at: int
    order: int


class MemoryStore(CourseQueries):
    """Everything in dicts; lost when the process ends."""

    def __init__(self) -> None:
        self._events: dict[str, _Stored] = {}
        self._versions: dict[tuple[str, bool], list[str]] = {}
        self._deletions: dict[str, list[DeletionMark]] = {}
        self._outbox: dict[tuple[str, OutboxTarget], _Delivery] = {}
        self._order = itertools.count()
        self._cursors: dict[tuple[str, str], int] = {}
        self._actions: dict[str, ActionRecord] = {}
        self._contacts: dict[int, Contact] = {}
        self._kind_versions: dict[int, int] = {}
        self._closed = False

    @classmethod
    async def open(cls) -> "MemoryStore":
        return cls()

    # Serving rules from the definitions --------------------------------------------------

    def _superseded(self, stored: _Stored) -> bool:
        address = stored.event.address
        if address is None:
            return False
        return any(
            supersedes(self._events[other].event, stored.event)
            for other in self._versions[(address, stored.private)]
            if other != stored.event.id
        )

    def _deleted(self, event: Event) -> bool:
        if any(e_deletion_applies(m.deleter, event) for m in self._deletions.get(event.id, ())):
            return True
        address = event.address
        return address is not None and any(a_deletion_applies(m, event) for m in self._deletions.get(address, ()))

    def _served(self, stored: _Stored, now: int | None, include_superseded: bool, include_private: bool) -> bool:
        if stored.private and not include_private:
            return False
        if now is not None and stored.expiration is not None and stored.expiration <= now:
            return False
        if self._deleted(stored.event):
            return False
        return include_superseded or not self._superseded(stored)

    # Events ------------------------------------------------------------------------------

    def _store(self, event: Event, *, private: bool, container_id: str | None, now: int | None) -> AddOutcome:
        refusal = arrival_refusal(event, now)
        if refusal is not None:
            return refusal
        if event.id in self._events:
            return AddOutcome.DUPLICATE
        stored = _Stored(event, private, container_id, now, expiration_of(event))
        self._events[event.id] = stored
        self._kind_versions[event.kind] = self._kind_versions.get(event.kind, 0) + 1
        if event.address is not None:
            self._versions.setdefault((event.address, private), []).append(event.id)
        if event.kind == DELETION and not private:
            for mark in deletion_marks(event):
                self._deletions.setdefault(mark.target, []).append(mark)
        if self._deleted(event):
            return AddOutcome.DELETED
        if self._superseded(stored):
            return AddOutcome.SUPERSEDED
        return AddOutcome.STORED

    def kind_version(self, kind: int) -> int:
        return self._kind_versions.get(kind, 0) + self._kind_versions.get(DELETION, 0)

    async def add(self, event: Event, *, verified: bool = False, now: int | None = None) -> AddOutcome:
        self._check_open()
        if not verified:
            verify_event(event)
        return self._store(event, private=False, container_id=None, now=now)

    async def add_many(
        self, events: Sequence[Event], *, verified: bool = False, now: int | None = None
    ) -> list[AddOutcome]:
        self._check_open()
        outcomes = []
        for event in events:
            if not verified:
                try:
                    verify_event(event)
                except (InvalidEvent, MalformedEvent):
                    outcomes.append(AddOutcome.INVALID)
                    continue
            outcomes.append(self._store(event, private=False, container_id=None, now=now))
        return outcomes

    async def add_private(self, event: Event, *, container_id: str | None = None, now: int | None = None) -> AddOutcome:
        self._check_open()
        check_private_id(event)
        if event.sig is not None:
            verify_event(event)
        return self._store(event, private=True, container_id=container_id, now=now)

    async def get(self, event_id: str) -> Event | None:
        self._check_open()
        stored = self._events.get(event_id)
        return stored.event if stored else None

    async def first_seen(self, event_ids: Iterable[str]) -> dict[str, int]:
        self._check_open()
        found = (self._events.get(i) for i in set(event_ids))
        return {s.event.id: s.received_at for s in found if s is not None and s.received_at is not None}

    def _matching(
        self, filters: Sequence[Filter], now, include_superseded, include_private, recipients=None
    ) -> dict[str, Event]:
        candidates = [
            s.event for s in self._events.values()
            if self._served(s, now, include_superseded, include_private) and gift_wrap_visible(s.event, recipients)
        ]
        union: dict[str, Event] = {}
        for f in filters:
            matched = sorted((e for e in candidates if f.matches(e)), key=order_key)
            if f.limit is not None:
                matched = matched[: f.limit]
            for event in matched:
                union[event.id] = event
        return union

    async def query(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_superseded: bool = False,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> list[Event]:
        self._check_open()
        found = self._matching(filters, now, include_superseded, include_private, recipients)
        return sorted(found.values(), key=order_key)

    async def count(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> int:
        self._check_open()
        unlimited = [Filter(f.ids, f.authors, f.kinds, f.tags, f.since, f.until, None) for f in filters]
        return len(self._matching(unlimited, now, False, include_private, recipients))

    # Outbox ------------------------------------------------------------------------------

    async def enqueue(
        self,
        event: Event,
        targets: Sequence[OutboxTarget | str],
        *,
        now: int,
        action: ActionRecord | None = None,
    ) -> AddOutcome:
        self._check_open()
        verify_event(event)
        if action is not None:
            if action.key in self._actions:
                return AddOutcome.ALREADY_DONE
            self._actions[action.key] = replace(action, event_id=event.id)
        outcome = self._store(event, private=False, container_id=None, now=now)
        for target in map(OutboxTarget.of, targets):
            if (event.id, target) not in self._outbox:
                self._outbox[(event.id, target)] = _Delivery(
                    event, target, OutboxState.PENDING, 0, None, now, now, now, next(self._order)
                )
        return outcome

    async def enqueue_many(self, items: Sequence[Enqueue], *, now: int, verified: bool = False) -> list[AddOutcome]:
        self._check_open()
        outcomes = []
        for item in items:
            if not verified:
                try:
                    verify_event(item.event)
                except (InvalidEvent, MalformedEvent):
                    outcomes.append(AddOutcome.INVALID)
                    continue
            outcomes.append(self._store(item.event, private=False, container_id=None, now=now))
            for target in map(OutboxTarget.of, item.targets):
                if (item.event.id, target) not in self._outbox:
                    self._outbox[(item.event.id, target)] = _Delivery(
                        item.event, target, OutboxState.PENDING, 0, None, now, now, now, next(self._order)
                    )
            for target, message in item.refused:
                if (item.event.id, target) not in self._outbox:
                    self._outbox[(item.event.id, target)] = _Delivery(
                        item.event, target, OutboxState.REFUSED, 1, message, now, None, now, next(self._order)
                    )
        return outcomes

    async def outbox_due(self, now: int, limit: int = 100, *, lookups: bool = True) -> list[OutboxItem]:
        self._check_open()
        due = sorted(
            (
                d
                for d in self._outbox.values()
                if d.state in (OutboxState.PENDING, OutboxState.RETRYING)
                and d.next_attempt_at is not None
                and d.next_attempt_at <= now
                and (lookups or d.target.kind is not TargetKind.LOOKUP)
            ),
            key=lambda d: (d.next_attempt_at, d.order),
        )
        return [OutboxItem(d.event, d.target, d.attempts, d.next_attempt_at, d.last_message) for d in due[:limit]]

    async def outbox_lookups_due(self, now: int) -> None:
        self._check_open()
        for delivery in self._outbox.values():
            if (
                delivery.target.kind is TargetKind.LOOKUP and delivery.state in (OutboxState.PENDING, OutboxState.RETRYING)
                and delivery.next_attempt_at is not None and delivery.next_attempt_at > now
            ):
                delivery.next_attempt_at = now

    async def outbox_record(
        self, event_id: str, target: OutboxTarget | str, *, ok: bool, message: str, now: int, retry_at: int | None
    ) -> None:
        self._check_open()
        target = OutboxTarget.of(target)
        delivery = self._outbox.get((event_id, target))
        if delivery is None:
            raise StoreError(f"outbox: event {event_id[:16]} was never queued for {target}")
        delivery.attempts += 1
        delivery.last_message = message
        delivery.updated_at = now
        if is_delivered_message(ok, message):
            delivery.state, delivery.next_attempt_at = OutboxState.DELIVERED, None
        elif retry_at is None:
            delivery.state, delivery.next_attempt_at = OutboxState.REFUSED, None
        else:
            delivery.state, delivery.next_attempt_at = OutboxState.RETRYING, retry_at

    async def outbox_remove(self, event_id: str, target: OutboxTarget | str) -> None:
        self._check_open()
        self._outbox.pop((event_id, OutboxTarget.of(target)), None)

    async def outbox_entries(self, event_id: str | None = None) -> list[OutboxEntry]:
        self._check_open()
        rows = sorted(
            (d for d in self._outbox.values() if event_id is None or d.event.id == event_id),
            key=lambda d: (d.enqueued_at, d.order),
        )
        return [
            OutboxEntry(
                d.event.id, d.event.kind, d.target, d.state, d.attempts, d.last_message,
                d.enqueued_at, d.next_attempt_at, d.updated_at,
            )
            for d in rows
        ]

    async def outbox_depth(self) -> int:
        self._check_open()
        return sum(
            d.state in (OutboxState.PENDING, OutboxState.RETRYING) and d.target.kind is not TargetKind.RECIPIENT
            for d in self._outbox.values()
        )

    # Cursors and once-only actions -------------------------------------------------------

    async def get_cursor(self, relay: str, key: str) -> int | None:
        self._check_open()
        return self._cursors.get((relay, key))

    async def set_cursor(self, relay: str, key: str, created_at: int) -> None:
        self._check_open()
        current = self._cursors.get((relay, key))
        if current is None or created_at > current:
            self._cursors[(relay, key)] = created_at

    async def record_action(self, record: ActionRecord) -> bool:
        self._check_open()
        if record.key in self._actions:
            return False
        self._actions[record.key] = record
        return True

    async def get_action(self, key: str) -> ActionRecord | None:
        self._check_open()
        return self._actions.get(key)

    async def actions(
        self, *, action: str | None = None, subject: str | None = None, pubkey: str | None = None
    ) -> list[ActionRecord]:
        self._check_open()
        found = [
            r for r in self._actions.values()
            if (action is None or r.action == action) and (subject is None or r.subject == subject)
            and (pubkey is None or r.pubkey == pubkey)
        ]
        return sorted(found, key=lambda r: (r.done_at, r.key))

    async def mark_done(self, key: str, *, now: int) -> bool:
        return await self.record_action(ActionRecord(key, "once", now))

    async def is_done(self, key: str) -> bool:
        self._check_open()
        return key in self._actions

    # Contacts (CRM) ----------------------------------------------------------------------

    def _contact_conflict(self, contact: Contact) -> None:
        if contact.pubkey is None:
            return
        for other in self._contacts.values():
            if other.pubkey == contact.pubkey and other.id != contact.id:
                raise StoreError(f"contact: pubkey {contact.pubkey[:16]} is already linked to contact {other.id}")

    async def add_contact(self, contact: Contact, *, now: int) -> Contact:
        self._check_open()
        contact = check_contact(contact)
        if contact.id is not None and contact.id in self._contacts:
            raise StoreError(f"contact: id {contact.id} is taken")
        contact_id = contact.id if contact.id is not None else max(self._contacts, default=0) + 1
        stored = replace(contact, id=contact_id)
        self._contact_conflict(stored)
        self._contacts[contact_id] = stored
        return stored

    async def update_contact(self, contact: Contact, *, now: int) -> Contact:
        self._check_open()
        contact = check_contact(contact)
        if contact.id is None or contact.id not in self._contacts:
            raise NotFound(f"contact {contact.id}: no such contact")
        self._contact_conflict(contact)
        self._contacts[contact.id] = contact
        return contact

    async def get_contact(self, contact_id: int) -> Contact | None:
        self._check_open()
        return self._contacts.get(contact_id)

    async def list_contacts(self, *, tag: str | None = None) -> list[Contact]:
        self._check_open()
        found = (c for c in self._contacts.values() if tag is None or tag in c.tags)
        return sorted(found, key=contact_sort_key)

    async def delete_contact(self, contact_id: int) -> bool:
        self._check_open()
        return self._contacts.pop(contact_id, None) is not None

    async def find_contact_by_pubkey(self, pubkey: str) -> Contact | None:
        self._check_open()
        return next((c for c in self._contacts.values() if c.pubkey == pubkey), None)

    # Housekeeping ------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        self._check_open()
        by_class = {c.value: 0 for c in KindClass if c is not KindClass.EPHEMERAL}
        for stored in self._events.values():
            by_class[kind_class(stored.event.kind).value] += 1
        return {
            "events": len(self._events),
            "by_class": by_class,
            "private": sum(s.private for s in self._events.values()),
            "superseded": sum(self._superseded(s) for s in self._events.values()),
            "deleted": sum(self._deleted(s.event) for s in self._events.values()),
            "outbox_depth": await self.outbox_depth(),
            "db_bytes": 0,
        }

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
