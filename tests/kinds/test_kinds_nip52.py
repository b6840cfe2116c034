"""A lesson we build is a valid NIP-52 31923, an RSVP a valid 31925 and a course a valid 31924.

The checker below is written from the NIP-52 text alone and shares no code with our parsers:
it works on the raw JSON event, the way another calendar client would see it.
"""

from __future__ import annotations

import json
import re
import zoneinfo

import pytest

from nostr_training import kinds as k

from kinds_samples import LEARNER, NOW, lesson_value, samples, signed

HEX64 = re.compile(r"[0-9a-f]{64}")
UNIX = re.compile(r"[0-9]+")
CALENDAR_EVENT_COORD = re.compile(r"3192[23]:[0-9a-f]{64}:.+")
CALENDAR_COORD = re.compile(r"31924:[0-9a-f]{64}:.+")


def _first(tags, name):
    for tag in tags:
        if tag[0] == name:
            return tag
    return None


def nip52_problems(event: dict) -> list[str]:
    """Every NIP-52 rule the raw event breaks; empty when valid."""
    problems = []
    tags = event["tags"]
    if not all(isinstance(t, list) and t and all(isinstance(x, str) for x in t) for t in tags):
        return ["tags must be arrays of strings"]
    if not isinstance(event["content"], str):
        problems.append("content must be a string")
    d = _first(tags, "d")
    if d is None or len(d) < 2 or not d[1]:
        problems.append("d is required")
    kind = event["kind"]
    if kind in (31923, 31924):
        title = _first(tags, "title")
        if title is None or len(title) < 2 or not title[1]:
            problems.append("title is required")
    if kind == 31923:
        start = _first(tags, "start")
        if start is None or len(start) < 2 or not UNIX.fullmatch(start[1]):
            problems.append("start must be unix seconds")
            return problems
        begin = int(start[1])
        end_tag = _first(tags, "end")
        finish = None
        if end_tag is not None:
            if len(end_tag) < 2 or not UNIX.fullmatch(end_tag[1]):
                problems.append("end must be unix seconds")
            else:
                finish = int(end_tag[1])
                if not begin < finish:
                    problems.append("start must be less than end")
        for name in ("start_tzid", "end_tzid"):
            tz = _first(tags, name)
            if tz is not None:
                try:
                    zoneinfo.ZoneInfo(tz[1])
                except Exception:
                    problems.append(f"{name} must be an IANA time zone")
        days = [t[1] for t in tags if t[0] == "D" and len(t) > 1]
        if not days:
            problems.append("D is required")
        elif not all(UNIX.fullmatch(x) for x in days):
            problems.append("D must be a day number")
        else:
            last = begin if finish is None else finish - 1
            expected = {str(day) for day in range(begin // 86400, last // 86400 + 1)}
            if set(days) != expected:
                problems.append(f"D must be floor(t/86400) for each covered day: {sorted(expected)}")
        for tag in tags:
            if tag[0] == "p" and (len(tag) < 2 or not HEX64.fullmatch(tag[1])):
                problems.append("p must be a 32-byte hex pubkey")
            if tag[0] == "a" and tag[1].startswith("31924:") and not CALENDAR_COORD.fullmatch(tag[1]):
                problems.append("a must reference a 31924 calendar")
    if kind == 31924:
        for tag in tags:
            if tag[0] == "a" and not CALENDAR_EVENT_COORD.fullmatch(tag[1]):
                problems.append("calendar a must reference a 31922 or 31923 event")
    if kind == 31925:
        a = _first(tags, "a")
        if a is None or len(a) < 2 or not CALENDAR_EVENT_COORD.fullmatch(a[1]):
            problems.append("a must reference a 31922/31923 event")
        status = _first(tags, "status")
        if status is None or len(status) < 2 or status[1] not in ("accepted", "declined", "tentative"):
            problems.append("status must be accepted, declined or tentative")
        fb = _first(tags, "fb")
        if fb is not None:
            if fb[1] not in ("free", "busy"):
                problems.append("fb must be free or busy")
            if status is not None and status[1] == "declined":
                problems.append("fb must be omitted when declined")
        for name in ("e", "p"):
            tag = _first(tags, name)
            if tag is not None and not HEX64.fullmatch(tag[1]):
                problems.append(f"{name} must be 32-byte hex")
    return problems


def _raw(event) -> dict:
    return json.loads(event.to_json())


def test_lesson_is_a_valid_31923():
    event = _raw(signed(samples()["lesson"][0]))
    assert event["kind"] == 31923
    assert nip52_problems(event) == []


@pytest.mark.parametrize(
    "start,end",
    [(1_800_000_000, 1_800_003_600), (86400 * 20000 + 80000, 86400 * 20002), (86400 * 20000, 86400 * 20000 + 1), (0, 86400 * 3)],
)
def test_lessons_across_day_boundaries_are_valid(start, end):
    assert nip52_problems(_raw(signed(k.build_lesson(lesson_value(start=start, end=end), created_at=NOW)))) == []


@pytest.mark.parametrize("status", ["confirmed", "tentative", "declined"])
def test_rsvp_is_a_valid_31925(status):
    lesson = k.parse_lesson(signed(k.build_lesson(lesson_value(), created_at=NOW)))
    event = _raw(signed(k.build_rsvp(lesson, status, created_at=NOW, free_busy="busy"), LEARNER))
    assert event["kind"] == 31925
    assert nip52_problems(event) == []


def test_course_is_a_valid_31924():
    event = _raw(signed(samples()["course"][0]))
    assert event["kind"] == 31924
    assert nip52_problems(event) == []


def test_checker_catches_what_it_should():
    good = _raw(signed(samples()["lesson"][0]))
    no_days = dict(good, tags=[t for t in good["tags"] if t[0] != "D"])
    assert "D is required" in nip52_problems(no_days)
    backwards = dict(good, tags=[["end", "1"] if t[0] == "end" else t for t in good["tags"]])
    assert "start must be less than end" in nip52_problems(backwards)
    rsvp = _raw(signed(samples()["rsvp"][0], LEARNER))
    seed_status = dict(rsvp, tags=[["status", "confirmed"] if t[0] == "status" else t for t in rsvp["tags"]])
    assert "status must be accepted, declined or tentative" in nip52_problems(seed_status)
