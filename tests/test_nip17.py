"""NIP-17 DMs: the kind 14 rumor, one wrap per party, and the kind 10050 inbox list."""

import pytest

from nostr_training.errors import InvalidKey, MalformedEvent
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.keys import Keys
from nostr_training.nips import nip17, nip59
from nostr_training.signer import LocalSigner

NOW = 1_800_000_000


def test_rumor_template_tags():
    a, b = "a" * 64, "b" * 64
    template = nip17.dm_rumor_template(
        "Lesson moved to 18:00", [a, b, a], created_at=NOW, relay_hints={b: "wss://inbox.b"},
        subject="Jail support", reply_to="e" * 64,
    )
    assert template.kind == 14 and template.content == "Lesson moved to 18:00" and template.created_at == NOW
    assert template.tags == (("p", a), ("p", b, "wss://inbox.b"), ("e", "e" * 64), ("subject", "Jail support"))


def test_rumor_needs_a_receiver():
    with pytest.raises(MalformedEvent, match="receiver"):
        nip17.dm_rumor_template("x", [], created_at=NOW)


async def test_one_wrap_per_receiver_and_one_for_the_sender(alice, bob):
    carol = Keys.generate()
    wraps = await nip17.dm_wraps(LocalSigner(alice), [bob.public_key, carol.public_key], "hi both", NOW, subject="s")
    assert [w.tag_value("p") for w in wraps] == [bob.public_key, carol.public_key, alice.public_key]
    opened = [await nip59.unwrap(w, LocalSigner(k)) for w, k in zip(wraps, [bob, carol, alice], strict=True)]
    rumor = opened[0].rumor
    assert all(o.rumor == rumor for o in opened)
    assert rumor.kind == 14 and rumor.pubkey == alice.public_key and rumor.created_at == NOW
    assert rumor.tag_value("subject") == "s"
    assert nip17.room_members(rumor) == {alice.public_key, bob.public_key, carol.public_key}


async def test_note_to_self_is_wrapped_once(alice):
    wraps = await nip17.dm_wraps(LocalSigner(alice), [alice.public_key], "memo", NOW)
    assert len(wraps) == 1


async def test_expiration_reaches_every_wrap(alice, bob):
    wraps = await nip17.dm_wraps(LocalSigner(alice), [bob.public_key], "gone soon", NOW, expiration=NOW + 60)
    assert all(w.tag_value("expiration") == str(NOW + 60) for w in wraps)


async def test_bad_receiver_is_refused(alice):
    with pytest.raises(InvalidKey):
        await nip17.dm_wraps(LocalSigner(alice), ["npub1xyz"], "x", NOW)


def test_inbox_relays_round_trip(alice):
    template = nip17.inbox_relays_template(["WSS://Inbox.Example/", "wss://inbox.example", "wss://two.example"], created_at=NOW)
    assert template.kind == 10050
    assert template.tags == (("relay", "wss://inbox.example"), ("relay", "wss://two.example"))
    event = sign_event(template, alice.secret)
    assert nip17.parse_inbox_relays(event) == ("wss://inbox.example", "wss://two.example")


def test_inbox_relays_skip_junk_and_check_kind(alice):
    event = sign_event(
        EventTemplate(10050, (("relay", "https://not-a-relay"), ("relay", "wss://ok.example"), ("r", "wss://other")), "", NOW),
        alice.secret,
    )
    assert nip17.parse_inbox_relays(event) == ("wss://ok.example",)
    wrong = Event(event.id, event.pubkey, NOW, 10002, event.tags, "", event.sig)
    with pytest.raises(MalformedEvent, match="10050"):
        nip17.parse_inbox_relays(wrong)
    with pytest.raises(MalformedEvent):
        nip17.inbox_relays_template([], created_at=NOW)
