"""Signing helpers and one sample of every event the kinds module builds, for the kinds tests."""

from __future__ import annotations

import dataclasses

from nostr_training import kinds as k
from nostr_training.event import Event, EventTemplate, compute_id, coordinate, sign_event, verify_event
from nostr_training.keys import Keys
from nostr_training.kinds import private

HOST = Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
LEARNER = Keys.from_hex("c15d2a640a7bd00f291e074e5e9c1b0bb8b2bbb0f0c2b4a7e5b8e0a63d4a1b2c")
START = 1_800_000_000
NOW = START - 7 * 86400
ROOM_KEY_BYTES = bytes(range(0xA0, 0xC0))
VIEW_KEY = bytes(range(1, 33))


def signed(template: EventTemplate, keys: Keys = HOST) -> Event:
    return verify_event(sign_event(template, keys.secret))


def rumor(template: EventTemplate, keys: Keys = HOST) -> Event:
    pk = keys.public_key
    event_id = compute_id(pk, template.created_at, template.kind, template.tags, template.content)
    return Event(event_id, pk, template.created_at, template.kind, template.tags, template.content, None)


def resigned(event: Event, keys: Keys = HOST, **changes) -> Event:
    """A validly signed copy of ``event`` with fields replaced: malformed content, honest signature."""
    template = dataclasses.replace(event.template(), **changes)
    return signed(template, keys)


def without(event: Event, name: str, keys: Keys = HOST) -> Event:
    return resigned(event, keys, tags=tuple(t for t in event.tags if t[0] != name))


def replaced(event: Event, name: str, *values: str, keys: Keys = HOST) -> Event:
    """Replace the first ``name`` tag's values (or append the tag when absent)."""
    tags = list(event.tags)
    for i, tag in enumerate(tags):
        if tag[0] == name:
            tags[i] = (name, *values)
            break
    else:
        tags.append((name, *values))
    return resigned(event, keys, tags=tuple(tags))


def course_coord() -> str:
    return coordinate(k.COURSE, HOST.public_key, "jail-support")


def room_coord() -> str:
    return coordinate(k.ROOM, HOST.public_key, "room-1")


def lesson_value(**changes) -> k.Lesson:
    base = k.Lesson(
        author=HOST.public_key,
        d="role-play-1",
        title="Jail Support Role-Play",
        start=START,
        end=START + 3600,
        instructor=HOST.public_key,
        summary="Practise the phone tree",
        start_tzid="Europe/Berlin",
        course=course_coord(),
        location="https://meet.example/room-1",
        room=room_coord(),
        recording_url=None,
        max_participants=20,
        requires_rsvp=True,
        waiting_room=True,
        allow_recording=True,
        e2ee_required=True,
        completion_minutes=30,
        completion_percent=50,
        hashtags=("training",),
        description="Bring a phone.",
    )
    return dataclasses.replace(base, **changes)


def lesson_coord() -> str:
    return lesson_value().coordinate


def award_event() -> Event:
    definition = coordinate(k.BADGE_DEFINITION, HOST.public_key, "jail-support-cert")
    return signed(
        k.build_certificate_award(
            definition,
            LEARNER.public_key,
            valid_from=START,
            valid_until=START + 180 * 86400,
            code=k.verification_code(bytes(10)),
            created_at=START + 4000,
        )
    )


def samples() -> dict[str, tuple[EventTemplate, bool]]:
    """name -> (template, public?) for every builder; rumors are not public."""
    lesson = lesson_value()
    lesson_event = signed(k.build_lesson(lesson, created_at=NOW))
    parsed_lesson = k.parse_lesson(lesson_event)
    course = k.Course(
        author=HOST.public_key,
        d="jail-support",
        title="Jail Support",
        description="Everything a jail support volunteer needs.",
        lessons=(lesson.coordinate,),
        modules=(k.Module("Live practice", (lesson.coordinate,)),),
        certification_enabled=True,
        validity_days=180,
        required_lessons=(lesson.coordinate,),
        certificate=coordinate(k.BADGE_DEFINITION, HOST.public_key, "jail-support-cert"),
    )
    room = k.Room(
        author=HOST.public_key,
        d="room-1",
        name="Jail Support Role-Play",
        status=k.RoomStatus.PRIVATE,
        service="https://meet.example/room-1",
        hosts=(HOST.public_key,),
        lesson=lesson.coordinate,
        endpoint="https://meet.example/api/room-1",
        relays=("wss://relay.example",),
        e2ee="livekit-gcm",
        key_epoch=3,
    )
    meeting = k.Meeting(
        author=HOST.public_key,
        d="room-1-2027-01-15",
        room=room.coordinate,
        title=lesson.title,
        starts=START,
        status=k.MeetingStatus.LIVE,
        lesson=lesson.coordinate,
        current_participants=4,
        total_participants=6,
        participants=(LEARNER.public_key,),
    )
    record = k.AttendanceRecord(
        author=HOST.public_key,
        lesson=lesson.coordinate,
        learner=LEARNER.public_key,
        total_seconds=2400,
        join_count=3,
        intervals=((START, START + 1200), (START + 1500, START + 2700)),
        rule=">=1800s OR >=50% of 3600s",
        met=True,
        created_at=START + 3600,
        required_seconds=1800,
        host=HOST.public_key,
        evidence=("1" * 64,),
        minimum_seconds=1800,
        minimum_percent=50,
        scheduled_seconds=3600,
    )
    completion = k.CompletionRecord(
        author=HOST.public_key,
        subject=lesson.coordinate,
        learner=LEARNER.public_key,
        completed_at=START + 3600,
        basis=k.CompletionBasis.ATTENDANCE,
        created_at=START + 3600,
        evidence=("2" * 64,),
    )
    definition = k.CertificateDefinition(
        author=HOST.public_key,
        d="jail-support-cert",
        name="Jail Support Volunteer",
        description="Completed the Jail Support course",
        image="https://img.example/cert.png",
        course=course.coordinate,
    )
    award = k.parse_certificate_award(award_event())
    recording = k.Recording(
        author=HOST.public_key,
        url="https://blossom.example/" + "ab" * 32 + ".webm",
        mime="video/webm",
        sha256="ab" * 32,
        size=123456789,
        lesson=lesson.coordinate,
        created_at=START + 7200,
        caption="Recording of the role-play",
    )
    return {
        "course": (k.build_course(course, created_at=NOW), True),
        "lesson": (k.build_lesson(dataclasses.replace(lesson, rsvp_until=START - 3600), created_at=NOW), True),
        "rsvp": (k.build_rsvp(parsed_lesson, "confirmed", created_at=NOW + 60, free_busy="busy", note="see you"), True),
        "room": (k.build_room(room, created_at=START - 600), True),
        "meeting": (k.build_meeting(meeting, created_at=START + 60), True),
        "meeting_missed": (
            k.build_meeting(
                dataclasses.replace(meeting, status=k.MeetingStatus.ENDED, ends=START + 3600 + 900, missed=True,
                                    current_participants=None, total_participants=None, participants=()),
                created_at=START + 3600 + 900,
            ),
            True,
        ),
        "presence": (k.build_presence(room.coordinate, created_at=START + 90, hand_raised=True), True),
        "join_request": (
            k.build_join_request(lesson.coordinate, HOST.public_key, created_at=START - 120, room=room.coordinate, note="on my phone"),
            True,
        ),
        "recording_consent": (
            k.build_recording_consent(lesson.coordinate, HOST.public_key, "given", created_at=START - 110),
            True,
        ),
        "room_key": (
            k.build_room_key(room.coordinate, ROOM_KEY_BYTES, 3, created_at=START, expires_at=START + 7200),
            False,
        ),
        "waiting_room_decision": (
            k.build_waiting_room_decision(
                room.coordinate, LEARNER.public_key, "admit", created_at=START + 30, request="3" * 64
            ),
            True,
        ),
        "attendance_claim": (k.build_attendance_claim(lesson.coordinate, "join", created_at=START + 5, room=room.coordinate), True),
        "attendance_record": (k.build_attendance_record(record, created_at=START + 3600), True),
        "completion_record": (k.build_completion_record(completion, created_at=START + 3600), True),
        "certificate_definition": (k.build_certificate_definition(definition, created_at=NOW), True),
        "certificate_award": (award_event().template(), True),
        "certificate_revocation": (k.build_certificate_revocation(award, created_at=START + 9000, reason="issued in error"), True),
        "profile_badges": (k.build_profile_badge_acceptance(award, created_at=START + 5000), True),
        "revocation_marker": (
            k.build_revocation_marker(award_event().id, created_at=START + 9000),
            True,
        ),
        "door_check": (
            k.build_door_check(lesson.coordinate, LEARNER.public_key, "check_in", at=START + 120, created_at=START + 125),
            True,
        ),
        "event_link": (
            k.build_event_link(
                signed(k.build_lesson(dataclasses.replace(lesson, d="street-day", course=None), created_at=NOW)),
                course=course.coordinate,
                lesson=lesson.coordinate,
                created_at=NOW + 60,
            ),
            True,
        ),
        "award_deletion": (k.build_award_deletion("4" * 64, created_at=START + 9000, reason="revoked"), True),
        "deletion": (
            k.build_deletion(events=(("5" * 64, k.LESSON),), addresses=(lesson.coordinate,), created_at=START + 9000),
            True,
        ),
        "recording": (k.build_recording(recording, created_at=START + 7200), True),
        "encrypted_recording": (
            k.build_recording(
                dataclasses.replace(
                    recording, mime="application/octet-stream", original_sha256="cd" * 32,
                    encryption_algorithm="xchacha20poly1305-secretstream", file_type="video/webm", duration=3600,
                ),
                created_at=START + 7200,
            ),
            True,
        ),
        "recording_key": (
            k.build_recording_key(
                lesson.coordinate, "ab" * 32, bytes(range(32)), alg="xchacha20poly1305-secretstream",
                created_at=START + 7300, recording="6" * 64,
            ),
            False,
        ),
        "private_course": (
            k.build_course(dataclasses.replace(course, d="4f0c9d2e7b1a4c3d8e9f0a1b2c3d4e5f", private=True,
                                               invitees=(LEARNER.public_key,)), created_at=NOW),
            False,  # kept by its host, published only inside its envelope (32678)
        ),
        "private_lesson": (
            k.build_lesson(dataclasses.replace(lesson, d="9a8b7c6d5e4f30211203948576a5b4c3", private=True,
                                               invitees=(LEARNER.public_key,)), created_at=NOW),
            False,
        ),
        "private_item": (
            private.build_envelope(
                k.build_lesson(dataclasses.replace(lesson, private=True, invitees=(LEARNER.public_key,)), created_at=NOW),
                HOST.public_key, VIEW_KEY, created_at=NOW,
            ),
            True,
        ),
        "record_delivery": (
            private.build_record_delivery(
                [signed(k.build_attendance_record(record, created_at=START + 3600))],
                subject=lesson.coordinate, created_at=START + 7200,
            ),
            False,
        ),
        "reminder": (
            k.build_reminder(k.ReminderKind.STARTING, parsed_lesson, LEARNER.public_key, created_at=START, expires_at=START + 86400),
            False,
        ),
    }
