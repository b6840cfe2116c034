"""Certificates as a service: issue, verify, export, revoke, list and accept.

Only the course's issuer key signs (``Course.certificate_issuer``), never the learner: the origin's
learners awarded certificates to themselves. Every signed step goes through the outbox with an
``ActionRecord``, so an issue or a revocation commits once with its event and a restart neither
repeats nor loses it:

- ``certificate-definition|<course>``: the course's 30009, published once;
- ``certificate|<course>|<learner>|<n>``: the n-th award of that course to that learner (n counts
  the awards already in the index, so a re-certification after expiry is a new key while a second
  issue of the same round is refused);
- ``certificate-revocation|<award id>`` and ``certificate-deletion|<award id>``: the 8314 record
  and the NIP-09 deletion of the award.

A **private certificate** (a private course's, or any issued with ``private``) is never published:
its definition (30009, marked private) and award are signed and kept in the issuer's index, and
the learner gets both, with a signed copy of the course, in one record delivery (8317). The
learner alone may publish them (``publish_certificate``); a revocation publishes only the
hash-only marker (8314 with ``x`` = sha256 of the award id), naming neither holder nor course.

Verification never needs a network or a trusted database: from the local index (by code or
nevent) or from a bundle file, ``rules.verification.verify_certificate`` decides. A revoked award
is hidden from queries by its deletion, so look-ups also follow the revocations to the awards they
name (``Store.get`` returns an event in any state).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from ..errors import CertificateRefused, MalformedEvent, NotFound, PrivacyRefused
from ..event import Event, EventTemplate, coordinate, parse_coordinate
from ..filters import Filter
from ..kinds import (
    BADGE_AWARD,
    BADGE_DEFINITION,
    CERTIFICATE_REVOCATION,
    COMPLETION_RECORD,
    COURSE,
    LESSON,
    PROFILE_BADGES,
    CertificateAward,
    CertificateDefinition,
    Course,
    award_hash,
    build_award_deletion,
    build_certificate_award,
    build_certificate_definition,
    build_certificate_revocation,
    build_course,
    build_profile_badge_acceptance,
    build_revocation_marker,
    new_verification_code,
    normalize_code,
    parse_certificate_award,
    parse_certificate_definition,
    parse_completion_record,
    parse_revocation,
)
from ..kinds._wire import deterministic_d
from ..kinds.attendance import CompletionRecord
from ..kinds.certificate_bundle import bundle_to_json, collect_certificate_bundle, parse_certificate_bundle
from ..kinds.certificates import CertificateRevocation, RevocationMarker
from ..kinds.private import build_record_delivery, is_marked_private, mark_private
from ..nips.nip19 import decode
from ..rules.certification import (
    Certificate,
    CertificateStatus,
    CourseCompletion,
    certificate_status,
    certificates_from_records,
    check_issue,
    course_completion,
    current_certificate,
    expiring,
)
from ..rules.verification import Verdict, VerdictStatus, verify_certificate
from ..store.base import ActionRecord, AddOutcome, Store
from .context import ServiceContext
from .follows import course_coordinate
from .messages import send_private

__all__ = [
    "CertificateRecords",
    "load_certificate_records",
    "completed_lessons",
    "IssuedCertificate",
    "definition_coordinate",
    "ensure_definition",
    "issue_certificate",
    "find_award",
    "verify",
    "export_bundle",
    "Revocation",
    "revoke_certificate",
    "CertificateRow",
    "list_certificates",
    "accept_certificate",
    "publish_certificate",
    "revocation_filters",
    "held_awards",
    "refresh_certificates",
]

#: Seconds a command without a daemon waits for relays to return certificate events.
FETCH_TIMEOUT = 5.0

ISSUE_ACTION = "certificate-issue"
DEFINITION_ACTION = "certificate-definition"
REVOKE_ACTION = "certificate-revoke"
ACCEPT_ACTION = "certificate-accept"
PUBLISH_ACTION = "certificate-publish"


# Reading the index ------------------------------------------------------------------------------


def _parsed(parse: Any, events: Iterable[Event]) -> list[Any]:
    out = []
    for event in events:
        try:
            out.append(parse(event))
        except MalformedEvent:
            continue
    return out


@dataclass(frozen=True)
class CertificateRecords:
    """Everyone's certificate evidence in the index, parsed: what CRM and the daemon read."""

    definitions: tuple[CertificateDefinition, ...]
    awards: tuple[CertificateAward, ...]
    revocations: tuple[CertificateRevocation | RevocationMarker, ...]
    courses: dict[str, Course]

    def certificates(self, issuer_checked: bool = True) -> tuple[Certificate, ...]:
        """The rule's certificates; with ``issuer_checked`` only those signed by the course's issuer."""
        definitions = self.definitions
        if issuer_checked:
            definitions = tuple(
                d for d in definitions
                if d.course is not None and d.course in self.courses
                and self.courses[d.course].certificate_issuer == d.author
            )
        return certificates_from_records(definitions, self.awards, self.revocations)


async def load_certificate_records(store: Store, now: int) -> CertificateRecords:
    """Every definition, award (including those a revocation's deletion hides) and revocation."""
    events = await store.query(
        [Filter(kinds=frozenset({BADGE_DEFINITION, BADGE_AWARD, CERTIFICATE_REVOCATION}))], now=now, include_private=True
    )
    definitions = _parsed(parse_certificate_definition, (e for e in events if e.kind == BADGE_DEFINITION))
    revocation_events = [e for e in events if e.kind == CERTIFICATE_REVOCATION]
    revocations = _parsed(parse_revocation, revocation_events)
    award_events = {e.id: e for e in events if e.kind == BADGE_AWARD}
    for revocation in revocations:
        if isinstance(revocation, CertificateRevocation) and revocation.award not in award_events:
            hidden = await store.get(revocation.award)
            if hidden is not None and hidden.kind == BADGE_AWARD:
                award_events[hidden.id] = hidden
    awards = _parsed(parse_certificate_award, award_events.values())
    wanted = {d.course for d in definitions if d.course is not None}
    courses: dict[str, Course] = {}
    for coord in wanted:
        course = await store.course(coord, now=now)
        if course is not None:
            courses[coord] = course
    return CertificateRecords(tuple(definitions), tuple(awards), tuple(revocations), courses)


async def completed_lessons(store: Store, course: Course, learner: str | None, now: int) -> dict[str, set[str]]:
    """Per learner, the course's lessons (and the course itself) completed by a trusted record.

    A 31931 counts when signed by the lesson's host (author or instructor), the course's author or
    its issuer, and never when the learner signed it about themselves.
    """
    subjects = [*course.lessons, course.coordinate]
    for module in course.modules:
        subjects += module.lessons
    tags: dict[str, frozenset[str]] = {"a": frozenset(subjects)}
    if learner is not None:
        tags["p"] = frozenset({learner})
    records: list[CompletionRecord] = _parsed(
        parse_completion_record,
        await store.query([Filter(kinds=frozenset({COMPLETION_RECORD}), tags=tags)], now=now, include_private=True),
    )
    hosts: dict[str, set[str]] = {}
    for subject in set(subjects):
        trusted = {course.author, course.certificate_issuer}
        if subject != course.coordinate:
            trusted.add(parse_coordinate(subject)[1])
            lesson = await store.lesson(subject, now=now) if subject.startswith(f"{LESSON}:") else None
            if lesson is not None:
                trusted |= {lesson.author, lesson.instructor}
        hosts[subject] = trusted
    done: dict[str, set[str]] = {}
    for record in records:
        if record.author == record.learner or record.author not in hosts.get(record.subject, set()):
            continue
        done.setdefault(record.learner, set()).add(record.subject)
    return done


def _completion(course: Course, done: set[str]) -> CourseCompletion:
    if course.coordinate in done:
        return CourseCompletion(course.coordinate, True, (), ())
    return course_completion(course, done)


async def _course(ctx: ServiceContext, text: str, now: int) -> Course:
    """A course by coordinate, naddr, or local name (a private course has a random ``d``; its
    host names it locally, as the course commands do)."""
    from .private_training import resolve_course

    ref = course_coordinate(text) if text.strip().startswith("naddr1") or ":" in text else text.strip()
    try:
        return await resolve_course(ctx, ref)
    except NotFound:
        raise NotFound(f"course {ref} is not in the index (follow it, or publish it first)") from None


# Issuing --------------------------------------------------------------------------------------


def definition_coordinate(course: Course, *, private: bool = False) -> str:
    """The course's named definition, else one derived from the course under the issuer's key.

    A private certificate of a public course has its own definition (a private one can never be
    the public definition, nor the other way round); a private course's only definition is private.
    """
    if course.certificate is not None and (private == course.private):
        return course.certificate
    label = "private-certificate" if private and not course.private else "certificate"
    return coordinate(BADGE_DEFINITION, course.certificate_issuer, deterministic_d(label, course.coordinate))


async def _definition_event(store: Store, address: str) -> Event | None:
    """The current signed definition at ``address`` in the index, published or private."""
    _, author, d = parse_coordinate(address)
    found = await store.query(
        [Filter(kinds=frozenset({BADGE_DEFINITION}), authors=frozenset({author}), tags={"d": frozenset({d})})],
        include_private=True,
    )
    return next((e for e in found if e.sig is not None), None)


async def ensure_definition(ctx: ServiceContext, course: Course, *, private: bool = False) -> str:
    """The course's 30009, signed once (action log): published, or, for a private certificate,
    marked private and kept in the issuer's index only. Its coordinate."""
    address = definition_coordinate(course, private=private)
    key = f"certificate-definition|{course.coordinate}" + ("|private" if private else "")
    _, author, d = parse_coordinate(address)
    if await _definition_event(ctx.store, address) is not None or await ctx.store.get_action(key) is not None:
        return address
    now = ctx.clock.now()
    definition = CertificateDefinition(
        author=author, d=d, name=f"Certificate: {course.title}", description=course.description[:500], course=course.coordinate
    )
    template = build_certificate_definition(definition, created_at=now)
    if private:
        event = await ctx.require_signer().sign_event(mark_private(template))
        await ctx.store.add_private(event, now=now)
        ctx.outbox.note_private(address)
        await ctx.store.record_action(ActionRecord(key, DEFINITION_ACTION, now, subject=course.coordinate, event_id=event.id))
        return address
    event = await ctx.require_signer().sign_event(template)
    await ctx.outbox.submit(event, action=ActionRecord(key, DEFINITION_ACTION, now, subject=course.coordinate))
    return address


CERTIFICATE_COPY_ALT = ("alt", "The private course a certificate was issued for (a copy for its holder)")


async def _signed_course(ctx: ServiceContext, course: Course, me: str) -> Event:
    """A signed course event for a private certificate's holder: the published course, or for a
    private course a signed copy naming no invitee (the holder shows it to whoever verifies),
    dated a second before the version it copies so it never replaces that version in any index."""
    now = ctx.clock.now()
    _, author, d = parse_coordinate(course.coordinate)
    versions = await ctx.store.query(
        [Filter(kinds=frozenset({COURSE}), authors=frozenset({author}), tags={"d": frozenset({d})}, limit=1)], now=now
    )
    if versions and not course.private:
        return versions[0]
    if me != course.author:
        raise CertificateRefused(
            f"course {course.d} is private: its author {course.author[:16]} must issue its certificates "
            "(only they can sign the course copy the certificate rests on)"
        )
    dated = (course.created_at or now) - 1
    template = mark_private(build_course(replace(course, invitees=(), event_id=None, created_at=None), created_at=dated))
    # The alt keeps the copy's id apart from a version the host holds unsigned (same tags, same
    # second), so the host's own index keeps the signed copy and can export the certificate too.
    template = replace(template, tags=(*template.tags, CERTIFICATE_COPY_ALT))
    return await ctx.require_signer().sign_event(template)


@dataclass(frozen=True)
class IssuedCertificate:
    """What ``issue_certificate`` did: the award (new, or None when this round was already done)."""

    course: str
    learner: str
    issued: bool
    reason: str
    code: str | None = None
    award_id: str | None = None
    valid_from: int | None = None
    valid_until: int | None = None
    private: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def issue_certificate(
    ctx: ServiceContext,
    course: str | Course,
    learner: str,
    reason: str | None = None,
    *,
    reissue_revoked: bool = False,
    private: bool = False,
) -> IssuedCertificate:
    """Award ``course``'s certificate to ``learner`` with the user's key, which must be its issuer.

    The completion rule decides (trusted 31931 records of the required lessons in the index);
    ``reason`` is the issuer's decision to certify without them (kept in the action log) and to
    re-issue after a revocation. Raises ``CertificateRefused`` with the rule's reason otherwise.

    ``private`` (always so for a private course): nothing is published; the learner gets the
    definition, the award and a signed course in one record delivery, once.
    """
    now = ctx.clock.now()
    if isinstance(course, str):
        course = await _course(ctx, course, now)
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    records = await load_certificate_records(ctx.store, now)
    existing = [c for c in records.certificates() if c.course == course.coordinate and c.holder == learner]
    done = (await completed_lessons(ctx.store, course, learner, now)).get(learner, set())
    completion = _completion(course, done)
    if reason and not completion.complete:
        completion = CourseCompletion(course.coordinate, True, completion.required, ())
    valid_until = check_issue(
        course, completion, existing, learner, now,
        reissue_revoked=reissue_revoked or bool(reason), signer=me,
    )
    decided = "issued by hand: " + reason if reason else "completion rule met"
    private = private or course.private
    address = await ensure_definition(ctx, course, private=private)
    round_key = f"certificate|{course.coordinate}|{learner}|{len(existing)}"
    if await ctx.store.get_action(round_key) is not None:
        return IssuedCertificate(course.coordinate, learner, False, "already issued this round")
    code = new_verification_code()
    award = await signer.sign_event(
        build_certificate_award(address, learner, valid_from=now, valid_until=valid_until, code=code, created_at=now)
    )
    action = ActionRecord(round_key, ISSUE_ACTION, now, subject=course.coordinate, pubkey=learner, detail=decided)
    if private:
        definition = await _definition_event(ctx.store, address)
        assert definition is not None
        events = [definition, award, await _signed_course(ctx, course, me)]
        for event in events:
            await ctx.store.add_private(event, now=now)
        delivery = build_record_delivery(events, subject=course.coordinate, created_at=now)
        sent = await send_private(ctx, delivery, learner, action=replace(action, event_id=award.id))
        if not sent.sent:
            return IssuedCertificate(course.coordinate, learner, False, "already issued this round")
        return IssuedCertificate(course.coordinate, learner, True, decided, code, award.id, now, valid_until, True)
    submission = await ctx.outbox.submit(award, action=action)
    if submission.outcome is AddOutcome.ALREADY_DONE:
        return IssuedCertificate(course.coordinate, learner, False, "already issued this round")
    return IssuedCertificate(course.coordinate, learner, True, decided, code, award.id, now, valid_until)


# Finding and verifying ------------------------------------------------------------------------


def _award_id_from(text: str) -> str | None:
    """An event id from a nevent, a note or 64 hex characters; None when the text is none of those."""
    text = text.strip()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()):
        return text.lower()
    if text.startswith(("nevent1", "note1", "nostr:")):
        decoded = decode(text)
        if decoded.hrp == "note":
            return str(decoded.data)
        if decoded.hrp == "nevent":
            return str(decoded.data.id)
    return None


async def _awards_with_code(store: Store, code: str, now: int) -> list[Event]:
    served = await store.query([Filter(kinds=frozenset({BADGE_AWARD}))], now=now, include_private=True)
    found = {e.id: e for e in served if e.tag_value("code") == code}
    revocations = await store.query([Filter(kinds=frozenset({CERTIFICATE_REVOCATION}))], now=now, include_private=True)
    for revocation in revocations:
        award_id = revocation.tag_value("e")
        if award_id and award_id not in found:
            hidden = await store.get(award_id)
            if hidden is not None and hidden.kind == BADGE_AWARD and hidden.tag_value("code") == code:
                found[hidden.id] = hidden
    return list(found.values())


async def find_award(store: Store, reference: str, now: int) -> list[Event]:
    """The awards a code, nevent, note or hex id names (any state: a revoked award is found too)."""
    award_id = _award_id_from(reference)
    if award_id is not None:
        event = await store.get(award_id)
        return [event] if event is not None and event.kind == BADGE_AWARD else []
    try:
        code = normalize_code(reference)
    except MalformedEvent:
        return []
    return await _awards_with_code(store, code, now)


async def _context_events(store: Store, award: Event, now: int) -> list[Event]:
    """The award with its definitions, course versions and its issuer's revocations of it.

    Private ones too (a private certificate's definition and course copy are in the holder's
    index only), older versions included, signed events only: a private course's current
    version may be the unsigned one an envelope carried, and only a signed one verifies.
    """
    pool = [award]
    address = award.tag_value("a")
    try:
        kind, author, d = parse_coordinate(address or "")
    except MalformedEvent:
        return pool

    async def signed(filters: list[Filter]) -> list[Event]:
        found = await store.query(filters, now=now, include_private=True, include_superseded=True)
        return [e for e in found if e.sig is not None]

    definitions = await signed([Filter(kinds=frozenset({kind}), authors=frozenset({author}), tags={"d": frozenset({d})})])
    pool += definitions
    for definition in definitions:
        for ref in definition.tag_values("a"):
            try:
                ckind, cauthor, cd = parse_coordinate(ref)
            except MalformedEvent:
                continue
            if ckind == COURSE:
                pool += await signed(
                    [Filter(kinds=frozenset({COURSE}), authors=frozenset({cauthor}), tags={"d": frozenset({cd})})]
                )
    pool += await signed(
        [
            Filter(kinds=frozenset({CERTIFICATE_REVOCATION}), authors=frozenset({award.pubkey}), tags={"e": frozenset({award.id})}),
            Filter(
                kinds=frozenset({CERTIFICATE_REVOCATION}), authors=frozenset({award.pubkey}),
                tags={"x": frozenset({award_hash(award.id)})},
            ),
        ]
    )
    return list({e.id: e for e in pool}.values())


async def verify(ctx: ServiceContext, reference: str, *, bundle_text: str | None = None, expiring_days: int = 30) -> Verdict:
    """The verdict for a code, nevent/note/id (from the local index), a bundle file's path, or
    its text (``bundle_text``, as the CLI sends it to a daemon).

    A bundle that cannot be read is ``invalid`` (malformed); a reference the index does not know
    is ``not_found``. Nothing here touches a network.
    """
    now = ctx.clock.now()
    if bundle_text is None and _is_file(reference):
        try:
            bundle_text = Path(reference).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            bundle_text = f"unreadable: {exc}"
    if bundle_text is not None:
        try:
            bundle = parse_certificate_bundle(bundle_text)
        except MalformedEvent as exc:
            from ..rules.verification import Problem

            return Verdict(VerdictStatus.INVALID, f"{reference}: {exc}", Problem.MALFORMED)
        return verify_certificate(bundle, now=now, expiring_days=expiring_days)
    awards = await find_award(ctx.store, reference, now)
    if not awards:
        return Verdict(VerdictStatus.NOT_FOUND, f"no certificate {reference!r} in the local index")
    pool: dict[str, Event] = {}
    for award in awards:
        for event in await _context_events(ctx.store, award, now):
            pool[event.id] = event
    return verify_certificate(pool.values(), now=now, expiring_days=expiring_days)


def _is_file(reference: str) -> bool:
    try:
        return Path(reference).is_file()
    except (OSError, ValueError):
        return False


async def _one_award(ctx: ServiceContext, reference: str, now: int) -> Event:
    awards = await find_award(ctx.store, reference, now)
    if not awards:
        raise NotFound(f"no certificate {reference!r} in the local index")
    if len(awards) > 1:
        mine = [a for a in awards if ctx.signer is not None and a.pubkey == await ctx.signer.get_public_key()]
        if len(mine) != 1:
            raise NotFound(f"{len(awards)} awards carry {reference!r}; name one by its nevent")
        return mine[0]
    return awards[0]


async def export_bundle(ctx: ServiceContext, reference: str) -> str:
    """The bundle file's text for one certificate, from the local index."""
    now = ctx.clock.now()
    award = await _one_award(ctx, reference, now)
    pool = await _context_events(ctx.store, award, now)
    return bundle_to_json(collect_certificate_bundle(award, pool, exported_at=now))


# Fetching: what a command without a daemon asks the relays before it reads ---------------------


def revocation_filters(awards: Iterable[tuple[str, str]]) -> list[Filter]:
    """Per issuer, its revocations of these (issuer, award id) pairs: the public form by ``#e``
    and the hash-only marker by ``#x`` (a private award's revocation names nothing else)."""
    by_issuer: dict[str, set[str]] = {}
    for issuer, award_id in awards:
        by_issuer.setdefault(issuer, set()).add(award_id)
    filters = []
    for issuer, ids in sorted(by_issuer.items()):
        kind, authors = frozenset({CERTIFICATE_REVOCATION}), frozenset({issuer})
        filters.append(Filter(kinds=kind, authors=authors, tags={"e": frozenset(ids)}))
        filters.append(Filter(kinds=kind, authors=authors, tags={"x": frozenset(award_hash(i) for i in ids)}))
    return filters


async def held_awards(store: Store, me: str, now: int) -> list[Event]:
    """The awards to ``me`` in the index, private ones included (a private award is delivered)."""
    found = await store.query(
        [Filter(kinds=frozenset({BADGE_AWARD}), tags={"p": frozenset({me})})], now=now, include_private=True
    )
    return [e for e in found if e.sig is not None and e.pubkey != me]


async def _fetch(ctx: ServiceContext, filters: list[Filter]) -> list[Event]:
    """Index what the user's relays return for ``filters`` (nothing without a pool or relays)."""
    pool, relays = ctx.outbox.pool, list(getattr(ctx.config, "relays", None) or ())
    if pool is None or not relays or not filters:
        return []
    events = await pool.fetch(filters, relays, timeout=FETCH_TIMEOUT)
    now = ctx.clock.now()
    for event in events:
        await ctx.store.add(event, verified=True, now=now)
    return events


async def _fetch_context(ctx: ServiceContext, awards: Iterable[Event]) -> None:
    """The definitions, courses and revocations these awards rest on, from the relays."""
    awards = list(awards)
    definitions: list[Filter] = []
    for award in awards:
        try:
            kind, author, d = parse_coordinate(award.tag_value("a") or "")
        except MalformedEvent:
            continue
        definitions.append(Filter(kinds=frozenset({kind}), authors=frozenset({author}), tags={"d": frozenset({d})}))
    courses: list[Filter] = []
    for definition in await _fetch(ctx, definitions):
        for ref in definition.tag_values("a"):
            try:
                ckind, cauthor, cd = parse_coordinate(ref)
            except MalformedEvent:
                continue
            if ckind == COURSE:
                courses.append(Filter(kinds=frozenset({COURSE}), authors=frozenset({cauthor}), tags={"d": frozenset({cd})}))
    await _fetch(ctx, courses + revocation_filters((a.pubkey, a.id) for a in awards))


async def refresh_certificates(ctx: ServiceContext, reference: str | None = None) -> None:
    """Before a command without a daemon reads certificates: the revocations of every award the
    user holds (a private one's hash-only marker is followed by nobody else), and, for a
    ``reference`` by award id the index does not hold (a stranger verifying a published
    certificate), that award and what it rests on. A daemon follows the former itself."""
    now = ctx.clock.now()
    if not ctx.live and ctx.signer is not None:
        held = await held_awards(ctx.store, await ctx.signer.get_public_key(), now)
        await _fetch(ctx, revocation_filters((a.pubkey, a.id) for a in held))
    if reference is None or _is_file(reference):
        return
    award_id = _award_id_from(reference)
    if award_id is None:  # a code: relays index no multi-letter tag, so only awards already held
        if not ctx.live:
            await _fetch_context(ctx, await find_award(ctx.store, reference, now))
        return
    known = await ctx.store.get(award_id)
    if known is None:
        known = next((e for e in await _fetch(ctx, [Filter(ids=frozenset({award_id}))]) if e.kind == BADGE_AWARD), None)
    elif ctx.live:
        return
    if known is not None and known.kind == BADGE_AWARD:
        await _fetch_context(ctx, [known])


# Revoking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    award_id: str
    revoked: bool
    revocation_id: str | None
    deletion_id: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def _current_award(ctx: ServiceContext, course_ref: str, learner: str, now: int) -> Event:
    """The learner's current award of a course (coordinate, naddr or local name) in the index."""
    course = await _course(ctx, course_ref, now)
    records = await load_certificate_records(ctx.store, now)
    mine = [c for c in records.certificates() if c.course == course.coordinate and c.holder == learner]
    current = current_certificate(mine, now)
    event = await ctx.store.get(current.event_id) if current is not None and current.event_id else None
    if event is None:
        raise NotFound(f"course {course_ref}: no certificate of {learner[:16]} in the index")
    return event


async def revoke_certificate(ctx: ServiceContext, reference: str, reason: str = "", *, learner: str | None = None) -> Revocation:
    """The issuer's 8314 and NIP-09 deletion of the award, each committed once.

    ``reference`` names the award (code, nevent, id), or, with ``learner``, the course (coordinate,
    naddr or a private course's local name) whose current certificate of that learner is revoked."""
    now = ctx.clock.now()
    event = await (_current_award(ctx, reference, learner, now) if learner else _one_award(ctx, reference, now))
    award = parse_certificate_award(event)
    signer = ctx.require_signer()
    if await signer.get_public_key() != award.author:
        raise CertificateRefused(f"certificate {award.code}: only its issuer {award.author[:16]} revokes it")
    revocation_key = f"certificate-revocation|{event.id}"
    deletion_key = f"certificate-deletion|{event.id}"
    revocation_id = deletion_id = None
    revoked = False
    definition = await _definition_event(ctx.store, award.definition)
    if definition is not None and is_marked_private(definition):
        # A private award was never published: only the hash-only marker goes out, naming
        # neither holder nor course, and there is nothing on the relays to delete.
        if await ctx.store.get_action(revocation_key) is None:
            # No reason either: it would say something about the holder; the action log keeps it.
            marker = await signer.sign_event(build_revocation_marker(event.id, created_at=now))
            submission = await ctx.outbox.submit(
                marker, action=ActionRecord(revocation_key, REVOKE_ACTION, now, subject=award.definition, detail=reason)
            )
            if submission.outcome is not AddOutcome.ALREADY_DONE:
                revocation_id, revoked = marker.id, True
        return Revocation(event.id, revoked, revocation_id, None, reason)
    if await ctx.store.get_action(revocation_key) is None:
        record = await signer.sign_event(build_certificate_revocation(award, created_at=now, reason=reason))
        submission = await ctx.outbox.submit(
            record, action=ActionRecord(revocation_key, REVOKE_ACTION, now, subject=award.definition, pubkey=award.learner, detail=reason)
        )
        if submission.outcome is not AddOutcome.ALREADY_DONE:
            revocation_id, revoked = record.id, True
    if await ctx.store.get_action(deletion_key) is None:
        deletion = await signer.sign_event(build_award_deletion(event.id, created_at=now, reason=reason))
        submission = await ctx.outbox.submit(
            deletion, action=ActionRecord(deletion_key, REVOKE_ACTION, now, subject=award.definition, pubkey=award.learner)
        )
        if submission.outcome is not AddOutcome.ALREADY_DONE:
            deletion_id = deletion.id
    return Revocation(event.id, revoked, revocation_id, deletion_id, reason)


# Listing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateRow:
    course: str
    course_title: str
    holder: str
    status: str
    issued_at: int
    expires_at: int | None
    revoked_at: int | None
    code: str
    award_id: str | None
    days_left: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def list_certificates(
    ctx: ServiceContext,
    *,
    expiring_days: int | None = None,
    holder: str | None = None,
    issuer: str | None = None,
    course: str | None = None,
) -> list[CertificateRow]:
    """The current certificate of every (holder, course) in the index; with ``expiring_days``,
    only those expiring within that many days, soonest first."""
    now = ctx.clock.now()
    records = await load_certificate_records(ctx.store, now)
    certs = [
        c for c in records.certificates()
        if (holder is None or c.holder == holder)
        and (course is None or c.course == course)
        and (issuer is None or (c.course in records.courses and records.courses[c.course].certificate_issuer == issuer))
    ]
    if expiring_days is not None:
        chosen = list(expiring(certs, now, expiring_days))
    else:
        groups: dict[tuple[str, str], list[Certificate]] = {}
        for cert in certs:
            groups.setdefault((cert.holder, cert.course), []).append(cert)
        chosen = [c for c in (current_certificate(g, now) for g in groups.values()) if c is not None]
        chosen.sort(key=lambda c: (c.course, c.holder))
    days = 30 if expiring_days is None else expiring_days
    rows = []
    for cert in chosen:
        status = certificate_status(cert, now, days)
        left = (cert.expires_at - now) // 86400 if cert.expires_at is not None and status in (
            CertificateStatus.VALID, CertificateStatus.EXPIRING) else None
        title = records.courses[cert.course].title if cert.course in records.courses else ""
        rows.append(
            CertificateRow(cert.course, title, cert.holder, status.value, cert.issued_at, cert.expires_at,
                           cert.revoked_at, cert.code, cert.event_id, left)
        )
    return rows


# Accepting ------------------------------------------------------------------------------------


async def accept_certificate(ctx: ServiceContext, reference: str) -> str:
    """The learner shows the certificate in their NIP-58 profile badges (10008); its event id."""
    now = ctx.clock.now()
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    awards = [a for a in await find_award(ctx.store, reference, now) if a.tag_value("p") == me]
    if not awards:
        raise NotFound(f"no certificate {reference!r} awarded to you in the local index")
    award = parse_certificate_award(awards[0])
    definition = await _definition_event(ctx.store, award.definition)
    if definition is not None and is_marked_private(definition):
        raise PrivacyRefused(
            f"certificate {award.code} is private: showing it publishes it; if you choose to, run 'cert publish {award.code}'"
        )
    event = await _profile_badges(ctx, award, me, now)
    await ctx.outbox.submit(event, action=None)
    return event.id


async def publish_certificate(ctx: ServiceContext, reference: str) -> dict[str, Any]:
    """The holder's explicit choice to make a private certificate public: its definition, the
    award and the holder's profile badges (10008) showing it are published (``reveal``).

    For a private course, also the signed course copy the certificate came with (it names no
    invitee, and is dated before the host's version so it replaces nothing): without it nobody
    could check the definition's author is the course's issuer, so a stranger could not verify."""
    now = ctx.clock.now()
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    awards = [a for a in await find_award(ctx.store, reference, now) if a.tag_value("p") == me]
    if not awards:
        raise NotFound(f"no certificate {reference!r} awarded to you in the local index")
    award_event = awards[0]
    award = parse_certificate_award(award_event)
    definition = await _definition_event(ctx.store, award.definition)
    if definition is None:
        raise NotFound(f"certificate {award.code}: its definition {award.definition} is not in your index")
    badges = await _profile_badges(ctx, award, me, now)
    copies = [e for e in await _context_events(ctx.store, award_event, now) if e.kind == COURSE and is_marked_private(e)]
    for event in (definition, award_event, *copies, badges):
        await ctx.outbox.submit(event, reveal=True)
    await ctx.store.record_action(
        ActionRecord(f"{PUBLISH_ACTION}|{award_event.id}", PUBLISH_ACTION, now, subject=award.definition, pubkey=me,
                     event_id=award_event.id)
    )
    return {"award": award_event.id, "definition": definition.id, "courses": [e.id for e in copies],
            "profile_badges": badges.id}


async def _profile_badges(ctx: ServiceContext, award: CertificateAward, me: str, now: int) -> Event:
    current = await ctx.store.query(
        [
            Filter(kinds=frozenset({PROFILE_BADGES}), authors=frozenset({me}), limit=1),
            Filter(kinds=frozenset({30008}), authors=frozenset({me}), tags={"d": frozenset({"profile_badges"})}, limit=1),
        ],
        now=now,
    )
    newest = max(current, key=lambda e: (e.created_at, e.kind == PROFILE_BADGES), default=None)
    template: EventTemplate = build_profile_badge_acceptance(award, created_at=now, current=newest)
    return await ctx.require_signer().sign_event(template)


# Operations: the same calls for the CLI without a daemon and for the control API ----------------


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedEvent(f"'{name}' must be text", field=name)
    return value


def _days(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= 36500:
        raise MalformedEvent(f"'{name}' must be a whole number of days", field=name)
    return value


def _pubkey(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    from ..nips.nip19 import pubkey_from_text

    text = _text(body, name, required=required)
    return pubkey_from_text(text) if text else None


async def _op_issue(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    learner = _pubkey(body, "learner")
    assert learner is not None
    private = body.get("private", False)
    if not isinstance(private, bool):
        raise MalformedEvent("'private' must be true or false", field="private")
    issued = await issue_certificate(
        ctx, _text(body, "course") or "", learner, _text(body, "reason", required=False) or None, private=private
    )
    return issued.to_dict()


async def _op_verify(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    if body.get("bundle") is None:
        await _open_inbox(ctx)
        await refresh_certificates(ctx, _text(body, "reference") or "")
    verdict = await verify(
        ctx, _text(body, "reference") or "", bundle_text=_text(body, "bundle", required=False),
        expiring_days=_days(body, "expiring_days") or 30,
    )
    return verdict.to_dict()


async def _op_export(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    await _open_inbox(ctx)
    await refresh_certificates(ctx, _text(body, "reference") or "")
    return {"bundle": await export_bundle(ctx, _text(body, "reference") or "")}


async def _op_revoke(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    revocation = await revoke_certificate(
        ctx, _text(body, "reference") or "", _text(body, "reason", required=False) or "",
        learner=_pubkey(body, "learner", required=False),
    )
    return revocation.to_dict()


async def _op_list(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    await _open_inbox(ctx)
    await refresh_certificates(ctx)
    course = _text(body, "course", required=False)
    if course and not (course.strip().startswith("naddr1") or ":" in course):
        course = (await _course(ctx, course, ctx.clock.now())).coordinate  # a private course's local name
    rows = await list_certificates(
        ctx, expiring_days=_days(body, "expiring"), holder=_pubkey(body, "holder", required=False),
        issuer=_pubkey(body, "issuer", required=False), course=course_coordinate(course) if course else None,
    )
    return {"certificates": [r.to_dict() for r in rows]}


async def _op_accept(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    await _open_inbox(ctx)
    return {"id": await accept_certificate(ctx, _text(body, "reference") or "")}


async def _op_publish(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    await _open_inbox(ctx)
    return await publish_certificate(ctx, _text(body, "reference") or "")


async def _open_inbox(ctx: ServiceContext) -> None:
    """A learner's private certificates arrive in record deliveries: open what came first."""
    if ctx.signer is not None:
        from .records import refresh_inbox

        await refresh_inbox(ctx)


OPERATIONS = {
    "issue": _op_issue,
    "verify": _op_verify,
    "export": _op_export,
    "revoke": _op_revoke,
    "list": _op_list,
    "accept": _op_accept,
    "publish": _op_publish,
}
