"""Course completion, certificate status, issuing decisions and the CRM requirement checks."""

from __future__ import annotations

import pytest

from nostr_training.errors import CertificateRefused
from nostr_training.kinds.certificates import CertificateAward, CertificateDefinition, CertificateRevocation
from nostr_training.rules.certification import (
    DAY,
    Certificate,
    certificate_status,
    certificates_from_records,
    check_issue,
    check_requirements,
    course_completion,
    current_certificate,
    expiring,
    expiry,
    holders,
    issue_decision,
    required_lessons,
)
from nostr_training.rules.certification import CertificateStatus as St

from .factories import ALICE, BOB, CAROL, HOST, START, course, module

NOW = START
JAIL = course()
LESSONS = JAIL.lessons


def cert(holder=ALICE, issued=-200 * DAY, days=365, revoked=None, of=JAIL, code="C1"):
    issued_at = NOW + issued
    return Certificate(
        course=of.coordinate,
        holder=holder,
        issued_at=issued_at,
        expires_at=expiry(issued_at, days),
        revoked_at=None if revoked is None else NOW + revoked,
        code=code,
    )


# Course completion --------------------------------------------------------------------------


def test_every_lesson_is_required_when_the_course_names_none():
    assert required_lessons(JAIL) == LESSONS
    assert course_completion(JAIL, set(LESSONS)).complete
    partial = course_completion(JAIL, set(LESSONS[:2]))
    assert not partial.complete and partial.missing == (LESSONS[2],)


def test_named_required_lessons_are_the_only_ones_needed():
    named = course(required_lessons=(LESSONS[0], LESSONS[2]))
    assert course_completion(named, {LESSONS[0], LESSONS[2]}).complete
    assert course_completion(named, {LESSONS[0], LESSONS[1]}).missing == (LESSONS[2],)


def test_module_lessons_count_once():
    grouped = course(modules=(module("Basics", LESSONS[0], LESSONS[1]),))
    assert required_lessons(grouped) == LESSONS


def test_a_course_without_lessons_is_never_complete():
    empty = course(lessons=0)
    assert not course_completion(empty, set()).complete


# Validity and status ------------------------------------------------------------------------


def test_expiry_is_issue_time_plus_validity_days():
    assert expiry(NOW, 180) == NOW + 180 * 86400
    assert expiry(NOW, None) is None


STATUS_CASES = [
    ("no certificate", None, St.MISSING),
    ("issued after now", cert(issued=10), St.MISSING),
    ("valid", cert(issued=-10 * DAY, days=365), St.VALID),
    ("no expiry is valid forever", cert(issued=-5000 * DAY, days=None), St.VALID),
    ("expires in exactly 30 days: expiring", cert(issued=-335 * DAY, days=365), St.EXPIRING),
    ("expires in 30 days and a second: valid", cert(issued=-335 * DAY + 1, days=365), St.VALID),
    ("expires in one second: expiring", cert(issued=-365 * DAY + 1, days=365), St.EXPIRING),
    ("expires now: expired", cert(issued=-365 * DAY, days=365), St.EXPIRED),
    ("revoked", cert(revoked=-DAY), St.REVOKED),
    ("revoked and expired: revoked", cert(issued=-400 * DAY, revoked=-DAY), St.REVOKED),
    ("revoked later than now: still valid now", cert(issued=-10 * DAY, revoked=DAY), St.VALID),
]


@pytest.mark.parametrize(
    "name, certificate, status", STATUS_CASES, ids=[c[0] for c in STATUS_CASES]
)
def test_certificate_status_table(name, certificate, status):
    assert certificate_status(certificate, NOW) is status


def test_expiring_window_is_configurable():
    in_sixty_days = cert(issued=-305 * DAY, days=365)
    assert certificate_status(in_sixty_days, NOW) is St.VALID
    assert certificate_status(in_sixty_days, NOW, expiring_within_days=60) is St.EXPIRING


def test_current_certificate_prefers_a_valid_one_then_the_latest():
    old_expired = cert(issued=-800 * DAY, code="OLD")
    renewed = cert(issued=-10 * DAY, code="NEW")
    assert current_certificate([old_expired, renewed], NOW) == renewed
    revoked_newest = cert(issued=-100 * DAY, revoked=-DAY, code="REV")
    assert current_certificate([old_expired, revoked_newest], NOW) == revoked_newest
    assert current_certificate([], NOW) is None


# Issuing ------------------------------------------------------------------------------------

DONE = course_completion(JAIL, set(LESSONS))


def decide(existing, holder=ALICE, **kw):
    return issue_decision(JAIL, DONE, existing, holder, NOW, **kw)


def test_first_certificate_is_issued_with_its_expiry():
    decision = decide([])
    assert decision.allowed and decision.expires_at == NOW + 180 * DAY
    assert check_issue(JAIL, DONE, [], ALICE, NOW) == NOW + 180 * DAY


def test_course_without_validity_issues_a_certificate_that_never_expires():
    forever = course(validity_days=None)
    done = course_completion(forever, set(forever.lessons))
    assert check_issue(forever, done, [], ALICE, NOW) is None


@pytest.mark.parametrize(
    "name, existing, allowed, reason",
    [
        ("a second valid certificate is refused", [cert(issued=-10 * DAY)], False, "valid"),
        ("an expiring certificate is still valid", [cert(issued=-350 * DAY)], False, "expiring"),
        ("re-certification after expiry is allowed (origin blocked it)",
         [cert(issued=-400 * DAY)], True, "re-certification after expiry"),
        ("a revoked certificate is not re-issued by accident (origin did)",
         [cert(issued=-10 * DAY, revoked=-DAY)], False, "revoked"),
        ("revoked long ago, then re-certified and expired: renewal allowed",
         [cert(issued=-900 * DAY, revoked=-800 * DAY, code="A"), cert(issued=-400 * DAY, code="B")],
         True, "after expiry"),
        ("someone else's certificate does not block", [cert(holder=BOB, issued=-10 * DAY)], True,
         "first certificate"),
        ("another course's certificate does not block",
         [cert(issued=-10 * DAY, of=course(d="opsec"))], True, "first certificate"),
    ],
)
def test_issue_decision_table(name, existing, allowed, reason):
    decision = decide(existing)
    assert decision.allowed is allowed
    assert reason in decision.reason


def test_revoked_certificate_is_re_issued_only_on_the_issuers_explicit_decision():
    revoked = cert(issued=-10 * DAY, revoked=-DAY)
    with pytest.raises(CertificateRefused, match="revoked"):
        check_issue(JAIL, DONE, [revoked], ALICE, NOW)
    decision = decide([revoked], reissue_revoked=True)
    assert decision.allowed and decision.current == revoked


# From awards and revocations ---------------------------------------------------------------

DEFINITION = CertificateDefinition(
    HOST, "jail-support-cert", "Jail Support", course=JAIL.coordinate
)
AWARD_ID = "e" * 64
CODE = "ABCD-EFGH-JKMN-PQRS"


def award(learner=ALICE, issued=-10 * DAY, event_id=AWARD_ID, definition=DEFINITION):
    return CertificateAward(
        author=HOST,
        definition=definition.coordinate,
        learner=learner,
        valid_from=NOW + issued,
        code=CODE,
        created_at=NOW + issued,
        valid_until=expiry(NOW + issued, 180),
        event_id=event_id,
    )


def revocation(at=-DAY, learner=ALICE, award_id=AWARD_ID):
    return CertificateRevocation(HOST, DEFINITION.coordinate, award_id, learner, NOW + at)


UNRELATED = CertificateDefinition(HOST, "other-cert", "Other", course=course(d="opsec").coordinate)


@pytest.mark.parametrize(
    "name, awards, revocations, status",
    [
        ("an award is a valid certificate", [award()], [], St.VALID),
        ("an award with its revocation is revoked", [award()], [revocation()], St.REVOKED),
        ("a revocation whose award was deleted is revoked, never missing", [], [revocation()],
         St.REVOKED),
        ("a revocation of another, deleted award does not touch this one",
         [award()], [revocation(award_id="f" * 64)], St.VALID),
        ("a revocation naming another learner does not revoke the award",
         [award()], [revocation(learner=BOB)], St.VALID),
        ("an award of a definition not given certifies nothing",
         [award(definition=UNRELATED)], [], St.MISSING),
        ("no award and no revocation", [], [], St.MISSING),
    ],
)
def test_certificates_from_records_table(name, awards, revocations, status):
    certs = certificates_from_records([DEFINITION], awards, revocations)
    current = current_certificate([c for c in certs if c.holder == ALICE], NOW)
    assert certificate_status(current, NOW) is status


def test_award_and_revocation_carry_their_dates_and_code():
    revocations = [revocation(-DAY), revocation(-2 * DAY)]
    (got,) = certificates_from_records([DEFINITION], [award()], revocations)
    assert got == Certificate(
        course=JAIL.coordinate,
        holder=ALICE,
        issued_at=NOW - 10 * DAY,
        expires_at=NOW + 170 * DAY,
        revoked_at=NOW - 2 * DAY,
        code=CODE,
        event_id=AWARD_ID,
    )


def test_deleted_award_with_a_revocation_is_not_re_issued_without_the_override():
    certs = certificates_from_records([DEFINITION], [], [revocation()])
    assert [(c.holder, c.revoked_at, c.event_id) for c in certs] == [(ALICE, NOW - DAY, AWARD_ID)]
    decision = decide(certs)
    assert not decision.allowed and "revoked" in decision.reason
    with pytest.raises(CertificateRefused, match="revoked"):
        check_issue(JAIL, DONE, certs, ALICE, NOW)
    assert decide(certs, reissue_revoked=True).allowed


def test_re_issued_after_a_deleted_revoked_award_counts_as_valid():
    again = award(issued=-DAY + 60, event_id="b" * 64)
    certs = certificates_from_records([DEFINITION], [again], [revocation()])
    assert certificate_status(current_certificate(certs, NOW), NOW) is St.VALID
    assert not decide(certs).allowed


def test_incomplete_course_is_refused_naming_the_missing_lessons():
    partial = course_completion(JAIL, {LESSONS[0]})
    with pytest.raises(CertificateRefused, match="lesson-2"):
        check_issue(JAIL, partial, [], ALICE, NOW)


def test_completion_of_another_course_does_not_count():
    other = course(d="opsec")
    done_other = course_completion(other, set(other.lessons))
    assert not issue_decision(JAIL, done_other, [], ALICE, NOW).allowed


def test_certification_must_be_enabled():
    off = course(certification_enabled=False)
    with pytest.raises(CertificateRefused, match="not enabled"):
        check_issue(off, course_completion(off, set(off.lessons)), [], ALICE, NOW)


# CRM ----------------------------------------------------------------------------------------

OPSEC = course(d="opsec")


def test_requirements_per_course_and_overall():
    certs = [
        cert(of=JAIL, issued=-10 * DAY),
        cert(of=OPSEC, issued=-400 * DAY, code="OLD"),
        cert(holder=BOB, of=OPSEC, issued=-10 * DAY),
    ]
    report = check_requirements(ALICE, certs, [JAIL.coordinate, OPSEC.coordinate], NOW)
    assert not report.met
    jail, opsec = report.requirements
    assert (jail.met, jail.status, jail.expires_at) == (True, St.VALID, NOW - 10 * DAY + 365 * DAY)
    assert (opsec.met, opsec.expired, opsec.status) == (False, True, St.EXPIRED)
    assert check_requirements(BOB, certs, [OPSEC.coordinate], NOW).met


def test_expiring_certificate_still_meets_a_requirement_and_missing_does_not():
    certs = [cert(issued=-350 * DAY)]
    report = check_requirements(ALICE, certs, [JAIL.coordinate, OPSEC.coordinate], NOW)
    assert [(r.met, r.status) for r in report.requirements] == [
        (True, St.EXPIRING),
        (False, St.MISSING),
    ]
    assert check_requirements(ALICE, certs, [], NOW).met


def test_expiring_covers_every_holder_soonest_first():
    """The origin's web query saw only the current user's certificates."""
    certs = [
        cert(holder=ALICE, issued=-340 * DAY),
        cert(holder=BOB, issued=-360 * DAY),
        cert(holder=CAROL, issued=-10 * DAY),
        cert(holder=HOST, issued=-360 * DAY, revoked=-DAY),
        cert(holder=CAROL, of=OPSEC, issued=-400 * DAY),
    ]
    assert [c.holder for c in expiring(certs, NOW)] == [BOB, ALICE]
    assert [c.holder for c in expiring(certs, NOW, within_days=400)] == [BOB, ALICE, CAROL]


def test_holders_of_a_course():
    certs = [
        cert(holder=ALICE, issued=-10 * DAY),
        cert(holder=BOB, issued=-400 * DAY),
        cert(holder=CAROL, issued=-10 * DAY, revoked=-DAY),
    ]
    assert holders(certs, JAIL.coordinate, NOW) == (ALICE,)
    assert holders(certs, JAIL.coordinate, NOW, include_expired=True) == tuple(sorted((ALICE, BOB)))
