"""The CRM as a service: contacts in the local store, and the seed's training questions answered
over every contact from the index (everyone's awards, revocations, completion and attendance
records, RSVPs and recorded enrolments), never only the user's own.

The seed's methods: ``add_certification_to_contact`` (issue through ``services.certificates``
to the contact's linked pubkey), ``get_contact_training_status``,
``filter_contacts_by_certification``, ``check_training_requirements`` and
``get_contacts_with_expiring_certifications``; the answers are ``crm``'s pure functions over a
``TrainingBook`` built here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..crm import (
    Contact,
    Enrolment,
    TrainingBook,
    check_contact,
    contact_training_status,
    contacts_with_expiring_certifications,
    format_contacts_csv,
    parse_contacts_csv,
    plan_contact_import,
)
from ..crm import check_training_requirements as _requirements
from ..crm import filter_contacts_by_certification as _filter
from ..errors import ContactError, MalformedEvent, NotFound
from ..filters import Filter
from ..kinds import ATTENDANCE_RECORD, COMPLETION_RECORD, COURSE, LESSON, RSVP, RsvpStatus
from ..kinds.attendance import parse_attendance_record, parse_completion_record
from ..kinds.calendar import parse_course, parse_lesson, parse_rsvp
from ..nips.nip19 import npub_encode, pubkey_from_text
from ..rules.certification import RequirementsReport
from .certificates import IssuedCertificate, _parsed, issue_certificate, load_certificate_records
from .context import ServiceContext
from .events import enrolments
from .follows import course_coordinate

__all__ = [
    "training_book",
    "find_contact",
    "import_contacts",
    "export_contacts",
    "link_contact",
    "add_certification_to_contact",
    "get_contact_training_status",
    "filter_contacts_by_certification",
    "check_training_requirements",
    "get_contacts_with_expiring_certifications",
    "OPERATIONS",
]


async def training_book(ctx: ServiceContext, now: int) -> TrainingBook:
    """Everyone's evidence in the index; certificates only from the course's issuer key."""
    store = ctx.store
    records = await load_certificate_records(store, now)
    # Attendance and completion records are never published: they are the host's own (private)
    # records and those delivered to the user; private lessons and RSVPs count like public ones.
    def wanted(kind: int) -> list[Filter]:
        return [Filter(kinds=frozenset({kind}))]

    completions = _parsed(parse_completion_record, await store.query(wanted(COMPLETION_RECORD), now=now, include_private=True))
    attendance = _parsed(parse_attendance_record, await store.query(wanted(ATTENDANCE_RECORD), now=now, include_private=True))
    lessons = {x.coordinate: x for x in _parsed(parse_lesson, await store.query(wanted(LESSON), now=now, include_private=True))}
    joined: list[Enrolment] = []
    newest: dict[tuple[str, str], Any] = {}
    for rsvp in _parsed(parse_rsvp, await store.query(wanted(RSVP), now=now, include_private=True)):
        key = (rsvp.author, rsvp.lesson)
        if key not in newest or (rsvp.created_at, rsvp.event_id or "") > (newest[key].created_at, newest[key].event_id or ""):
            newest[key] = rsvp
    for rsvp in newest.values():
        lesson = lessons.get(rsvp.lesson)
        if lesson is not None and lesson.course is not None and rsvp.status is not RsvpStatus.DECLINED:
            joined.append(Enrolment(rsvp.author, lesson.course, rsvp.created_at))
    for (pubkey, subject), (enrolled, at) in (await enrolments(store)).items():
        course = subject if subject.startswith("31924:") else (lessons[subject].course if subject in lessons else None)
        if enrolled and course is not None:
            joined.append(Enrolment(pubkey, course, at))
    courses = _parsed(parse_course, await store.query(wanted(COURSE), now=now, include_private=True))
    issuers = {course.coordinate: course.certificate_issuer for course in courses}
    return TrainingBook(records.certificates(), completions, attendance, joined, issuers=issuers)


async def find_contact(ctx: ServiceContext, reference: str) -> Contact:
    """A contact by id, by linked npub/hex pubkey, or by exact name (which must be unique)."""
    text = str(reference).strip()
    if text.isdigit():
        found = await ctx.store.get_contact(int(text))
        if found is not None:
            return found
    elif text.startswith(("npub1", "nprofile1")) or len(text) == 64:
        try:
            pubkey = pubkey_from_text(text)
        except Exception:
            pubkey = None
        found = await ctx.store.find_contact_by_pubkey(pubkey) if pubkey else None
        if found is not None:
            return found
    named = [c for c in await ctx.store.list_contacts() if c.name == text]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise ContactError(f"{len(named)} contacts are named {text!r}; give the id")
    raise NotFound(f"no contact {text!r}")


def contact_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id, "name": contact.name, "email": contact.email, "notes": contact.notes,
        "tags": list(contact.tags), "pubkey": contact.pubkey, "npub": contact.npub,
    }


async def import_contacts(ctx: ServiceContext, csv_text: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Add and update contacts from CSV (matched by id, else pubkey); the plan, applied unless dry."""
    rows = parse_contacts_csv(csv_text)
    plan = plan_contact_import(await ctx.store.list_contacts(), rows)
    now = ctx.clock.now()
    if not dry_run:
        for contact in plan.add:
            await ctx.store.add_contact(contact, now=now)
        for contact in plan.update:
            await ctx.store.update_contact(contact, now=now)
    return {"added": len(plan.add), "updated": len(plan.update), "unchanged": len(plan.unchanged), "dry_run": dry_run}


async def export_contacts(ctx: ServiceContext, *, tag: str | None = None) -> str:
    return format_contacts_csv(await ctx.store.list_contacts(tag=tag))


async def link_contact(ctx: ServiceContext, reference: str, identity: str) -> Contact:
    """Link a contact to a Nostr identity (npub, nprofile or hex): what every query uses."""
    contact = await find_contact(ctx, reference)
    pubkey = pubkey_from_text(identity)
    owner = await ctx.store.find_contact_by_pubkey(pubkey)
    if owner is not None and owner.id != contact.id:
        raise ContactError(f"{npub_encode(pubkey)[:20]}… is already linked to {owner.name!r} (id {owner.id})")
    return await ctx.store.update_contact(check_contact(replace(contact, pubkey=pubkey)), now=ctx.clock.now())


async def add_certification_to_contact(
    ctx: ServiceContext, reference: str, course: str, reason: str | None = None
) -> IssuedCertificate:
    """Issue ``course``'s certificate to the contact's linked pubkey, with the user's (issuer) key."""
    contact = await find_contact(ctx, reference)
    if contact.pubkey is None:
        raise ContactError(f"{contact.name!r} is not linked to a Nostr identity (crm link {contact.id} NPUB)")
    return await issue_certificate(ctx, course, contact.pubkey, reason)


async def get_contact_training_status(ctx: ServiceContext, reference: str, *, expiring_days: int = 30) -> dict[str, Any]:
    now = ctx.clock.now()
    contact = await find_contact(ctx, reference)
    status = contact_training_status(contact, await training_book(ctx, now), now, expiring_days=expiring_days)
    return {
        "contact": contact_dict(contact),
        "linked": status.linked,
        "enrolled": status.enrolled,
        "completed": status.completed,
        "certifications_earned": status.certifications_earned,
        "certifications_expiring": status.certifications_expiring,
        "total_hours": status.total_hours,
        "last_activity": status.last_activity,
        "certifications": [
            {"course": s.course, "status": s.status.value, "issued_at": s.issued_at, "expires_at": s.expires_at, "code": s.code}
            for s in status.certifications
        ],
    }


async def filter_contacts_by_certification(
    ctx: ServiceContext, course: str, *, include_expired: bool = False, tag: str | None = None
) -> list[Contact]:
    now = ctx.clock.now()
    book = await training_book(ctx, now)
    return list(_filter(await ctx.store.list_contacts(tag=tag), book, course_coordinate(course), now, include_expired=include_expired))


def requirements_dict(report: RequirementsReport) -> dict[str, Any]:
    return {
        "pubkey": report.holder,
        "met": report.met,
        "requirements": [
            {"course": r.course, "met": r.met, "expired": r.expired, "status": r.status.value, "expires_at": r.expires_at}
            for r in report.requirements
        ],
    }


async def check_training_requirements(ctx: ServiceContext, pubkey: str, required_courses: list[str]) -> RequirementsReport:
    now = ctx.clock.now()
    courses = [course_coordinate(c) for c in required_courses]
    return _requirements(pubkey, courses, await training_book(ctx, now), now)


async def get_contacts_with_expiring_certifications(ctx: ServiceContext, days: int = 30) -> list[dict[str, Any]]:
    now = ctx.clock.now()
    found = contacts_with_expiring_certifications(await ctx.store.list_contacts(), await training_book(ctx, now), now, days)
    return [
        {
            "contact": contact_dict(e.contact), "course": e.certificate.course, "code": e.certificate.code,
            "expires_at": e.certificate.expires_at, "days_left": e.days_left,
        }
        for e in found
    ]


# Operations -------------------------------------------------------------------------------------


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedEvent(f"'{name}' must be text", field=name)
    return value


async def _op_import(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return await import_contacts(ctx, _str(body, "csv") or "", dry_run=bool(body.get("dry_run")))


async def _op_export(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"csv": await export_contacts(ctx, tag=_str(body, "tag", required=False))}


async def _op_list(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    course = _str(body, "certified_in", required=False)
    tag = _str(body, "tag", required=False)
    if course:
        contacts = await filter_contacts_by_certification(ctx, course, include_expired=bool(body.get("include_expired")), tag=tag)
    else:
        contacts = await ctx.store.list_contacts(tag=tag)
    return {"contacts": [contact_dict(c) for c in contacts]}


async def _op_show(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return await get_contact_training_status(ctx, _str(body, "contact") or "")


async def _op_link(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return contact_dict(await link_contact(ctx, _str(body, "contact") or "", _str(body, "identity") or ""))


async def _op_require(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    courses = body.get("courses")
    if not isinstance(courses, list) or not courses or not all(isinstance(c, str) for c in courses):
        raise MalformedEvent("'courses' must be a non-empty list of courses", field="courses")
    contact = await find_contact(ctx, _str(body, "contact") or "")
    if contact.pubkey is None:
        raise ContactError(f"{contact.name!r} is not linked to a Nostr identity (crm link {contact.id} NPUB)")
    report = await check_training_requirements(ctx, contact.pubkey, courses)
    return {"contact": contact_dict(contact), **requirements_dict(report)}


async def _op_expiring(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    days = body.get("days", 30)
    if type(days) is not int or not 0 <= days <= 36500:
        raise MalformedEvent("'days' must be a whole number of days", field="days")
    return {"expiring": await get_contacts_with_expiring_certifications(ctx, days)}


async def _op_certify(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    issued = await add_certification_to_contact(
        ctx, _str(body, "contact") or "", _str(body, "course") or "", _str(body, "reason", required=False)
    )
    return issued.to_dict()


OPERATIONS = {
    "import": _op_import,
    "export": _op_export,
    "list": _op_list,
    "show": _op_show,
    "link": _op_link,
    "require": _op_require,
    "expiring": _op_expiring,
    "certify": _op_certify,
}
