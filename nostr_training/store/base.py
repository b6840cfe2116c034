"""The store interface: what the daemon, the CLI and the services may ask of the local index.

Two implementations keep the same contract (``tests/store/test_contract.py`` runs on both):
``SqliteStore`` (the real index) and ``MemoryStore`` (a small reference built on the pure filter
matcher). Time is always an argument (``now``): the store never reads a clock.

Serving rules (``query``, ``count`` and the domain helpers):

- a replaceable/addressable event is served only while no stored version of its address beats it
  (NIP-01 tie rule: newer ``created_at``, then lowest id); beaten versions stay for audit;
- a NIP-09 deletion hides its ``e`` targets whose author is the deleter (for kind 1059 the
  ``p`` recipient), and every version of an ``a`` target owned by the deleter with
  ``created_at`` up to the deletion's; it also hides targets that arrive after it; a deletion
  never hides a deletion, and the kind-5 itself is served;
- with ``now`` given, events whose NIP-40 ``expiration`` is ``<= now`` are hidden;
- private events (never published: rumors from gift wraps, drafts) are served only with
  ``include_private=True``; they form their own replaceable namespace, so a private draft never
  hides, nor is hidden by, the published version of the same address.

Results are ordered newest first, then lowest id; each filter's ``limit`` applies to that filter
before the union (NIP-01).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Protocol, Sequence, runtime_checkable

from ..crm import Contact
from ..event import Event
from ..filters import Filter

if TYPE_CHECKING:
    from ..kinds import AttendanceRecord, CertificateAward, Course, Lesson, Rsvp

__all__ = [
    "AddOutcome",
    "OutboxState",
    "TargetKind",
    "OutboxTarget",
    "LOOKUP",
    "ActionRecord",
    "Enqueue",
    "OutboxItem",
    "OutboxEntry",
    "Store",
    "EXPIRATION_TAG",
    "expiration_of",
    "is_delivered_message",
    "contact_sort_key",
]

EXPIRATION_TAG = "expiration"


class AddOutcome(enum.Enum):
    """What ``add`` did with an event; relays map these to OK messages."""

    STORED = "stored"  # new and served
    DUPLICATE = "duplicate"  # this id was already stored
    SUPERSEDED = "superseded"  # an older version of an address: kept for audit, not served
    DELETED = "deleted"  # a deletion by the right author already covers it: kept, not served
    EXPIRED = "expired"  # NIP-40 expiration already passed at ``now``: not stored
    ALREADY_DONE = "already_done"  # ``enqueue`` with an action already in the action log: nothing queued
    EPHEMERAL = "ephemeral"  # kinds 20000-29999: never stored
    INVALID = "invalid"  # id or signature wrong (only from ``add_many``; ``add`` raises)

    @property
    def accepted(self) -> bool:
        """Would a relay answer OK true? (duplicates are OK true with a ``duplicate:`` message)."""
        return self not in (AddOutcome.INVALID, AddOutcome.EXPIRED, AddOutcome.ALREADY_DONE)


class OutboxState(enum.Enum):
    """Delivery state of one event to one relay."""

    PENDING = "pending"  # never tried yet
    RETRYING = "retrying"  # tried, failed in a way worth retrying at ``next_attempt_at``
    DELIVERED = "delivered"  # OK true, or OK false with "duplicate:"
    REFUSED = "refused"  # OK false for good; ``last_message`` keeps the relay's reason


class TargetKind(enum.Enum):
    """What an outbox row delivers to."""

    RELAY = "relay"  # a relay URL
    LOOKUP = "lookup"  # placeholder while the relay lists the targets depend on are looked up
    RECIPIENT = "recipient"  # a recipient who cannot be reached (a gift wrap without inbox relays)


@dataclass(frozen=True, slots=True)
class OutboxTarget:
    """One target of an outbox row: a relay, the look-up placeholder, or an unreachable recipient."""

    kind: TargetKind
    value: str = ""  # the relay URL, "" for the look-up, the recipient's pubkey

    @classmethod
    def relay(cls, url: str) -> "OutboxTarget":
        return cls(TargetKind.RELAY, url)

    @classmethod
    def recipient(cls, pubkey: str) -> "OutboxTarget":
        return cls(TargetKind.RECIPIENT, pubkey)

    @classmethod
    def of(cls, target: "OutboxTarget | str") -> "OutboxTarget":
        """A plain string is a relay URL."""
        return target if isinstance(target, OutboxTarget) else cls(TargetKind.RELAY, target)

    def __str__(self) -> str:
        if self.kind is TargetKind.RELAY:
            return self.value
        if self.kind is TargetKind.LOOKUP:
            return "(relay lists still to be looked up)"
        return f"(recipient {self.value[:16]})"


#: The look-up placeholder target.
LOOKUP = OutboxTarget(TargetKind.LOOKUP)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One entry of the action log: something done once, for a subject and a pubkey, with an event.

    ``key`` is what makes it once-only (e.g. ``reminder|<lesson>|<learner>|24h|<start>``); the
    other fields let a scheduler or a user ask what was done for a lesson or a learner.
    """

    key: str
    action: str
    done_at: int
    subject: str | None = None
    pubkey: str | None = None
    event_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Enqueue:
    """One event for ``enqueue_many``: its targets, and the targets refused from the start
    (an unreachable recipient) with why."""

    event: Event
    targets: Sequence[OutboxTarget | str]
    refused: tuple[tuple[OutboxTarget, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One delivery that is due: send ``event`` to ``target``."""

    event: Event
    target: OutboxTarget
    attempts: int
    next_attempt_at: int
    last_error: str | None

    @property
    def relay(self) -> str:
        """The relay URL ("" for a target that is not a relay)."""
        return self.target.value if self.target.kind is TargetKind.RELAY else ""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One (event, relay) row as ``status`` shows it."""

    event_id: str
    kind: int
    target: OutboxTarget
    state: OutboxState
    attempts: int
    last_message: str | None
    enqueued_at: int
    next_attempt_at: int | None  # None once delivered or refused
    updated_at: int

    @property
    def relay(self) -> str:
        """The relay URL ("" for a target that is not a relay)."""
        return self.target.value if self.target.kind is TargetKind.RELAY else ""


def expiration_of(event: Event) -> int | None:
    """The NIP-40 expiration time; a non-numeric value reads as no expiration."""
    value = event.tag_value(EXPIRATION_TAG)
    if value is None or not value.isdigit():
        return None
    return int(value)


def is_delivered_message(ok: bool, message: str) -> bool:
    """OK true, or a relay saying it already has the event, both mean delivered."""
    return ok or message.startswith("duplicate:")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def contact_sort_key(contact: Contact) -> tuple[str, int]:
    """The order of ``list_contacts``: SQLite's NOCASE folds ASCII letters only, so this does too."""
    return (contact.name.translate(_ASCII_LOWER), contact.id or 0)


@runtime_checkable
class Store(Protocol):
    """The local index of events, plus the daemon's durable memory (outbox, cursors, done)."""

    # Events ----------------------------------------------------------------------------------

    async def add(self, event: Event, *, verified: bool = False, now: int | None = None) -> AddOutcome:
        """Store a published event; verify it first unless ``verified``.

        Raises ``InvalidEvent`` (id or signature wrong) and stores nothing in that case.
        """

    async def add_many(
        self, events: Sequence[Event], *, verified: bool = False, now: int | None = None
    ) -> list[AddOutcome]:
        """Add a batch in one transaction; an invalid event gets ``INVALID``, the rest proceed."""

    async def add_private(self, event: Event, *, container_id: str | None = None, now: int | None = None) -> AddOutcome:
        """Store an event that was never published (rumor with ``sig`` None, draft, record).

        The id must still be the hash of the fields (``InvalidId`` otherwise); no signature is
        checked. ``container_id`` names the gift wrap that carried it, if any.
        """

    def kind_version(self, kind: int) -> int:
        """A number that changes whenever this process commits an event of ``kind`` (or a
        deletion): a cache of what the store holds of that kind is current while it stays the
        same. (Another process writing the same file is not seen: with a daemon running, the
        CLI writes through it.)"""

    async def get(self, event_id: str) -> Event | None:
        """The stored event with this id in any state (superseded, deleted, expired, private)."""

    async def first_seen(self, event_ids: Iterable[str]) -> dict[str, int]:
        """When each stored event was first added (the ``now`` of that ``add``), by id; events
        added without a time, or not stored, are left out. Rules that date an answer by when it
        reached the host (``rules.rsvp.answered_at``) read it."""

    async def query(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_superseded: bool = False,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> list[Event]:
        """NIP-01 REQ semantics over the served events (see the module docstring).

        ``recipients`` names who the viewer has proved to be: gift wraps (1059, 21059) are then
        served only when they ``p``-tag one of them; None serves them all.
        """

    async def count(
        self,
        filters: Sequence[Filter],
        *,
        now: int | None = None,
        include_private: bool = False,
        recipients: frozenset[str] | None = None,
    ) -> int:
        """How many distinct served events match the union of the filters; limits are ignored.
        ``recipients`` applies exactly as in ``query``."""

    # Domain helpers (served events only) ---------------------------------------------------

    async def lessons_of_course(self, course_coordinate: str, *, now: int | None = None) -> list[Event]:
        """Lessons (31923) whose ``a`` tag names the course."""

    async def rsvps_of_lesson(self, lesson_coordinate: str, *, now: int | None = None) -> list[Event]:
        """RSVPs (31925) whose ``a`` tag names the lesson, the latest one per author."""

    async def attendance_of_lesson(self, lesson_coordinate: str, *, now: int | None = None) -> list[Event]:
        """Attendance records (31930) whose ``a`` tag names the lesson."""

    async def certificates_of(self, pubkey: str, *, now: int | None = None) -> list[Event]:
        """Certificate awards (kind 8) whose ``p`` tag names the learner, revoked ones hidden."""

    # Typed look-ups: the same events parsed by ``kinds``; events the strict parsers refuse
    # are left out (they stay in the index and in ``query``).

    async def course(self, coordinate: str, *, now: int | None = None) -> "Course | None":
        """The current version of the course (31924) at ``coordinate``."""

    async def lesson(self, coordinate: str, *, now: int | None = None) -> "Lesson | None":
        """The current version of the lesson (31923) at ``coordinate``."""

    async def lessons(self, course_coordinate: str, *, now: int | None = None) -> "list[Lesson]":
        """The lessons of a course, soonest first."""

    async def rsvps(self, lesson_coordinate: str, *, now: int | None = None) -> "list[Rsvp]":
        """The current answer of each learner to a lesson."""

    async def attendance(self, lesson_coordinate: str, *, now: int | None = None) -> "list[AttendanceRecord]":
        """The attendance records of a lesson."""

    async def awards(self, pubkey: str, *, now: int | None = None) -> "list[CertificateAward]":
        """The certificate awards naming ``pubkey``."""

    # Durable outbox ------------------------------------------------------------------------

    async def enqueue(
        self,
        event: Event,
        targets: Sequence[OutboxTarget | str],
        *,
        now: int,
        action: ActionRecord | None = None,
    ) -> AddOutcome:
        """Commit the event (verified) and one pending delivery per target, before any send.

        Idempotent: an (event, target) pair already queued keeps its state. Ephemeral events are
        queued too (the outbox holds its own copy) although the index does not store them. With
        ``action``, the action is written to the action log in the same transaction (its
        ``event_id`` set to this event); when its key is already there nothing is queued and
        ``ALREADY_DONE`` is returned, so an action and the event it causes happen once.
        """

    async def enqueue_many(self, items: Sequence[Enqueue], *, now: int, verified: bool = False) -> list[AddOutcome]:
        """``enqueue`` of many events in ONE transaction (the local endpoint's group commit).

        An event that fails verification gets ``INVALID`` and nothing of it is queued; the others
        commit together or, if the transaction fails, not at all (``StoreError``). Refused targets
        are written refused, with their message.
        """

    async def outbox_due(self, now: int, limit: int = 100, *, lookups: bool = True) -> list[OutboxItem]:
        """Pending or retrying deliveries with ``next_attempt_at <= now``, oldest due first;
        without ``lookups``, no relay-list look-up placeholders (no relay could answer them)."""

    async def outbox_lookups_due(self, now: int) -> None:
        """Make every waiting relay-list look-up placeholder due at ``now`` (a relay list came
        in: they are planned again)."""

    async def outbox_record(
        self, event_id: str, target: OutboxTarget | str, *, ok: bool, message: str, now: int, retry_at: int | None
    ) -> None:
        """Record one attempt: delivered (ok, or "duplicate:"), refused for good (``retry_at`` None,
        reason kept) or retry at ``retry_at``. Raises ``StoreError`` for an unknown pair."""

    async def outbox_remove(self, event_id: str, target: OutboxTarget | str) -> None:
        """Delete one delivery row: a placeholder the outbox replaced by the real targets, so it
        never shows as a delivery. An unknown pair is ignored (removing twice is harmless)."""

    async def outbox_entries(self, event_id: str | None = None) -> list[OutboxEntry]:
        """Every delivery row (or those of one event), oldest enqueued first."""

    async def outbox_depth(self) -> int:
        """Deliveries still to do (pending or retrying)."""

    # Subscription cursors ------------------------------------------------------------------

    async def get_cursor(self, relay: str, key: str) -> int | None:
        """The newest ``created_at`` seen for this (relay, subscription key), or None."""

    async def set_cursor(self, relay: str, key: str, created_at: int) -> None:
        """Move the cursor forward; an older value is ignored (cursors never move back)."""

    # The action log ------------------------------------------------------------------------

    async def record_action(self, record: ActionRecord) -> bool:
        """Write an action to the log; True only for the first writer of its key (atomic)."""

    async def get_action(self, key: str) -> ActionRecord | None:
        """The logged action with this key, or None."""

    async def actions(
        self, *, action: str | None = None, subject: str | None = None, pubkey: str | None = None
    ) -> list[ActionRecord]:
        """Logged actions matching every given field, oldest first (then by key)."""

    async def mark_done(self, key: str, *, now: int) -> bool:
        """``record_action`` of a bare key (action ``once``); True only for the first caller."""

    async def is_done(self, key: str) -> bool:
        """Is this key in the action log?"""

    # Contacts (CRM) ------------------------------------------------------------------------

    async def add_contact(self, contact: Contact, *, now: int) -> Contact:
        """Store a new contact and return it with its id (the given one, if any, must be free).

        Raises ``ContactError`` for a field we cannot accept and ``StoreError`` when the id is
        taken or the pubkey is already linked to another contact.
        """

    async def update_contact(self, contact: Contact, *, now: int) -> Contact:
        """Replace the contact with ``contact.id``; ``NotFound`` when there is none."""

    async def get_contact(self, contact_id: int) -> Contact | None:
        """The contact with this id, or None."""

    async def list_contacts(self, *, tag: str | None = None) -> list[Contact]:
        """Every contact (or those carrying ``tag``), by name (ASCII case folded), then id."""

    async def delete_contact(self, contact_id: int) -> bool:
        """Delete a contact; False when there was none."""

    async def find_contact_by_pubkey(self, pubkey: str) -> Contact | None:
        """The contact linked to this Nostr identity, or None."""

    # Housekeeping --------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """Counts for ``status``: events, served, by kind class, private, superseded, deleted,
        outbox depth, database bytes (0 in memory)."""

    async def close(self) -> None:
        """Release the database; the store is unusable afterwards."""
