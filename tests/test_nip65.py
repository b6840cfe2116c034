"""NIP-65 relay lists and relay URL normalisation."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import MalformedEvent
from nostr_training.event import EventTemplate, sign_event
from nostr_training.nips.nip65 import RelayList, normalize_relay_url, parse_relay_list, relay_list_template

NOW = 1_800_000_000


@pytest.mark.parametrize(
    "given_url, expected",
    [
        ("WSS://Relay.Example.COM/", "wss://relay.example.com"),
        ("wss://relay.example.com", "wss://relay.example.com"),
        (" ws://localhost:7777/ ", "ws://localhost:7777"),
        ("wss://relay.example.com/Path/", "wss://relay.example.com/Path"),
        ("wss://[::1]:8080", "wss://[::1]:8080"),
    ],
)
def test_normalize(given_url, expected):
    assert normalize_relay_url(given_url) == expected


@pytest.mark.parametrize("bad", ["", "https://relay.example.com", "relay.example.com", "wss://", "wss://u:p@host", "wss://h:99999"])
def test_normalize_refuses(bad):
    with pytest.raises(MalformedEvent):
        normalize_relay_url(bad)


@settings(max_examples=50)
@given(host=st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,20}(\.[a-zA-Z]{2,5}){1,2}", fullmatch=True), slash=st.booleans(), secure=st.booleans())
def test_normalize_is_idempotent(host, slash, secure):
    url = f"{'wss' if secure else 'ws'}://{host}{'/' if slash else ''}"
    once = normalize_relay_url(url)
    assert normalize_relay_url(once) == once == once.lower()


def test_build_and_parse_round_trip(alice):
    relays = RelayList.of(read=["wss://both.example", "wss://in.example"], write=["WSS://Both.example/", "wss://out.example"])
    template = relay_list_template(relays, created_at=NOW)
    assert template.kind == 10002 and template.content == ""
    assert template.tags == (
        ("r", "wss://both.example"),
        ("r", "wss://in.example", "read"),
        ("r", "wss://out.example", "write"),
    )
    parsed = parse_relay_list(sign_event(template, alice.secret))
    assert parsed == relays
    assert parsed.read == ("wss://both.example", "wss://in.example")
    assert parsed.write == ("wss://both.example", "wss://out.example")


def test_parse_skips_junk(alice):
    tags = (("r", "wss://a.example"), ("r", "http://web"), ("r",), ("r", "wss://b.example", "bogus"), ("relay", "wss://c.example"))
    parsed = parse_relay_list(sign_event(EventTemplate(10002, tags, "", NOW), alice.secret))
    assert parsed == RelayList(("wss://a.example",), ("wss://a.example",))


def test_parse_checks_kind(alice):
    with pytest.raises(MalformedEvent, match="10002"):
        parse_relay_list(sign_event(EventTemplate(3, (), "", NOW), alice.secret))
