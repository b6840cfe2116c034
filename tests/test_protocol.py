"""The sans-I/O relay protocol, NIP-11 limits and the backoff generator: no sockets here."""

from __future__ import annotations

import json
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.daemon.backoff import backoff, default_backoff
from nostr_training.errors import MalformedEvent, RelayError, RelayRefused
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.filters import Filter
from nostr_training.nips.nip11 import RelayInformation, RelayLimits, information_url, parse_information
from nostr_training.protocol import (
    AuthAnswered,
    AuthChallenge,
    Dropped,
    EndOfStoredEvents,
    Notice,
    PublishAnswered,
    ReceivedEvent,
    RelayConnection,
    SubscriptionClosed,
    reason_prefix,
)

NOW = 1_800_000_000
URL = "ws://relay.test"


@pytest.fixture
def note(alice) -> Event:
    return sign_event(EventTemplate(1, (("t", "python"),), "hello", NOW), alice.secret)


@pytest.fixture
def conn() -> RelayConnection:
    return RelayConnection(URL)


def event_frame(sub: str, event: Event | dict) -> str:
    return json.dumps(["EVENT", sub, event.to_dict() if isinstance(event, Event) else event])


def tampered(event: Event, **changes) -> Event:
    fields = {**event.to_dict(), **changes}
    return Event(fields["id"], fields["pubkey"], fields["created_at"], fields["kind"], event.tags,
                 fields["content"], fields["sig"])


# Outgoing frames -------------------------------------------------------------------------------


def test_request_frame_lists_every_filter_and_opens_the_subscription(conn, alice):
    f1 = Filter(kinds=frozenset({1}), authors=frozenset({alice.public_key}))
    f2 = Filter(tags={"t": frozenset({"python"})}, since=5)
    frame = json.loads(conn.request("s1", [f1, f2]))
    assert frame == ["REQ", "s1", {"authors": [alice.public_key], "kinds": [1]}, {"#t": ["python"], "since": 5}]
    assert conn.subscriptions["s1"] == (f1, f2)


def test_request_with_an_open_id_replaces_the_subscription(conn):
    conn.request("s1", [Filter(kinds=frozenset({1}))])
    conn.receive('["EOSE","s1"]')
    conn.request("s1", [Filter(kinds=frozenset({7}))])
    assert conn.subscriptions["s1"] == (Filter(kinds=frozenset({7})),)
    assert "s1" not in conn.stored_done


@pytest.mark.parametrize("sub", ["", "x" * 65])
def test_request_refuses_a_subscription_id_nip01_forbids(conn, sub):
    with pytest.raises(MalformedEvent, match="subscription id"):
        conn.request(sub, [Filter()])


def test_close_frame_then_what_was_in_flight_is_late_not_suspicious(conn, note):
    conn.request("s1", [Filter()])
    assert json.loads(conn.close_subscription("s1")) == ["CLOSE", "s1"]
    for frame in (event_frame("s1", note), '["EOSE","s1"]', '["CLOSED","s1",""]'):
        record = conn.receive(frame)
        assert isinstance(record, Dropped) and record.category == "late"
    assert conn.counters.unexpected_dropped == 0


def test_frames_for_subscriptions_never_opened_are_unexpected(conn, note):
    for frame in (event_frame("s9", note), '["EOSE","s9"]', '["CLOSED","s9","error: no"]'):
        record = conn.receive(frame)
        assert isinstance(record, Dropped) and record.category == "unexpected"
    assert conn.counters.unexpected_dropped == 3


def test_publish_frame_is_the_canonical_event_and_waits_for_ok(conn, note):
    frame = conn.publish(note, now=NOW)
    assert json.loads(frame) == ["EVENT", note.to_dict()]
    assert note.id in conn.pending_publishes


@pytest.mark.parametrize(
    "limits, expected",
    [
        (RelayLimits(max_message_length=100), "max_message_length of 100"),
        (RelayLimits(max_content_length=3), "max_content_length of 3"),
        (RelayLimits(max_event_tags=0), "max_event_tags of 0"),
        (RelayLimits(created_at_lower_limit=10), "created_at_lower_limit"),
        (RelayLimits(created_at_upper_limit=10), "created_at_upper_limit"),
    ],
)
def test_publish_refuses_without_sending_what_the_relays_limits_refuse(note, limits, expected, alice):
    conn = RelayConnection(URL, limits=limits)
    event = note
    if limits.created_at_upper_limit is not None:
        event = sign_event(EventTemplate(1, (), "from the future", NOW + 11), alice.secret)
    now = NOW + 11 if limits.created_at_lower_limit is not None else NOW
    with pytest.raises(RelayRefused) as info:
        conn.publish(event, now=now)
    assert expected in str(info.value) and info.value.reason == "invalid"
    assert conn.pending_publishes == {}


def test_publish_within_limits_is_sent(note):
    frame_length = len(('["EVENT",' + note.to_json() + "]").encode())
    conn = RelayConnection(URL, limits=RelayLimits(max_message_length=frame_length, max_content_length=5,
                                                   max_event_tags=1, created_at_upper_limit=0))
    assert conn.publish(note, now=NOW).startswith('["EVENT",')


# Incoming: the happy paths ---------------------------------------------------------------------


def test_event_on_an_open_subscription_is_verified_and_counted(conn, note):
    conn.request("s1", [Filter(kinds=frozenset({1}))])
    assert conn.receive(event_frame("s1", note)) == ReceivedEvent("s1", note)
    assert conn.counters.events_received == 1


def test_eose_closed_notice(conn):
    conn.request("s1", [Filter()])
    assert conn.receive('["EOSE","s1"]') == EndOfStoredEvents("s1")
    assert "s1" in conn.stored_done
    closed = conn.receive('["CLOSED","s1","auth-required: we only serve gift wraps to their recipient"]')
    assert closed == SubscriptionClosed("s1", "auth-required: we only serve gift wraps to their recipient")
    assert closed.prefix == "auth-required"
    assert "s1" not in conn.subscriptions
    assert conn.receive('["NOTICE","be nice"]') == Notice("be nice")
    assert conn.counters.notices == 1


def test_ok_resolves_the_pending_publish(conn, note):
    conn.publish(note, now=NOW)
    record = conn.receive(json.dumps(["OK", note.id, False, "blocked: you are banned"]))
    assert record == PublishAnswered(note.id, False, "blocked: you are banned")
    assert record.prefix == "blocked"
    assert conn.pending_publishes == {}


def test_ok_nobody_waits_for_is_dropped(conn, note):
    record = conn.receive(json.dumps(["OK", note.id, True, ""]))
    assert isinstance(record, Dropped) and record.category == "unexpected"


def test_ok_with_empty_id_resolves_the_only_pending_publish(conn, note):
    """nostr-relay 1.14 answers refused events with an empty id."""
    conn.publish(note, now=NOW)
    record = conn.receive('["OK","",false,"invalid: 280 characters should be enough for anybody"]')
    assert record == PublishAnswered(note.id, False, "invalid: 280 characters should be enough for anybody")


def test_ok_with_empty_id_is_dropped_when_nothing_is_pending(conn):
    record = conn.receive('["OK","",false,"invalid: nope"]')
    assert isinstance(record, Dropped) and record.category == "unexpected"
    assert "no EVENT are pending" in record.reason


def test_ok_with_empty_ids_answer_the_pending_publishes_oldest_first(conn, alice, bob):
    """Relays answer in order, so nostr-relay's empty-id refusals line up with what was sent,
    around OKs that carry an id, past publishes the caller gave up on, and before an AUTH."""
    events = [sign_event(EventTemplate(1, (), str(i), NOW), alice.secret) for i in range(4)]
    for event in events:
        conn.publish(event, now=NOW)
    conn.receive('["AUTH","c"]')
    auth = sign_event(EventTemplate(22242, (("relay", URL), ("challenge", "c")), "", NOW), bob.secret)
    conn.authenticate(auth)
    assert conn.receive(json.dumps(["OK", events[1].id, True, ""])) == PublishAnswered(events[1].id, True, "")
    assert conn.receive('["OK","",false,"invalid: big"]') == PublishAnswered(events[0].id, False, "invalid: big")
    conn.forget_publish(events[2].id)
    late = conn.receive('["OK","",false,"invalid: too old"]')
    assert isinstance(late, Dropped) and late.category == "unexpected" and events[2].id[:16] in late.reason
    assert conn.receive('["OK","",false,"blocked: no"]') == PublishAnswered(events[3].id, False, "blocked: no")
    assert conn.pending_publishes == {} and not conn.unanswered
    assert conn.auth_state == "authenticating"


def test_notice_refusing_a_pending_auth_answers_it(conn, bob):
    """nostr-relay 1.14 refuses an AUTH with a NOTICE and never sends its OK."""
    conn.receive('["AUTH","c"]')
    assert conn.receive('["NOTICE","invalid: Wrong domain: ws://x"]') == Notice("invalid: Wrong domain: ws://x")
    auth = sign_event(EventTemplate(22242, (("relay", URL), ("challenge", "c")), "", NOW), bob.secret)
    conn.authenticate(auth)
    assert conn.receive('["NOTICE","rejected: too many subscriptions"]') == Notice("rejected: too many subscriptions")
    record = conn.receive('["NOTICE","invalid: Wrong domain: ws://x"]')
    assert record == AuthAnswered(auth.id, bob.public_key, False, "invalid: Wrong domain: ws://x")
    assert conn.auth_state == "challenged" and conn.authenticated == set()
    assert conn.counters.notices == 3


def test_forgotten_auth_is_no_longer_pending(conn, bob):
    conn.receive('["AUTH","c"]')
    auth = sign_event(EventTemplate(22242, (("relay", URL), ("challenge", "c")), "", NOW), bob.secret)
    conn.authenticate(auth)
    conn.forget_auth(auth.id)
    assert conn.auth_state == "challenged"
    late = conn.receive(json.dumps(["OK", auth.id, True, ""]))
    assert isinstance(late, Dropped) and late.category == "unexpected"


def test_auth_keeps_the_latest_challenge_and_tracks_the_answer(conn, bob):
    assert conn.auth_state == "none"
    assert conn.receive('["AUTH","first"]') == AuthChallenge("first")
    conn.receive('["AUTH","second"]')
    assert conn.challenge == "second" and conn.auth_state == "challenged"
    auth = sign_event(EventTemplate(22242, (("relay", URL), ("challenge", "second")), "", NOW), bob.secret)
    assert json.loads(conn.authenticate(auth)) == ["AUTH", auth.to_dict()]
    assert conn.auth_state == "authenticating"
    assert conn.receive(json.dumps(["OK", auth.id, True, ""])) == AuthAnswered(auth.id, bob.public_key, True, "")
    assert conn.authenticated == {bob.public_key} and conn.auth_state == "authenticated"


def test_refused_auth_does_not_authenticate(conn, bob):
    conn.receive('["AUTH","c"]')
    auth = sign_event(EventTemplate(22242, (("relay", URL), ("challenge", "c")), "", NOW), bob.secret)
    conn.authenticate(auth)
    record = conn.receive('["OK","",false,"restricted: not on the list"]')
    assert record == AuthAnswered(auth.id, bob.public_key, False, "restricted: not on the list")
    assert conn.authenticated == set()


# Incoming: hostile and broken relays -----------------------------------------------------------


def test_event_failing_verification_is_dropped_as_invalid_signature(conn, note):
    conn.request("s1", [Filter()])
    for bad in (tampered(note, content="changed"), tampered(note, sig="00" * 64)):
        record = conn.receive(event_frame("s1", bad))
        assert isinstance(record, Dropped) and record.category == "invalid_signature"
    assert conn.counters.invalid_signature_dropped == 2
    assert conn.counters.events_received == 0


def test_event_outside_the_subscription_filters_is_dropped(conn, note):
    conn.request("s1", [Filter(kinds=frozenset({7}))])
    record = conn.receive(event_frame("s1", note))
    assert isinstance(record, Dropped) and "does not match" in record.reason


def test_the_verifier_is_injected(note):
    calls = []
    conn = RelayConnection(URL, verify=lambda e: calls.append(e.id) or e)
    conn.request("s1", [Filter()])
    conn.receive(event_frame("s1", note))
    assert calls == [note.id]


MALFORMED = [
    "not json at all",
    '{"EVENT": 1}',
    "[]",
    "[1, 2]",
    '["COUNT","s1",{"count":3}]',
    '["FOO"]',
    '["EVENT","s1"]',
    '["EVENT",1,{}]',
    '["EVENT","s1",{"id":"zz"}]',
    '["EVENT","s1",[1,2,3]]',
    '["OK","abc",true,""]',
    '["OK",' + json.dumps("a" * 64) + ',"true",""]',
    '["OK",' + json.dumps("a" * 64) + ',true,7]',
    '["OK"]',
    '["EOSE",5]',
    '["CLOSED","s1",5]',
    '["NOTICE"]',
    '["NOTICE",{"a":1}]',
    '["AUTH",""]',
    '["AUTH",42]',
    "[" * 100_000 + "]" * 100_000,
    '["EVENT","s1",' + '"' + "x" * 3_000_000 + '"]',
]


@pytest.mark.parametrize("frame", MALFORMED, ids=lambda f: f[:30])
def test_malformed_frames_are_dropped_and_counted(conn, note, frame):
    conn.request("s1", [Filter()])
    record = conn.receive(frame)
    assert isinstance(record, Dropped) and record.category == "malformed"
    assert conn.counters.malformed_dropped == 1
    assert len(record.excerpt) <= 83
    assert conn.receive(event_frame("s1", note)) == ReceivedEvent("s1", note)


def test_binary_frames_are_dropped(conn):
    record = conn.receive(b'["NOTICE","hi"]')
    assert isinstance(record, Dropped) and "binary" in record.reason


def test_incoming_size_limit_is_configurable(note):
    conn = RelayConnection(URL, max_incoming_length=100)
    conn.request("s1", [Filter()])
    record = conn.receive(event_frame("s1", note))
    assert isinstance(record, Dropped) and "over the limit of 100" in record.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["EVENT", "OK", "EOSE", "CLOSED", "NOTICE", "AUTH", "COUNT", "X"]),
    args=st.lists(json_values, max_size=4),
)
def test_no_message_shape_raises(kind, args):
    conn = RelayConnection(URL)
    conn.request("s1", [Filter()])
    record = conn.receive(json.dumps([kind, *args]))
    assert record is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_no_text_raises(text):
    assert RelayConnection(URL).receive(text) is not None


@pytest.mark.parametrize(
    "message, prefix",
    [
        ("auth-required: please", "auth-required"),
        ("restricted:", "restricted"),
        ("duplicate: already have it", "duplicate"),
        ("hello world: something", ""),
        ("no prefix", ""),
        ("", ""),
    ],
)
def test_reason_prefix(message, prefix):
    assert reason_prefix(message) == prefix


# NIP-11 ----------------------------------------------------------------------------------------


def test_nip11_document_with_limits():
    info = parse_information(json.dumps({
        "name": "r", "supported_nips": [1, 11, 42, "x", -1], "software": "s", "unknown": {"x": 1},
        "limitation": {"max_message_length": 16384, "max_subscriptions": 20, "auth_required": True,
                       "max_limit": "lots", "created_at_upper_limit": 900, "payment_required": "no"},
    }))
    assert info.name == "r" and info.software == "s"
    assert info.supported_nips == frozenset({1, 11, 42})
    assert info.limitation == RelayLimits(max_message_length=16384, max_subscriptions=20, auth_required=True,
                                          created_at_upper_limit=900)


def test_nip11_minimal_and_broken_documents():
    assert parse_information("{}") == RelayInformation()
    assert parse_information('{"limitation": 5, "name": 3}') == RelayInformation()
    for text in ("[1]", "nope"):
        with pytest.raises(RelayError):
            parse_information(text)


@pytest.mark.parametrize(
    "url, http",
    [
        ("wss://relay.example.com", "https://relay.example.com/"),
        ("ws://127.0.0.1:7777/", "http://127.0.0.1:7777/"),
        ("wss://example.com/nostr", "https://example.com/nostr"),
    ],
)
def test_nip11_url(url, http):
    assert information_url(url) == http


def test_nip11_url_refuses_non_relay_urls():
    with pytest.raises(RelayError):
        information_url("https://example.com")


# Backoff ---------------------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap():
    assert list(islice(backoff(initial=1, factor=2, maximum=10, jitter=0), 6)) == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_takes_a_fraction_off_each_delay():
    assert list(islice(backoff(initial=1, factor=2, maximum=4, jitter=0.5, rng=lambda: 1.0), 4)) == [0.5, 1, 2, 2]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=12, max_size=12))
def test_default_backoff_stays_between_half_and_all_of_its_cap(draws):
    it = iter(draws)
    delays = list(islice(backoff(rng=lambda: next(it)), 12))
    caps = [min(0.5 * 2**n, 60.0) for n in range(12)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_default_backoff_is_a_fresh_generator_each_time():
    first = default_backoff()
    next(first)
    assert next(default_backoff()) <= 0.5


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"factor": 0.5}, {"maximum": 0.1}, {"jitter": 2}])
def test_backoff_refuses_nonsense(kwargs):
    with pytest.raises(ValueError):
        next(backoff(**kwargs))
