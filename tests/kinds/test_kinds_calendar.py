"""Courses, lessons and RSVPs: strict parsing, aliases, legacy forms and builder refusals."""

from __future__ import annotations

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import EventTemplate, coordinate

from kinds_samples import HOST, LEARNER, NOW, START, lesson_value, replaced, resigned, samples, signed, without


@pytest.fixture(scope="module")
def lesson_event():
    return signed(k.build_lesson(lesson_value(), created_at=NOW))


@pytest.fixture(scope="module")
def course_event():
    return signed(samples()["course"][0])


@pytest.fixture(scope="module")
def rsvp_event():
    return signed(samples()["rsvp"][0], LEARNER)


LESSON_CASES = [
    ("missing d", lambda e: without(e, "d"), MissingTag, "'d'"),
    ("missing title", lambda e: without(e, "title"), MissingTag, "'title'"),
    ("missing start", lambda e: without(e, "start"), MissingTag, "'start'"),
    ("non-numeric start", lambda e: replaced(e, "start", "1800000000.5"), MalformedEvent, "start: must be decimal digits"),
    ("negative start", lambda e: replaced(e, "start", "-5"), MalformedEvent, "start: must be decimal digits"),
    ("unicode digits", lambda e: replaced(e, "start", "１８００"), MalformedEvent, "start: must be decimal digits"),
    ("end before start", lambda e: replaced(e, "end", str(START - 1)), MalformedEvent, "is not after start"),
    ("end equals start", lambda e: replaced(e, "end", str(START)), MalformedEvent, "is not after start"),
    ("no end and no duration", lambda e: without(without(e, "end"), "duration"), MissingTag, "'end'"),
    ("duration disagrees", lambda e: replaced(e, "duration", "60"), MalformedEvent, "duration: 60 s disagrees"),
    ("wrong kind", lambda e: resigned(e, kind=31922), MalformedEvent, "expected kind 31923, got 31922"),
    ("no host", lambda e: resigned(e, tags=tuple(t for t in e.tags if t[0] != "p")), MalformedEvent, "no p tag with role host"),
    ("host not hex", lambda e: replaced(e, "p", "npub1xyz", "", "host"), MalformedEvent, "p: must be a 64-character"),
    ("boolean not true/false", lambda e: replaced(e, "waiting_room", "yes"), MalformedEvent, "waiting_room: must be 'true' or 'false'"),
    ("percent over 100", lambda e: replaced(e, "completion_percent", "101"), MalformedEvent, "completion_percent: must be 0..100"),
    ("max participants zero", lambda e: replaced(e, "max_participants", "0"), MalformedEvent, "max_participants"),
    ("D day missing", lambda e: replaced(e, "D", str(START // 86400 + 1)), MalformedEvent, "has no D tag"),
    ("D not numeric", lambda e: replaced(e, "D", "day"), MalformedEvent, "D: must be decimal digits"),
    ("bad course coordinate", lambda e: replaced(e, "a", "31924:nothex:x"), MalformedEvent, "a: not a kind:pubkey:d"),
]


@pytest.mark.parametrize("name,mutate,error,needle", LESSON_CASES, ids=[c[0] for c in LESSON_CASES])
def test_lesson_parser_refuses(lesson_event, name, mutate, error, needle):
    bad = mutate(lesson_event)
    with pytest.raises(error) as info:
        k.parse_lesson(bad)
    message = str(info.value)
    assert message.startswith(f"event {bad.id[:16]}: ")
    assert needle in message
    assert "\n" not in message


def test_stray_d_day_is_refused(lesson_event):
    bad = resigned(lesson_event, tags=lesson_event.tags + (("D", str(START // 86400 + 3)),))
    with pytest.raises(MalformedEvent, match="lies outside start..end"):
        k.parse_lesson(bad)


def test_lesson_without_d_tags_is_read(lesson_event):
    legacy = without(lesson_event, "D")
    assert k.parse_lesson(legacy).start == START


def test_d_tag_for_the_exclusive_end_day_is_tolerated():
    lesson = lesson_value(start=86400 * 20000 + 3600, end=86400 * 20001)
    event = signed(k.build_lesson(lesson, created_at=NOW))
    assert event.tag_values("D") == ["20000"]
    with_end_day = resigned(event, tags=event.tags + (("D", "20001"),))
    assert k.parse_lesson(with_end_day).end == 86400 * 20001


def test_multi_day_lesson_gets_every_day():
    lesson = lesson_value(start=86400 * 20000 + 80000, end=86400 * 20002 + 10)
    event = signed(k.build_lesson(lesson, created_at=NOW))
    assert event.tag_values("D") == ["20000", "20001", "20002"]


def test_title_falls_back_to_deprecated_name(lesson_event):
    tags = tuple(("name", t[1]) if t[0] == "title" else t for t in lesson_event.tags)
    assert k.parse_lesson(resigned(lesson_event, tags=tags)).title == "Jail Support Role-Play"


@pytest.mark.parametrize("role", ["host", "Host", "HOST", "Owner", "owner"])
def test_host_role_is_case_insensitive_and_owner_counts(lesson_event, role):
    other = LEARNER.public_key
    tags = tuple(t for t in lesson_event.tags if t[0] != "p") + (("p", other, "", "participant"), ("p", other, "", role))
    assert k.parse_lesson(resigned(lesson_event, tags=tags)).instructor == other


def test_end_is_derived_from_duration_when_absent(lesson_event):
    assert k.parse_lesson(without(lesson_event, "end")).end == START + 3600


def test_foreign_lesson_gets_defaults():
    """A plain NIP-52 event from a calendar client reads with our defaults."""
    tags = (
        ("d", "x"),
        ("title", "Meetup"),
        ("start", str(START)),
        ("end", str(START + 5400)),
        ("D", str(START // 86400)),
        ("p", HOST.public_key, "wss://r.example", "Host"),
    )
    lesson = k.parse_lesson(signed(EventTemplate(31923, tags, "", NOW)))
    assert (lesson.requires_rsvp, lesson.waiting_room, lesson.completion_minutes, lesson.completion_percent) == (True, False, 30, 50)
    assert lesson.course is None and lesson.recording_url is None


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(end=START), "end"),
        (dict(end=START - 10), "end"),
        (dict(title=""), "title"),
        (dict(d=""), "d"),
        (dict(d="x" * 256), "d"),
        (dict(instructor="abc"), "p"),
        (dict(start_tzid="Mars/Olympus"), "start_tzid"),
        (dict(completion_percent=150), "completion_percent"),
        (dict(max_participants=0), "max_participants"),
        (dict(course="31923:" + "a" * 64 + ":x"), "course"),
        (dict(rsvp_until=START + 1), "rsvp_until"),
    ],
)
def test_lesson_builder_refuses(change, field):
    with pytest.raises(MalformedEvent) as info:
        k.build_lesson(lesson_value(**change), created_at=NOW)
    assert info.value.field == field


def test_rsvp_cut_off_reads_back_and_closes_rsvps(lesson_event):
    assert k.parse_lesson(lesson_event).rsvp_closes_at == START
    cut = k.parse_lesson(signed(k.build_lesson(lesson_value(rsvp_until=START - 3600), created_at=NOW)))
    assert cut.rsvp_until == START - 3600 and cut.rsvp_closes_at == START - 3600


@pytest.mark.parametrize("value, needle", [(str(START + 1), "rsvp_until: must be"), ("soon", "rsvp_until: must be decimal")])
def test_rsvp_cut_off_after_the_start_or_not_a_time_is_refused(lesson_event, value, needle):
    with pytest.raises(MalformedEvent, match=needle):
        k.parse_lesson(replaced(lesson_event, "rsvp_until", value))


# Courses ------------------------------------------------------------------------------------


def test_course_keeps_lesson_order(course_event):
    coords = [coordinate(31923, HOST.public_key, f"l{i}") for i in (3, 1, 2)]
    course = k.Course(HOST.public_key, "c", "C", lessons=tuple(coords))
    parsed = k.parse_course(signed(k.build_course(course, created_at=NOW)))
    assert parsed.lessons == tuple(coords)


COURSE_CASES = [
    ("missing d", lambda e: without(e, "d"), MissingTag, "'d'"),
    ("missing title", lambda e: without(e, "title"), MissingTag, "'title'"),
    ("wrong kind", lambda e: resigned(e, kind=31923), MalformedEvent, "expected kind 31924"),
    ("module names a stranger", lambda e: replaced(e, "module", "M", coordinate(31923, HOST.public_key, "zz")), MalformedEvent, "not a course lesson"),
    ("required names a stranger", lambda e: replaced(e, "required", coordinate(31923, HOST.public_key, "zz")), MalformedEvent, "required"),
    ("validity not numeric", lambda e: replaced(e, "validity_days", "a year"), MalformedEvent, "validity_days: must be decimal digits"),
    ("validity zero", lambda e: replaced(e, "validity_days", "0"), MalformedEvent, "validity_days"),
    ("certification not boolean", lambda e: replaced(e, "certification", "1"), MalformedEvent, "certification: must be 'true' or 'false'"),
    ("certificate not 30009", lambda e: replaced(e, "certificate", coordinate(31923, HOST.public_key, "x")), MalformedEvent, "certificate: must point at kind 30009"),
]


@pytest.mark.parametrize("name,mutate,error,needle", COURSE_CASES, ids=[c[0] for c in COURSE_CASES])
def test_course_parser_refuses(course_event, name, mutate, error, needle):
    bad = mutate(course_event)
    with pytest.raises(error) as info:
        k.parse_course(bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


def test_course_builder_refuses_duplicate_and_ungrouped_lessons():
    coord = lesson_value().coordinate
    with pytest.raises(MalformedEvent, match="listed twice"):
        k.build_course(k.Course(HOST.public_key, "c", "C", lessons=(coord, coord)), created_at=NOW)
    with pytest.raises(MalformedEvent, match="two modules"):
        k.build_course(
            k.Course(HOST.public_key, "c", "C", lessons=(coord,), modules=(k.Module("A", (coord,)), k.Module("B", (coord,)))),
            created_at=NOW,
        )


# RSVPs --------------------------------------------------------------------------------------


def test_rsvp_reads_back(rsvp_event):
    rsvp = k.parse_rsvp(rsvp_event)
    assert rsvp.author == LEARNER.public_key
    assert rsvp.status is k.RsvpStatus.ACCEPTED
    assert rsvp.lesson == lesson_value().coordinate
    assert rsvp.host == HOST.public_key
    assert rsvp.d == k.rsvp_d(rsvp.lesson)
    assert rsvp.free_busy == "busy" and rsvp.note == "see you"


@pytest.mark.parametrize("given,expected", [("confirmed", "accepted"), ("accepted", "accepted"), ("Tentative", "tentative"), ("declined", "declined")])
def test_rsvp_builder_accepts_seed_names(given, expected):
    template = k.build_rsvp(lesson_value().coordinate, given, created_at=NOW)
    assert ("status", expected) in template.tags


def test_rsvp_d_is_deterministic_per_lesson():
    a, b = lesson_value().coordinate, lesson_value(d="other").coordinate
    assert k.rsvp_d(a) == k.rsvp_d(a) != k.rsvp_d(b)
    first = k.build_rsvp(a, "accepted", created_at=NOW)
    second = k.build_rsvp(a, "declined", created_at=NOW + 5)
    assert first.tags[1] == second.tags[1] == ("d", k.rsvp_d(a))


def test_legacy_l_status_is_read(rsvp_event):
    tags = tuple(t for t in rsvp_event.tags if t[0] != "status") + (("L", "status"), ("l", "tentative", "status"))
    assert k.parse_rsvp(resigned(rsvp_event, LEARNER, tags=tags)).status is k.RsvpStatus.TENTATIVE


def test_declined_rsvp_drops_free_busy(rsvp_event):
    tags = tuple(("status", "declined") if t[0] == "status" else t for t in rsvp_event.tags)
    assert k.parse_rsvp(resigned(rsvp_event, LEARNER, tags=tags)).free_busy is None
    built = k.build_rsvp(lesson_value().coordinate, "declined", created_at=NOW, free_busy="busy")
    assert not [t for t in built.tags if t[0] == "fb"]


RSVP_CASES = [
    ("unknown status", lambda e: replaced(e, "status", "maybe", keys=LEARNER), MalformedEvent, "status: must be accepted|tentative|declined"),
    ("seed name on the wire", lambda e: replaced(e, "status", "confirmed", keys=LEARNER), MalformedEvent, "status"),
    ("missing status", lambda e: without(e, "status", LEARNER), MissingTag, "'status'"),
    ("missing a", lambda e: without(e, "a", LEARNER), MissingTag, "'a'"),
    ("a points at a course", lambda e: replaced(e, "a", coordinate(31924, HOST.public_key, "c"), keys=LEARNER), MalformedEvent, "no a tag points at kind 31922|31923"),
    ("missing d", lambda e: without(e, "d", LEARNER), MissingTag, "'d'"),
    ("bad fb", lambda e: replaced(e, "fb", "maybe", keys=LEARNER), MalformedEvent, "fb: must be one of free|busy"),
    ("bad e", lambda e: replaced(e, "e", "xyz", keys=LEARNER), MalformedEvent, "e: must be a 64-character"),
    ("wrong kind", lambda e: resigned(e, LEARNER, kind=31924), MalformedEvent, "expected kind 31925"),
]


@pytest.mark.parametrize("name,mutate,error,needle", RSVP_CASES, ids=[c[0] for c in RSVP_CASES])
def test_rsvp_parser_refuses(rsvp_event, name, mutate, error, needle):
    bad = mutate(rsvp_event)
    with pytest.raises(error) as info:
        k.parse_rsvp(bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


def test_rsvp_builder_refuses_unknown_status():
    with pytest.raises(MalformedEvent, match="status"):
        k.build_rsvp(lesson_value().coordinate, "going", created_at=NOW)
