"""Streaming file encryption for recordings of E2EE sessions, before they go to a Blossom server.

The SFU never saw the clear media of an E2EE session, so neither may the blob server: the host's
own recording is encrypted with a fresh random key, uploaded, and the key goes to the
participants later the way a room key does (this module only returns it).

Format: libsodium's ``crypto_secretstream_xchacha20poly1305`` (PyNaCl), which authenticates
each chunk, their order and the end of the stream, so a truncated, reordered or spliced file
fails to decrypt instead of playing partly. The file is ``MAGIC`` + the 24-byte stream header +
chunks of ``CHUNK_SIZE`` plaintext bytes (each ``CHUNK_SIZE`` + 17 bytes), the last one tagged
final. Memory stays at one chunk whatever the file size; the sha256 of the plaintext (NIP-94
``ox``) and of the ciphertext (``x``, the blob's address) come out of the same pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nacl import bindings as sodium
from nacl.exceptions import CryptoError as SodiumError

from ..errors import DecryptionError, InvalidKey

__all__ = ["ALGORITHM", "CHUNK_SIZE", "MAGIC", "EncryptedFile", "decrypt_file", "encrypt_file", "new_file_key"]

ALGORITHM = "xchacha20poly1305-secretstream"
"""The ``encryption-algorithm`` value a recording's metadata names (kind-15 style)."""
MAGIC = b"NTREC\x00\x01\x00"
CHUNK_SIZE = 1 << 16
KEY_BYTES = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EncryptedFile:
    """The result of one encryption: the key to deliver, and the hashes and sizes to publish."""

    key: bytes = field(repr=False)
    algorithm: str
    plaintext_sha256: str
    plaintext_size: int
    ciphertext_sha256: str
    ciphertext_size: int


def new_file_key() -> bytes:
    """32 random bytes from the OS."""
    return sodium.crypto_secretstream_xchacha20poly1305_keygen()


def _read_full(src: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, short only at the end of the file (pipes return less per read)."""
    parts: list[bytes] = []
    wanted = size
    while wanted:
        chunk = src.read(wanted)
        if not chunk:
            break
        parts.append(chunk)
        wanted -= len(chunk)
    return b"".join(parts)


def encrypt_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    progress: Progress | None = None,
) -> EncryptedFile:
    """Encrypt ``source`` into ``target`` with ``key`` (a fresh random one by default)."""
    key = new_file_key() if key is None else key
    if len(key) != KEY_BYTES:
        raise InvalidKey(f"a file key is {KEY_BYTES} bytes, got {len(key)}")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    plain_size = 0
    cipher_size = 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        for piece in (MAGIC, header):
            dst.write(piece)
            cipher_hash.update(piece)
            cipher_size += len(piece)
        chunk = _read_full(src, CHUNK_SIZE)
        while True:
            following = _read_full(src, CHUNK_SIZE) if len(chunk) == CHUNK_SIZE else b""
            last = not following
            sealed = sodium.crypto_secretstream_xchacha20poly1305_push(
                state, chunk, tag=_FINAL if last else _MESSAGE
            )
            plain_hash.update(chunk)
            plain_size += len(chunk)
            dst.write(sealed)
            cipher_hash.update(sealed)
            cipher_size += len(sealed)
            if progress is not None:
                progress(plain_size)
            if last:
                break
            chunk = following
    return EncryptedFile(
        key=key,
        algorithm=ALGORITHM,
        plaintext_sha256=plain_hash.hexdigest(),
        plaintext_size=plain_size,
        ciphertext_sha256=cipher_hash.hexdigest(),
        ciphertext_size=cipher_size,
    )


def decrypt_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    key: bytes,
    *,
    progress: Progress | None = None,
) -> str:
    """Decrypt ``source`` into ``target``; returns the plaintext's sha256.

    A wrong key, a flipped bit, a truncated or extended file raise ``DecryptionError`` and leave
    no ``target`` behind (it is written beside and renamed only once the final chunk verifies).
    """
    if len(key) != KEY_BYTES:
        raise InvalidKey(f"a file key is {KEY_BYTES} bytes, got {len(key)}")
    target_path = Path(target)
    partial = target_path.with_name(target_path.name + ".partial")
    plain_hash = hashlib.sha256()
    done = 0
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            if _read_full(src, len(MAGIC)) != MAGIC:
                raise DecryptionError("not an encrypted recording (magic bytes differ)")
            header = _read_full(src, _HEADER)
            if len(header) != _HEADER:
                raise DecryptionError("encrypted recording is truncated in its header")
            state = sodium.crypto_secretstream_xchacha20poly1305_state()
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
            finished = False
            while True:
                sealed = _read_full(src, CHUNK_SIZE + _ABYTES)
                if not sealed:
                    break
                if finished:
                    raise DecryptionError("encrypted recording has data after its final chunk")
                try:
                    chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed)
                except SodiumError:
                    raise DecryptionError("encrypted recording does not authenticate (wrong key or damaged)") from None
                dst.write(chunk)
                plain_hash.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done)
                finished = tag == _FINAL
            if not finished:
                raise DecryptionError("encrypted recording is truncated (no final chunk)")
        partial.replace(target_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return plain_hash.hexdigest()
