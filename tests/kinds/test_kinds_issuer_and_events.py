"""A course's issuer tag, hash-only revocation markers, door check-ins and events linked to training."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import EventTemplate, coordinate
from nostr_training.keys import Keys
from nostr_training.rules.certification import CertificateStatus, certificate_status, certificates_from_records

from kinds_samples import HOST, LEARNER, NOW, START, award_event, lesson_value, replaced, resigned, samples, signed, without

SCHOOL = Keys.from_hex("3b2d9a3f1c0e5e8c7a6b5d4c3b2a19080706050403020100f0e0d0c0b0a09080")


def course(**changes) -> k.Course:
    base = k.Course(author=HOST.public_key, d="jail-support", title="Jail Support", certification_enabled=True)
    return dataclasses.replace(base, **changes)


# Course issuer -------------------------------------------------------------------------------


def test_a_course_names_its_issuer_and_reads_it_back():
    definition = coordinate(k.BADGE_DEFINITION, SCHOOL.public_key, "cert")
    value = course(issuer=SCHOOL.public_key, certificate=definition)
    event = signed(k.build_course(value, created_at=NOW))
    assert ("issuer", SCHOOL.public_key) in event.tags
    parsed = k.parse_course(event)
    assert parsed.issuer == SCHOOL.public_key and parsed.certificate_issuer == SCHOOL.public_key


def test_without_an_issuer_tag_the_author_issues():
    parsed = k.parse_course(signed(k.build_course(course(), created_at=NOW)))
    assert parsed.issuer is None and parsed.certificate_issuer == HOST.public_key


def test_a_course_naming_a_definition_by_another_key_than_its_issuer_is_refused():
    by_host = coordinate(k.BADGE_DEFINITION, HOST.public_key, "cert")
    with pytest.raises(MalformedEvent, match="certificate: the definition is not signed by the course's issuer"):
        k.build_course(course(issuer=SCHOOL.public_key, certificate=by_host), created_at=NOW)
    by_school = coordinate(k.BADGE_DEFINITION, SCHOOL.public_key, "cert")
    with pytest.raises(MalformedEvent, match="not signed by the course's issuer"):
        k.build_course(course(certificate=by_school), created_at=NOW)
    event = signed(k.build_course(course(issuer=SCHOOL.public_key, certificate=by_school), created_at=NOW))
    with pytest.raises(MalformedEvent, match="not signed by the course's issuer"):
        k.parse_course(replaced(event, "issuer", LEARNER.public_key))
    with pytest.raises(MalformedEvent, match="issuer: must be a 64-character"):
        k.parse_course(replaced(event, "issuer", "npub1xyz"))
    with pytest.raises(MalformedEvent, match="issuer"):
        k.build_course(course(issuer="ab" * 31), created_at=NOW)


# Hash-only revocation marker -----------------------------------------------------------------


def test_a_marker_names_only_the_hash_of_the_award_id():
    award = award_event()
    event = signed(k.build_revocation_marker(award.id, created_at=START + 10))
    assert {t[0] for t in event.tags} == {"x", "alt"}
    assert LEARNER.public_key not in event.to_json() and award.id not in event.to_json()
    marker = k.parse_revocation(event)
    assert isinstance(marker, k.RevocationMarker)
    assert marker.award_hash == hashlib.sha256(bytes.fromhex(award.id)).hexdigest() == k.award_hash(award.id)
    assert marker.names(award.id) and not marker.names("0" * 64)
    assert (marker.reason, marker.created_at, marker.author) == ("", START + 10, HOST.public_key)
    assert event.content == ""  # no reason: it would say something about the holder


def test_parse_revocation_reads_both_forms():
    public = samples()["certificate_revocation"][0]
    assert isinstance(k.parse_revocation(signed(public)), k.CertificateRevocation)


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (lambda e: without(e, "x"), MissingTag, "'x'"),
        (lambda e: replaced(e, "x", "ZZ" * 32), MalformedEvent, "x: must be a 64-character lowercase sha256"),
        (lambda e: resigned(e, tags=e.tags + (("p", LEARNER.public_key),)), MalformedEvent, "names nothing but x"),
        (lambda e: resigned(e, tags=e.tags + (("a", coordinate(30009, HOST.public_key, "c")),)), MalformedEvent, "names nothing but x"),
    ],
)
def test_a_malformed_marker_is_refused(change, error, text):
    event = change(signed(k.build_revocation_marker(award_event().id, created_at=START)))
    with pytest.raises(error, match=text):
        k.parse_revocation_marker(event)


def test_a_marker_revokes_in_the_certification_rules_only_for_the_awards_issuer():
    award = k.parse_certificate_award(award_event())
    definition = k.parse_certificate_definition(signed(samples()["certificate_definition"][0]))
    mine = k.parse_revocation(signed(k.build_revocation_marker(award.event_id, created_at=START + 50)))
    theirs = k.parse_revocation(signed(k.build_revocation_marker(award.event_id, created_at=START + 50), LEARNER))
    (revoked,) = certificates_from_records([definition], [award], [mine])
    assert certificate_status(revoked, START + 60) is CertificateStatus.REVOKED
    (kept,) = certificates_from_records([definition], [award], [theirs])
    assert certificate_status(kept, START + 60) is CertificateStatus.VALID
    assert certificates_from_records([definition], [], [mine]) == ()


# Profile badges: the learner accepts ------------------------------------------------------------


def test_accepting_adds_the_pair_last_keeps_other_badges_and_is_idempotent():
    award = k.parse_certificate_award(award_event())
    other = (coordinate(k.BADGE_DEFINITION, SCHOOL.public_key, "first-aid"), "9" * 64)
    current = signed(
        EventTemplate(k.PROFILE_BADGES, (("a", other[0]), ("e", other[1]), ("t", "kept")), "", START), LEARNER
    )
    accepted = signed(k.build_profile_badge_acceptance(award, created_at=START + 1, current=current), LEARNER)
    shown = k.parse_profile_badges(accepted)
    assert shown.pairs == (other, (award.definition, award.event_id)) and ("t", "kept") in accepted.tags
    again = k.build_profile_badge_acceptance(award, created_at=START + 2, current=accepted)
    assert again.tags == accepted.tags


def test_the_legacy_30008_profile_badges_is_read_and_rewritten_as_10008():
    award = k.parse_certificate_award(award_event())
    other = (coordinate(k.BADGE_DEFINITION, SCHOOL.public_key, "first-aid"), "9" * 64)
    legacy = signed(EventTemplate(30008, (("d", "profile_badges"), ("a", other[0]), ("e", other[1])), "", START), LEARNER)
    assert k.parse_profile_badges(legacy).pairs == (other,)
    rewritten = k.build_profile_badge_acceptance(award, created_at=START + 1, current=legacy)
    assert rewritten.kind == k.PROFILE_BADGES and not [t for t in rewritten.tags if t[0] == "d"]
    assert k.parse_profile_badges(signed(rewritten, LEARNER)).pairs == (other, (award.definition, award.event_id))
    badge_set = signed(EventTemplate(30008, (("d", "travel"),), "", START), LEARNER)
    with pytest.raises(MalformedEvent, match="expected kind 10008"):
        k.parse_profile_badges(badge_set)


def test_unpaired_badge_tags_are_ignored():
    definition = coordinate(k.BADGE_DEFINITION, HOST.public_key, "c")
    tags = (("a", definition), ("a", definition), ("e", "1" * 64), ("e", "2" * 64), ("e", "not hex"), ("a", definition))
    event = signed(EventTemplate(k.PROFILE_BADGES, tags, "", START), LEARNER)
    assert k.parse_profile_badges(event).pairs == ((definition, "1" * 64),)


# Door check-in/check-out -----------------------------------------------------------------------


def test_a_door_check_reads_back():
    lesson = lesson_value().coordinate
    event = signed(k.build_door_check(lesson, LEARNER.public_key, "check_out", at=START + 60, created_at=START + 3600))
    check = k.parse_door_check(event)
    assert check == k.DoorCheck(
        HOST.public_key, lesson, LEARNER.public_key, k.DoorAction.CHECK_OUT, START + 60, START + 3600, event.id
    )


DOOR_CASES = [
    (lambda e: without(e, "p"), MissingTag, "'p'"),
    (lambda e: resigned(e, tags=e.tags + (("p", HOST.public_key),)), MalformedEvent, "exactly one learner"),
    (lambda e: replaced(e, "p", HOST.public_key), MalformedEvent, "cannot check themselves in"),
    (lambda e: replaced(e, "action", "join"), MalformedEvent, "action: must be one of check_in|check_out"),
    (lambda e: without(e, "at"), MissingTag, "'at'"),
    (lambda e: replaced(e, "at", str(START + 999)), MalformedEvent, "is after the event's created_at"),
    (lambda e: replaced(e, "a", coordinate(k.COURSE, HOST.public_key, "c")), MalformedEvent, "no a tag points at kind 31923"),
]


@pytest.mark.parametrize(("change", "error", "text"), DOOR_CASES)
def test_a_malformed_door_check_is_refused(change, error, text):
    event = signed(k.build_door_check(lesson_value().coordinate, LEARNER.public_key, "check_in", at=START, created_at=START + 5))
    with pytest.raises(error, match=text):
        k.parse_door_check(change(event))


def test_a_door_check_builder_refuses_what_the_parser_would():
    lesson = lesson_value().coordinate
    with pytest.raises(MalformedEvent, match="check_in|check_out"):
        k.build_door_check(lesson, LEARNER.public_key, "enter", at=START, created_at=START)
    with pytest.raises(MalformedEvent, match="after the event's created_at"):
        k.build_door_check(lesson, LEARNER.public_key, "check_in", at=START + 1, created_at=START)
    with pytest.raises(MalformedEvent, match="must point at kind 31923"):
        k.build_door_check(coordinate(k.COURSE, HOST.public_key, "c"), LEARNER.public_key, "check_in", at=START, created_at=START)


# Events linked to training --------------------------------------------------------------------


def street_event(**changes) -> k.Lesson:
    return lesson_value(d="street-day", course=None, room=None, location="Town hall, room 2", **changes)


def test_linking_an_event_adds_the_course_and_lesson_and_replaces_old_links():
    event = signed(k.build_lesson(street_event(), created_at=NOW))
    course_a = coordinate(k.COURSE, HOST.public_key, "jail-support")
    lesson_a = lesson_value().coordinate
    linked = signed(k.build_event_link(event, course=course_a, lesson=lesson_a, created_at=NOW + 1))
    link = k.parse_training_link(linked)
    assert link == k.TrainingLink(linked.address, HOST.public_key, course_a, lesson_a, "Town hall, room 2")
    other_course = coordinate(k.COURSE, HOST.public_key, "opsec")
    relinked = signed(k.build_event_link(linked, course=other_course, created_at=NOW + 2))
    assert k.parse_training_link(relinked).course == other_course
    assert [t for t in relinked.tags if t[0] == "a"] == [("a", other_course)]
    assert k.parse_lesson(relinked).title == event.tag_value("title"), "still a calendar event"


def test_a_lesson_that_names_only_its_course_is_itself_the_lesson():
    event = signed(k.build_lesson(lesson_value(room=None), created_at=NOW))
    link = k.parse_training_link(event)
    assert link.lesson == event.address and link.course == lesson_value().course


def test_an_unlinked_event_links_to_nothing_and_bad_links_are_refused():
    event = signed(k.build_lesson(street_event(), created_at=NOW))
    assert k.parse_training_link(event).course is None and k.parse_training_link(event).lesson is None
    with pytest.raises(MalformedEvent, match="link to a course, a lesson or both"):
        k.build_event_link(event, created_at=NOW)
    with pytest.raises(MalformedEvent, match="does not link to itself"):
        k.build_event_link(event, lesson=event.address, created_at=NOW)
    with pytest.raises(MalformedEvent, match="only a NIP-52 event"):
        k.build_event_link(award_event(), course=lesson_value().course, created_at=NOW)
    two = resigned(
        event,
        tags=event.tags + (("a", lesson_value().coordinate), ("a", coordinate(k.LESSON, HOST.public_key, "x"))),
    )
    with pytest.raises(MalformedEvent, match="at most one lesson"):
        k.parse_training_link(two)
