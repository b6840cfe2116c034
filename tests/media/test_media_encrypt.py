"""Streaming recording encryption: round trips at every chunk boundary, and any damage fails."""

from __future__ import annotations

import hashlib
import os

import pytest

from nostr_training.errors import DecryptionError, InvalidKey
from nostr_training.media.encrypt import ALGORITHM, CHUNK_SIZE, MAGIC, decrypt_file, encrypt_file

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_hashes(tmp_path, size):
    plain = os.urandom(size)
    (tmp_path / "in").write_bytes(plain)
    seen: list[int] = []
    result = encrypt_file(tmp_path / "in", tmp_path / "enc", progress=seen.append)
    sealed = (tmp_path / "enc").read_bytes()
    assert result.algorithm == ALGORITHM and len(result.key) == 32
    assert result.plaintext_sha256 == hashlib.sha256(plain).hexdigest()
    assert result.plaintext_size == size and seen[-1] == size
    assert result.ciphertext_sha256 == hashlib.sha256(sealed).hexdigest()
    assert result.ciphertext_size == len(sealed)
    assert sealed.startswith(MAGIC)
    assert decrypt_file(tmp_path / "enc", tmp_path / "out", result.key) == result.plaintext_sha256
    assert (tmp_path / "out").read_bytes() == plain


def test_each_file_gets_its_own_key_and_the_key_does_not_print(tmp_path):
    (tmp_path / "in").write_bytes(b"same bytes")
    first = encrypt_file(tmp_path / "in", tmp_path / "a")
    second = encrypt_file(tmp_path / "in", tmp_path / "b")
    assert first.key != second.key
    assert first.ciphertext_sha256 != second.ciphertext_sha256
    assert first.key.hex() not in repr(first) and repr(first.key) not in repr(first)


@pytest.fixture
def sealed(tmp_path):
    (tmp_path / "in").write_bytes(os.urandom(2 * CHUNK_SIZE + 100))
    return tmp_path / "enc", encrypt_file(tmp_path / "in", tmp_path / "enc")


def _refused(tmp_path, source, key):
    with pytest.raises(DecryptionError):
        decrypt_file(source, tmp_path / "out", key)
    assert not list(tmp_path.glob("out*"))


def test_wrong_key(tmp_path, sealed):
    path, _ = sealed
    _refused(tmp_path, path, os.urandom(32))


def test_flipped_bit(tmp_path, sealed):
    path, result = sealed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    _refused(tmp_path, path, result.key)


def test_truncated_at_a_chunk_boundary(tmp_path, sealed):
    path, result = sealed
    data = path.read_bytes()
    chunk = CHUNK_SIZE + 17
    path.write_bytes(data[: len(MAGIC) + 24 + 2 * chunk])
    _refused(tmp_path, path, result.key)


def test_data_after_the_final_chunk(tmp_path, sealed):
    path, result = sealed
    path.write_bytes(path.read_bytes() + path.read_bytes()[-200:])
    _refused(tmp_path, path, result.key)


def test_not_an_encrypted_recording(tmp_path):
    (tmp_path / "plain").write_bytes(b"\x1aE\xdf\xa3 a webm file")
    _refused(tmp_path, tmp_path / "plain", os.urandom(32))


def test_key_length_is_checked(tmp_path, sealed):
    path, _ = sealed
    with pytest.raises(InvalidKey):
        decrypt_file(path, tmp_path / "out", b"short")
    with pytest.raises(InvalidKey):
        encrypt_file(path, tmp_path / "x", key=b"short")
