"""CRM: contacts to and from CSV, and the seed's training questions over contacts in every state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.crm import (
    Contact,
    Enrolment,
    TrainingBook,
    check_training_requirements,
    contact_training_status,
    contacts_with_expiring_certifications,
    filter_contacts_by_certification,
    format_contacts_csv,
    parse_contacts_csv,
    plan_contact_import,
)
from nostr_training.errors import ContactError
from nostr_training.keys import Keys
from nostr_training.kinds.attendance import AttendanceRecord, CompletionBasis, CompletionRecord
from nostr_training.kinds.certificates import (
    CertificateAward,
    CertificateDefinition,
    CertificateRevocation,
    RevocationMarker,
    award_hash,
)
from nostr_training.nips.nip19 import nprofile_encode, npub_encode
from nostr_training.rules.certification import DAY, Certificate
from nostr_training.rules.certification import CertificateStatus as St

NOW = 1_800_000_000
HOST = "a" * 64
JAIL = f"31924:{HOST}:jail-support"
OPSEC = f"31924:{HOST}:opsec"
MEDIC = f"31924:{HOST}:medic"
KEYS = [Keys.from_hex(f"{i:064x}") for i in range(1, 8)]
VALID, EXPIRING, EXPIRED, REVOKED, RENEWED, NONE = (k.public_key for k in KEYS[:6])


def cert(holder: str, course: str = JAIL, issued: int = -100, days: int | None = 365, revoked: int | None = None, code: str = "") -> Certificate:
    issued_at = NOW + issued * DAY
    return Certificate(
        course=course,
        holder=holder,
        issued_at=issued_at,
        expires_at=None if days is None else issued_at + days * DAY,
        revoked_at=None if revoked is None else NOW + revoked * DAY,
        code=code or f"{holder[:4]}-{course[-4:]}-{issued}",
    )


CONTACTS = [
    Contact("Vera Valid", pubkey=VALID, id=1),
    Contact("Ed Expiring", pubkey=EXPIRING, id=2),
    Contact("Xena Expired", pubkey=EXPIRED, id=3),
    Contact("Rita Revoked", pubkey=REVOKED, id=4),
    Contact("Rene Renewed", pubkey=RENEWED, id=5),
    Contact("Nora None", pubkey=NONE, id=6),
    Contact("Ulla Unlinked", email="ulla@example.org", id=7),
]
CERTS = [
    cert(VALID),
    cert(VALID, OPSEC, issued=-10, days=None),
    cert(EXPIRING, issued=-355),
    cert(EXPIRING, OPSEC, issued=-360),
    cert(EXPIRED, issued=-400),
    cert(REVOKED, issued=-50, revoked=-1),
    cert(REVOKED, issued=-500),
    cert(RENEWED, issued=-800),
    cert(RENEWED, issued=-20),
]
BOOK = TrainingBook(CERTS)


def names(contacts) -> list[str]:
    return [c.name.split()[0] for c in contacts]


# The seed's questions --------------------------------------------------------------------------


def test_filter_contacts_by_certification_sees_every_contact_not_just_the_current_user():
    assert names(filter_contacts_by_certification(CONTACTS, BOOK, JAIL, NOW)) == ["Vera", "Ed", "Rene"]
    with_expired = filter_contacts_by_certification(CONTACTS, BOOK, JAIL, NOW, include_expired=True)
    assert names(with_expired) == ["Vera", "Ed", "Xena", "Rene"], "revoked never counts, expired only when asked"
    assert names(filter_contacts_by_certification(CONTACTS, BOOK, OPSEC, NOW)) == ["Vera", "Ed"]
    assert filter_contacts_by_certification(CONTACTS, BOOK, MEDIC, NOW) == ()


def test_check_training_requirements_per_course_and_overall():
    report = check_training_requirements(VALID, [JAIL, OPSEC], BOOK, NOW)
    assert report.met and [r.met for r in report.requirements] == [True, True]
    assert report.requirements[1].expires_at is None
    expiring = check_training_requirements(EXPIRING, [JAIL], BOOK, NOW)
    assert expiring.met and expiring.requirements[0].status is St.EXPIRING
    assert expiring.requirements[0].expires_at == NOW + 10 * DAY
    expired = check_training_requirements(EXPIRED, [JAIL, OPSEC], BOOK, NOW)
    assert not expired.met
    assert [(r.met, r.expired, r.status) for r in expired.requirements] == [
        (False, True, St.EXPIRED),
        (False, False, St.MISSING),
    ]
    revoked = check_training_requirements(REVOKED, [JAIL], BOOK, NOW).requirements[0]
    assert (revoked.met, revoked.status) == (False, St.REVOKED), "a revocation is not hidden by an older expired one"
    renewed = check_training_requirements(RENEWED, [JAIL], BOOK, NOW)
    assert renewed.met and renewed.requirements[0].expires_at == NOW + 345 * DAY
    assert not check_training_requirements(NONE, [JAIL], BOOK, NOW).met
    assert check_training_requirements(NONE, [], BOOK, NOW).met, "nothing required is met"


def test_contacts_with_expiring_certifications_sorted_by_days_left():
    found = contacts_with_expiring_certifications(CONTACTS, BOOK, NOW, days=30)
    assert [(e.contact.name, e.certificate.course, e.days_left) for e in found] == [
        ("Ed Expiring", OPSEC, 5),
        ("Ed Expiring", JAIL, 10),
    ]
    wider = contacts_with_expiring_certifications(CONTACTS, BOOK, NOW, days=300)
    assert [e.days_left for e in wider] == sorted(e.days_left for e in wider)
    assert {e.contact.name for e in wider} == {"Ed Expiring", "Vera Valid"}


def test_contact_training_status_in_every_certificate_state():
    def status(contact):
        return contact_training_status(contact, BOOK, NOW)

    vera, ed, xena, rita, rene, nora, ulla = (status(c) for c in CONTACTS)
    assert (vera.certifications_earned, vera.certifications_expiring, vera.completed) == (2, 0, 2)
    assert (ed.certifications_earned, ed.certifications_expiring) == (2, 2)
    assert (xena.certifications_earned, xena.certifications_expiring) == (1, 0)
    assert [s.status for s in xena.certifications] == [St.EXPIRED]
    assert (rita.certifications_earned, [s.status for s in rita.certifications]) == (0, [St.REVOKED])
    assert rene.certifications_earned == 1 and rene.last_activity == NOW - 20 * DAY
    assert (nora.linked, nora.enrolled, nora.last_activity) == (True, 0, None)
    assert (ulla.linked, ulla.enrolled, ulla.certifications) == (False, 0, ())


def test_training_status_counts_enrolments_completions_hours_and_last_activity():
    lesson = f"31923:{HOST}:role-play-1"
    learner = NONE
    attendance = [
        AttendanceRecord(HOST, lesson, learner, 1800, 1, ((NOW - 5 * DAY, NOW - 5 * DAY + 1800),), "r", True, NOW - 5 * DAY + 3600, event_id="1" * 64),
        AttendanceRecord(HOST, lesson, learner, 2700, 2, ((NOW - 5 * DAY, NOW - 5 * DAY + 2700),), "r", True, NOW - 5 * DAY + 7200, event_id="2" * 64),
        AttendanceRecord(learner, f"31923:{HOST}:other", learner, 36000, 1, ((NOW - DAY, NOW - DAY + 36000),), "r", True, NOW, event_id="3" * 64),
    ]
    completions = [
        CompletionRecord(HOST, JAIL, learner, NOW - 4 * DAY, CompletionBasis.REQUIRED_LESSONS, NOW - 4 * DAY),
        CompletionRecord(HOST, lesson, learner, NOW - 5 * DAY, CompletionBasis.ATTENDANCE, NOW - 5 * DAY),
        CompletionRecord(learner, OPSEC, learner, NOW - DAY, CompletionBasis.INSTRUCTOR, NOW - DAY),
    ]
    enrolments = [Enrolment(learner, JAIL, NOW - 30 * DAY), Enrolment(learner, MEDIC, NOW - 3 * DAY)]
    book = TrainingBook(CERTS, completions, attendance, enrolments)
    got = contact_training_status(Contact("Nora", pubkey=learner), book, NOW)
    assert got.enrolled == 2, "jail (enrolled, completed) and medic; the self-signed opsec completion is not evidence"
    assert got.completed == 1
    assert got.total_hours == 0.75, "the newest record per lesson; a learner's own record is not evidence"
    assert got.last_activity == NOW - 3 * DAY


def test_a_book_from_signed_records_applies_public_revocations_and_hash_markers():
    definition = CertificateDefinition(HOST, "jail-cert", "Jail", course=JAIL)
    awards = [
        CertificateAward(HOST, definition.coordinate, VALID, NOW - DAY, "C1", NOW - DAY, NOW + 100 * DAY, "1" * 64),
        CertificateAward(HOST, definition.coordinate, REVOKED, NOW - DAY, "C2", NOW - DAY, NOW + 100 * DAY, "2" * 64),
        CertificateAward(HOST, definition.coordinate, EXPIRED, NOW - DAY, "C3", NOW - DAY, NOW + 100 * DAY, "3" * 64),
    ]
    revocations = [
        CertificateRevocation(HOST, definition.coordinate, "2" * 64, REVOKED, NOW - 1),
        RevocationMarker(HOST, award_hash("3" * 64), NOW - 1),
        RevocationMarker(VALID, award_hash("1" * 64), NOW - 1),
    ]
    book = TrainingBook.from_records([definition], awards, revocations)
    assert names(filter_contacts_by_certification(CONTACTS, book, JAIL, NOW)) == ["Vera"]


# CSV -------------------------------------------------------------------------------------------

text_field = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
contacts_strategy = st.lists(
    st.builds(
        Contact,
        name=text_field.map(str.strip).filter(bool),
        email=st.sampled_from(["", "a@example.org", "with,comma@example.org", '"quoted"@example.org']),
        notes=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60),
        tags=st.lists(text_field.map(str.strip).filter(lambda t: t and ";" not in t), max_size=3, unique=True).map(tuple),
        pubkey=st.one_of(st.none(), st.sampled_from([k.public_key for k in KEYS])),
        id=st.one_of(st.none(), st.integers(1, 10**9)),
    ),
    max_size=6,
    unique_by=lambda c: c.pubkey or object(),
)


@settings(max_examples=150, deadline=None)
@given(contacts_strategy)
def test_csv_round_trips_any_contacts(contacts):
    assert parse_contacts_csv(format_contacts_csv(contacts)) == contacts


def test_csv_export_has_the_documented_header_and_npubs():
    text = format_contacts_csv([Contact("Ann, the medic", "ann@example.org", 'says "hi"\nnew line', ("medic", "berlin"), VALID, 3)])
    assert text == (
        "id,name,email,npub,tags,notes\r\n"
        f'3,"Ann, the medic",ann@example.org,{npub_encode(VALID)},medic;berlin,"says ""hi""\nnew line"\r\n'
    )


def test_csv_import_takes_columns_in_any_order_and_case_and_hex_or_nprofile_keys():
    text = (
        "\ufeffTags , PUBKEY,Name\n"
        f"a; b ;a,{VALID.upper()},Ann\n"
        f",{nprofile_encode(EXPIRING, ['wss://relay.example'])},Bob\n"
        "\n"
        ",,Cem\n"
    )
    assert parse_contacts_csv(text) == [
        Contact("Ann", tags=("a", "b"), pubkey=VALID),
        Contact("Bob", pubkey=EXPIRING),
        Contact("Cem"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("name,phone\nAnn,123\n", "line 1: unknown column 'phone'"),
        ("email\na@b.c\n", "line 1: the header has no 'name' column"),
        ("name,npub,pubkey\n", "line 1: give either an 'npub' or a 'pubkey' column"),
        ("name,name\n", "line 1: column 'name' appears twice"),
        ("name,email\nAnn,a@b.c\nBob\n", "line 3: 1 fields, but the header has 2"),
        ("name,npub\nAnn,npub1notakey\n", "line 2: npub: 'npub1notakey' is not an npub or hex pubkey"),
        ("name,pubkey\nAnn,abc\n", "line 2: pubkey: 'abc' is not an npub or hex pubkey"),
        ("name,email\n  ,a@b.c\n", "line 2: name: must not be empty"),
        ("name,email\nAnn,not-an-email\n", "line 2: email: 'not-an-email' is not an email address"),
        ("name,id\nAnn,x7\n", "line 2: id: must be a positive integer"),
        ('name,notes\nAnn,"two\nlines"\nBob,"bad"quote\n', "line 4: not valid CSV"),
    ],
)
def test_bad_csv_lines_are_named(text, message):
    with pytest.raises(ContactError) as caught:
        parse_contacts_csv(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_text_a_csv_cannot_carry_is_refused_before_export():
    with pytest.raises(ContactError, match="notes: must be text without NUL"):
        format_contacts_csv([Contact("Ann", notes="a\x00b")])


def test_a_pubkey_listed_twice_names_both_lines():
    text = f"name,npub\nAnn,{npub_encode(VALID)}\nBob,\nAnn again,{VALID}\n"
    with pytest.raises(ContactError, match="line 4: npub: this pubkey is already on line 2") as caught:
        parse_contacts_csv(text)
    assert caught.value.line == 4


# Importing into stored contacts --------------------------------------------------------------------


STORED = [Contact("Ann", pubkey=VALID, id=1), Contact("Bob", "bob@example.org", id=2), Contact("Cem", pubkey=EXPIRING, id=3)]


def test_an_edited_export_updates_in_place_and_npub_only_rows_update_linked_contacts():
    rows = parse_contacts_csv(format_contacts_csv(STORED).replace("bob@example.org", "bob@new.example"))
    rows.append(Contact("Cem Renamed", pubkey=EXPIRING))
    rows.append(Contact("Dee", pubkey=EXPIRED))
    rows = [r for r in rows if r.name != "Cem"]
    plan = plan_contact_import(STORED, rows)
    assert plan.unchanged == (STORED[0],)
    assert plan.update == (Contact("Bob", "bob@new.example", id=2), Contact("Cem Renamed", pubkey=EXPIRING, id=3))
    assert plan.add == (Contact("Dee", pubkey=EXPIRED),)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([Contact("Ann", pubkey=EXPIRING, id=1)], "id 1 is 'Ann', but its pubkey belongs to 'Cem'"),
        ([Contact("New", pubkey=VALID, id=9)], "its pubkey belongs to 'Ann'"),
        ([Contact("Ann", id=1), Contact("Ann again", pubkey=VALID)], "both update contact 1"),
    ],
)
def test_an_import_that_would_merge_two_people_is_refused(rows, message):
    with pytest.raises(ContactError, match=message):
        plan_contact_import(STORED, rows)


def test_only_the_host_or_the_issuer_vouches_for_attendance_and_completion():
    """A third key cannot inflate a learner's completions or hours in the CRM."""
    from nostr_training.crm import TrainingBook
    from nostr_training.kinds.attendance import AttendanceRecord, CompletionBasis, CompletionRecord

    host, issuer, stranger, learner = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    course, lesson = f"31924:{host}:c1", f"31923:{host}:l1"
    by = lambda author: CompletionRecord(author=author, subject=course, learner=learner, completed_at=100,  # noqa: E731
                                         basis=CompletionBasis.INSTRUCTOR, created_at=100)
    hours = lambda author: AttendanceRecord(author=author, lesson=lesson, learner=learner, total_seconds=7200,  # noqa: E731
                                            join_count=1, intervals=((0, 7200),), rule="r", met=True, created_at=1)
    trusted = TrainingBook(completions=[by(host)], attendance=[hours(host)])
    forged = TrainingBook(completions=[by(stranger)], attendance=[hours(stranger)])
    named = TrainingBook(completions=[by(issuer)], issuers={course: issuer})
    assert course in trusted._people[learner].courses_completed and trusted._people[learner].attendance
    assert learner not in forged._people or not (forged._people[learner].courses_completed or forged._people[learner].attendance)
    assert course in named._people[learner].courses_completed


def test_importing_the_same_list_twice_updates_rows_without_npub_by_email():
    from nostr_training.crm import Contact, plan_contact_import

    stored = [Contact("Bo Chen", email="bo@example.org", id=1)]
    plan = plan_contact_import(stored, [Contact("Bo Chen", email="BO@example.org")])
    assert plan.add == () or list(plan.add) == []
