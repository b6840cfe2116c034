"""The live-session commands without a daemon (offline on the data dir): courses and lessons in
the user's and the lesson's zones, reschedule, cancel, and clear refusals that change nothing."""

from __future__ import annotations

import json

import pytest
from test_cli_services import invoke

from nostr_training.keys import Keys, save_key_file


@pytest.fixture
def user(home) -> Keys:
    keys = Keys.generate()
    save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
    return keys


def run_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.code == 0, result.output
    return json.loads(result.stdout)


def test_schedule_reschedule_cancel_offline(user, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    course = run_json("course", "create", "c1", "Course one")["course"]
    assert course["author"] == user.public_key
    made = invoke("lesson", "schedule", course["coordinate"], "l1", "First", "--start", "2030-03-10 09:30",
                  "--tz", "America/New_York", "--minutes", "90")
    assert made.code == 0, made.output
    assert "signed with npub1" in made.stderr
    # 09:30 in New York on 10 March 2030 (EDT, UTC-4) is 13:30 UTC, 22:30 in Tokyo.
    assert "2030-03-10 22:30 JST (America/New_York 09:30)" in made.stdout
    lessons = run_json("lesson", "list")["lessons"]
    assert [(x["d"], x["start"], x["duration_minutes"], x["tzid"]) for x in lessons] == [
        ("l1", 1899379800, 90, "America/New_York")]
    shown = run_json("course", "show", "c1")
    assert [x["d"] for x in shown["lessons"]] == ["l1"]

    moved = run_json("lesson", "reschedule", "l1", "--start", "2030-03-11 10:00", "--tz", "America/New_York")
    assert moved["lesson"]["start"] == 1899468000 and moved["lesson"]["duration_minutes"] == 90
    assert run_json("lesson", "show", "l1")["state"] == "scheduled"

    bad = invoke("lesson", "schedule", course["coordinate"], "l2", "Bad", "--start", "2030-03-10 09:30", "--tz", "Mars/Base")
    assert bad.code == 2 and "IANA" in bad.stderr
    assert [x["d"] for x in run_json("lesson", "list")["lessons"]] == ["l1"]

    cancelled = invoke("lesson", "cancel", "l1", "--reason", "ill")
    assert cancelled.code == 0, cancelled.output
    assert run_json("lesson", "list")["lessons"] == []
    gone = invoke("lesson", "show", "l1")
    assert gone.code == 1 and "no lesson with that id" in gone.stderr


def test_refusals_offline(user):
    missing = invoke("lesson", "schedule", "nope", "l1", "First", "--start", "2030-03-10 09:30")
    assert missing.code == 1 and "course nope" in missing.stderr
    unknown = invoke("session", "start", "no-such-lesson")
    assert unknown.code == 1 and "no lesson with that id" in unknown.stderr
    run_json("course", "create", "c1", "Course one")
    assert invoke("lesson", "schedule", "c1", "l1", "First", "--start", "2030-03-10 09:30").code == 0
    early = invoke("session", "end", "l1")
    assert early.code == 1 and "end: not allowed while the session is scheduled" in early.stderr
    absent = invoke("leave", "l1")
    assert absent.code == 1 and "you have not joined it" in absent.stderr


def test_a_course_with_certificates_and_a_reschedule_in_the_lessons_zone(user, monkeypatch):
    """Certification is set from the CLI and kept when lessons are added; a reschedule without
    --tz reads the new time in the lesson's own zone, not the user's."""
    monkeypatch.setenv("TZ", "UTC")
    course = run_json("course", "create", "safety", "Safety", "--certification", "--validity-days", "365")["course"]
    assert course["author"] == user.public_key
    made = invoke("lesson", "schedule", course["coordinate"], "l1", "First", "--start", "2030-03-10 09:30",
                  "--tz", "Europe/Berlin")
    assert made.code == 0, made.output
    shown = run_json("course", "show", "safety")["course"]
    assert (shown["certification"], shown["validity_days"], shown["issuer"]) == (True, 365, user.public_key)
    assert len(shown["lessons"]) == 1
    moved = run_json("lesson", "reschedule", "l1", "--start", "2030-03-10 17:50")["lesson"]
    # 17:50 in Berlin (CET, UTC+1) on 10 March 2030 is 16:50 UTC.
    assert (moved["start"], moved["tzid"]) == (1899391800, "Europe/Berlin")
