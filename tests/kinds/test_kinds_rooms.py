"""NIP-53 rooms, meetings, presence, room-key rumors and waiting-room decisions."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent, MissingTag
from nostr_training.event import EventTemplate, coordinate

from kinds_samples import HOST, LEARNER, ROOM_KEY_BYTES, START, replaced, resigned, rumor, samples, signed, without


@pytest.fixture(scope="module")
def events():
    out = {}
    for name in ("room", "meeting", "presence", "waiting_room_decision"):
        out[name] = signed(samples()[name][0], LEARNER if name == "presence" else HOST)
    out["room_key"] = rumor(samples()["room_key"][0])
    return out


def test_room_reads_back(events):
    room = k.parse_room(events["room"])
    assert room.hosts == (HOST.public_key,)
    assert room.status is k.RoomStatus.PRIVATE
    assert room.lesson.startswith("31923:")
    assert (room.e2ee, room.key_epoch) == ("livekit-gcm", 3)


def test_meeting_separates_room_and_lesson(events):
    meeting = k.parse_meeting(events["meeting"])
    assert meeting.room.startswith("30312:") and meeting.lesson.startswith("31923:")
    assert meeting.status is k.MeetingStatus.LIVE
    assert (meeting.current_participants, meeting.total_participants) == (4, 6)


def test_presence_and_hand(events):
    presence = k.parse_presence(events["presence"])
    assert presence.author == LEARNER.public_key and presence.hand_raised
    assert events["presence"].tags[0][3] == "root"


def test_room_key_reads_back(events):
    key = k.parse_room_key(events["room_key"])
    assert (key.key, key.epoch, key.alg, key.expires_at) == (ROOM_KEY_BYTES, 3, "aes-256-gcm", START + 7200)
    assert "key=" not in repr(key)


def test_signed_room_key_is_refused(events):
    signed_key = signed(samples()["room_key"][0])
    with pytest.raises(MalformedEvent, match="unsigned rumor"):
        k.parse_room_key(signed_key)


@pytest.mark.parametrize(
    "content,needle",
    [
        ("not json", "content: must be a JSON object"),
        ("[1,2]", "content: must be a JSON object"),
        ('{"alg":"aes-256-gcm","key":"!!!","epoch":3}', "not standard base64"),
        ('{"alg":"aes-256-gcm","key":"' + base64.b64encode(b"short").decode() + '","epoch":3}', "needs a 32-byte key"),
        ('{"alg":"aes-256-gcm","key":"' + base64.b64encode(ROOM_KEY_BYTES).decode() + '","epoch":4}', "differs from the epoch tag"),
        ('{"alg":"AES GCM","key":"' + base64.b64encode(ROOM_KEY_BYTES).decode() + '","epoch":3}', "lowercase scheme name"),
    ],
)
def test_room_key_content_is_checked(events, content, needle):
    template = events["room_key"].template()
    bad = rumor(EventTemplate(template.kind, template.tags, content, template.created_at))
    with pytest.raises(MalformedEvent) as info:
        k.parse_room_key(bad)
    assert needle in str(info.value) and str(info.value).startswith(f"event {bad.id[:16]}")


def test_room_key_builder_refuses_wrong_length_and_target():
    room = coordinate(30312, HOST.public_key, "r")
    with pytest.raises(MalformedEvent, match="32-byte key"):
        k.build_room_key(room, b"\x00" * 16, 1, created_at=START)
    with pytest.raises(MalformedEvent, match="must point at kind"):
        k.build_room_key(coordinate(31923, HOST.public_key, "l"), ROOM_KEY_BYTES, 1, created_at=START)


ROOM_CASES = [
    ("missing room", "room", lambda e: without(e, "room"), MissingTag, "'room'"),
    ("missing service", "room", lambda e: without(e, "service"), MissingTag, "'service'"),
    ("bad status", "room", lambda e: replaced(e, "status", "live"), MalformedEvent, "status: must be one of open|private|closed"),
    ("no host", "room", lambda e: without(e, "p"), MalformedEvent, "no p tag with role Host"),
    ("wrong kind", "room", lambda e: resigned(e, kind=30313), MalformedEvent, "expected kind 30312"),
    ("bad epoch", "room", lambda e: replaced(e, "epoch", "x"), MalformedEvent, "epoch: must be decimal digits"),
    ("meeting without room", "meeting", lambda e: without(e, "a"), MissingTag, "'a'"),
    ("meeting bad starts", "meeting", lambda e: replaced(e, "starts", "soon"), MalformedEvent, "starts: must be decimal digits"),
    ("meeting unknown status", "meeting", lambda e: replaced(e, "status", "paused"), MalformedEvent, "status: must be one of planned|live|ended"),
    ("meeting ends before starts", "meeting", lambda e: replaced(e, "ends", str(START - 1)), MalformedEvent, "is before starts"),
    ("meeting bad count", "meeting", lambda e: replaced(e, "current_participants", "-1"), MalformedEvent, "current_participants"),
    ("presence bad hand", "presence", lambda e: replaced(e, "hand", "up", keys=LEARNER), MalformedEvent, "hand: must be one of 0|1"),
    ("presence lesson not room", "presence", lambda e: replaced(e, "a", coordinate(31923, HOST.public_key, "l"), "", "root", keys=LEARNER), MalformedEvent, "no a tag points at kind 30312"),
    ("decision unknown", "waiting_room_decision", lambda e: replaced(e, "decision", "maybe"), MalformedEvent, "decision: must be one of admit|deny"),
    ("decision no participant", "waiting_room_decision", lambda e: without(e, "p"), MissingTag, "'p'"),
    ("decision no target", "waiting_room_decision", lambda e: without(e, "a"), MissingTag, "'a'"),
]

_PARSERS = {
    "room": k.parse_room,
    "meeting": k.parse_meeting,
    "presence": k.parse_presence,
    "waiting_room_decision": k.parse_waiting_room_decision,
}


@pytest.mark.parametrize("name,which,mutate,error,needle", ROOM_CASES, ids=[c[0] for c in ROOM_CASES])
def test_room_parsers_refuse(events, name, which, mutate, error, needle):
    bad = mutate(events[which])
    with pytest.raises(error) as info:
        _PARSERS[which](bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


def test_decision_reads_back(events):
    decision = k.parse_waiting_room_decision(events["waiting_room_decision"])
    assert decision.decision is k.Decision.ADMIT
    assert decision.participant == LEARNER.public_key and decision.author == HOST.public_key


def test_decision_builder_refuses_unknown_answer():
    with pytest.raises(MalformedEvent, match="admit|deny"):
        k.build_waiting_room_decision(coordinate(30312, HOST.public_key, "r"), LEARNER.public_key, "kick", created_at=START)


# Join requests (8312), recording consent (8311) and missed meetings ------------------------------


@pytest.fixture(scope="module")
def learner_events():
    return {name: signed(samples()[name][0], LEARNER) for name in ("join_request", "recording_consent")}


def test_join_request_reads_back(learner_events):
    request = k.parse_join_request(learner_events["join_request"])
    assert request.author == LEARNER.public_key and request.host == HOST.public_key
    assert request.lesson.startswith("31923:") and request.room.startswith("30312:")
    assert request.note == "on my phone"


def test_join_request_as_rumor_reads_the_same(learner_events):
    """The rumor of an ephemeral gift wrap carries the same request, without a signature."""
    as_rumor = rumor(samples()["join_request"][0], LEARNER)
    assert k.parse_join_request(as_rumor) == k.parse_join_request(learner_events["join_request"])


def test_recording_consent_reads_back_and_withdraws(learner_events):
    consent = k.parse_recording_consent(learner_events["recording_consent"])
    assert consent.given and consent.author == LEARNER.public_key and consent.host == HOST.public_key
    withdrawn = signed(k.build_recording_consent(consent.lesson, HOST.public_key, False, created_at=START + 60), LEARNER)
    assert k.parse_recording_consent(withdrawn).answer is k.ConsentAnswer.WITHDRAWN


def test_missed_meeting_reads_back():
    meeting = k.parse_meeting(signed(samples()["meeting_missed"][0]))
    assert meeting.missed and meeting.status is k.MeetingStatus.ENDED
    assert not k.parse_meeting(signed(samples()["meeting"][0])).missed


REQUEST_CASES = [
    ("request without lesson", "join_request", lambda e: resigned(e, LEARNER, tags=tuple(t for t in e.tags if not (t[0] == "a" and t[1].startswith("31923:")))), MalformedEvent, "no a tag points at kind 31923"),
    ("request without host", "join_request", lambda e: without(e, "p", LEARNER), MissingTag, "'p'"),
    ("request bad host", "join_request", lambda e: replaced(e, "p", "npub1nothex", keys=LEARNER), MalformedEvent, "p: must be a 64-character"),
    ("consent unknown answer", "recording_consent", lambda e: replaced(e, "consent", "maybe", keys=LEARNER), MalformedEvent, "consent: must be one of given|withdrawn"),
    ("consent missing answer", "recording_consent", lambda e: without(e, "consent", LEARNER), MissingTag, "'consent'"),
    ("consent wrong kind", "recording_consent", lambda e: resigned(e, LEARNER, kind=8312), MalformedEvent, "expected kind 8311"),
]
_LEARNER_PARSERS = {"join_request": k.parse_join_request, "recording_consent": k.parse_recording_consent}


@pytest.mark.parametrize("name,which,mutate,error,needle", REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_learner_statements_are_strict(learner_events, name, which, mutate, error, needle):
    bad = mutate(learner_events[which])
    with pytest.raises(error) as info:
        _LEARNER_PARSERS[which](bad)
    assert str(info.value).startswith(f"event {bad.id[:16]}: ")
    assert needle in str(info.value)


@pytest.mark.parametrize("status", ["planned", "live"])
def test_only_an_ended_meeting_can_be_missed(status):
    missed = signed(samples()["meeting_missed"][0])
    with pytest.raises(MalformedEvent, match="cannot be missed"):
        k.parse_meeting(replaced(missed, "status", status))
    value = k.parse_meeting(missed)
    with pytest.raises(MalformedEvent, match="only an ended meeting"):
        k.build_meeting(dataclasses.replace(value, status=k.MeetingStatus(status)), created_at=START)


def test_builders_refuse_bad_targets_and_answers():
    room = coordinate(30312, HOST.public_key, "r")
    with pytest.raises(MalformedEvent, match="must point at kind 31923"):
        k.build_join_request(room, HOST.public_key, created_at=START)
    with pytest.raises(MalformedEvent, match="given|withdrawn"):
        k.build_recording_consent(coordinate(31923, HOST.public_key, "l"), HOST.public_key, "perhaps", created_at=START)
