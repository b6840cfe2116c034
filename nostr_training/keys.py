"""Keys: generation and the hex form. A secret key never reaches a log or a repr."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from coincurve import PrivateKey

from .errors import InvalidKey

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    """A secp256k1 key pair with x-only public key (BIP-340)."""

    secret: bytes = field(repr=False)
    public_key: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InvalidKey("a secret key is 32 bytes")
        try:
            pk = PrivateKey(self.secret).public_key_xonly.format().hex()
        except Exception as exc:
            raise InvalidKey("secret key out of range") from exc
        object.__setattr__(self, "public_key", pk)

    @classmethod
    def generate(cls) -> "Keys":
        while True:
            try:
                return cls(os.urandom(32))
            except InvalidKey:
                continue

    @classmethod
    def from_hex(cls, text: str) -> "Keys":
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise InvalidKey("not hex") from exc
        return cls(raw)

    @property
    def secret_hex(self) -> str:
        return self.secret.hex()

    def __repr__(self) -> str:
        return f"Keys(public_key={self.public_key!r})"
