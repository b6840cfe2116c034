"""Contacts and their training: CSV in and out, and the seed's CRM questions as pure functions.

A contact is a person in the instructor's address book (name, email, notes, tags) and may be
linked to a Nostr identity by pubkey. The link is the only thing the training questions use:
the origin's queries only ever saw the current user's certificates, and never resolved a
contact to a pubkey. Here every answer comes from a ``TrainingBook`` (everyone's certificates,
completions, attendance and enrolments, indexed by pubkey) and the time ``now``; a contact
with no pubkey simply has no training.

CSV: a header row names the columns, in any order and any case: ``name`` (required), ``email``,
``notes``, ``tags`` (separated by ``;``), ``npub`` or ``pubkey`` (an npub, an nprofile or 64 hex
characters) and ``id``. Fields follow RFC 4180 quoting, so commas, quotes and line breaks
inside a field survive. Every error names the line (of the file, counting the header as 1) and
the column. Export writes ``id,name,email,npub,tags,notes``, which imports back unchanged;
``plan_contact_import`` matches imported rows to stored contacts by id, else by pubkey.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

from .errors import ContactError, EncodingError
from .kinds import COURSE
from .kinds.attendance import AttendanceRecord, CompletionRecord
from .kinds.certificates import CertificateAward, CertificateDefinition, CertificateRevocation, RevocationMarker
from .nips.nip19 import npub_encode, pubkey_from_text
from .rules.certification import (
    DAY,
    Certificate,
    CertificateStatus,
    RequirementsReport,
    certificate_status,
    certificates_from_records,
    check_requirements,
    current_certificate,
)

__all__ = [
    "Contact",
    "check_contact",
    "CSV_COLUMNS",
    "TAG_SEPARATOR",
    "parse_contacts_csv",
    "format_contacts_csv",
    "ImportPlan",
    "plan_contact_import",
    "Enrolment",
    "TrainingBook",
    "CertificationState",
    "ContactTrainingStatus",
    "ExpiringCertification",
    "contact_training_status",
    "filter_contacts_by_certification",
    "check_training_requirements",
    "contacts_with_expiring_certifications",
]

CSV_COLUMNS = ("id", "name", "email", "npub", "tags", "notes")
TAG_SEPARATOR = ";"
_KNOWN = frozenset({"id", "name", "email", "npub", "pubkey", "tags", "notes"})
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Contact:
    """A person in the address book; ``pubkey`` (hex) links them to their Nostr identity."""

    name: str
    email: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    pubkey: str | None = None
    id: int | None = None

    @property
    def npub(self) -> str | None:
        return npub_encode(self.pubkey) if self.pubkey else None


def check_contact(contact: Contact) -> Contact:
    """The contact with spaces trimmed and tags deduplicated, or ``ContactError`` naming the field."""
    for column, value in (("name", contact.name), ("email", contact.email), ("notes", contact.notes)):
        if not isinstance(value, str) or "\x00" in value:
            raise ContactError("must be text without NUL characters", column=column)
    if any(not isinstance(tag, str) or "\x00" in tag for tag in contact.tags):
        raise ContactError("must be text without NUL characters", column="tags")
    name = contact.name.strip()
    if not name:
        raise ContactError("must not be empty", column="name")
    email = contact.email.strip()
    if email and ("@" not in email or any(ch.isspace() for ch in email)):
        raise ContactError(f"{email!r} is not an email address", column="email")
    tags: list[str] = []
    for tag in contact.tags:
        tag = tag.strip()
        if TAG_SEPARATOR in tag:
            raise ContactError(f"a tag cannot contain {TAG_SEPARATOR!r}: {tag!r}", column="tags")
        if tag and tag not in tags:
            tags.append(tag)
    pubkey = contact.pubkey
    if pubkey is not None and not (len(pubkey) == 64 and _HEX.issuperset(pubkey)):
        raise ContactError(f"must be 64 lowercase hex characters, got {pubkey!r}", column="pubkey")
    if contact.id is not None and (type(contact.id) is not int or contact.id < 1):
        raise ContactError(f"must be a positive integer, got {contact.id!r}", column="id")
    return replace(contact, name=name, email=email, tags=tuple(tags))


# CSV ------------------------------------------------------------------------------------------


def _header(row: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, raw in enumerate(row):
        name = raw.strip().lstrip("\ufeff").lower()
        if name not in _KNOWN:
            raise ContactError(f"unknown column {raw!r} (known: {', '.join(sorted(_KNOWN))})", line=1)
        if name in columns:
            raise ContactError(f"column {name!r} appears twice", line=1)
        columns[name] = index
    if "name" not in columns:
        raise ContactError("the header has no 'name' column", line=1)
    if "npub" in columns and "pubkey" in columns:
        raise ContactError("give either an 'npub' or a 'pubkey' column, not both", line=1)
    return columns


def _row_contact(row: list[str], columns: dict[str, int], line: int) -> Contact:
    if len(row) != len(columns):
        raise ContactError(f"{len(row)} fields, but the header has {len(columns)}", line=line)

    def get(name: str) -> str:
        return row[columns[name]] if name in columns else ""

    key_column = "npub" if "npub" in columns else "pubkey"
    key_text = get(key_column).strip()
    pubkey = None
    if key_text:
        try:
            pubkey = pubkey_from_text(key_text)
        except EncodingError as exc:
            raise ContactError(f"{key_text[:70]!r} is not an npub or hex pubkey ({exc})", line=line, column=key_column) from None
    id_text = get("id").strip()
    if id_text and not (id_text.isascii() and id_text.isdigit() and int(id_text) > 0):
        raise ContactError(f"must be a positive integer, got {id_text!r}", line=line, column="id")
    contact = Contact(
        name=get("name"),
        email=get("email"),
        notes=get("notes"),
        tags=tuple(get("tags").split(TAG_SEPARATOR)),
        pubkey=pubkey,
        id=int(id_text) if id_text else None,
    )
    try:
        return check_contact(contact)
    except ContactError as exc:
        raise ContactError(str(exc), line=line, column=None) from None


def parse_contacts_csv(text: str) -> list[Contact]:
    """Read contacts from CSV text; blank lines are skipped, a pubkey may appear only once."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    contacts: list[Contact] = []
    seen: dict[str, int] = {}
    columns: dict[str, int] | None = None
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ContactError(f"not valid CSV ({exc})", line=line) from None
        if not any(cell.strip() for cell in row):
            continue
        if columns is None:
            columns = _header(row)
            continue
        contact = _row_contact(row, columns, line)
        if contact.pubkey is not None:
            if contact.pubkey in seen:
                raise ContactError(
                    f"this pubkey is already on line {seen[contact.pubkey]}", line=line, column="npub"
                )
            seen[contact.pubkey] = line
        contacts.append(contact)
    if columns is None:
        raise ContactError("the file is empty; it needs a header row with at least 'name'", line=1)
    return contacts


def format_contacts_csv(contacts: Iterable[Contact]) -> str:
    """CSV text with the ``CSV_COLUMNS`` header, CRLF line ends and RFC 4180 quoting."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for contact in contacts:
        checked = check_contact(contact)
        writer.writerow(
            (
                "" if checked.id is None else str(checked.id),
                checked.name,
                checked.email,
                checked.npub or "",
                TAG_SEPARATOR.join(checked.tags),
                checked.notes,
            )
        )
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing rows does to the stored contacts: new ones, changed ones, the rest."""

    add: tuple[Contact, ...]
    update: tuple[Contact, ...]
    unchanged: tuple[Contact, ...]


def plan_contact_import(existing: Iterable[Contact], rows: Sequence[Contact]) -> ImportPlan:
    """Match each row to a stored contact by its id, else by its pubkey, else (a row with
    neither) by its email when one contact has it; the others are new.

    Exporting, editing and importing again therefore updates in place, and a list from
    elsewhere that knows only npubs updates the contacts already linked to them. A row whose id
    and pubkey name two different contacts, or two rows naming one contact, are refused.
    """
    by_id = {c.id: c for c in existing if c.id is not None}
    by_pubkey = {c.pubkey: c for c in by_id.values() if c.pubkey is not None}
    emails: dict[str, list[Contact]] = {}
    for c in by_id.values():
        if c.email:
            emails.setdefault(c.email.strip().lower(), []).append(c)
    add: list[Contact] = []
    update: list[Contact] = []
    unchanged: list[Contact] = []
    claimed: dict[int, Contact] = {}
    for row in rows:
        row = check_contact(row)
        owner = by_pubkey.get(row.pubkey) if row.pubkey else None
        target = by_id.get(row.id) if row.id is not None else owner
        if target is None and row.id is None and row.pubkey is None and row.email:
            same = emails.get(row.email.strip().lower(), [])
            target = same[0] if len(same) == 1 else None  # one contact with that email: the same person
        if owner is not None and target is not None and owner.id != target.id:
            raise ContactError(
                f"row {row.name!r}: id {row.id} is {target.name!r}, but its pubkey belongs to {owner.name!r} "
                f"(id {owner.id})"
            )
        if target is None:
            if owner is not None:
                raise ContactError(f"row {row.name!r}: its pubkey belongs to {owner.name!r} (id {owner.id})")
            add.append(row)
            continue
        if target.id in claimed:
            raise ContactError(f"rows {claimed[target.id].name!r} and {row.name!r} both update contact {target.id}")
        merged = replace(row, id=target.id)
        claimed[target.id] = row
        (unchanged if merged == target else update).append(merged)
    return ImportPlan(tuple(add), tuple(update), tuple(unchanged))


# Training answers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolment:
    """``pubkey`` enrolled in ``course`` (a coordinate) at ``at``: a roster entry or a yes."""

    pubkey: str
    course: str
    at: int


@dataclass(slots=True)
class _Person:
    certificates: list[Certificate] = field(default_factory=list)
    courses_completed: dict[str, int] = field(default_factory=dict)
    attendance: dict[str, AttendanceRecord] = field(default_factory=dict)
    enrolments: dict[str, int] = field(default_factory=dict)


def _owner(coordinate: str) -> str | None:
    """The pubkey of a ``kind:pubkey:d`` coordinate, or None for something else."""
    parts = coordinate.split(":", 2)
    return parts[1] if len(parts) == 3 else None


class TrainingBook:
    """Everyone's training evidence, indexed by pubkey, so each question reads one person.

    Only records signed by whoever vouches for them count: a course's completion by its author
    or its issuer (``issuers``: course -> issuer key), a lesson's attendance by the lesson's host
    (the coordinate's author); records a learner, or any other key, signed are left out. For
    attendance, the newest record per lesson counts (it replaces older ones).
    """

    def __init__(
        self,
        certificates: Iterable[Certificate] = (),
        completions: Iterable[CompletionRecord] = (),
        attendance: Iterable[AttendanceRecord] = (),
        enrolments: Iterable[Enrolment] = (),
        issuers: Mapping[str, str] | None = None,
    ):
        self._people: dict[str, _Person] = {}
        named = dict(issuers or {})
        for cert in certificates:
            self._person(cert.holder).certificates.append(cert)
        for record in completions:
            if record.author == record.learner or not record.subject.startswith(f"{COURSE}:"):
                continue
            if record.author not in (_owner(record.subject), named.get(record.subject)):
                continue  # only the course's author or issuer vouches for its completion
            done = self._person(record.learner).courses_completed
            done[record.subject] = min(record.completed_at, done.get(record.subject, record.completed_at))
        for rec in attendance:
            if rec.author == rec.learner or rec.author != _owner(rec.lesson):
                continue  # only the lesson's host vouches for time spent in it
            kept = self._person(rec.learner).attendance
            old = kept.get(rec.lesson)
            if old is None or (rec.created_at, old.event_id or "") > (old.created_at, rec.event_id or ""):
                kept[rec.lesson] = rec
        for enrolment in enrolments:
            joined = self._person(enrolment.pubkey).enrolments
            joined[enrolment.course] = min(enrolment.at, joined.get(enrolment.course, enrolment.at))

    @classmethod
    def from_records(
        cls,
        definitions: Iterable[CertificateDefinition],
        awards: Iterable[CertificateAward],
        revocations: Iterable[CertificateRevocation | RevocationMarker] = (),
        completions: Iterable[CompletionRecord] = (),
        attendance: Iterable[AttendanceRecord] = (),
        enrolments: Iterable[Enrolment] = (),
    ) -> TrainingBook:
        """From parsed events: the certificates come from ``certificates_from_records``."""
        certs = certificates_from_records(definitions, awards, revocations)
        return cls(certs, completions, attendance, enrolments)

    def _person(self, pubkey: str) -> _Person:
        person = self._people.get(pubkey)
        if person is None:
            person = self._people[pubkey] = _Person()
        return person

    def certificates_of(self, pubkey: str | None) -> tuple[Certificate, ...]:
        person = self._people.get(pubkey) if pubkey else None
        return tuple(person.certificates) if person else ()

    def current(self, pubkey: str, course: str, now: int) -> Certificate | None:
        """The certificate that counts for (pubkey, course) at ``now`` (see ``rules.certification``)."""
        person = self._people.get(pubkey)
        if person is None:
            return None
        return current_certificate((c for c in person.certificates if c.course == course), now)

    def evidence_of(self, pubkey: str | None) -> _Person:
        return self._people.get(pubkey, _Person()) if pubkey else _Person()


@dataclass(frozen=True, slots=True)
class CertificationState:
    course: str
    status: CertificateStatus
    issued_at: int
    expires_at: int | None
    code: str


@dataclass(frozen=True, slots=True)
class ContactTrainingStatus:
    """The seed's ContactTrainingInfo for one contact, read through the contact's pubkey."""

    contact: Contact
    linked: bool
    enrolled: int
    completed: int
    certifications_earned: int
    certifications_expiring: int
    total_hours: float
    last_activity: int | None
    certifications: tuple[CertificationState, ...] = ()


def contact_training_status(
    contact: Contact, book: TrainingBook, now: int, *, expiring_days: int = 30
) -> ContactTrainingStatus:
    """Courses enrolled and completed, certificates earned and expiring, hours, last activity.

    Earned counts courses whose current certificate is valid, expiring or expired (not revoked);
    expiring, those that expire within ``expiring_days``. Completed counts courses with a
    completion record or an earned certificate; enrolled, those plus every enrolment.
    """
    person = book.evidence_of(contact.pubkey)
    courses = sorted({c.course for c in person.certificates})
    states = []
    for course in courses:
        current = book.current(contact.pubkey or "", course, now)
        if current is None:
            continue
        states.append(
            CertificationState(
                course, certificate_status(current, now, expiring_days), current.issued_at, current.expires_at, current.code
            )
        )
    earned = {s.course for s in states if s.status in _EARNED}
    completed = set(person.courses_completed) | earned
    enrolled = completed | set(person.enrolments)
    moments = [
        *person.enrolments.values(),
        *person.courses_completed.values(),
        *(c.issued_at for c in person.certificates if c.issued_at <= now),
        *(r.intervals[-1][1] if r.intervals else r.created_at for r in person.attendance.values()),
    ]
    seconds = sum(r.total_seconds for r in person.attendance.values())
    return ContactTrainingStatus(
        contact=contact,
        linked=contact.pubkey is not None,
        enrolled=len(enrolled),
        completed=len(completed),
        certifications_earned=len(earned),
        certifications_expiring=sum(1 for s in states if s.status is CertificateStatus.EXPIRING),
        total_hours=round(seconds / 3600, 2),
        last_activity=max((m for m in moments if m <= now), default=None),
        certifications=tuple(states),
    )


_EARNED = frozenset({CertificateStatus.VALID, CertificateStatus.EXPIRING, CertificateStatus.EXPIRED})
_HELD = frozenset({CertificateStatus.VALID, CertificateStatus.EXPIRING})


def filter_contacts_by_certification(
    contacts: Iterable[Contact], book: TrainingBook, course: str, now: int, *, include_expired: bool = False
) -> tuple[Contact, ...]:
    """Contacts whose pubkey holds a valid (or, if asked, expired) certificate of ``course``."""
    accepted = _HELD | ({CertificateStatus.EXPIRED} if include_expired else frozenset())
    out = []
    for contact in contacts:
        if contact.pubkey is None:
            continue
        current = book.current(contact.pubkey, course, now)
        if current is not None and certificate_status(current, now) in accepted:
            out.append(contact)
    return tuple(out)


def check_training_requirements(
    pubkey: str, required_courses: Sequence[str], book: TrainingBook, now: int, *, expiring_days: int = 30
) -> RequirementsReport:
    """Per required course: met, expired, expires at; overall met only when every one is."""
    return check_requirements(pubkey, book.certificates_of(pubkey), required_courses, now, expiring_days)


@dataclass(frozen=True, slots=True)
class ExpiringCertification:
    contact: Contact
    certificate: Certificate
    days_left: int


def contacts_with_expiring_certifications(
    contacts: Iterable[Contact], book: TrainingBook, now: int, days: int = 30
) -> tuple[ExpiringCertification, ...]:
    """Every (contact, certificate) expiring within ``days``, fewest days left first."""
    found = []
    for contact in contacts:
        if contact.pubkey is None:
            continue
        for course in sorted({c.course for c in book.certificates_of(contact.pubkey)}):
            current = book.current(contact.pubkey, course, now)
            if current is None or current.expires_at is None:
                continue
            if certificate_status(current, now, days) is CertificateStatus.EXPIRING:
                found.append(ExpiringCertification(contact, current, (current.expires_at - now) // DAY))
    return tuple(
        sorted(found, key=lambda e: (e.certificate.expires_at, e.contact.name, e.certificate.course))
    )
