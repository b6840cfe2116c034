"""Recordings (NIP-94), reminders (NIP-17 kind-14 rumors) and deletions (NIP-09)."""

from __future__ import annotations

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import EventTemplate

from kinds_samples import LEARNER, NOW, START, lesson_value, replaced, resigned, rumor, samples, signed, without


@pytest.fixture(scope="module")
def recording_event():
    return signed(samples()["recording"][0])


def test_recording_reads_back(recording_event):
    recording = k.parse_recording(recording_event)
    assert (recording.mime, recording.size, recording.sha256) == ("video/webm", 123456789, "ab" * 32)
    assert recording.lesson == lesson_value().coordinate


RECORDING_CASES = [
    ("missing url", lambda e: without(e, "url"), MissingTag, "'url'"),
    ("not http", lambda e: replaced(e, "url", "ftp://x"), MalformedEvent, "url: must be an http(s) URL"),
    ("bad mime", lambda e: replaced(e, "m", "Video/WebM"), MalformedEvent, "m: must be a lowercase MIME type"),
    ("bad hash", lambda e: replaced(e, "x", "abc"), MalformedEvent, "x: must be a 64-character"),
    ("bad size", lambda e: replaced(e, "size", "1.5GB"), MalformedEvent, "size: must be decimal digits"),
    ("no lesson", lambda e: without(e, "a"), MissingTag, "'a'"),
    ("wrong kind", lambda e: resigned(e, kind=1), MalformedEvent, "expected kind 1063"),
]


@pytest.mark.parametrize("name,mutate,error,needle", RECORDING_CASES, ids=[c[0] for c in RECORDING_CASES])
def test_recording_parser_refuses(recording_event, name, mutate, error, needle):
    bad = mutate(recording_event)
    with pytest.raises(error) as info:
        k.parse_recording(bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


# Reminders ----------------------------------------------------------------------------------

# START = 1_800_000_000 is Friday 15 January 2027, 08:00 UTC.
EXPECTED = {
    k.ReminderKind.SCHEDULED: "New live session: Jail Support Role-Play on Friday 15 January 2027, 09:00 CET",
    k.ReminderKind.DAY_BEFORE: "Tomorrow: Jail Support Role-Play at 09:00 CET",
    k.ReminderKind.HOUR_BEFORE: "Jail Support Role-Play starting in 1 hour",
    k.ReminderKind.STARTING: "Jail Support Role-Play is now live - Join\nhttps://meet.example/room-1",
    k.ReminderKind.RECORDING_READY: "Recording available: Jail Support Role-Play\nhttps://blossom.example/rec.webm",
    k.ReminderKind.CHANGED: (
        "Changed: Jail Support Role-Play is now on Friday 15 January 2027, 09:00 CET - please confirm again"
        "\nhttps://meet.example/room-1"
    ),
    k.ReminderKind.PROMOTED: "A seat opened: you are confirmed for Jail Support Role-Play on Friday 15 January 2027, 09:00 CET",
    k.ReminderKind.CANCELLED: "Cancelled: Jail Support Role-Play on Friday 15 January 2027, 09:00 CET",
}


@pytest.mark.parametrize("kind", list(k.ReminderKind))
def test_reminder_texts_follow_the_seed_table(kind):
    lesson = lesson_value(recording_url="https://blossom.example/rec.webm")
    assert k.reminder_text(kind, lesson) == EXPECTED[kind]


@pytest.mark.parametrize(
    "tzid,expected",
    [
        (None, "Friday 15 January 2027, 08:00 UTC"),
        ("Not/AZone", "Friday 15 January 2027, 08:00 UTC"),
        ("America/Costa_Rica", "Friday 15 January 2027, 02:00 CST"),
        ("Pacific/Kiritimati", "Friday 15 January 2027, 22:00 +14"),
    ],
)
def test_reminder_dates_use_the_lesson_zone_with_utc_fallback(tzid, expected):
    lesson = lesson_value(start_tzid=tzid)
    assert k.reminder_text(k.ReminderKind.SCHEDULED, lesson) == f"New live session: Jail Support Role-Play on {expected}"


def test_reminder_without_links_keeps_one_line():
    lesson = lesson_value(location=None)
    assert k.reminder_text(k.ReminderKind.STARTING, lesson) == "Jail Support Role-Play is now live - Join"
    assert k.reminder_text(k.ReminderKind.RECORDING_READY, lesson) == "Recording available: Jail Support Role-Play"


def test_reminder_rumor_reads_back():
    event = rumor(samples()["reminder"][0])
    reminder = k.parse_reminder(event)
    assert reminder.kind is k.ReminderKind.STARTING and reminder.recipient == LEARNER.public_key
    assert reminder.text.startswith("Jail Support Role-Play is now live - Join")
    assert reminder.expires_at == START + 86400


def test_reminder_parser_refuses_unknown_moment():
    event = rumor(samples()["reminder"][0])
    bad = rumor(resigned(event, tags=tuple(("reminder", "2h") if t[0] == "reminder" else t for t in event.tags)).template())
    with pytest.raises(MalformedEvent, match="reminder: must be one of"):
        k.parse_reminder(bad)


def test_reminder_kind_values_are_stable():
    assert [r.value for r in k.ReminderKind] == [
        "scheduled", "24h", "1h", "starting", "recording_ready", "changed", "promoted", "cancelled",
    ]


@pytest.mark.parametrize(
    "viewer, kind, expected",
    [
        (None, k.ReminderKind.DAY_BEFORE, "Tomorrow: Jail Support Role-Play at 09:00 CET"),
        ("Europe/Paris", k.ReminderKind.DAY_BEFORE, "Tomorrow: Jail Support Role-Play at 09:00 CET"),
        ("Not/AZone", k.ReminderKind.DAY_BEFORE, "Tomorrow: Jail Support Role-Play at 09:00 CET"),
        ("America/New_York", k.ReminderKind.DAY_BEFORE,
         "Tomorrow: Jail Support Role-Play at 09:00 CET (03:00 EST your time)"),
        ("Asia/Tokyo", k.ReminderKind.SCHEDULED,
         "New live session: Jail Support Role-Play on Friday 15 January 2027, 09:00 CET"
         " (Friday 15 January 2027, 17:00 JST your time)"),
        ("America/Los_Angeles", k.ReminderKind.PROMOTED,
         "A seat opened: you are confirmed for Jail Support Role-Play on Friday 15 January 2027, 09:00 CET"
         " (Friday 15 January 2027, 00:00 PST your time)"),
    ],
)
def test_reminder_dates_also_show_the_learners_zone_when_it_reads_differently(viewer, kind, expected):
    assert k.reminder_text(kind, lesson_value(), viewer) == expected
    rumor_template = k.build_reminder(kind, lesson_value(), LEARNER.public_key, created_at=NOW, viewer_tz=viewer)
    assert rumor_template.content == expected


# Deletions ----------------------------------------------------------------------------------


def test_lesson_deletion_by_address_and_id():
    lesson = lesson_value()
    template = k.build_deletion(events=(("5" * 64, 31923),), addresses=(lesson.coordinate,), created_at=NOW, reason="cancelled")
    assert [t for t in template.tags if t[0] == "k"] == [("k", "31923")]
    deletion = k.parse_deletion(signed(template))
    assert deletion.addresses == (lesson.coordinate,) and deletion.event_ids == ("5" * 64,)
    assert deletion.reason == "cancelled"


def test_deletion_needs_a_target():
    with pytest.raises(MalformedEvent, match="at least one"):
        k.build_deletion(created_at=NOW)
    with pytest.raises(MalformedEvent, match="at least one"):
        k.parse_deletion(signed(EventTemplate(5, (("k", "8"),), "", NOW)))


def test_deletion_refuses_bad_targets():
    event = signed(k.build_deletion(events=(("6" * 64, 8),), created_at=NOW))
    with pytest.raises(MalformedEvent, match="e: must be a 64-character"):
        k.parse_deletion(replaced(event, "e", "note1xyz"))
    with pytest.raises(MalformedEvent, match="a: not a kind:pubkey:d"):
        k.parse_deletion(resigned(event, tags=event.tags + (("a", "lesson-1"),)))
