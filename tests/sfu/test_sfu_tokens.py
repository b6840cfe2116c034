"""Join tokens: minted only for admitted participants (and key holders under E2EE), and read
back by livekit-api's own TokenVerifier with the identity, room, grants and window we meant."""

from __future__ import annotations

import base64
import datetime

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from livekit.api import AccessToken, TokenVerifier, VideoGrants

from nostr_training.clock import SystemClock
from nostr_training.errors import AdmissionRequired, InvalidKey, JoinRefused, RecordingRefused, RoomKeyRequired
from nostr_training.sfu.base import (
    KEY_RING_SIZE,
    JoinPermit,
    RecordingPlan,
    Role,
    SfuAdapter,
    check_server_recording,
    e2ee_shared_key,
    permit_join,
    recording_plan,
)
from nostr_training.sfu.config import SecretText, SfuConfig
from nostr_training.sfu.livekit import LiveKitAdapter, video_grants

API_KEY = "APIfT3sKey"
SECRET = "s3cr3t-" + "x" * 40
HOST = "11" * 32
LEARNER = "22" * 32
ROOM = "30312:" + HOST + ":lesson-1"
ROOM_KEY = bytes(range(32))


@pytest.fixture
def adapter() -> LiveKitAdapter:
    return LiveKitAdapter(SfuConfig("livekit", "wss://sfu.example.org", API_KEY, SecretText(SECRET)))


def _window() -> tuple[int, int]:
    now = SystemClock().now()
    return now - 60, now + 3600


def _permit(role: Role = Role.LEARNER, **changes) -> JoinPermit:
    not_before, expires = _window()
    args = {
        "room": ROOM,
        "pubkey": HOST if role is Role.HOST else LEARNER,
        "role": role,
        "not_before": not_before,
        "expires": expires,
        "admitted": True,
        "e2ee_required": False,
        "room_key": None,
    }
    args.update(changes)
    return permit_join(**args)


def test_the_adapter_is_an_sfu_adapter(adapter):
    assert isinstance(adapter, SfuAdapter)


def test_host_token_verifies_with_livekit_and_carries_identity_room_and_publish_rights(adapter):
    permit = _permit(Role.HOST, admitted=False)
    claims = TokenVerifier(API_KEY, SECRET).verify(adapter.join_token(permit))
    assert claims.identity == HOST
    assert claims.video.room == ROOM
    assert claims.video.room_join is True
    assert claims.video.can_publish is True
    assert claims.video.can_subscribe is True
    assert claims.video.room_admin is True


def test_learner_token_is_subscribe_only(adapter):
    claims = TokenVerifier(API_KEY, SECRET).verify(adapter.join_token(_permit()))
    assert claims.identity == LEARNER
    assert claims.video.room == ROOM
    assert (claims.video.can_publish, claims.video.can_publish_data) == (False, False)
    assert claims.video.can_subscribe is True
    assert not claims.video.room_admin


def test_promoted_learner_may_publish_but_not_moderate(adapter):
    claims = TokenVerifier(API_KEY, SECRET).verify(adapter.join_token(_permit(promoted=True)))
    assert claims.video.can_publish is True
    assert not claims.video.room_admin


def test_window_comes_from_the_schedule_not_the_clock(adapter):
    not_before, expires = _window()
    token = adapter.join_token(_permit(not_before=not_before, expires=expires))
    raw = jwt.decode(token, SECRET, algorithms=["HS256"], issuer=API_KEY)
    assert (raw["nbf"], raw["exp"], raw["sub"], raw["iss"]) == (not_before, expires, LEARNER, API_KEY)


def test_a_window_that_has_not_opened_is_refused_by_livekit(adapter):
    now = SystemClock().now()
    token = adapter.join_token(_permit(not_before=now + 3600, expires=now + 7200))
    with pytest.raises(jwt.ImmatureSignatureError):
        TokenVerifier(API_KEY, SECRET).verify(token)


def test_a_window_that_has_closed_is_refused_by_livekit(adapter):
    now = SystemClock().now()
    token = adapter.join_token(_permit(not_before=now - 7200, expires=now - 3600))
    with pytest.raises(jwt.ExpiredSignatureError):
        TokenVerifier(API_KEY, SECRET).verify(token)


def test_another_projects_secret_does_not_verify(adapter):
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(API_KEY, "another-secret-" + "y" * 40).verify(adapter.join_token(_permit()))


def test_claim_names_match_livekit_access_token(adapter):
    permit = _permit(Role.HOST)
    ours = jwt.decode(adapter.join_token(permit), options={"verify_signature": False})
    theirs_token = AccessToken(API_KEY, SECRET).with_identity(HOST).with_grants(video_grants(permit)).to_jwt()
    theirs = jwt.decode(theirs_token, options={"verify_signature": False})
    assert set(ours) == set(theirs)
    assert ours["video"] == theirs["video"]


def test_no_token_for_a_learner_the_waiting_room_has_not_admitted(adapter):
    with pytest.raises(AdmissionRequired):
        _permit(admitted=False)


def test_the_host_needs_no_admission(adapter):
    assert _permit(Role.HOST, admitted=False).can_publish


@pytest.mark.parametrize("role", [Role.HOST, Role.LEARNER])
def test_no_token_without_a_room_key_where_e2ee_is_required(role):
    with pytest.raises(RoomKeyRequired):
        _permit(role, e2ee_required=True, room_key=None)
    with pytest.raises(RoomKeyRequired):
        _permit(role, e2ee_required=True, room_key=b"")


def test_with_the_room_key_an_e2ee_token_is_minted(adapter):
    permit = _permit(e2ee_required=True, room_key=ROOM_KEY)
    assert permit.e2ee
    assert TokenVerifier(API_KEY, SECRET).verify(adapter.join_token(permit)).identity == LEARNER


def test_refusals_are_join_refusals():
    assert issubclass(AdmissionRequired, JoinRefused) and issubclass(RoomKeyRequired, JoinRefused)
    not_before, _ = _window()
    with pytest.raises(JoinRefused):
        _permit(not_before=not_before, expires=not_before)


def test_pubkey_must_be_hex_and_room_named():
    with pytest.raises(InvalidKey):
        _permit(pubkey="npub1" + "q" * 58)
    with pytest.raises(JoinRefused):
        _permit(room="")


@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=2**62))
def test_e2ee_key_index_is_epoch_mod_16_and_passphrase_has_full_entropy(room_key, epoch):
    key = e2ee_shared_key(room_key, epoch)
    assert key.key_index == epoch % KEY_RING_SIZE
    assert key.epoch == epoch
    raw = base64.urlsafe_b64decode(key.passphrase + "=")
    assert len(raw) == 32
    assert key == e2ee_shared_key(room_key, epoch)
    assert key.passphrase != e2ee_shared_key(room_key, epoch + 1).passphrase
    assert raw != room_key


def test_e2ee_key_differs_per_room_key_and_never_prints(adapter):
    first = adapter.e2ee_key(ROOM_KEY, 17)
    second = adapter.e2ee_key(bytes(32), 17)
    assert first.key_index == 1
    assert first.passphrase != second.passphrase
    assert first.passphrase not in repr(first)


def test_e2ee_key_refuses_a_short_key_or_negative_epoch():
    with pytest.raises(InvalidKey):
        e2ee_shared_key(b"short", 1)
    with pytest.raises(InvalidKey):
        e2ee_shared_key(ROOM_KEY, -1)


@pytest.mark.parametrize(
    ("allow", "e2ee", "plan"),
    [
        (False, False, RecordingPlan.NONE),
        (False, True, RecordingPlan.NONE),
        (True, False, RecordingPlan.SERVER),
        (True, True, RecordingPlan.HOST_LOCAL),
    ],
)
def test_recording_plan(allow, e2ee, plan):
    assert recording_plan(allow_recording=allow, e2ee_required=e2ee) is plan


def test_server_recording_of_an_e2ee_room_is_refused_and_says_what_to_do():
    check_server_recording(allow_recording=True, e2ee_required=False)
    with pytest.raises(RecordingRefused, match="host records locally"):
        check_server_recording(allow_recording=True, e2ee_required=True)
    with pytest.raises(RecordingRefused):
        check_server_recording(allow_recording=False, e2ee_required=False)


def test_livekit_default_leeway_is_what_the_window_test_relies_on():
    # The nbf/exp refusals above need the window to be far outside LiveKit's verify leeway.
    from livekit.api.access_token import DEFAULT_LEEWAY

    assert DEFAULT_LEEWAY <= datetime.timedelta(minutes=5)


def test_video_grants_object_is_livekits():
    assert isinstance(video_grants(_permit()), VideoGrants)
