"""The iCalendar export parses back with icalendar: times across DST, UID, SEQUENCE, cancellation."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from nostr_training.ics import CalendarEntry, calendar_entry, lesson_uid, lessons_to_ics
from nostr_training.kinds.calendar import Lesson
from nostr_training.nips.nip19 import npub_encode

HOST = "b" * 64
BERLIN = ZoneInfo("Europe/Berlin")


def at_berlin(day: int, month: int = 3, hour: int = 18) -> int:
    return int(datetime(2027, month, day, hour, 0, tzinfo=BERLIN).timestamp())


def weekly(day: int, month: int = 3, **changes) -> Lesson:
    start = at_berlin(day, month)
    base = Lesson(
        author=HOST,
        d=f"week-{month}-{day}",
        title="Jail Support Role-Play",
        start=start,
        end=start + 90 * 60,
        instructor=HOST,
        start_tzid="Europe/Berlin",
        location="https://meet.example/room-1",
        summary="Practise the phone tree",
        hashtags=("training",),
        created_at=start - 30 * 86400,
        event_id="1" * 64,
    )
    return replace(base, **changes)


# The last Sunday of March 2027 is the 28th: Berlin moves from CET (+1) to CEST (+2) that night.
SERIES = [weekly(21), weekly(28), weekly(4, 4)]


def events(ics: bytes) -> dict[str, object]:
    calendar = Calendar.from_ical(ics)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_a_series_across_the_dst_change_keeps_its_wall_clock_time_and_its_instants():
    ics = lessons_to_ics(SERIES, name="Jail Support")
    parsed = events(ics)
    offsets = []
    for lesson in SERIES:
        event = parsed[lesson_uid(lesson.coordinate)]
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert int(start.timestamp()) == lesson.start and int(end.timestamp()) == lesson.end
        assert (start.hour, start.minute) == (18, 0)
        offsets.append(start.utcoffset())
    assert offsets == [timedelta(hours=1), timedelta(hours=2), timedelta(hours=2)]
    assert Calendar.from_ical(ics)["X-WR-CALNAME"] == "Jail Support"


def test_the_vtimezone_alone_resolves_the_local_times():
    calendar = Calendar.from_ical(lessons_to_ics(SERIES))
    (vtimezone,) = calendar.walk("VTIMEZONE")
    assert vtimezone["TZID"] == "Europe/Berlin"
    zone = vtimezone.to_tz()
    for lesson in SERIES:
        naive = datetime.fromtimestamp(lesson.start, tz=BERLIN).replace(tzinfo=None)
        assert int(naive.replace(tzinfo=zone).timestamp()) == lesson.start


def test_a_lesson_without_a_zone_is_written_in_utc_without_a_vtimezone():
    lesson = weekly(21, start_tzid=None)
    ics = lessons_to_ics([lesson])
    assert b"DTSTART:20270321T170000Z" in ics
    assert Calendar.from_ical(ics).walk("VTIMEZONE") == []
    start = events(ics)[lesson_uid(lesson.coordinate)].decoded("DTSTART")
    assert start.utcoffset() == timedelta(0) and int(start.timestamp()) == lesson.start


def test_uid_is_stable_per_lesson_and_distinct_between_lessons():
    first = weekly(21)
    revised = replace(first, title="Renamed", start=first.start + 3600, end=first.end + 3600, event_id="2" * 64)
    uid_first = set(events(lessons_to_ics([first])))
    uid_revised = set(events(lessons_to_ics([revised])))
    assert uid_first == uid_revised == {lesson_uid(first.coordinate)}
    assert len(events(lessons_to_ics(SERIES))) == 3


def test_sequence_counts_material_changes_only():
    first = weekly(21)
    retitled = replace(first, title="Renamed", created_at=first.created_at + 10, event_id="2" * 64)
    moved = replace(retitled, start=first.start + 3600, end=first.end + 3600, created_at=first.created_at + 20, event_id="3" * 64)
    longer = replace(moved, end=moved.end + 1800, created_at=first.created_at + 30, event_id="4" * 64)

    def sequence(*revisions: Lesson) -> int:
        (event,) = events(lessons_to_ics([calendar_entry(list(revisions))])).values()
        return int(event["SEQUENCE"])

    assert sequence(first) == 0
    assert sequence(first, retitled) == 0
    assert sequence(retitled, moved, first) == 1
    assert sequence(first, retitled, moved, longer) == 2
    (event,) = events(lessons_to_ics([calendar_entry([first, moved])])).values()
    assert int(event.decoded("DTSTART").timestamp()) == moved.start


def test_alarms_at_24_and_1_hours_and_none_for_a_cancelled_lesson():
    live, cancelled = SERIES[0], SERIES[1]
    parsed = events(lessons_to_ics([CalendarEntry(live), CalendarEntry(cancelled, cancelled=True)]))
    kept = parsed[lesson_uid(live.coordinate)]
    gone = parsed[lesson_uid(cancelled.coordinate)]
    assert kept["STATUS"] == "CONFIRMED" and gone["STATUS"] == "CANCELLED"
    triggers = sorted(a.decoded("TRIGGER") for a in kept.walk("VALARM"))
    assert triggers == [-timedelta(hours=24), -timedelta(hours=1)]
    assert [str(a["ACTION"]) for a in kept.walk("VALARM")] == ["DISPLAY", "DISPLAY"]
    assert str(kept.walk("VALARM")[0]["DESCRIPTION"]) == "Tomorrow: Jail Support Role-Play at 18:00 CET"
    assert gone.walk("VALARM") == []
    assert b"TRIGGER:-PT24H" in lessons_to_ics([live])


def test_join_link_description_and_organizer_when_known():
    lesson = replace(weekly(21), description="Bring a phone.", recording_url="https://blossom.example/r.webm")
    (event,) = events(lessons_to_ics([CalendarEntry(lesson, host_name="Ana Instructor")])).values()
    assert str(event["URL"]) == str(event["LOCATION"]) == "https://meet.example/room-1"
    description = str(event["DESCRIPTION"])
    for part in ("Practise the phone tree", "Bring a phone.", "Join: https://meet.example/room-1",
                 "Recording: https://blossom.example/r.webm"):
        assert part in description
    organizer = event["ORGANIZER"]
    assert str(organizer) == f"nostr:{npub_encode(HOST)}" and organizer.params["CN"] == "Ana Instructor"
    assert int(event.decoded("DTSTAMP").timestamp()) == lesson.created_at

    bare = replace(weekly(21), location=None, summary="", hashtags=())
    (plain,) = events(lessons_to_ics([bare])).values()
    assert "URL" not in plain and "LOCATION" not in plain and "DESCRIPTION" not in plain
    assert "CN" not in plain["ORGANIZER"].params


def test_output_is_a_pure_function_of_the_lessons():
    assert lessons_to_ics(SERIES) == lessons_to_ics(SERIES[::-1])
    assert lessons_to_ics([]).startswith(b"BEGIN:VCALENDAR")


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", None]


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=1_700_000_000, max_value=2_100_000_000),
        st.integers(min_value=-7200, max_value=7200).map(lambda d: 1824944400 + d),  # Berlin falls back at 01:00 UTC, 31 Oct 2027
    ),
    st.integers(min_value=60, max_value=6 * 3600),
    st.sampled_from(ZONES),
)
def test_any_lesson_parses_back_at_the_same_instants(start, length, tzid):
    lesson = replace(weekly(21), start=start, end=start + length, start_tzid=tzid)
    (event,) = events(lessons_to_ics([lesson])).values()
    assert int(event.decoded("DTSTART").timestamp()) == start
    assert int(event.decoded("DTEND").timestamp()) == start + length
    local = datetime.fromtimestamp(start, tz=ZoneInfo(tzid) if tzid else timezone.utc)
    if not local.fold:
        assert event.decoded("DTSTART").replace(tzinfo=None) == local.replace(tzinfo=None)


def test_a_start_in_the_hour_repeated_when_clocks_go_back_is_written_in_utc():
    second_0230 = int(datetime(2027, 10, 31, 1, 30, tzinfo=timezone.utc).timestamp())  # 02:30 CET, after 02:30 CEST
    first_0230 = second_0230 - 3600
    ics = lessons_to_ics([replace(weekly(21), start=t, end=t + 3600, d=f"l{t}") for t in (first_0230, second_0230)])
    assert b"DTSTART;TZID=Europe/Berlin:20271031T023000" in ics and b"DTSTART:20271031T013000Z" in ics
    starts = sorted(int(e.decoded("DTSTART").timestamp()) for e in events(ics).values())
    assert starts == [first_0230, second_0230]
