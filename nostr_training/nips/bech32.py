"""Bech32 (BIP-173) for NIP-19, with the 90-character limit lifted to NIP-19's 5000.

Only bech32 is accepted: a bech32m checksum is refused, as are mixed case and non-zero padding.
"""

from __future__ import annotations

from ..errors import EncodingError

__all__ = ["MAX_LENGTH", "bech32_encode", "bech32_decode"]

MAX_LENGTH = 5000
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
_BECH32_CONST = 1
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise EncodingError("bech32 data has invalid padding bits")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode bytes under a lowercase human-readable prefix."""
    words = _convert_bits(data, 8, 5, True)
    values = _hrp_expand(hrp) + words
    polymod = _polymod(values + [0] * 6) ^ _BECH32_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp + "1" + "".join(CHARSET[d] for d in words + checksum)
    if len(text) > MAX_LENGTH:
        raise EncodingError(f"bech32 string would be {len(text)} characters, over {MAX_LENGTH}")
    return text


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a bech32 string into (hrp, bytes); every malformation is an EncodingError."""
    if not isinstance(text, str):
        raise EncodingError("bech32 input must be text")
    if len(text) > MAX_LENGTH:
        raise EncodingError(f"bech32 string is {len(text)} characters, over {MAX_LENGTH}")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise EncodingError("bech32 string has characters outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise EncodingError("bech32 string mixes upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise EncodingError("bech32 string has no prefix or a too short checksum")
    hrp = text[:pos]
    try:
        values = [_CHARSET_REV[c] for c in text[pos + 1 :]]
    except KeyError as exc:
        raise EncodingError(f"bech32 string has an invalid character {exc.args[0]!r}") from None
    check = _polymod(_hrp_expand(hrp) + values)
    if check != _BECH32_CONST:
        raise EncodingError("bech32 checksum does not match (or it is bech32m, which NIP-19 does not use)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, False))
