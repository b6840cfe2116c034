"""Course completion, certificate validity, whether a certificate may be issued, and CRM checks.

A course is complete when every required lesson is; a course that names no required lessons
requires all of its lessons, and a course with no lessons is never complete (there is nothing
to certify). A certificate expires ``validity_days`` after issue (never when the course sets no
validity) and is, at a moment: valid, expiring (expires within N days, default 30), expired,
revoked, or missing.

Issuing follows from the origin's bugs: a second valid certificate is refused (an expiring one
is still valid); a revoked certificate is never re-issued by an automatic award, only when the
issuer asks for it explicitly; an expired one does not block re-certification.

Where a learner holds several certificates for one course, the one that counts is the valid one
expiring last, else the latest issued (so a revocation is not hidden by an older expired one).

On the wire a certificate is a NIP-58 award and its revocation an 8314 record sent with a NIP-09
deletion of the award, so a store that honours the deletion no longer serves the award while the
revocation stays. ``certificates_from_records`` therefore reads a revocation whose award is gone
as a revoked certificate: reading it as missing would re-issue exactly what the origin did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Collection, Iterable

from ..errors import CertificateRefused
from ..kinds.calendar import Course
from ..kinds.certificates import CertificateAward, CertificateDefinition, CertificateRevocation

__all__ = [
    "DAY",
    "CertificateStatus",
    "Certificate",
    "certificates_from_records",
    "expiry",
    "certificate_status",
    "current_certificate",
    "required_lessons",
    "CourseCompletion",
    "course_completion",
    "IssueDecision",
    "issue_decision",
    "check_issue",
    "Requirement",
    "RequirementsReport",
    "check_requirements",
    "expiring",
    "holders",
]

DAY = 86400


class CertificateStatus(enum.Enum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"
    MISSING = "missing"


_HELD = frozenset({CertificateStatus.VALID, CertificateStatus.EXPIRING})


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate of ``course`` (its coordinate) held by ``holder`` (a pubkey)."""

    course: str
    holder: str
    issued_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    code: str = ""
    event_id: str | None = None


def certificates_from_records(
    definitions: Iterable[CertificateDefinition],
    awards: Iterable[CertificateAward],
    revocations: Iterable[CertificateRevocation],
) -> tuple[Certificate, ...]:
    """The rule's certificates from parsed 30009 definitions, kind-8 awards and 8314 revocations.

    A revocation applies to the award it names when that award has the same definition and
    learner, at its earliest ``created_at``. One matching no award given (the award was deleted)
    becomes a revoked certificate of its own definition and learner, issued and revoked at that
    moment since the award's dates went with it. Only definitions naming a course count here.
    """
    courses = {d.coordinate: d.course for d in definitions if d.course is not None}
    awards = {a for a in awards if a.definition in courses}
    revoked: dict[tuple[str | None, str, str], int] = {}
    for r in revocations:
        key = (r.award, r.definition, r.learner)
        revoked[key] = min(r.created_at, revoked.get(key, r.created_at))
    out = {
        Certificate(
            course=courses[a.definition],
            holder=a.learner,
            issued_at=a.valid_from,
            expires_at=a.valid_until,
            revoked_at=revoked.get((a.event_id, a.definition, a.learner)),
            code=a.code,
            event_id=a.event_id,
        )
        for a in awards
    }
    present = {(a.event_id, a.definition, a.learner) for a in awards}
    for (award_id, definition, learner), at in revoked.items():
        if (award_id, definition, learner) not in present and definition in courses:
            out.add(Certificate(courses[definition], learner, at, None, at, "", award_id))
    return tuple(sorted(out, key=lambda c: (c.course, c.holder, c.issued_at, c.event_id or "")))


def expiry(issued_at: int, validity_days: int | None) -> int | None:
    """``issued_at`` + ``validity_days`` days, or None for a certificate that does not expire."""
    return None if validity_days is None else issued_at + validity_days * DAY


def certificate_status(
    cert: Certificate | None, now: int, expiring_within_days: int = 30
) -> CertificateStatus:
    """Status at ``now``; expired from ``expires_at`` on, expiring when that is within N days."""
    if cert is None or cert.issued_at > now:
        return CertificateStatus.MISSING
    if cert.revoked_at is not None and cert.revoked_at <= now:
        return CertificateStatus.REVOKED
    if cert.expires_at is None:
        return CertificateStatus.VALID
    if now >= cert.expires_at:
        return CertificateStatus.EXPIRED
    if cert.expires_at - now <= expiring_within_days * DAY:
        return CertificateStatus.EXPIRING
    return CertificateStatus.VALID


def current_certificate(certs: Iterable[Certificate], now: int) -> Certificate | None:
    """The certificate that decides the status (see the module docstring); None if none issued."""
    issued = [c for c in set(certs) if c.issued_at <= now]
    held = [c for c in issued if certificate_status(c, now) in _HELD]
    if held:
        return max(
            held, key=lambda c: (c.expires_at is None, c.expires_at or 0, c.issued_at, c.code)
        )
    return max(issued, key=lambda c: (c.issued_at, c.revoked_at is not None, c.code), default=None)


def required_lessons(course: Course) -> tuple[str, ...]:
    """The lesson coordinates a learner must complete: the named ones, else every lesson."""
    if course.required_lessons:
        return course.required_lessons
    every = list(course.lessons)
    for module in course.modules:
        every.extend(module.lessons)
    return tuple(dict.fromkeys(every))


@dataclass(frozen=True, slots=True)
class CourseCompletion:
    course: str
    complete: bool
    required: tuple[str, ...]
    missing: tuple[str, ...]


def course_completion(course: Course, completed_lessons: Collection[str]) -> CourseCompletion:
    """Whether every required lesson is among ``completed_lessons`` (lesson coordinates)."""
    required = required_lessons(course)
    missing = tuple(lesson for lesson in required if lesson not in completed_lessons)
    return CourseCompletion(
        course=course.coordinate,
        complete=bool(required) and not missing,
        required=required,
        missing=missing,
    )


@dataclass(frozen=True, slots=True)
class IssueDecision:
    allowed: bool
    reason: str
    expires_at: int | None = None
    current: Certificate | None = None


def issue_decision(
    course: Course,
    completion: CourseCompletion,
    existing: Iterable[Certificate],
    holder: str,
    now: int,
    *,
    reissue_revoked: bool = False,
) -> IssueDecision:
    """May ``holder`` be issued a certificate of ``course`` at ``now``, and until when.

    ``existing`` may hold anyone's certificates; only the holder's for this course count.
    ``reissue_revoked`` is the issuer's explicit decision to certify again after a revocation.
    """
    name = course.coordinate
    if not course.certification_enabled:
        return IssueDecision(False, f"course {course.d}: certification is not enabled")
    if completion.course != name or not completion.complete:
        missing = ", ".join(completion.missing) or "no lessons"
        return IssueDecision(False, f"course {course.d}: not complete (missing: {missing})")
    mine = [c for c in existing if c.course == name and c.holder == holder]
    current = current_certificate(mine, now)
    status = certificate_status(current, now)
    if status in _HELD:
        assert current is not None  # a held status comes from a certificate
        return IssueDecision(
            False,
            f"course {course.d}: {holder[:16]} already holds a {status.value} certificate "
            f"{current.code}".rstrip(),
            current=current,
        )
    if status is CertificateStatus.REVOKED and not reissue_revoked:
        assert current is not None  # so does a revoked one
        return IssueDecision(
            False,
            f"course {course.d}: certificate {current.code} was revoked at {current.revoked_at}; "
            "re-issuing needs the issuer's explicit decision",
            current=current,
        )
    reason = {
        CertificateStatus.MISSING: "first certificate",
        CertificateStatus.EXPIRED: "re-certification after expiry",
        CertificateStatus.REVOKED: "re-issue after revocation, by the issuer's decision",
    }[status]
    return IssueDecision(True, reason, expiry(now, course.validity_days), current)


def check_issue(
    course: Course,
    completion: CourseCompletion,
    existing: Iterable[Certificate],
    holder: str,
    now: int,
    *,
    reissue_revoked: bool = False,
) -> int | None:
    """The new certificate's expiry; raises ``CertificateRefused`` when it must not be issued."""
    decision = issue_decision(
        course, completion, existing, holder, now, reissue_revoked=reissue_revoked
    )
    if not decision.allowed:
        raise CertificateRefused(decision.reason)
    return decision.expires_at


@dataclass(frozen=True, slots=True)
class Requirement:
    course: str
    met: bool
    status: CertificateStatus
    expires_at: int | None
    certificate: Certificate | None

    @property
    def expired(self) -> bool:
        return self.status is CertificateStatus.EXPIRED


@dataclass(frozen=True, slots=True)
class RequirementsReport:
    holder: str
    met: bool
    requirements: tuple[Requirement, ...]


def check_requirements(
    holder: str,
    certs: Iterable[Certificate],
    required_courses: Iterable[str],
    now: int,
    expiring_within_days: int = 30,
) -> RequirementsReport:
    """Per required course: met while the holder's current certificate is valid or expiring."""
    mine = [c for c in certs if c.holder == holder]
    rows = []
    for course in dict.fromkeys(required_courses):
        current = current_certificate((c for c in mine if c.course == course), now)
        status = certificate_status(current, now, expiring_within_days)
        rows.append(
            Requirement(
                course=course,
                met=status in _HELD,
                status=status,
                expires_at=current.expires_at if current else None,
                certificate=current,
            )
        )
    return RequirementsReport(holder, all(r.met for r in rows), tuple(rows))


def _current_by_holder_course(
    certs: Iterable[Certificate], now: int
) -> dict[tuple[str, str], Certificate]:
    groups: dict[tuple[str, str], list[Certificate]] = {}
    for cert in certs:
        groups.setdefault((cert.holder, cert.course), []).append(cert)
    out = {}
    for key, group in groups.items():
        current = current_certificate(group, now)
        if current is not None:
            out[key] = current
    return out


def expiring(
    certs: Iterable[Certificate], now: int, within_days: int = 30
) -> tuple[Certificate, ...]:
    """Current certificates of every holder that expire within ``within_days``, soonest first."""
    found = [
        c
        for c in _current_by_holder_course(certs, now).values()
        if certificate_status(c, now, within_days) is CertificateStatus.EXPIRING
    ]
    return tuple(sorted(found, key=lambda c: (c.expires_at, c.holder, c.course)))


def holders(
    certs: Iterable[Certificate], course: str, now: int, *, include_expired: bool = False
) -> tuple[str, ...]:
    """Pubkeys certified in ``course`` at ``now`` (expired ones too if asked); never revoked."""
    accepted = set(_HELD) | ({CertificateStatus.EXPIRED} if include_expired else set())
    return tuple(
        sorted(
            holder
            for (holder, c), cert in _current_by_holder_course(certs, now).items()
            if c == course and certificate_status(cert, now) in accepted
        )
    )
