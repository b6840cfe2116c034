"""The async Signer protocol and LocalSigner."""

import pytest

from nostr_training.errors import DecryptionError, InvalidKey
from nostr_training.event import EventTemplate, verify_event
from nostr_training.keys import Keys
from nostr_training.nips import nip44
from nostr_training.signer import LocalSigner, Signer


def test_local_signer_satisfies_the_protocol(alice):
    assert isinstance(LocalSigner(alice), Signer)


def test_repr_never_shows_the_secret(alice):
    assert alice.secret.hex() not in repr(LocalSigner(alice))


async def test_public_key_and_signature(alice):
    signer = LocalSigner(alice)
    assert await signer.get_public_key() == alice.public_key
    event = await signer.sign_event(EventTemplate(1, (("t", "nostr"),), "hello", 1_800_000_000))
    assert event.pubkey == alice.public_key
    verify_event(event)


async def test_nip44_both_directions(alice, bob):
    a, b = LocalSigner(alice), LocalSigner(bob)
    payload = await a.nip44_encrypt(bob.public_key, "room key ✓")
    assert await b.nip44_decrypt(alice.public_key, payload) == "room key ✓"
    assert await a.nip44_decrypt(bob.public_key, payload) == "room key ✓"
    with pytest.raises(DecryptionError):
        await LocalSigner(Keys.generate()).nip44_decrypt(alice.public_key, payload)


def test_conversation_key_matches_nip44_and_is_cached(alice, bob):
    signer = LocalSigner(alice)
    key = signer.conversation_key(bob.public_key)
    assert key == nip44.get_conversation_key(alice.secret, bob.public_key)
    assert signer.conversation_key(bob.public_key.upper()) is key


def test_cache_is_bounded(alice):
    signer = LocalSigner(alice, cache_size=2)
    peers = [Keys.generate().public_key for _ in range(3)]
    first = signer.conversation_key(peers[0])
    for peer in peers[1:]:
        signer.conversation_key(peer)
    assert signer.conversation_key(peers[0]) is not first
    assert signer.conversation_key(peers[0]) == first


async def test_bad_peer_is_an_invalid_key(alice):
    with pytest.raises(InvalidKey):
        await LocalSigner(alice).nip44_encrypt("zz" * 32, "x")
