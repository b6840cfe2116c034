
import pytest

from nostr_training.errors import InvalidId, InvalidSignature, MalformedEvent
from nostr_training.event import (
    Event,
    EventTemplate,
    KindClass,
    compute_id,
    kind_class,
    parse_coordinate,
    serialize,
    sign_event,
    supersedes,
    verify_event,
)

# NIP-59's worked example: the rumor id follows from NIP-01's serialisation rule.
RUMOR = {
    "created_at": 1691518405,
    "content": "Are you going to the party tonight?",
    "tags": [],
    "kind": 1,
    "pubkey": "611df01bfcf85c26ae65453b772d8f1dfd25c264621c0277e1fc1518686faef9",
}


def test_nip59_rumor_id_known_answer():
    assert compute_id(RUMOR["pubkey"], RUMOR["created_at"], 1, [], RUMOR["content"]).startswith("9dd003c6")


def test_serialisation_is_compact_and_keeps_non_ascii():
    raw = serialize("a" * 64, 1, 1, [["t", "é"]], "ü\n\u2028/")
    assert raw == '[0,"{}",1,1,[["t","é"]],"ü\\n\u2028/"]'.format("a" * 64).encode()


def test_lone_surrogate_is_refused(alice):
    with pytest.raises(MalformedEvent):
        sign_event(EventTemplate(1, (), "\ud800", 1), alice.secret)


def test_sign_then_verify(alice):
    ev = sign_event(EventTemplate(1, (("t", "x"),), "hello", 1_700_000_000), alice.secret)
    assert ev.pubkey == alice.public_key
    assert verify_event(ev) is ev
    again = Event.from_json(ev.to_json())
    assert again == ev


def test_forged_id_is_caught_even_if_signature_matches_it(alice, bob):
    ev = sign_event(EventTemplate(1, (), "hello", 1_700_000_000), alice.secret)
    other = sign_event(EventTemplate(1, (), "bye", 1_700_000_000), alice.secret)
    forged = Event(other.id, ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content, other.sig)
    with pytest.raises(InvalidId):
        verify_event(forged)
    wrong_sig = Event(ev.id, ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content, other.sig)
    with pytest.raises(InvalidSignature):
        verify_event(wrong_sig)


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", "ABC"),
        ("id", "A" * 64),
        ("pubkey", "0" * 63),
        ("created_at", "1"),
        ("created_at", 1.5),
        ("kind", 70000),
        ("kind", True),
        ("tags", [["p", 1]]),
        ("tags", [["p", None]]),
        ("tags", "x"),
        ("content", None),
        ("sig", "0" * 127),
    ],
)
def test_shape_errors_name_the_field(alice, field, value):
    ev = sign_event(EventTemplate(1, (), "x", 1), alice.secret).to_dict()
    ev[field] = value
    with pytest.raises(MalformedEvent) as err:
        Event.from_dict(ev)
    assert err.value.field == field


def test_kind_classes():
    assert kind_class(1) is KindClass.REGULAR
    assert kind_class(500) is KindClass.REGULAR
    assert kind_class(0) is KindClass.REPLACEABLE
    assert kind_class(10002) is KindClass.REPLACEABLE
    assert kind_class(21059) is KindClass.EPHEMERAL
    assert kind_class(31923) is KindClass.ADDRESSABLE


def test_tie_rule(alice):
    a = sign_event(EventTemplate(31923, (("d", "x"),), "a", 10), alice.secret)
    b = sign_event(EventTemplate(31923, (("d", "x"),), "b", 10), alice.secret)
    newer = sign_event(EventTemplate(31923, (("d", "x"),), "c", 11), alice.secret)
    low, high = sorted([a, b], key=lambda e: e.id)
    assert supersedes(low, high) and not supersedes(high, low)
    assert supersedes(newer, low)
    assert a.address == f"31923:{alice.public_key}:x"


def test_coordinate_keeps_colons_in_d():
    assert parse_coordinate("31923:" + "a" * 64 + ":x:y") == (31923, "a" * 64, "x:y")
    with pytest.raises(MalformedEvent):
        parse_coordinate("abc")
