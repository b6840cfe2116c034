"""Verify a certificate from its events alone: no network, no database, no trust in the holder.

The origin "verified" a code by looking it up in the learner's own database, so a learner could
certify themselves. Here a certificate holds only if every signature verifies and the chain
closes on the course: the award's author is the definition's author (the kind parser insists),
the definition names the course, and that key is the course's certificate issuer (its ``issuer``
tag, else its author). A learner never certifies themselves, even when they are the issuer.

The answer is one of six statuses; ``problem`` tells the invalid ones apart:

==============  =========  ==============================================================
status          exit code  meaning
==============  =========  ==============================================================
valid           0          all checks pass
expiring        0          valid, and ``valid_until`` is within ``expiring_days``
expired         3          authentic, but ``valid_until`` has passed
revoked         4          the issuer published an 8314 naming the award (or its hash)
not_found       5          no award among the events (or none with the code asked for)
invalid         6          ``problem``: tampered, malformed, self_issued, foreign_key,
                           incomplete, code_mismatch or not_yet_valid
==============  =========  ==============================================================

Each negative answer has its own code so a script can tell them apart; 1 stays the CLI's "the
command failed" (a file that cannot be read, a library error) and 2 its usage error.

When the events hold several versions of the definition or the course, the newest decides (a
bundle holds the versions current at export). Revocations count from their ``created_at`` (as in ``rules.certification``), by the award's
author only: the public form names the award id and its definition; the hash-only marker for a
private award names sha256(award id). A bundle that carries a revocation with a bad signature
was edited, and is invalid like any other tampered bundle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import InvalidEvent, MalformedEvent
from ..event import Event, parse_coordinate, supersedes, verify_event
from ..kinds import BADGE_AWARD, BADGE_DEFINITION, CERTIFICATE_REVOCATION, COURSE
from ..kinds.calendar import Course, parse_course
from ..kinds.certificate_bundle import CertificateBundle
from ..kinds.certificates import (
    CertificateAward,
    CertificateDefinition,
    CertificateRevocation,
    RevocationMarker,
    normalize_code,
    parse_certificate_award,
    parse_certificate_definition,
    parse_revocation,
)
from ..nips.nip19 import npub_encode
from .certification import DAY, Certificate, CertificateStatus, certificate_status

__all__ = [
    "VerdictStatus",
    "Problem",
    "EXIT_CODES",
    "Verdict",
    "verify_certificate",
]


class VerdictStatus(enum.Enum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NOT_FOUND = "not_found"
    INVALID = "invalid"


class Problem(enum.Enum):
    """Why a certificate is invalid."""

    TAMPERED = "tampered"
    MALFORMED = "malformed"
    SELF_ISSUED = "self_issued"
    FOREIGN_KEY = "foreign_key"
    INCOMPLETE = "incomplete"
    CODE_MISMATCH = "code_mismatch"
    NOT_YET_VALID = "not_yet_valid"


EXIT_CODES: dict[VerdictStatus, int] = {
    VerdictStatus.VALID: 0,
    VerdictStatus.EXPIRING: 0,
    VerdictStatus.EXPIRED: 3,
    VerdictStatus.REVOKED: 4,
    VerdictStatus.NOT_FOUND: 5,
    VerdictStatus.INVALID: 6,
}

#: When several awards match (a forger may copy a genuine code), the best verdict is the answer.
_RANK = {
    VerdictStatus.VALID: 0,
    VerdictStatus.EXPIRING: 1,
    VerdictStatus.EXPIRED: 2,
    VerdictStatus.REVOKED: 3,
    VerdictStatus.INVALID: 4,
    VerdictStatus.NOT_FOUND: 5,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one certificate, with what a person checking it needs to see."""

    status: VerdictStatus
    reason: str
    problem: Problem | None = None
    holder: str | None = None
    issuer: str | None = None
    course: str | None = None
    course_title: str | None = None
    certificate_name: str | None = None
    code: str | None = None
    award_id: str | None = None
    valid_from: int | None = None
    valid_until: int | None = None
    revoked_at: int | None = None
    revocation_reason: str | None = None
    days_left: int | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def holds(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON for ``cert verify --json``: every field, plus npubs for the keys."""
        out: dict[str, Any] = {
            "status": self.status.value,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "problem": self.problem.value if self.problem else None,
        }
        for name in (
            "holder", "issuer", "course", "course_title", "certificate_name", "code", "award_id",
            "valid_from", "valid_until", "revoked_at", "revocation_reason", "days_left",
        ):
            out[name] = getattr(self, name)
        out["holder_npub"] = npub_encode(self.holder) if self.holder else None
        out["issuer_npub"] = npub_encode(self.issuer) if self.issuer else None
        return out


def _invalid(problem: Problem, reason: str, **known: Any) -> Verdict:
    return Verdict(VerdictStatus.INVALID, reason, problem, **known)


def verify_certificate(
    bundle_or_events: CertificateBundle | Iterable[Event],
    *,
    now: int,
    expiring_days: int = 30,
    code: str | None = None,
) -> Verdict:
    """The status of a certificate at ``now`` from a bundle or from events (e.g. the local index).

    With ``code``, only awards carrying that code are candidates (the code is read as a person
    typed it); a malformed code is ``not_found``. When several awards are candidates, the best
    verdict wins: a forgery that copies a genuine code does not hide the genuine certificate.
    """
    wanted = None
    if code is not None:
        try:
            wanted = normalize_code(code)
        except MalformedEvent as exc:
            return Verdict(VerdictStatus.NOT_FOUND, f"{code!r} is not a verification code: {exc}")
    bundle = bundle_or_events if isinstance(bundle_or_events, CertificateBundle) else None
    events = bundle.events if bundle is not None else tuple(bundle_or_events)  # type: ignore[arg-type]
    by_kind: dict[int, list[Event]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    awards = by_kind.get(BADGE_AWARD, [])
    if wanted is not None:
        awards = [a for a in awards if _code_of(a) == wanted]
    if not awards:
        what = f"with code {wanted}" if wanted else "among the events given"
        return Verdict(VerdictStatus.NOT_FOUND, f"no certificate award {what}", code=wanted)
    context = _Context(
        by_kind.get(BADGE_DEFINITION, []), by_kind.get(COURSE, []), by_kind.get(CERTIFICATE_REVOCATION, [])
    )
    if bundle is not None:
        for event in events:
            problem = context.authentic(event)
            if problem:
                return _invalid(Problem.TAMPERED, f"kind {event.kind}: {problem}", award_id=bundle.award.id)
        carried = bundle.award.tag_value("code") or ""
        if bundle.code and bundle.code != carried:
            return _invalid(
                Problem.CODE_MISMATCH,
                f"the bundle shows code {bundle.code!r} but its award carries {carried!r}",
                award_id=bundle.award.id,
            )
    verdicts = [_verify_award(award, context, now, expiring_days) for award in awards]
    return min(verdicts, key=lambda v: _RANK[v.status])


def _code_of(award: Event) -> str | None:
    try:
        return normalize_code(award.tag_value("code") or "")
    except MalformedEvent:
        return None


@dataclass(slots=True)
class _Context:
    definitions: list[Event]
    courses: list[Event]
    revocations: list[Event]
    verified: set[Event] = field(default_factory=set)

    def authentic(self, event: Event) -> str | None:
        """None when the event is what its author signed, else why not; each checked once."""
        if event in self.verified:
            return None
        try:
            verify_event(event)
        except InvalidEvent as exc:
            return str(exc)
        self.verified.add(event)
        return None


def _newest(events: Iterable[Event], address: str) -> Event | None:
    found = None
    for event in events:
        if event.address == address and (found is None or supersedes(event, found)):
            found = event
    return found


def _verify_award(event: Event, context: _Context, now: int, expiring_days: int) -> Verdict:
    known: dict[str, Any] = {"award_id": event.id}
    problem = context.authentic(event)
    if problem:
        return _invalid(Problem.TAMPERED, f"award: {problem}", **known)
    claimed = event.tag_value("a")
    if claimed is not None and event.tag_values("a") == [claimed]:
        try:
            kind, definer, _ = parse_coordinate(claimed)
        except MalformedEvent:
            kind, definer = None, None
        if kind == BADGE_DEFINITION and definer is not None and definer != event.pubkey:
            return _invalid(
                Problem.FOREIGN_KEY,
                f"award signed by {event.pubkey[:16]} names a definition of {definer[:16]}",
                issuer=event.pubkey,
                **known,
            )
    try:
        award = parse_certificate_award(event)
    except MalformedEvent as exc:
        return _invalid(Problem.MALFORMED, f"award: {exc}", **known)
    known |= {
        "holder": award.learner,
        "issuer": award.author,
        "code": award.code,
        "valid_from": award.valid_from,
        "valid_until": award.valid_until,
    }
    if award.learner == award.author:
        return _invalid(Problem.SELF_ISSUED, "the award is signed by its own holder", **known)
    definition_event = _newest(context.definitions, award.definition)
    if definition_event is None:
        return _invalid(Problem.INCOMPLETE, f"the definition {award.definition} is not among the events", **known)
    problem = context.authentic(definition_event)
    if problem:
        return _invalid(Problem.TAMPERED, f"definition: {problem}", **known)
    try:
        definition = parse_certificate_definition(definition_event)
    except MalformedEvent as exc:
        return _invalid(Problem.MALFORMED, f"definition: {exc}", **known)
    known["certificate_name"] = definition.name
    if definition.course is None:
        return _invalid(Problem.INCOMPLETE, "the definition names no course", **known)
    known["course"] = definition.course
    course_event = _newest(context.courses, definition.course)
    if course_event is None:
        return _invalid(Problem.INCOMPLETE, f"the course {definition.course} is not among the events", **known)
    problem = context.authentic(course_event)
    if problem:
        return _invalid(Problem.TAMPERED, f"course: {problem}", **known)
    try:
        course = parse_course(course_event)
    except MalformedEvent as exc:
        return _invalid(Problem.MALFORMED, f"course: {exc}", **known)
    known["course_title"] = course.title
    if course.certificate_issuer != award.author:
        return _invalid(
            Problem.FOREIGN_KEY,
            f"signed by {award.author[:16]}, but the course's certificates are issued by "
            f"{course.certificate_issuer[:16]}",
            **known,
        )
    if award.learner == course.certificate_issuer:
        return _invalid(Problem.SELF_ISSUED, "the holder is the course's own issuer", **known)
    return _status(award, definition, course, context, now, expiring_days, known)


def _revocation_of(
    award: CertificateAward, definition: CertificateDefinition, context: _Context
) -> CertificateRevocation | RevocationMarker | None:
    """The earliest revocation of this award by its issuer, in either form.

    Raises ``InvalidEvent`` for one that names the award but is not what the issuer signed.
    """
    found: CertificateRevocation | RevocationMarker | None = None
    for event in context.revocations:
        if event.pubkey != award.author:
            continue
        try:
            revocation = parse_revocation(event)
        except MalformedEvent:
            continue
        if isinstance(revocation, RevocationMarker):
            applies = revocation.names(award.event_id or "")
        else:
            applies = revocation.award == award.event_id and revocation.definition == definition.coordinate
        if applies:
            problem = context.authentic(event)
            if problem:
                raise InvalidEvent(problem)
            if found is None or revocation.created_at < found.created_at:
                found = revocation
    return found


def _status(
    award: CertificateAward,
    definition: CertificateDefinition,
    course: Course,
    context: _Context,
    now: int,
    expiring_days: int,
    known: dict[str, Any],
) -> Verdict:
    try:
        revocation = _revocation_of(award, definition, context)
    except InvalidEvent as exc:
        return _invalid(Problem.TAMPERED, f"revocation: {exc}", **known)
    cert = Certificate(
        course=course.coordinate,
        holder=award.learner,
        issued_at=award.valid_from,
        expires_at=award.valid_until,
        revoked_at=revocation.created_at if revocation else None,
        code=award.code,
        event_id=award.event_id,
    )
    status = certificate_status(cert, now, expiring_days)
    if award.valid_until is not None and status in (CertificateStatus.VALID, CertificateStatus.EXPIRING):
        known["days_left"] = (award.valid_until - now) // DAY
    title = course.title
    if status is CertificateStatus.MISSING:
        return _invalid(Problem.NOT_YET_VALID, f"{title}: not valid yet (see valid from)", **known)
    if status is CertificateStatus.REVOKED and revocation is not None:
        reason = f"{title}: revoked by the issuer" + (f": {revocation.reason}" if revocation.reason else "")
        return Verdict(
            VerdictStatus.REVOKED,
            reason,
            revoked_at=revocation.created_at,
            revocation_reason=revocation.reason,
            **known,
        )
    if status is CertificateStatus.EXPIRED:
        return Verdict(VerdictStatus.EXPIRED, f"{title}: expired (see valid until)", **known)
    if status is CertificateStatus.EXPIRING:
        return Verdict(
            VerdictStatus.EXPIRING, f"{title}: valid, expires in {known['days_left']} days", **known
        )
    # Times stay out of the reason: the verdict carries them, and each reader shows them in
    # its own zone (the CLI in the user's).
    until = "" if award.valid_until is not None else ", with no expiry"
    return Verdict(VerdictStatus.VALID, f"{title}: valid{until}", **known)
