"""Every builder round-trips through its parser: build -> sign -> parse -> build gives the same event."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training import kinds as k
from nostr_training.event import EventTemplate
from nostr_training.kinds import private

from kinds_samples import HOST, LEARNER, NOW, START, VIEW_KEY, award_event, lesson_value, rumor, samples, signed


def _rebuild(name: str, template: EventTemplate) -> EventTemplate:
    """Parse the signed (or rumor) event, then build it again from the parsed value alone."""
    at = template.created_at
    if name == "room_key":
        v = k.parse_room_key(rumor(template))
        return k.build_room_key(v.room, v.key, v.epoch, created_at=at, expires_at=v.expires_at, alg=v.alg)
    if name == "recording_key":
        v = k.parse_recording_key(rumor(template))
        return k.build_recording_key(v.lesson, v.sha256, v.key, alg=v.alg, created_at=at, recording=v.recording)
    if name == "reminder":
        v = k.parse_reminder(rumor(template))
        lesson = k.parse_lesson(signed(k.build_lesson(lesson_value(), created_at=NOW)))
        assert v.lesson == lesson.coordinate
        return k.build_reminder(v.kind, lesson, v.recipient, created_at=at, expires_at=v.expires_at)
    if name == "record_delivery":
        v = private.parse_record_delivery(rumor(template))
        return private.build_record_delivery(v.events, subject=v.subject, created_at=at)
    if name == "private_item":  # encryption is randomised: the payload must survive, not the bytes
        inner = private.open_envelope(signed(template), VIEW_KEY)
        again = private.build_envelope(inner.template(), HOST.public_key, VIEW_KEY, created_at=at)
        assert private.open_envelope(signed(again), VIEW_KEY) == inner
        return dataclasses.replace(again, content=template.content)
    event = signed(template)
    if name in ("course", "private_course"):
        return k.build_course(k.parse_course(event), created_at=at)
    if name in ("lesson", "private_lesson"):
        return k.build_lesson(k.parse_lesson(event), created_at=at)
    if name == "rsvp":
        v = k.parse_rsvp(event)
        return k.build_rsvp(v.lesson, v.status, created_at=at, revision=v.revision, host=v.host, free_busy=v.free_busy, note=v.note)
    if name == "room":
        return k.build_room(k.parse_room(event), created_at=at)
    if name in ("meeting", "meeting_missed"):
        return k.build_meeting(k.parse_meeting(event), created_at=at)
    if name == "join_request":
        v = k.parse_join_request(event)
        return k.build_join_request(v.lesson, v.host, created_at=at, room=v.room, note=v.note)
    if name == "recording_consent":
        v = k.parse_recording_consent(event)
        return k.build_recording_consent(v.lesson, v.host, v.answer, created_at=at, note=v.note)
    if name == "presence":
        v = k.parse_presence(event)
        return k.build_presence(v.room, created_at=at, hand_raised=v.hand_raised)
    if name == "waiting_room_decision":
        v = k.parse_waiting_room_decision(event)
        return k.build_waiting_room_decision(v.target, v.participant, v.decision, created_at=at, reason=v.reason, request=v.request)
    if name == "attendance_claim":
        v = k.parse_attendance_claim(event)
        return k.build_attendance_claim(v.lesson, v.action, created_at=at, room=v.room)
    if name == "attendance_record":
        return k.build_attendance_record(k.parse_attendance_record(event), created_at=at)
    if name == "completion_record":
        return k.build_completion_record(k.parse_completion_record(event), created_at=at)
    if name == "certificate_definition":
        return k.build_certificate_definition(k.parse_certificate_definition(event), created_at=at)
    if name == "certificate_award":
        v = k.parse_certificate_award(event)
        return k.build_certificate_award(v.definition, v.learner, valid_from=v.valid_from, code=v.code, created_at=at, valid_until=v.valid_until)
    if name == "certificate_revocation":
        v = k.parse_certificate_revocation(event)
        award = k.CertificateAward(HOST.public_key, v.definition, v.learner, 0, "", 0, event_id=v.award)
        return k.build_certificate_revocation(award, created_at=at, reason=v.reason)
    if name == "profile_badges":
        v = k.parse_profile_badges(event)
        (definition, award_id), = v.pairs
        award = k.CertificateAward(HOST.public_key, definition, LEARNER.public_key, 0, "", 0, event_id=award_id)
        return k.build_profile_badge_acceptance(award, created_at=at)
    if name == "revocation_marker":
        v = k.parse_revocation(event)
        assert isinstance(v, k.RevocationMarker) and v.names(award_event().id)
        assert v.reason == ""
        return k.build_revocation_marker(award_event().id, created_at=at)
    if name == "door_check":
        v = k.parse_door_check(event)
        return k.build_door_check(v.lesson, v.learner, v.action, at=v.at, created_at=at)
    if name == "event_link":
        v = k.parse_training_link(event)
        return k.build_event_link(event, course=v.course, lesson=v.lesson, created_at=at)
    if name in ("award_deletion", "deletion"):
        v = k.parse_deletion(event)
        kinds = dict.fromkeys(v.kinds)
        event_kinds = [kd for kd in kinds if not any(a.startswith(f"{kd}:") for a in v.addresses)] or list(kinds)
        return k.build_deletion(events=[(i, event_kinds[0]) for i in v.event_ids], addresses=v.addresses, created_at=at, reason=v.reason)
    if name in ("recording", "encrypted_recording"):
        return k.build_recording(k.parse_recording(event), created_at=at)
    raise AssertionError(f"no rebuild for {name}")


@pytest.mark.parametrize("name", sorted(samples()))
def test_builder_round_trips_through_parser(name):
    template, _ = samples()[name]
    assert _rebuild(name, template) == template


def test_every_custom_kind_carries_alt():
    built = {t.kind for t, _ in samples().values()}
    for number, info in k.KINDS.items():
        if info.ours:
            assert number in built, f"kind {number} has no builder sample"
    for template, _ in samples().values():
        if k.KINDS[template.kind].ours:
            assert any(t[0] == "alt" and t[1] for t in template.tags), template.kind


def test_parsed_lesson_keeps_every_field():
    lesson = lesson_value(recording_url="https://blossom.example/rec.webm", references=("https://docs.example",))
    event = signed(k.build_lesson(lesson, created_at=NOW))
    assert k.parse_lesson(event) == dataclasses.replace(lesson, event_id=event.id, created_at=NOW)


_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(0, 4_000_000_000),
    length=st.integers(1, 5 * 86400),
    title=_text,
    summary=st.text(max_size=30),
    max_participants=st.none() | st.integers(1, 10_000),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    minutes=st.integers(0, 600),
    percent=st.integers(0, 100),
    tz=st.sampled_from([None, "UTC", "America/Costa_Rica", "Asia/Kolkata"]),
)
def test_lesson_round_trip_property(start, length, title, summary, max_participants, flags, minutes, percent, tz):
    lesson = lesson_value(
        start=start,
        end=start + length,
        title=title,
        summary=summary,
        max_participants=max_participants,
        requires_rsvp=flags[0],
        waiting_room=flags[1],
        allow_recording=flags[2],
        e2ee_required=flags[3],
        completion_minutes=minutes,
        completion_percent=percent,
        start_tzid=tz,
    )
    event = signed(k.build_lesson(lesson, created_at=NOW))
    assert k.parse_lesson(event) == dataclasses.replace(lesson, event_id=event.id, created_at=NOW)


@settings(max_examples=40, deadline=None)
@given(
    raw=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 900)), max_size=6),
    extra_joins=st.integers(0, 5),
    met=st.booleans(),
)
def test_attendance_record_round_trip_property(raw, extra_joins, met):
    intervals = []
    cursor = START
    for gap, length in raw:
        cursor += gap + 1
        intervals.append((cursor, cursor + length))
        cursor += length
    record = k.AttendanceRecord(
        author=HOST.public_key,
        lesson=lesson_value().coordinate,
        learner=LEARNER.public_key,
        total_seconds=sum(e - s for s, e in intervals),
        join_count=len(intervals) + extra_joins,
        intervals=tuple(intervals),
        rule=">=1800s",
        met=met,
        created_at=START,
    )
    event = signed(k.build_attendance_record(record, created_at=START))
    parsed = k.parse_attendance_record(event)
    assert parsed == dataclasses.replace(record, d=parsed.d, event_id=event.id)
    assert parsed.coordinate == record.coordinate
