"""NIP-42 AUTH: the client template and the relay-side check."""

import pytest

from nostr_training.errors import InvalidEvent, InvalidSignature, MalformedEvent, MissingTag
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.nips.nip42 import auth_template, check_auth, same_relay

NOW = 1_800_000_000
RELAY = "wss://relay.example.com"


def auth(keys, *, relay=RELAY, challenge="c-123", created_at=NOW):
    return sign_event(auth_template(relay, challenge, created_at=created_at), keys.secret)


def test_template_shape():
    template = auth_template(RELAY, "c-123", created_at=NOW)
    assert template.kind == 22242 and template.created_at == NOW
    assert template.tags == (("relay", RELAY), ("challenge", "c-123"))


def test_accepts_and_returns_the_pubkey(alice):
    assert check_auth(auth(alice), challenge="c-123", relay_url=RELAY, now=NOW) == alice.public_key


@pytest.mark.parametrize("claimed", ["WSS://Relay.Example.com/", "ws://relay.example.com:7777/nostr", "wss://relay.example.com"])
def test_relay_url_matches_loosely(alice, claimed):
    assert check_auth(auth(alice, relay=claimed), challenge="c-123", relay_url=RELAY, now=NOW) == alice.public_key


def test_loopback_names_are_one_host():
    assert same_relay("ws://localhost:7447", "ws://127.0.0.1:7447")
    assert same_relay("ws://[::1]:7447/", "ws://localhost:7447")
    assert not same_relay("ws://127.0.0.2:7447", "ws://localhost:7447")


def test_other_relay_or_garbage_url_is_refused(alice):
    assert not same_relay("not a url", "not a url")
    with pytest.raises(InvalidEvent, match="relay tag"):
        check_auth(auth(alice, relay="wss://evil.example.com"), challenge="c-123", relay_url=RELAY, now=NOW)


def test_wrong_challenge_is_refused(alice):
    with pytest.raises(InvalidEvent, match="challenge"):
        check_auth(auth(alice, challenge="old"), challenge="c-123", relay_url=RELAY, now=NOW)


@pytest.mark.parametrize("offset, ok", [(-600, True), (600, True), (-601, False), (601, False)])
def test_ten_minute_window(alice, offset, ok):
    event = auth(alice, created_at=NOW + offset)
    if ok:
        check_auth(event, challenge="c-123", relay_url=RELAY, now=NOW)
    else:
        with pytest.raises(InvalidEvent, match="created_at"):
            check_auth(event, challenge="c-123", relay_url=RELAY, now=NOW)


def test_kind_and_tags_are_required(alice):
    with pytest.raises(MalformedEvent, match="22242"):
        check_auth(sign_event(EventTemplate(1, (("relay", RELAY), ("challenge", "c-123")), "", NOW), alice.secret), challenge="c-123", relay_url=RELAY, now=NOW)
    with pytest.raises(MissingTag, match="challenge"):
        check_auth(sign_event(EventTemplate(22242, (("relay", RELAY),), "", NOW), alice.secret), challenge="c-123", relay_url=RELAY, now=NOW)
    with pytest.raises(MissingTag, match="relay"):
        check_auth(sign_event(EventTemplate(22242, (("challenge", "c-123"),), "", NOW), alice.secret), challenge="c-123", relay_url=RELAY, now=NOW)


def test_signature_is_checked(alice, bob):
    good = auth(alice)
    forged = Event(good.id, bob.public_key, good.created_at, good.kind, good.tags, good.content, good.sig)
    with pytest.raises(InvalidEvent):
        check_auth(forged, challenge="c-123", relay_url=RELAY, now=NOW)
    resigned = Event(good.id, good.pubkey, good.created_at, good.kind, good.tags, good.content, auth(alice, challenge="x").sig)
    with pytest.raises(InvalidSignature):
        check_auth(resigned, challenge="c-123", relay_url=RELAY, now=NOW)


def test_empty_challenge_is_refused():
    with pytest.raises(MalformedEvent):
        auth_template(RELAY, "", created_at=NOW)
