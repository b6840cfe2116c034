"""Certificates: NIP-58 definitions and awards, validity tags, codes, revocation and deletion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import coordinate
from nostr_training.rules.certification import CertificateStatus, certificate_status, certificates_from_records

from kinds_samples import HOST, LEARNER, START, award_event, replaced, resigned, samples, signed, without


def test_award_reads_back():
    award = k.parse_certificate_award(award_event())
    assert award.learner == LEARNER.public_key
    assert (award.valid_from, award.valid_until) == (START, START + 180 * 86400)
    assert award.definition == coordinate(30009, HOST.public_key, "jail-support-cert")


def test_award_never_uses_nip40_expiration():
    assert not [t for t in award_event().tags if t[0] == "expiration"]


AWARD_CASES = [
    ("signed by someone else", lambda e: resigned(e, LEARNER), MalformedEvent, "award author is not the definition's author"),
    ("nip40 expiration", lambda e: replaced(e, "expiration", str(START + 10)), MalformedEvent, "must not carry NIP-40 expiration"),
    ("two definitions", lambda e: resigned(e, tags=e.tags + (("a", coordinate(30009, HOST.public_key, "x")),)), MalformedEvent, "exactly one definition"),
    ("two learners", lambda e: resigned(e, tags=e.tags + (("p", HOST.public_key),)), MalformedEvent, "exactly one learner"),
    ("no learner", lambda e: without(e, "p"), MissingTag, "'p'"),
    ("no definition", lambda e: without(e, "a"), MissingTag, "'a'"),
    ("definition of wrong kind", lambda e: replaced(e, "a", coordinate(31924, HOST.public_key, "c")), MalformedEvent, "must point at kind 30009"),
    ("missing valid_from", lambda e: without(e, "valid_from"), MissingTag, "'valid_from'"),
    ("valid_until before valid_from", lambda e: replaced(e, "valid_until", str(START - 1)), MalformedEvent, "is not after valid_from"),
    ("valid_from not numeric", lambda e: replaced(e, "valid_from", "2027-01-15"), MalformedEvent, "valid_from: must be decimal digits"),
    ("missing code", lambda e: without(e, "code"), MissingTag, "'code'"),
    ("bad code", lambda e: replaced(e, "code", "HELLO"), MalformedEvent, "not a verification code"),
    ("non-canonical code", lambda e: replaced(e, "code", "0000000000000000"), MalformedEvent, "canonical form"),
    ("wrong kind", lambda e: resigned(e, kind=9), MalformedEvent, "expected kind 8"),
]


@pytest.mark.parametrize("name,mutate,error,needle", AWARD_CASES, ids=[c[0] for c in AWARD_CASES])
def test_award_parser_refuses(name, mutate, error, needle):
    bad = mutate(award_event())
    with pytest.raises(error) as info:
        k.parse_certificate_award(bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


def test_award_builder_refuses_bad_validity():
    definition = coordinate(30009, HOST.public_key, "c")
    with pytest.raises(MalformedEvent, match="valid_until"):
        k.build_certificate_award(definition, LEARNER.public_key, valid_from=START, valid_until=START, code=k.new_verification_code(), created_at=START)


def test_code_has_80_bits_in_an_unambiguous_alphabet():
    assert k.certificates.CODE_BITS >= 80
    assert not set("ILOU") & set(k.certificates.CODE_ALPHABET)
    assert len(set(k.certificates.CODE_ALPHABET)) == 32
    assert k.verification_code(bytes(10)) == "0000-0000-0000-0000"
    assert k.verification_code(b"\xff" * 10) == "ZZZZ-ZZZZ-ZZZZ-ZZZZ"


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=10, max_size=10))
def test_code_encoding_is_injective_and_forgiving(entropy):
    code = k.verification_code(entropy)
    digits = code.replace("-", "")
    assert int("".join(f"{k.certificates.CODE_ALPHABET.index(c):05b}" for c in digits), 2) == int.from_bytes(entropy, "big")
    typed = digits.lower().replace("0", "o").replace("1", "l")
    assert k.normalize_code(typed) == code


def test_new_codes_differ():
    assert len({k.new_verification_code() for _ in range(50)}) == 50


@pytest.mark.parametrize("text", ["", "ABCD", "UUUU-UUUU-UUUU-UUUU", "0000-0000-0000-0000-0"])
def test_bad_codes_are_refused(text):
    with pytest.raises(MalformedEvent):
        k.normalize_code(text)


def test_definition_reads_back():
    definition = k.parse_certificate_definition(signed(samples()["certificate_definition"][0]))
    assert definition.name == "Jail Support Volunteer" and definition.course.startswith("31924:")


def test_definition_needs_a_name():
    event = signed(samples()["certificate_definition"][0])
    with pytest.raises(MissingTag, match="'name'"):
        k.parse_certificate_definition(without(event, "name"))


def test_revocation_reads_back_and_checks_issuer():
    award = k.parse_certificate_award(award_event())
    event = signed(k.build_certificate_revocation(award, created_at=START + 100, reason="issued in error"))
    revocation = k.parse_certificate_revocation(event)
    assert (revocation.award, revocation.learner, revocation.reason) == (award.event_id, LEARNER.public_key, "issued in error")
    with pytest.raises(MalformedEvent, match="not the certificate's issuer"):
        k.parse_certificate_revocation(resigned(event, LEARNER))
    with pytest.raises(MissingTag, match="'e'"):
        k.parse_certificate_revocation(without(event, "e"))


def test_award_deletion_names_the_award_and_its_kind():
    template = k.build_award_deletion("4" * 64, created_at=START, reason="revoked")
    assert template.kind == 5
    assert ("e", "4" * 64) in template.tags and ("k", "8") in template.tags
    deletion = k.parse_deletion(signed(template))
    assert deletion.event_ids == ("4" * 64,) and deletion.kinds == (8,)


def test_signed_revocation_of_a_deleted_award_reads_as_revoked():
    definition = k.parse_certificate_definition(signed(samples()["certificate_definition"][0]))
    award = k.parse_certificate_award(award_event())
    revocation = k.parse_certificate_revocation(signed(k.build_certificate_revocation(award, created_at=START + 100)))
    (kept,) = certificates_from_records([definition], [award], [revocation])
    (orphan,) = certificates_from_records([definition], [], [revocation])
    for cert in (kept, orphan):
        assert (cert.course, cert.holder, cert.event_id) == (definition.course, LEARNER.public_key, award.event_id)
        assert certificate_status(cert, START + 100) is CertificateStatus.REVOKED
