"""LiveKit webhooks: signed the way LiveKit signs them (an AccessToken carrying the body's
sha256), verified with livekit-api's WebhookReceiver, then kept once each and ordered so that
attendance does not depend on delivery."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import jwt
import pytest
from google.protobuf.json_format import MessageToJson
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit.api import AccessToken
from livekit.protocol.egress import EgressInfo
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from nostr_training.clock import SystemClock
from nostr_training.errors import WebhookRefused
from nostr_training.rules.attendance import AttendancePolicy, Heartbeat, Join, Leave, SessionWindow, compute_attendance
from nostr_training.sfu.base import SfuEventType
from nostr_training.sfu.config import SecretText, SfuConfig
from nostr_training.sfu.livekit import SOURCE, LiveKitAdapter, WebhookLedger

API_KEY = "APIwebhook"
SECRET = "webhook-secret-" + "z" * 40
ROOM = "lesson-room-1"
ALICE = "aa" * 32
BOB = "bb" * 32
T0 = 1_800_000_000


@pytest.fixture
def adapter() -> LiveKitAdapter:
    return LiveKitAdapter(SfuConfig("livekit", "wss://sfu.example.org", API_KEY, SecretText(SECRET)))


def webhook(name: str, event_id: str, at: int, *, identity: str = "", sid: str = "", room: str = ROOM) -> WebhookEvent:
    event = WebhookEvent(event=name, id=event_id, created_at=at, room=Room(name=room, sid="RM_1"))
    if identity:
        event.participant.CopyFrom(ParticipantInfo(identity=identity, sid=sid or f"PA_{identity[:4]}"))
    return event


def sign(event: WebhookEvent, *, secret: str = SECRET) -> tuple[str, str]:
    """(body, Authorization) as LiveKit's server sends them: the token's sha256 claim is the body's."""
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return body, AccessToken(API_KEY, secret).with_sha256(digest).to_jwt()


def test_a_signed_webhook_is_accepted_and_typed(adapter):
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE, sid="PA_a1"))
    event = adapter.parse_webhook(body, token)
    assert (event.id, event.type, event.room, event.at) == ("EV_1", SfuEventType.JOINED, ROOM, T0)
    assert (event.identity, event.connection, event.name) == (ALICE, "PA_a1", "participant_joined")


def test_bytes_and_a_bearer_prefix_are_accepted(adapter):
    body, token = sign(webhook("participant_left", "EV_2", T0, identity=ALICE))
    assert adapter.parse_webhook(body.encode(), f"Bearer {token}").type is SfuEventType.LEFT


def test_room_and_egress_events(adapter):
    started = adapter.parse_webhook(*sign(webhook("room_started", "EV_r", T0)))
    assert (started.type, started.identity) == (SfuEventType.ROOM_STARTED, "")
    egress = WebhookEvent(event="egress_ended", id="EV_e", created_at=T0 + 5)
    egress.egress_info.CopyFrom(EgressInfo(egress_id="EG_1", room_name=ROOM))
    ended = adapter.parse_webhook(*sign(egress))
    assert (ended.type, ended.egress_id, ended.room) == (SfuEventType.EGRESS_ENDED, "EG_1", ROOM)
    other = adapter.parse_webhook(*sign(webhook("track_published", "EV_t", T0, identity=ALICE)))
    assert other.type is SfuEventType.OTHER


def test_signed_with_another_secret_is_refused(adapter):
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE), secret="forger-" + "q" * 40)
    with pytest.raises(WebhookRefused):
        adapter.parse_webhook(body, token)


def test_a_body_changed_after_signing_is_refused(adapter):
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE))
    with pytest.raises(WebhookRefused, match="hash mismatch"):
        adapter.parse_webhook(body.replace(ALICE, BOB), token)


def test_no_authorization_or_no_body_hash_is_refused(adapter):
    body, _ = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE))
    with pytest.raises(WebhookRefused):
        adapter.parse_webhook(body, None)
    unhashed = AccessToken(API_KEY, SECRET).to_jwt()
    with pytest.raises(WebhookRefused, match="sha256"):
        adapter.parse_webhook(body, unhashed)


def test_a_replay_with_an_expired_token_is_refused(adapter):
    body, _ = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE))
    now = SystemClock().now()
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    old = jwt.encode(
        {"sha256": digest, "iss": API_KEY, "sub": "", "nbf": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256"
    )
    with pytest.raises(WebhookRefused, match="Expired"):
        adapter.parse_webhook(body, old)


def test_a_participant_event_without_identity_is_refused(adapter):
    with pytest.raises(WebhookRefused):
        adapter.parse_webhook(*sign(webhook("participant_joined", "EV_1", T0)))
    with pytest.raises(WebhookRefused, match="id"):
        adapter.parse_webhook(*sign(webhook("participant_joined", "", T0, identity=ALICE)))


def test_a_replayed_webhook_is_taken_once(adapter):
    ledger = WebhookLedger(ROOM)
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE))
    assert ledger.record(adapter.parse_webhook(body, token)) is True
    assert ledger.record(adapter.parse_webhook(body, token)) is False
    assert ledger.evidence() == [Join(ALICE, T0, connection="PA_aaaa", source=SOURCE)]


def test_another_rooms_webhook_is_not_taken(adapter):
    ledger = WebhookLedger(ROOM)
    event = adapter.parse_webhook(*sign(webhook("participant_joined", "EV_1", T0, identity=ALICE, room="other")))
    assert ledger.record(event) is False
    assert len(ledger) == 0


def test_identities_that_are_not_pubkeys_give_no_evidence(adapter):
    ledger = WebhookLedger(ROOM)
    ledger.record(adapter.parse_webhook(*sign(webhook("participant_joined", "EV_1", T0, identity="EG_recorder"))))
    assert len(ledger) == 1 and ledger.evidence() == []


def test_an_aborted_connection_is_a_leave(adapter):
    ledger = WebhookLedger(ROOM)
    ledger.record(adapter.parse_webhook(*sign(webhook("participant_joined", "EV_1", T0, identity=ALICE, sid="PA_1"))))
    ledger.record(
        adapter.parse_webhook(*sign(webhook("participant_connection_aborted", "EV_2", T0 + 60, identity=ALICE, sid="PA_1")))
    )
    assert ledger.evidence()[1] == Leave(ALICE, T0 + 60, connection="PA_1", source=SOURCE)


# A session as LiveKit would report it: Alice drops after 20 minutes and comes back on a new
# connection (whose join arrives before the old leave, livekit#2399), Bob stays 10 minutes.
SESSION = [
    webhook("room_started", "EV_00", T0 - 30),
    webhook("participant_joined", "EV_01", T0, identity=ALICE, sid="PA_a1"),
    webhook("participant_joined", "EV_02", T0 + 60, identity=BOB, sid="PA_b1"),
    webhook("participant_joined", "EV_03", T0 + 1230, identity=ALICE, sid="PA_a2"),
    webhook("participant_left", "EV_04", T0 + 1200, identity=ALICE, sid="PA_a1"),
    webhook("participant_left", "EV_05", T0 + 660, identity=BOB, sid="PA_b1"),
    webhook("participant_left", "EV_06", T0 + 3000, identity=ALICE, sid="PA_a2"),
    webhook("room_finished", "EV_07", T0 + 3600),
]
WINDOW = SessionWindow(T0, T0 + 3600)


@pytest.fixture(scope="module")
def verified():
    adapter = LiveKitAdapter(SfuConfig("livekit", "wss://sfu.example.org", API_KEY, SecretText(SECRET)))
    return [adapter.parse_webhook(*sign(event)) for event in SESSION]


def _attendance(events):
    ledger = WebhookLedger(ROOM)
    ledger.record_all(events)
    return ledger, compute_attendance(ledger.evidence(), WINDOW)


def test_the_session_gives_the_expected_attendance(verified):
    ledger, attendance = _attendance(verified)
    assert attendance[ALICE].total_seconds == 3000
    assert attendance[ALICE].join_count == 2
    assert attendance[BOB].total_seconds == 600
    assert (ledger.started_at(), ledger.finished_at()) == (T0 - 30, T0 + 3600)
    assert [e.at for e in ledger.events()] == sorted(e.at for e in verified)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_duplicates_and_delivery_order_do_not_change_attendance(verified, data):
    _, expected = _attendance(verified)
    delivered = data.draw(st.lists(st.sampled_from(verified), min_size=len(verified), max_size=3 * len(verified)))
    delivered += verified  # every event arrives at least once, some several times, in any order
    ledger, attendance = _attendance(data.draw(st.permutations(delivered)))
    assert len(ledger) == len(verified)
    assert attendance == expected


def test_a_missing_leave_is_closed_by_the_attendance_rule_not_invented(verified):
    without_last_leave = [e for e in verified if e.id != "EV_06"]
    _, attendance = _attendance(without_last_leave)
    assert attendance[ALICE].intervals[-1][1] == WINDOW.end


def test_ledger_keeps_the_first_copy_of_an_id(verified):
    ledger = WebhookLedger(ROOM)
    first = verified[1]
    ledger.record(first)
    assert ledger.record(replace(first, at=first.at + 999)) is False
    assert ledger.events() == [first]


def test_webhooks_are_evidence_beside_presence_heartbeats(verified):
    # Bob's participant_left never arrives (livekit#4227); his presence heartbeats stop at T0+600.
    ledger = WebhookLedger(ROOM)
    ledger.record_all(e for e in verified if e.id != "EV_05")
    beats = [Heartbeat(BOB, T0 + 60 + 60 * k) for k in range(10)]
    with_beats = compute_attendance([*ledger.evidence(), *beats], WINDOW)
    webhooks_only = compute_attendance(ledger.evidence(), WINDOW)
    assert webhooks_only[BOB].total_seconds == WINDOW.end - (T0 + 60)
    assert with_beats[BOB].total_seconds == (T0 + 600 + AttendancePolicy().heartbeat_grace) - (T0 + 60)
