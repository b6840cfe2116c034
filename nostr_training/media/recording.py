"""Putting a recording file on Blossom, encrypted first when the session was end-to-end encrypted.

What the recording service calls: it decides ``encrypt`` from the session (``recording_plan``
says an E2EE session's recording is the host's own), gets back the blob descriptor for the
NIP-94 event (``x`` = the blob's hash, ``ox`` = the plaintext's), and, for an encrypted file,
the key to deliver to the participants the way a room key goes.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..nips.blossom import BlobDescriptor
from .blossom import BlossomClient, Progress, hash_file
from .encrypt import encrypt_file

__all__ = ["UploadedRecording", "upload_recording"]


@dataclass(frozen=True, slots=True)
class UploadedRecording:
    descriptor: BlobDescriptor
    plaintext_sha256: str
    plaintext_size: int
    mime: str
    """The MIME type of the recording itself (the blob of an encrypted one is octet-stream)."""
    key: bytes | None = field(default=None, repr=False)
    algorithm: str | None = None

    @property
    def encrypted(self) -> bool:
        return self.key is not None


async def upload_recording(
    client: BlossomClient,
    path: str | os.PathLike[str],
    *,
    mime: str,
    encrypt: bool,
    progress: Progress | None = None,
) -> UploadedRecording:
    """Upload ``path`` (encrypted into a temporary file beside it when ``encrypt``)."""
    source = Path(path)
    if not encrypt:
        sha256, size = await asyncio.to_thread(hash_file, source)
        descriptor = await client.upload_file(source, mime=mime, progress=progress, sha256=sha256)
        return UploadedRecording(descriptor, sha256, size, mime)
    handle, name = tempfile.mkstemp(dir=source.parent, prefix=f".{source.name}.", suffix=".enc")
    os.close(handle)
    sealed = Path(name)
    try:
        result = await asyncio.to_thread(encrypt_file, source, sealed)
        descriptor = await client.upload_file(
            sealed, mime="application/octet-stream", progress=progress, sha256=result.ciphertext_sha256
        )
    finally:
        sealed.unlink(missing_ok=True)
    return UploadedRecording(
        descriptor=descriptor,
        plaintext_sha256=result.plaintext_sha256,
        plaintext_size=result.plaintext_size,
        mime=mime,
        key=result.key,
        algorithm=result.algorithm,
    )
