"""NIP-49 ncryptsec: the NIP's known answer, NFKC, round trips (small LOG_N) and refusals."""

from __future__ import annotations

import nostr_sdk as sdk
import pytest

from nostr_training.errors import DecryptionError, InvalidKey, UnsupportedVersion
from nostr_training.nips import bech32, nip19, nip49

# From NIP-49: password "nostr", LOG_N 16, key security 0x00.
KNOWN_NCRYPTSEC = (
    "ncryptsec1qgg9947rlpvqu76pj5ecreduf9jxhselq2nae2kghhvd5g7dgjtcxfqtd67p9m0w57lspw8gsq6yphnm8623nsl8xn9j"
    "4jdzz84zm3frztj3z7s35vpzmqf6ksu8r89qk5z2zxfmu5gv8th8wclt0h4p"
)
KNOWN_SECRET = "3501454135014541350145413501453fefb02227e449e57cf4d3a3ce05378683"
SECRET = bytes.fromhex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
FAST = 4


def test_known_answer_from_the_nip():
    assert nip49.parameters(KNOWN_NCRYPTSEC) == (16, nip49.KEY_INSECURE)
    assert nip49.decrypt(KNOWN_NCRYPTSEC, "nostr").hex() == KNOWN_SECRET


def test_password_is_nfkc_normalised():
    composed_differently = "\u212b\u2126\u1e9b\u0323"
    assert nip49.normalize_password(composed_differently) == bytes.fromhex("c385cea9e1b9a9")
    encrypted = nip49.encrypt(SECRET, composed_differently, log_n=FAST)
    assert nip49.decrypt(encrypted, "\u00c5\u03a9\u1e69") == SECRET


@pytest.mark.parametrize("key_security", [0, 1, 2])
def test_round_trip(key_security):
    encrypted = nip49.encrypt(SECRET, "correct horse", log_n=FAST, key_security=key_security)
    assert encrypted.startswith("ncryptsec1") and len(encrypted) == 162
    assert nip49.parameters(encrypted) == (FAST, key_security)
    assert nip49.decrypt(encrypted, "correct horse") == SECRET


def test_salt_and_nonce_are_fresh():
    assert nip49.encrypt(SECRET, "pw", log_n=FAST) != nip49.encrypt(SECRET, "pw", log_n=FAST)


def test_wrong_password_is_refused_clearly():
    encrypted = nip49.encrypt(SECRET, "correct horse", log_n=FAST)
    with pytest.raises(DecryptionError, match="wrong password"):
        nip49.decrypt(encrypted, "correct hors")


def _rebuild(ncryptsec: str, index: int, value: int) -> str:
    raw = bytearray(nip19.decode(ncryptsec).data)
    raw[index] = value
    return bech32.bech32_encode("ncryptsec", bytes(raw))


@pytest.mark.parametrize(
    "index,what", [(5, "salt"), (30, "nonce"), (42, "key security byte (AAD)"), (60, "ciphertext"), (90, "tag")]
)
def test_any_tampering_is_refused(index, what):
    encrypted = nip49.encrypt(SECRET, "pw", log_n=FAST, key_security=1)
    raw = nip19.decode(encrypted).data
    tampered = _rebuild(encrypted, index, raw[index] ^ (0x01 if index != 42 else 0x03))
    with pytest.raises(DecryptionError):
        nip49.decrypt(tampered, "pw")


def test_hostile_log_n_is_refused_before_running_scrypt():
    encrypted = nip49.encrypt(SECRET, "pw", log_n=FAST)
    with pytest.raises(DecryptionError, match="LOG_N"):
        nip49.decrypt(_rebuild(encrypted, 1, 64), "pw")
    with pytest.raises(DecryptionError, match="LOG_N"):
        nip49.decrypt(_rebuild(encrypted, 1, 0), "pw")


def test_other_versions_and_shapes_are_refused():
    encrypted = nip49.encrypt(SECRET, "pw", log_n=FAST)
    with pytest.raises(UnsupportedVersion):
        nip49.decrypt(_rebuild(encrypted, 0, 1), "pw")
    raw = nip19.decode(encrypted).data
    with pytest.raises(DecryptionError, match="91"):
        nip49.decrypt(bech32.bech32_encode("ncryptsec", raw[:-1]), "pw")
    with pytest.raises(DecryptionError):
        nip49.decrypt(nip19.nsec_encode(SECRET), "pw")
    with pytest.raises(DecryptionError):
        nip49.decrypt("ncryptsec1notreally", "pw")


@pytest.mark.parametrize(
    "secret,log_n,key_security",
    [(bytes(32), FAST, 2), (SECRET[:31], FAST, 2), (SECRET, 0, 2), (SECRET, 40, 2), (SECRET, FAST, 3)],
    ids=["zero-key", "short-key", "log-n-0", "log-n-40", "security-3"],
)
def test_encrypt_refuses_bad_inputs(secret, log_n, key_security):
    with pytest.raises(InvalidKey):
        nip49.encrypt(secret, "pw", log_n=log_n, key_security=key_security)


@pytest.mark.interop
def test_ncryptsec_cross_decrypts_with_rust_nostr():
    theirs = sdk.SecretKey.from_bytes(SECRET).encrypt("pässwörd").to_bech32()
    assert nip49.decrypt(theirs, "pässwörd") == SECRET
    ours = nip49.encrypt(SECRET, "pässwörd", log_n=FAST)
    assert sdk.EncryptedSecretKey.from_bech32(ours).decrypt("pässwörd").to_hex() == SECRET.hex()
