"""Signers: who holds the key. Every method is async so a NIP-46 remote signer can slot in.

Code that signs or decrypts takes a ``Signer``, never a secret key; ``LocalSigner`` is the
in-process implementation over ``Keys``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, runtime_checkable

from .event import Event, EventTemplate, sign_event
from .keys import Keys
from .nips import nip44

__all__ = ["Signer", "LocalSigner"]


@runtime_checkable
class Signer(Protocol):
    """What a key holder can do for us: tell its pubkey, sign, and NIP-44 encrypt/decrypt."""

    async def get_public_key(self) -> str:
        """The 64-hex x-only public key."""

    async def sign_event(self, template: EventTemplate) -> Event:
        """Sign ``template`` as this key; the result verifies with ``verify_event``."""

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        """NIP-44 v2 payload for ``peer_pubkey``."""

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        """Plaintext of a NIP-44 v2 payload from (or to) ``peer_pubkey``."""


class LocalSigner:
    """A ``Signer`` over keys held in this process.

    Conversation keys cost an ECDH each; they are the same in both directions and never
    change, so the most recent ``cache_size`` peers are kept (gift-wrapping a rumor to a whole
    class reuses them for every seal).
    """

    def __init__(self, keys: Keys, *, cache_size: int = 4096):
        self._keys = keys
        self._cache_size = cache_size
        self._conversation_keys: OrderedDict[str, bytes] = OrderedDict()

    @property
    def public_key(self) -> str:
        return self._keys.public_key

    def __repr__(self) -> str:
        return f"LocalSigner(public_key={self._keys.public_key!r})"

    def conversation_key(self, peer_pubkey: str) -> bytes:
        """The NIP-44 conversation key with ``peer_pubkey``, from the cache when possible."""
        peer = peer_pubkey.lower()
        cached = self._conversation_keys.get(peer)
        if cached is not None:
            self._conversation_keys.move_to_end(peer)
            return cached
        key = nip44.get_conversation_key(self._keys.secret, peer)
        self._conversation_keys[peer] = key
        if len(self._conversation_keys) > self._cache_size:
            self._conversation_keys.popitem(last=False)
        return key

    async def get_public_key(self) -> str:
        return self._keys.public_key

    async def sign_event(self, template: EventTemplate) -> Event:
        return sign_event(template, self._keys.secret)

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        return nip44.encrypt(plaintext, self.conversation_key(peer_pubkey))

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        return nip44.decrypt(payload, self.conversation_key(peer_pubkey))
