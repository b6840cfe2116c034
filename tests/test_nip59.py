"""NIP-59 gift wrap: the NIP's worked example, round trips, and every unwrap check."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import DecryptionError, InvalidId, InvalidKey, InvalidSignature, MalformedEvent
from nostr_training.event import Event, EventTemplate, compute_id, sign_event, verify_event
from nostr_training.keys import Keys
from nostr_training.nips import nip44, nip59
from nostr_training.signer import LocalSigner

NOW = 1_800_000_000
TWO_DAYS = 2 * 24 * 60 * 60

EXAMPLE_RECIPIENT_SECRET = "e108399bd8424357a710b606ae0c13166d853d327e47a6e5e038197346bdbf45"
EXAMPLE_AUTHOR_PUBKEY = "611df01bfcf85c26ae65453b772d8f1dfd25c264621c0277e1fc1518686faef9"
# Copied verbatim from NIP-59 "An Example" (nostr-protocol/nips, 59.md).
NIP59_EXAMPLE_WRAP = {"content": "AhC3Qj/QsKJFWuf6xroiYip+2yK95qPwJjVvFujhzSguJWb/6TlPpBW0CGFwfufCs2Zyb0JeuLmZhNlnqecAAalC4ZCugB+I9ViA5pxLyFfQjs1lcE6KdX3euCHBLAnE9GL/+IzdV9vZnfJH6atVjvBkNPNzxU+OLCHO/DAPmzmMVx0SR63frRTCz6Cuth40D+VzluKu1/Fg2Q1LSst65DE7o2efTtZ4Z9j15rQAOZfE9jwMCQZt27rBBK3yVwqVEriFpg2mHXc1DDwHhDADO8eiyOTWF1ghDds/DxhMcjkIi/o+FS3gG1dG7gJHu3KkGK5UXpmgyFKt+421m5o++RMD/BylS3iazS1S93IzTLeGfMCk+7IKxuSCO06k1+DaasJJe8RE4/rmismUvwrHu/HDutZWkvOAhd4z4khZo7bJLtiCzZCZ74lZcjOB4CYtuAX2ZGpc4I1iOKkvwTuQy9BWYpkzGg3ZoSWRD6ty7U+KN+fTTmIS4CelhBTT15QVqD02JxfLF7nA6sg3UlYgtiGw61oH68lSbx16P3vwSeQQpEB5JbhofW7t9TLZIbIW/ODnI4hpwj8didtk7IMBI3Ra3uUP7ya6vptkd9TwQkd/7cOFaSJmU+BIsLpOXbirJACMn+URoDXhuEtiO6xirNtrPN8jYqpwvMUm5lMMVzGT3kMMVNBqgbj8Ln8VmqouK0DR+gRyNb8fHT0BFPwsHxDskFk5yhe5c/2VUUoKCGe0kfCcX/EsHbJLUUtlHXmTqaOJpmQnW1tZ/siPwKRl6oEsIJWTUYxPQmrM2fUpYZCuAo/29lTLHiHMlTbarFOd6J/ybIbICy2gRRH/LFSryty3Cnf6aae+A9uizFBUdCwTwffc3vCBae802+R92OL78bbqHKPbSZOXNC+6ybqziezwG+OPWHx1Qk39RYaF0aFsM4uZWrFic97WwVrH5i+/Nsf/OtwWiuH0gV/SqvN1hnkxCTF/+XNn/laWKmS3e7wFzBsG8+qwqwmO9aVbDVMhOmeUXRMkxcj4QreQkHxLkCx97euZpC7xhvYnCHarHTDeD6nVK+xzbPNtzeGzNpYoiMqxZ9bBJwMaHnEoI944Vxoodf51cMIIwpTmmRvAzI1QgrfnOLOUS7uUjQ/IZ1Qa3lY08Nqm9MAGxZ2Ou6R0/Z5z30ha/Q71q6meAs3uHQcpSuRaQeV29IASmye2A2Nif+lmbhV7w8hjFYoaLCRsdchiVyNjOEM4VmxUhX4VEvw6KoCAZ/XvO2eBF/SyNU3Of4SO",
  "kind": 1059, "created_at": 1703021488,
  "pubkey": "18b1a75918f1f2c90c23da616bce317d36e348bcf5f7ba55e75949319210c87c",
  "id": "5c005f3ccf01950aa8d131203248544fb1e41a0d698e846bd419cec3890903ac",
  "sig": "35fabdae4634eb630880a1896a886e40fd6ea8a60958e30b89b33a93e6235df750097b04f9e13053764251b8bc5dd7e8e0794a3426a90b6bcc7e5ff660f54259",
  "tags": [["p", "166bf3765ebd1fc55decfe395beff2ea3b2a4e0a8946e7eb578512b555737c99"]]}


def example_wrap() -> Event:
    return Event.from_dict(NIP59_EXAMPLE_WRAP)


def check_example(opened: nip59.Unwrapped) -> None:
    assert opened.seal.id == "28a87d7c074d94a58e9e89bb3e9e4e813e2189f285d797b1c56069d36f59eaa7"
    assert opened.seal.kind == 13 and opened.seal.tags == ()
    assert opened.rumor.id == "9dd003c6d3b73b74a85a9ab099469ce251653a7af76f523671ab828acd2a0ef9"
    assert opened.rumor.content == "Are you going to the party tonight?"
    assert opened.rumor.kind == 1 and opened.rumor.created_at == 1691518405
    assert opened.rumor.sig is None
    assert opened.author == EXAMPLE_AUTHOR_PUBKEY


def test_nip59_example_unwraps_with_the_secret_key():
    check_example(nip59.unwrap_with_key(example_wrap(), bytes.fromhex(EXAMPLE_RECIPIENT_SECRET)))


async def test_nip59_example_unwraps_through_a_signer():
    check_example(await nip59.unwrap(example_wrap(), LocalSigner(Keys.from_hex(EXAMPLE_RECIPIENT_SECRET))))


async def test_nip59_example_refuses_another_recipient(bob):
    with pytest.raises(DecryptionError, match="gift wrap 5c005f3c"):
        await nip59.unwrap(example_wrap(), LocalSigner(bob))


# Building ---------------------------------------------------------------------------------


def test_make_rumor_computes_id_and_has_no_signature(alice):
    template = EventTemplate(14, (("p", "b" * 64),), "héllo", NOW)
    rumor = nip59.make_rumor(template, alice.public_key)
    assert rumor.sig is None
    assert rumor.id == compute_id(alice.public_key, NOW, 14, template.tags, "héllo")


def test_make_rumor_refuses_someone_elses_event(alice, bob):
    signed = sign_event(EventTemplate(1, (), "x", NOW), bob.secret)
    with pytest.raises(MalformedEvent, match="rumor author"):
        nip59.make_rumor(signed, alice.public_key)


async def test_round_trip_layers(alice, bob):
    template = EventTemplate(14, (("p", bob.public_key),), "See you at the lesson ✓", NOW)
    wrap = await nip59.gift_wrap(template, LocalSigner(alice), bob.public_key, now=NOW, relay_hint="wss://inbox.example")
    assert wrap.kind == 1059
    assert wrap.tags == (("p", bob.public_key, "wss://inbox.example"),)
    assert wrap.pubkey not in (alice.public_key, bob.public_key)
    verify_event(wrap)
    opened = await nip59.unwrap(wrap, LocalSigner(bob))
    assert opened.rumor == nip59.make_rumor(template, alice.public_key)
    assert opened.seal.pubkey == alice.public_key and opened.seal.tags == () and opened.seal.kind == 13
    for layer in (opened.seal, wrap):
        assert NOW - TWO_DAYS < layer.created_at <= NOW


async def test_pure_and_signer_variants_interoperate(alice, bob):
    template = EventTemplate(1, (), "pure", NOW)
    wrap = nip59.gift_wrap_with_key(template, alice.secret, bob.public_key, now=NOW)
    assert (await nip59.unwrap(wrap, LocalSigner(bob))).rumor.content == "pure"
    wrap2 = await nip59.gift_wrap(template, LocalSigner(alice), bob.public_key, now=NOW)
    assert nip59.unwrap_with_key(wrap2, bob.secret).author == alice.public_key


async def test_expiration_and_ephemeral_kind(alice, bob):
    wrap = await nip59.gift_wrap(
        EventTemplate(1, (), "room key", NOW), LocalSigner(alice), bob.public_key, now=NOW, expiration=NOW + 3600, ephemeral=True
    )
    assert wrap.kind == 21059
    assert wrap.tags == (("p", bob.public_key), ("expiration", str(NOW + 3600)))
    assert (await nip59.unwrap(wrap, LocalSigner(bob))).rumor.content == "room key"


async def test_every_wrap_has_a_fresh_key_and_same_rumor(alice, bob):
    carol, dave = Keys.generate(), Keys.generate()
    recipients = [bob.public_key, carol.public_key, dave.public_key, alice.public_key]
    wraps = await nip59.gift_wrap_many(EventTemplate(14, (), "class moved", NOW), LocalSigner(alice), recipients, now=NOW)
    assert [w.tag_value("p") for w in wraps] == recipients
    assert len({w.pubkey for w in wraps}) == len(wraps)
    rumors = {(await nip59.unwrap(w, LocalSigner(k))).rumor for w, k in zip(wraps, [bob, carol, dave, alice], strict=True)}
    assert len(rumors) == 1
    with pytest.raises(DecryptionError):
        await nip59.unwrap(wraps[0], LocalSigner(carol))


async def test_recipient_must_be_a_hex_pubkey(alice):
    with pytest.raises(InvalidKey):
        await nip59.gift_wrap(EventTemplate(1, (), "x", NOW), LocalSigner(alice), "npub1notahexkey", now=NOW)


@settings(max_examples=25, deadline=None)
@given(now=st.integers(min_value=0, max_value=2**40))
def test_timestamps_are_never_in_the_future_nor_over_two_days_old(now):
    moved = nip59.random_past(now)
    assert max(0, now - TWO_DAYS) <= moved <= now


@pytest.mark.parametrize("draw, expected", [("min", NOW), ("max", NOW - TWO_DAYS + 1)])
def test_timestamp_tweak_bounds_are_exact(monkeypatch, alice, bob, draw, expected):
    """Force the draw to its extremes: a random ``now`` alone cannot see an off-by-one."""
    bounds = []

    def randbelow(n):
        bounds.append(n)
        return 0 if draw == "min" else n - 1

    monkeypatch.setattr(nip59.secrets, "randbelow", randbelow)
    assert nip59.random_past(NOW) == expected
    wrap = nip59.gift_wrap_with_key(EventTemplate(14, (), "x", NOW), alice.secret, bob.public_key, now=NOW)
    opened = nip59.unwrap_with_key(wrap, bob.secret)
    assert wrap.created_at == opened.seal.created_at == expected
    assert set(bounds) == {TWO_DAYS}


@pytest.mark.parametrize("draw, now, expected", [("min", 0, 0), ("max", 0, 0), ("max", TWO_DAYS - 1, 0)])
def test_timestamp_tweak_never_goes_below_zero(monkeypatch, draw, now, expected):
    monkeypatch.setattr(nip59.secrets, "randbelow", lambda n: 0 if draw == "min" else n - 1)
    assert nip59.random_past(now) == expected


@settings(max_examples=15, deadline=None)
@given(content=st.text(min_size=0, max_size=300), kind=st.integers(0, 65535))
def test_any_rumor_round_trips(content, kind):
    author, recipient = Keys.generate(), Keys.generate()
    template = EventTemplate(kind, (("t", content[:5]),), content, NOW)
    wrap = nip59.gift_wrap_with_key(template, author.secret, recipient.public_key, now=NOW)
    opened = nip59.unwrap_with_key(Event.from_json(wrap.to_json()), recipient.secret)
    assert opened.rumor.template() == template and opened.author == author.public_key


# Every unwrap check, with hand-built malicious layers ---------------------------------------


def hand_seal(author: Keys, recipient: Keys, rumor_dict: dict, *, kind=13, tags=()) -> Event:
    key = nip44.get_conversation_key(author.secret, recipient.public_key)
    content = nip44.encrypt(json.dumps(rumor_dict, ensure_ascii=False), key)
    return sign_event(EventTemplate(kind, tags, content, NOW), author.secret)


def hand_wrap(seal_json: str, recipient: Keys, *, kind=1059) -> Event:
    one_time = Keys.generate()
    content = nip44.encrypt(seal_json, nip44.get_conversation_key(one_time.secret, recipient.public_key))
    return sign_event(EventTemplate(kind, (("p", recipient.public_key),), content, NOW), one_time.secret)


def rumor_dict(author_pubkey: str, content: str = "hi") -> dict:
    rumor = nip59.make_rumor(EventTemplate(14, (), content, NOW), author_pubkey)
    return rumor.to_dict()


async def test_tampered_wrap_signature_is_refused(alice, bob):
    wrap = await nip59.gift_wrap(EventTemplate(1, (), "x", NOW), LocalSigner(alice), bob.public_key, now=NOW)
    forged_sig = wrap.sig[:-2] + ("00" if wrap.sig[-2:] != "00" else "11")
    with pytest.raises(InvalidSignature):
        await nip59.unwrap(Event(wrap.id, wrap.pubkey, wrap.created_at, wrap.kind, wrap.tags, wrap.content, forged_sig), LocalSigner(bob))
    with pytest.raises(InvalidId):
        await nip59.unwrap(Event(wrap.id, wrap.pubkey, wrap.created_at + 1, wrap.kind, wrap.tags, wrap.content, wrap.sig), LocalSigner(bob))


async def test_wrong_wrap_kind_is_refused(alice, bob):
    seal = hand_seal(alice, bob, rumor_dict(alice.public_key))
    with pytest.raises(MalformedEvent, match="kind 1059 or 21059"):
        await nip59.unwrap(hand_wrap(seal.to_json(), bob, kind=4), LocalSigner(bob))


async def test_seal_must_be_kind_13_with_no_tags(alice, bob):
    wrong_kind = hand_seal(alice, bob, rumor_dict(alice.public_key), kind=1)
    with pytest.raises(MalformedEvent, match="not a kind 13 seal"):
        await nip59.unwrap(hand_wrap(wrong_kind.to_json(), bob), LocalSigner(bob))
    tagged = hand_seal(alice, bob, rumor_dict(alice.public_key), tags=(("p", bob.public_key),))
    with pytest.raises(MalformedEvent, match="tags must be empty"):
        await nip59.unwrap(hand_wrap(tagged.to_json(), bob), LocalSigner(bob))


async def test_seal_signature_is_checked(alice, bob):
    seal = hand_seal(alice, bob, rumor_dict(alice.public_key)).to_dict()
    seal["sig"] = hand_seal(alice, bob, rumor_dict(alice.public_key, "other")).sig
    with pytest.raises(InvalidSignature):
        await nip59.unwrap(hand_wrap(json.dumps(seal), bob), LocalSigner(bob))


async def test_seal_that_is_not_json_is_malformed(bob):
    with pytest.raises(MalformedEvent, match="not valid JSON"):
        await nip59.unwrap(hand_wrap("not json", bob), LocalSigner(bob))


async def test_rumor_author_must_be_the_seal_signer(alice, bob):
    mallory = Keys.generate()
    impersonation = hand_seal(mallory, bob, rumor_dict(alice.public_key))
    with pytest.raises(InvalidSignature, match="rumor claims author"):
        await nip59.unwrap(hand_wrap(impersonation.to_json(), bob), LocalSigner(bob))


async def test_rumor_id_is_recomputed(alice, bob):
    rumor = rumor_dict(alice.public_key)
    rumor["content"] = "changed after hashing"
    with pytest.raises(InvalidId, match="rumor"):
        await nip59.unwrap(hand_wrap(hand_seal(alice, bob, rumor).to_json(), bob), LocalSigner(bob))


async def test_signature_on_rumor_is_dropped(alice, bob):
    signed = sign_event(EventTemplate(14, (), "signed rumor", NOW), alice.secret)
    opened = await nip59.unwrap(hand_wrap(hand_seal(alice, bob, signed.to_dict()).to_json(), bob), LocalSigner(bob))
    assert opened.rumor.sig is None and opened.rumor.id == signed.id


async def test_undecryptable_seal_names_the_seal(alice, bob):
    seal = sign_event(EventTemplate(13, (), "AAAA" * 40, NOW), alice.secret)
    with pytest.raises(DecryptionError, match=f"seal {seal.id[:16]}"):
        await nip59.unwrap(hand_wrap(seal.to_json(), bob), LocalSigner(bob))


class ForgingRemoteSigner:
    """Stands in for a remote (NIP-46) signer whose answers must be checked, not trusted."""

    def __init__(self, keys: Keys, *, sign_as: Keys | None = None, corrupt: bool = False):
        self.inner, self.sign_as, self.corrupt = LocalSigner(keys), sign_as, corrupt

    async def get_public_key(self) -> str:
        return await self.inner.get_public_key()

    async def sign_event(self, template: EventTemplate) -> Event:
        if self.sign_as is not None:
            return sign_event(template, self.sign_as.secret)
        event = await self.inner.sign_event(template)
        if self.corrupt:
            event = Event(event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, "00" * 64)
        return event

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        return await self.inner.nip44_encrypt(peer_pubkey, plaintext)

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        return await self.inner.nip44_decrypt(peer_pubkey, payload)


async def test_a_remote_signers_seal_is_checked(alice, bob):
    template = EventTemplate(14, (), "x", NOW)
    honest = await nip59.gift_wrap(template, ForgingRemoteSigner(alice), bob.public_key, now=NOW)
    assert (await nip59.unwrap(honest, LocalSigner(bob))).author == alice.public_key
    with pytest.raises(InvalidSignature, match="signature does not verify"):
        await nip59.gift_wrap(template, ForgingRemoteSigner(alice, corrupt=True), bob.public_key, now=NOW)
    with pytest.raises(InvalidSignature, match="signer returned a seal by"):
        await nip59.gift_wrap(template, ForgingRemoteSigner(alice, sign_as=bob), bob.public_key, now=NOW)
