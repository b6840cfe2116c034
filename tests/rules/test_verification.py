"""Offline certificate verification: each way a certificate can fail gives its own answer."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, NotFound
from nostr_training.event import Event, EventTemplate, coordinate, sign_event
from nostr_training.keys import Keys
from nostr_training.rules.verification import EXIT_CODES, Problem, verify_certificate
from nostr_training.rules.verification import VerdictStatus as V

INSTRUCTOR = Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
LEARNER = Keys.from_hex("c15d2a640a7bd00f291e074e5e9c1b0bb8b2bbb0f0c2b4a7e5b8e0a63d4a1b2c")
SCHOOL = Keys.from_hex("3b2d9a3f1c0e5e8c7a6b5d4c3b2a19080706050403020100f0e0d0c0b0a09080")
FORGER = Keys.from_hex("5c0c523f52a5b6fad39ed2403092df8cebc36318b39383bca6c00808626fab3a")
DAY = 86400
T = 1_800_000_000
CODE = k.verification_code(bytes(range(10)))


def sign(template, keys: Keys) -> Event:
    return sign_event(template, keys.secret)


def course_event(author: Keys = INSTRUCTOR, issuer: Keys | None = None, d: str = "jail-support") -> Event:
    signer = issuer or author
    course = k.Course(
        author=author.public_key,
        d=d,
        title="Jail Support",
        lessons=(coordinate(k.LESSON, author.public_key, "role-play-1"),),
        certification_enabled=True,
        validity_days=180,
        issuer=issuer.public_key if issuer else None,
        certificate=coordinate(k.BADGE_DEFINITION, signer.public_key, f"{d}-cert"),
    )
    return sign(k.build_course(course, created_at=T - 30 * DAY), author)


def definition_event(signer: Keys, course: Event, d: str = "jail-support-cert") -> Event:
    definition = k.CertificateDefinition(
        author=signer.public_key, d=d, name="Jail Support Volunteer", course=course.address
    )
    return sign(k.build_certificate_definition(definition, created_at=T - 30 * DAY), signer)


def award_event(
    signer: Keys, definition: Event, learner: Keys = LEARNER, *, code: str = CODE, valid_until: int | None = T + 180 * DAY
) -> Event:
    template = k.build_certificate_award(
        definition.address, learner.public_key, valid_from=T, valid_until=valid_until, code=code, created_at=T
    )
    return sign(template, signer)


def bundle(award: Event, definition: Event, course: Event, revocations=()) -> k.CertificateBundle:
    return k.build_certificate_bundle(award, definition, course, revocations, exported_at=T + DAY)


def genuine() -> tuple[Event, Event, Event]:
    course = course_event()
    definition = definition_event(INSTRUCTOR, course)
    return award_event(INSTRUCTOR, definition), definition, course


def edited(event: Event, **changes) -> Event:
    """The event with fields changed and the old id and signature kept: a tampered copy."""
    return dataclasses.replace(event, **changes)


def revocation(award: Event, signer: Keys = INSTRUCTOR, at: int = T + 10 * DAY, reason: str = "issued in error") -> Event:
    parsed = k.parse_certificate_award(award)
    return sign(k.build_certificate_revocation(parsed, created_at=at, reason=reason), signer)


# The good cases --------------------------------------------------------------------------------


def test_a_genuine_bundle_is_valid_with_holder_course_issuer_and_dates():
    award, definition, course = genuine()
    verdict = verify_certificate(bundle(award, definition, course), now=T + DAY)
    assert verdict.status is V.VALID and verdict.exit_code == 0 and verdict.problem is None
    assert verdict.holder == LEARNER.public_key
    assert verdict.issuer == INSTRUCTOR.public_key
    assert verdict.course == course.address and verdict.course_title == "Jail Support"
    assert verdict.certificate_name == "Jail Support Volunteer"
    assert (verdict.valid_from, verdict.valid_until, verdict.code) == (T, T + 180 * DAY, CODE)
    assert verdict.days_left == 179
    as_json = verdict.to_dict()
    assert as_json["holder_npub"] == LEARNER.npub and as_json["status"] == "valid"
    json.dumps(as_json)


def test_the_exported_file_alone_verifies_after_a_round_trip_through_json():
    award, definition, course = genuine()
    text = k.bundle_to_json(bundle(award, definition, course))
    read = k.parse_certificate_bundle(text.encode("utf-8"))
    assert read == bundle(award, definition, course)
    assert verify_certificate(read, now=T + DAY).status is V.VALID


def test_expiring_within_the_window_still_holds():
    award, definition, course = genuine()
    verdict = verify_certificate(bundle(award, definition, course), now=T + 170 * DAY)
    assert verdict.status is V.EXPIRING and verdict.exit_code == 0 and verdict.days_left == 10
    assert verify_certificate(bundle(award, definition, course), now=T + 170 * DAY, expiring_days=5).status is V.VALID


def test_an_award_without_valid_until_never_expires():
    course = course_event()
    definition = definition_event(INSTRUCTOR, course)
    award = award_event(INSTRUCTOR, definition, valid_until=None)
    verdict = verify_certificate(bundle(award, definition, course), now=T + 5000 * DAY)
    assert verdict.status is V.VALID and verdict.days_left is None


def test_a_school_key_named_by_the_course_issues_and_the_instructor_then_cannot():
    course = course_event(issuer=SCHOOL)
    definition = definition_event(SCHOOL, course)
    assert verify_certificate(bundle(award_event(SCHOOL, definition), definition, course), now=T).status is V.VALID
    own = definition_event(INSTRUCTOR, course)
    verdict = verify_certificate(bundle(award_event(INSTRUCTOR, own), own, course), now=T)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.FOREIGN_KEY)


def test_events_from_an_index_verify_like_a_bundle_and_a_code_finds_its_award():
    award, definition, course = genuine()
    other_course = course_event(d="opsec")
    other_definition = definition_event(INSTRUCTOR, other_course, d="opsec-cert")
    other = award_event(INSTRUCTOR, other_definition, code=k.verification_code(bytes(10)))
    events = [other, award, definition, course, other_definition, other_course]
    typed = CODE.lower().replace("-", " ").replace("1", "l")
    verdict = verify_certificate(events, now=T, code=typed)
    assert verdict.status is V.VALID and verdict.award_id == award.id
    assert verify_certificate(events, now=T, code="ZZZZ-ZZZZ-ZZZZ-ZZZZ").status is V.NOT_FOUND
    assert verify_certificate(events, now=T, code="not a code").status is V.NOT_FOUND


def test_a_forgery_copying_a_genuine_code_does_not_hide_the_genuine_certificate():
    award, definition, course = genuine()
    forged_definition = definition_event(FORGER, course, d="fake")
    forged = award_event(FORGER, forged_definition)
    events = [forged, forged_definition, award, definition, course]
    verdict = verify_certificate(events, now=T, code=CODE)
    assert verdict.status is V.VALID and verdict.issuer == INSTRUCTOR.public_key
    alone = verify_certificate([forged, forged_definition, course], now=T, code=CODE)
    assert (alone.status, alone.problem) == (V.INVALID, Problem.FOREIGN_KEY)


# Each failure gets its own answer --------------------------------------------------------------


def test_an_expired_certificate():
    award, definition, course = genuine()
    verdict = verify_certificate(bundle(award, definition, course), now=T + 180 * DAY)
    assert verdict.status is V.EXPIRED and verdict.exit_code == 3 and verdict.problem is None


def test_a_revoked_certificate_names_when_and_why():
    award, definition, course = genuine()
    revoked = bundle(award, definition, course, [revocation(award)])
    verdict = verify_certificate(revoked, now=T + 11 * DAY)
    assert verdict.status is V.REVOKED and verdict.exit_code == 4
    assert (verdict.revoked_at, verdict.revocation_reason) == (T + 10 * DAY, "issued in error")
    assert verify_certificate(revoked, now=T + 5 * DAY).status is V.VALID, "not revoked before it was"
    assert verify_certificate(revoked, now=T + 400 * DAY).status is V.REVOKED, "revoked beats expired"


def test_a_hash_only_marker_revokes_a_private_award():
    award, definition, course = genuine()
    marker = sign(k.build_revocation_marker(award.id, created_at=T + DAY), INSTRUCTOR)
    verdict = verify_certificate(bundle(award, definition, course, [marker]), now=T + 2 * DAY)
    assert verdict.status is V.REVOKED and verdict.revocation_reason == ""  # a marker says no reason
    assert verify_certificate([award, definition, course, marker], now=T + 2 * DAY).status is V.REVOKED


def test_revocations_by_anyone_but_the_issuer_or_of_other_awards_change_nothing():
    award, definition, course = genuine()
    other = award_event(INSTRUCTOR, definition, SCHOOL, code=k.verification_code(bytes(10)))
    foreign_marker = sign(k.build_revocation_marker(award.id, created_at=T + DAY), FORGER)
    other_revoked = revocation(other)
    verdict = verify_certificate(
        bundle(award, definition, course, [foreign_marker, other_revoked]), now=T + 20 * DAY
    )
    assert verdict.status is V.VALID


def test_a_self_issued_certificate_is_invalid():
    course = course_event()
    own_definition = definition_event(LEARNER, course, d="my-cert")
    selfie = award_event(LEARNER, own_definition, LEARNER)
    verdict = verify_certificate(bundle(selfie, own_definition, course), now=T)
    assert (verdict.status, verdict.problem, verdict.exit_code) == (V.INVALID, Problem.SELF_ISSUED, 6)


def test_even_the_issuer_cannot_certify_themselves():
    course = course_event()
    definition = definition_event(INSTRUCTOR, course)
    award_to_self = award_event(INSTRUCTOR, definition, INSTRUCTOR)
    verdict = verify_certificate(bundle(award_to_self, definition, course), now=T)
    assert verdict.problem is Problem.SELF_ISSUED
    school_course = course_event(issuer=SCHOOL)
    school_definition = definition_event(SCHOOL, school_course)
    verdict = verify_certificate(
        bundle(award_event(SCHOOL, school_definition, SCHOOL), school_definition, school_course), now=T
    )
    assert verdict.problem is Problem.SELF_ISSUED


def test_another_key_claiming_the_course_is_invalid():
    award, definition, course = genuine()
    forged_definition = definition_event(FORGER, course)
    forged = award_event(FORGER, forged_definition)
    verdict = verify_certificate(bundle(forged, forged_definition, course), now=T)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.FOREIGN_KEY)
    borrowing = sign(EventTemplate(k.BADGE_AWARD, award.tags, "", T), FORGER)
    verdict = verify_certificate([borrowing, definition, course], now=T)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.FOREIGN_KEY)


@pytest.mark.parametrize("role", ["award", "definition", "course", "revocation"])
def test_a_tampered_event_makes_the_bundle_invalid(role):
    award, definition, course = genuine()
    revoked = revocation(award)
    events = {"award": award, "definition": definition, "course": course, "revocation": revoked}
    target = events[role]
    events[role] = edited(target, created_at=target.created_at + 1)
    verdict = verify_certificate(
        k.CertificateBundle(events["award"], events["definition"], events["course"], (events["revocation"],), CODE),
        now=T + 11 * DAY,
    )
    assert (verdict.status, verdict.problem, verdict.exit_code) == (V.INVALID, Problem.TAMPERED, 6)


def test_changing_any_tag_of_a_signed_event_never_verifies():
    award, definition, course = genuine()
    for role in ("award", "definition", "course"):
        for index in range(len({"award": award, "definition": definition, "course": course}[role].tags)):
            events = {"award": award, "definition": definition, "course": course}
            target = events[role]
            tags = list(target.tags)
            tags[index] = (tags[index][0], tags[index][1] + "0", *tags[index][2:])
            events[role] = edited(target, tags=tuple(tags))
            verdict = verify_certificate(
                k.CertificateBundle(events["award"], events["definition"], events["course"]), now=T
            )
            assert verdict.status is V.INVALID and verdict.problem is Problem.TAMPERED, (role, index)


def test_a_forged_signature_is_tampered():
    award, definition, course = genuine()
    verdict = verify_certificate(bundle(edited(award, sig="00" * 64), definition, course), now=T)
    assert verdict.problem is Problem.TAMPERED


def test_an_edited_display_code_is_refused():
    award, definition, course = genuine()
    shown = dataclasses.replace(bundle(award, definition, course), code="ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    verdict = verify_certificate(shown, now=T)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.CODE_MISMATCH)


def test_an_award_whose_code_was_edited_is_tampered_not_a_code_mismatch():
    award, definition, course = genuine()
    tags = tuple(("code", "ZZZZ-ZZZZ-ZZZZ-ZZZZ") if t[0] == "code" else t for t in award.tags)
    verdict = verify_certificate(k.CertificateBundle(edited(award, tags=tags), definition, course, (), CODE), now=T)
    assert verdict.problem is Problem.TAMPERED


def test_missing_pieces_are_incomplete_and_no_award_is_not_found():
    award, definition, course = genuine()
    assert verify_certificate([award, course], now=T).problem is Problem.INCOMPLETE
    assert verify_certificate([award, definition], now=T).problem is Problem.INCOMPLETE
    verdict = verify_certificate([definition, course], now=T)
    assert verdict.status is V.NOT_FOUND and verdict.exit_code == 5
    assert verify_certificate([], now=T).status is V.NOT_FOUND


def test_a_definition_naming_no_course_is_incomplete():
    course = course_event()
    bare = sign(
        k.build_certificate_definition(
            k.CertificateDefinition(INSTRUCTOR.public_key, "jail-support-cert", "Jail Support Volunteer"),
            created_at=T,
        ),
        INSTRUCTOR,
    )
    verdict = verify_certificate([award_event(INSTRUCTOR, bare), bare, course], now=T)
    assert verdict.problem is Problem.INCOMPLETE


def test_a_certificate_before_its_valid_from_is_not_yet_valid():
    award, definition, course = genuine()
    verdict = verify_certificate(bundle(award, definition, course), now=T - 1)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.NOT_YET_VALID)


def test_a_malformed_award_is_malformed():
    award, definition, course = genuine()
    broken = sign(EventTemplate(k.BADGE_AWARD, tuple(t for t in award.tags if t[0] != "code"), "", T), INSTRUCTOR)
    verdict = verify_certificate([broken, definition, course], now=T)
    assert (verdict.status, verdict.problem) == (V.INVALID, Problem.MALFORMED)


def test_every_status_has_an_exit_code_and_only_valid_and_expiring_pass():
    assert set(EXIT_CODES) == set(V)
    assert {s for s, code in EXIT_CODES.items() if code == 0} == {V.VALID, V.EXPIRING}
    negative = [code for code in EXIT_CODES.values() if code != 0]
    assert len(set(negative)) == len(negative) and not {1, 2} & set(negative)  # 1 failure, 2 usage


# The bundle file -------------------------------------------------------------------------------


def _file(**changes) -> dict:
    award, definition, course = genuine()
    data = k.bundle_to_dict(bundle(award, definition, course))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": 2}, "bundle.version"),
        ({"version": "1"}, "bundle.version"),
        ({"format": "something-else"}, "bundle.format"),
        ({"award": {"id": "x"}}, "bundle.award"),
        ({"revocations": {}}, "bundle.revocations"),
        ({"code": 7}, "bundle.code"),
        ({"exported_at": -1}, "bundle.exported_at"),
    ],
)
def test_a_bundle_with_a_bad_field_is_refused_naming_it(changes, field):
    with pytest.raises(MalformedEvent) as caught:
        k.parse_certificate_bundle(json.dumps(_file(**changes)))
    assert caught.value.field == field


def test_a_bundle_holding_the_wrong_kinds_is_refused():
    award, definition, course = genuine()
    data = k.bundle_to_dict(bundle(award, definition, course))
    data["course"], data["definition"] = data["definition"], data["course"]
    with pytest.raises(MalformedEvent, match="bundle.definition"):
        k.parse_certificate_bundle(data)
    with pytest.raises(MalformedEvent, match="bundle.json"):
        k.parse_certificate_bundle("{not json")
    with pytest.raises(MalformedEvent, match="bundle.json"):
        k.parse_certificate_bundle("[]")


def test_building_a_bundle_refuses_events_that_do_not_belong_together():
    award, definition, course = genuine()
    with pytest.raises(MalformedEvent, match="bundle.definition"):
        k.build_certificate_bundle(award, definition_event(INSTRUCTOR, course, d="other"), course, exported_at=T)
    with pytest.raises(MalformedEvent, match="bundle.course"):
        k.build_certificate_bundle(award, definition, course_event(d="opsec"), exported_at=T)
    with pytest.raises(MalformedEvent, match="bundle.award"):
        k.build_certificate_bundle(definition, definition, course, exported_at=T)
    with pytest.raises(MalformedEvent, match="bundle.revocations"):
        k.build_certificate_bundle(award, definition, course, [award], exported_at=T)


def test_collecting_a_bundle_from_an_index_takes_the_newest_versions_and_the_issuers_revocations():
    award, definition, course = genuine()
    newer_course = sign(
        EventTemplate(course.kind, tuple(t if t[0] != "title" else ("title", "Jail Support 2") for t in course.tags), "", course.created_at + 1),
        INSTRUCTOR,
    )
    other = award_event(INSTRUCTOR, definition, SCHOOL, code=k.verification_code(bytes(10)))
    public = revocation(award, at=T + 3 * DAY)
    marker = sign(k.build_revocation_marker(award.id, created_at=T + 2 * DAY), INSTRUCTOR)
    foreign = sign(k.build_revocation_marker(award.id, created_at=T + DAY), FORGER)
    pile = [other, course, newer_course, definition, revocation(other), foreign, public, marker, award]
    collected = k.collect_certificate_bundle(award, pile, exported_at=T + 4 * DAY)
    assert collected.course == newer_course and collected.definition == definition
    assert collected.revocations == (marker, public)
    verdict = verify_certificate(k.parse_certificate_bundle(k.bundle_to_json(collected)), now=T + 4 * DAY)
    assert verdict.status is V.REVOKED and verdict.revoked_at == T + 2 * DAY
    assert verdict.course_title == "Jail Support 2"


def test_collecting_a_bundle_names_what_is_missing():
    award, definition, course = genuine()
    with pytest.raises(NotFound, match="definition"):
        k.collect_certificate_bundle(award, [course], exported_at=T)
    with pytest.raises(NotFound, match="course"):
        k.collect_certificate_bundle(award, [definition], exported_at=T)
