"""NIP-49 private key encryption: the ``ncryptsec`` form a secret key takes at rest.

scrypt(NFKC password, 16-byte salt, N = 2**log_n, r = 8, p = 1) -> 32-byte key, then
XChaCha20-Poly1305 over the 32 secret bytes with the key-security byte as associated data.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from typing import NamedTuple

import nacl.bindings
import nacl.exceptions

from ..errors import DecryptionError, EncodingError, InvalidKey, UnsupportedVersion
from . import SECP256K1_ORDER, nip19

__all__ = [
    "KEY_INSECURE",
    "KEY_NOT_KNOWN_INSECURE",
    "KEY_SECURITY_UNTRACKED",
    "MAX_LOG_N",
    "Parameters",
    "normalize_password",
    "encrypt",
    "decrypt",
    "parameters",
]

VERSION = 0x02
KEY_INSECURE = 0x00
KEY_NOT_KNOWN_INSECURE = 0x01
KEY_SECURITY_UNTRACKED = 0x02
# 2**22 * 1 KiB = 4 GiB of scrypt memory; a hostile ncryptsec must not ask for more.
MAX_LOG_N = 22
_PAYLOAD_LEN = 91
_SCRYPT_R = 8
_SCRYPT_P = 1


class Parameters(NamedTuple):
    """The public header of an ncryptsec."""

    log_n: int
    key_security: int


def normalize_password(password: str) -> bytes:
    """NFKC, then UTF-8: the same password typed on any platform gives the same bytes."""
    if not isinstance(password, str):
        raise InvalidKey("a NIP-49 password is text")
    try:
        return unicodedata.normalize("NFKC", password).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey("password contains a lone surrogate") from exc


def _check_log_n(log_n: int, max_log_n: int) -> None:
    if type(log_n) is not int or not 1 <= log_n <= max_log_n:
        raise InvalidKey(f"LOG_N must be an integer 1..{max_log_n}, got {log_n!r}")


def _symmetric_key(password: str, salt: bytes, log_n: int) -> bytes:
    n = 1 << log_n
    # hashlib's default maxmem is 32 MiB, too small for LOG_N >= 15: allow exactly what N needs.
    maxmem = 128 * _SCRYPT_R * (n + _SCRYPT_P + 2) + (1 << 20)
    return hashlib.scrypt(
        normalize_password(password), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=maxmem, dklen=32
    )


def encrypt(
    secret: bytes,
    password: str,
    log_n: int = 16,
    key_security: int = KEY_SECURITY_UNTRACKED,
    *,
    max_log_n: int = MAX_LOG_N,
) -> str:
    """Encrypt a 32-byte secret key into an ``ncryptsec1…`` string (LOG_N 16 needs ~64 MiB)."""
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    if not 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
        raise InvalidKey("secret key out of range 1..n-1")
    _check_log_n(log_n, max_log_n)
    if key_security not in (KEY_INSECURE, KEY_NOT_KNOWN_INSECURE, KEY_SECURITY_UNTRACKED):
        raise InvalidKey(f"key security byte must be 0, 1 or 2, got {key_security!r}")
    salt = os.urandom(16)
    nonce = os.urandom(24)
    aad = bytes([key_security])
    key = _symmetric_key(password, salt, log_n)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(secret), aad, nonce, key)
    return nip19.ncryptsec_encode(bytes([VERSION, log_n]) + salt + nonce + aad + ciphertext)


def _payload(ncryptsec: str) -> bytes:
    try:
        decoded = nip19.decode(ncryptsec)
    except EncodingError as exc:
        raise DecryptionError(f"not an ncryptsec: {exc}") from exc
    if decoded.hrp != "ncryptsec":
        raise DecryptionError(f"expected an ncryptsec, got {decoded.hrp}")
    raw: bytes = decoded.data
    if not raw or raw[0] != VERSION:
        raise UnsupportedVersion(f"unsupported ncryptsec version {raw[0] if raw else None}")
    if len(raw) != _PAYLOAD_LEN:
        raise DecryptionError(f"ncryptsec payload is {len(raw)} bytes, expected {_PAYLOAD_LEN}")
    return raw


def parameters(ncryptsec: str) -> Parameters:
    """Read LOG_N and the key-security byte without the password."""
    raw = _payload(ncryptsec)
    return Parameters(raw[1], raw[42])


def decrypt(ncryptsec: str, password: str, *, max_log_n: int = MAX_LOG_N) -> bytes:
    """The 32 secret-key bytes; a wrong password is a DecryptionError saying so."""
    raw = _payload(ncryptsec)
    log_n, salt, nonce, aad, ciphertext = raw[1], raw[2:18], raw[18:42], raw[42:43], raw[43:]
    if not 1 <= log_n <= max_log_n:
        raise DecryptionError(f"ncryptsec asks for LOG_N {log_n}, outside the allowed 1..{max_log_n}")
    if aad[0] not in (KEY_INSECURE, KEY_NOT_KNOWN_INSECURE, KEY_SECURITY_UNTRACKED):
        raise DecryptionError(f"ncryptsec has an unknown key security byte {aad[0]}")
    key = _symmetric_key(password, salt, log_n)
    try:
        secret = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise DecryptionError("wrong password (or the ncryptsec is corrupted)") from None
    if not 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
        raise DecryptionError("ncryptsec holds a secret key out of range")
    return secret
