"""NIP-44 v2 versioned encryption: the payload format inside DMs, seals and gift wraps.

Follows the current text of NIP-44 (including nips PR #1907: plaintexts of 65536 bytes and more
use a 6-byte length prefix). Pure functions; callers cache conversation keys per peer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os

from coincurve import PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ..errors import CryptoError, DecryptionError, InvalidKey, UnsupportedVersion
from . import SECP256K1_ORDER

__all__ = [
    "VERSION",
    "MAX_PLAINTEXT",
    "get_conversation_key",
    "get_message_keys",
    "calc_padded_len",
    "payload_limit",
    "encrypt",
    "decrypt",
]

VERSION = 2
SALT = b"nip44-v2"
# Default ceiling for what ``decrypt`` accepts (16 MiB of plaintext); the spec allows 2**32 - 1.
MAX_PLAINTEXT = 2**24
SPEC_MAX_PLAINTEXT = 2**32 - 1
_SHORT_MAX = 65535
_MIN_PAYLOAD_B64 = 132
_MIN_PAYLOAD_RAW = 99


def _secret_scalar(secret_key: bytes) -> bytes:
    if not isinstance(secret_key, (bytes, bytearray)) or len(secret_key) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    if not 0 < int.from_bytes(secret_key, "big") < SECP256K1_ORDER:
        raise InvalidKey("secret key out of range 1..n-1")
    return bytes(secret_key)


def _xonly_bytes(public_key: bytes | str) -> bytes:
    if isinstance(public_key, str):
        try:
            raw = bytes.fromhex(public_key)
        except ValueError as exc:
            raise InvalidKey("public key is not hex") from exc
    elif isinstance(public_key, (bytes, bytearray)):
        raw = bytes(public_key)
    else:
        raise InvalidKey("public key must be 32 bytes or 64 hex characters")
    if len(raw) != 32:
        raise InvalidKey("an x-only public key is 32 bytes")
    return raw


def get_conversation_key(secret_key: bytes, public_key: bytes | str) -> bytes:
    """HKDF-extract(salt="nip44-v2", IKM = x of a·B), the same key in both directions.

    The shared x is taken unhashed: libsecp256k1's ECDH helper hashes it and gets it wrong.
    """
    scalar = _secret_scalar(secret_key)
    x = _xonly_bytes(public_key)
    try:
        point = PublicKey(b"\x02" + x)
    except Exception as exc:
        raise InvalidKey("public key is not an x-coordinate on secp256k1") from exc
    shared_x = point.multiply(scalar).format(compressed=True)[1:]
    return hmac.digest(SALT, shared_x, "sha256")


def get_message_keys(conversation_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF-expand(PRK = conversation key, info = nonce, L = 76) split 32/12/32."""
    if len(conversation_key) != 32:
        raise InvalidKey("a conversation key is 32 bytes")
    if len(nonce) != 32:
        raise CryptoError("a NIP-44 nonce is 32 bytes")
    t1 = hmac.digest(conversation_key, nonce + b"\x01", "sha256")
    t2 = hmac.digest(conversation_key, t1 + nonce + b"\x02", "sha256")
    t3 = hmac.digest(conversation_key, t2 + nonce + b"\x03", "sha256")
    okm = t1 + t2 + t3
    return okm[0:32], okm[32:44], okm[44:76]


def calc_padded_len(n: int) -> int:
    """Padded size of an ``n``-byte plaintext (without the length prefix)."""
    if n < 1:
        raise CryptoError(f"NIP-44 plaintext length must be at least 1, got {n}")
    if n <= 32:
        return 32
    next_power = 1 << (n - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((n - 1) // chunk + 1)


def _prefix_len(n: int) -> int:
    return 2 if n <= _SHORT_MAX else 6


def payload_limit(max_plaintext: int = MAX_PLAINTEXT) -> int:
    """Length in base64 characters of the largest payload for plaintexts up to ``max_plaintext``."""
    raw = 1 + 32 + _prefix_len(max_plaintext) + calc_padded_len(max_plaintext) + 32
    return 4 * ((raw + 2) // 3)


def _pad(plaintext: bytes) -> bytes:
    n = len(plaintext)
    if not 1 <= n <= SPEC_MAX_PLAINTEXT:
        raise CryptoError(f"NIP-44 plaintext must be 1..{SPEC_MAX_PLAINTEXT} bytes, got {n}")
    prefix = n.to_bytes(2, "big") if n <= _SHORT_MAX else b"\0\0" + n.to_bytes(4, "big")
    return prefix + plaintext + bytes(calc_padded_len(n) - n)


def _unpad(padded: bytes) -> bytes:
    if len(padded) < 2:
        raise DecryptionError("invalid padding: no length prefix")
    n = int.from_bytes(padded[0:2], "big")
    start = 2
    if n == 0:
        if len(padded) < 6:
            raise DecryptionError("invalid padding: truncated long length prefix")
        n = int.from_bytes(padded[2:6], "big")
        start = 6
        if n <= _SHORT_MAX:
            raise DecryptionError("invalid padding: long length prefix for a short message")
    plaintext = padded[start : start + n]
    if len(plaintext) != n or len(padded) != start + calc_padded_len(n):
        raise DecryptionError("invalid padding: length does not match the padded size")
    return plaintext


def _chacha20(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    # cryptography takes the 16-byte block: little-endian counter (0) then the 12-byte nonce.
    return Cipher(algorithms.ChaCha20(key, b"\0\0\0\0" + nonce12), mode=None).encryptor().update(data)


def encrypt(plaintext: str, conversation_key: bytes, nonce: bytes | None = None) -> str:
    """Encrypt UTF-8 text into a base64 v2 payload; ``nonce`` only for known-answer tests."""
    if nonce is None:
        nonce = os.urandom(32)
    if not isinstance(plaintext, str):
        raise CryptoError("NIP-44 encrypts text (str)")
    try:
        raw = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CryptoError("plaintext contains a lone surrogate, which UTF-8 cannot carry") from exc
    chacha_key, chacha_nonce, hmac_key = get_message_keys(conversation_key, nonce)
    ciphertext = _chacha20(chacha_key, chacha_nonce, _pad(raw))
    mac = hmac.digest(hmac_key, nonce + ciphertext, "sha256")
    return base64.b64encode(bytes([VERSION]) + nonce + ciphertext + mac).decode("ascii")


def decrypt(payload: str, conversation_key: bytes, *, max_plaintext: int = MAX_PLAINTEXT) -> str:
    """Check and decrypt a v2 payload, in the order NIP-44 gives; the MAC is checked first."""
    if not isinstance(payload, str):
        raise DecryptionError("a NIP-44 payload is base64 text")
    if len(conversation_key) != 32:
        raise InvalidKey("a conversation key is 32 bytes")
    if not payload or payload[0] == "#":
        raise UnsupportedVersion("unsupported NIP-44 encryption version")
    size = len(payload)
    if size < _MIN_PAYLOAD_B64:
        raise DecryptionError(f"invalid payload size {size}: shorter than {_MIN_PAYLOAD_B64}")
    if size > payload_limit(max_plaintext):
        raise DecryptionError(f"invalid payload size {size}: over the {max_plaintext}-byte plaintext limit")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("invalid base64 in NIP-44 payload") from exc
    if len(data) < _MIN_PAYLOAD_RAW:
        raise DecryptionError(f"invalid payload size {len(data)} bytes: shorter than {_MIN_PAYLOAD_RAW}")
    if data[0] != VERSION:
        raise UnsupportedVersion(f"unsupported NIP-44 encryption version {data[0]}")
    nonce, ciphertext, mac = data[1:33], data[33:-32], data[-32:]
    chacha_key, chacha_nonce, hmac_key = get_message_keys(conversation_key, nonce)
    expected = hmac.digest(hmac_key, nonce + ciphertext, "sha256")
    if not hmac.compare_digest(expected, mac):
        raise DecryptionError("invalid MAC: wrong key or corrupted payload")
    plaintext = _unpad(_chacha20(chacha_key, chacha_nonce, ciphertext))
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecryptionError("plaintext is not valid UTF-8") from exc

