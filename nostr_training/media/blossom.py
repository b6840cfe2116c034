"""A Blossom client: upload a recording file, check what a server holds, fetch a blob by hash.

Uploads stream from disk in chunks (memory stays flat for a multi-GB recording) with the
``X-SHA-256`` header and a kind 24242 token scoped to that hash and this server, expiring soon.
Retries are resume-safe: before every attempt the client asks ``HEAD /<sha256>``, so an upload
whose response was lost is not sent again, and a blob the server already holds costs nothing.
Downloads stream to a temporary file beside the target, re-hash every byte, and only a blob
whose sha256 matches is renamed into place (BUD-01: clients must verify what they fetch).
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Self

import aiohttp

from ..clock import Clock, SystemClock
from ..errors import BlobMismatch, BlossomError
from ..nips.blossom import (
    BlobDescriptor,
    authorization_template,
    blob_url,
    encode_authorization,
    is_sha256,
    parse_blob_descriptor,
    sha256_from_url,
)
from ..signer import Signer

__all__ = ["BlossomClient", "Progress", "hash_file"]

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in total) as a transfer advances."""

_CHUNK = 1 << 20
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth another attempt: the network, a timeout, a 5xx or a 429."""


def hash_file(path: str | os.PathLike[str], chunk_size: int = _CHUNK) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read one chunk at a time."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _reason(response: aiohttp.ClientResponse) -> str:
    return response.headers.get("X-Reason", "")[:200]


class BlossomClient:
    """One Blossom server, authorised by ``signer``; use as ``async with``."""

    def __init__(
        self,
        server: str,
        signer: Signer,
        *,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
        chunk_size: int = _CHUNK,
        attempts: int = 4,
        retry_delay: float = 1.0,
        token_lifetime: int = 600,
    ):
        if not server.startswith(("https://", "http://")):
            raise BlossomError(f"a Blossom server is an http(s) URL, not {server[:80]!r}")
        self.server = server.rstrip("/")
        self._signer = signer
        self._clock = clock or SystemClock()
        self._session = session
        self._owns_session = session is None
        self._chunk_size = chunk_size
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        self._token_lifetime = token_lifetime

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120))
        return self._session

    async def authorization(self, verb: str, sha256: str | None = None) -> str:
        """A signed ``Authorization`` header value for ``verb``, scoped to ``sha256`` and this server."""
        now = self._clock.now()
        template = authorization_template(
            verb,
            created_at=now,
            expiration=now + self._token_lifetime,
            sha256=(sha256,) if sha256 else (),
            servers=(self.server,),
        )
        return encode_authorization(await self._signer.sign_event(template))

    # Has ---------------------------------------------------------------------------------------

    async def head(self, sha256: str) -> BlobDescriptor | None:
        """What the server holds under ``sha256`` (BUD-01 HEAD), or None when it holds nothing."""
        try:
            return await self._head(sha256)
        except _Transient as exc:
            raise BlossomError(str(exc), server=self.server) from None

    async def _head(self, sha256: str) -> BlobDescriptor | None:
        if not is_sha256(sha256):
            raise BlossomError(f"not a lowercase sha256: {sha256[:80]!r}", server=self.server)
        url = blob_url(self.server, sha256)
        headers: dict[str, str] = {}
        for authorised in (False, True):
            if authorised:
                headers["Authorization"] = await self.authorization("get", sha256)
            async with self._http().head(url, headers=headers, allow_redirects=True) as response:
                if response.status == 404:
                    return None
                if response.status == 401 and not authorised:
                    continue
                if response.status in _TRANSIENT_STATUS:
                    raise _Transient(f"HEAD {sha256[:16]}: HTTP {response.status}")
                if response.status != 200:
                    raise BlossomError(
                        f"HEAD {sha256[:16]}: HTTP {response.status}",
                        server=self.server, status=response.status, reason=_reason(response),
                    )
                size = response.content_length
                mime = response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
                return BlobDescriptor(
                    url=blob_url(self.server, sha256, (mimetypes.guess_extension(mime) or ".bin").lstrip(".")),
                    sha256=sha256,
                    size=size if size is not None else -1,
                    type=mime,
                )
        raise BlossomError(f"HEAD {sha256[:16]}: unauthorised", server=self.server, status=401)

    # Upload ------------------------------------------------------------------------------------

    async def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        mime: str = "application/octet-stream",
        progress: Progress | None = None,
        sha256: str | None = None,
    ) -> BlobDescriptor:
        """PUT ``path`` to ``/upload`` unless the server already holds it; retried resume-safely.

        ``sha256`` skips hashing when the caller already knows it (from ``encrypt_file``); the
        server checks it against the bytes either way.
        """
        source = Path(path)
        if sha256 is None:
            sha256, size = await asyncio.to_thread(hash_file, source, self._chunk_size)
        else:
            size = source.stat().st_size
        last: Exception | None = None
        for attempt in range(self._attempts):
            if attempt:
                await self._clock.sleep(self._retry_delay * 2 ** (attempt - 1))
            try:
                held = await self._head(sha256)
                if held is not None and held.size in (size, -1):
                    if progress is not None:
                        progress(size, size)
                    return held
                return await self._put(source, sha256, size, mime, progress)
            except _Transient as exc:
                last = exc
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = exc
        raise BlossomError(
            f"upload of {source.name} failed after {self._attempts} attempts: {type(last).__name__}: {last}",
            server=self.server,
        )

    async def _chunks(self, source: Path, size: int, progress: Progress | None) -> AsyncIterator[bytes]:
        sent = 0
        handle = await asyncio.to_thread(open, source, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, self._chunk_size):
                sent += len(chunk)
                yield chunk
                if progress is not None:
                    progress(sent, size)
        finally:
            await asyncio.to_thread(handle.close)

    async def _put(self, source: Path, sha256: str, size: int, mime: str, progress: Progress | None) -> BlobDescriptor:
        headers = {
            "Authorization": await self.authorization("upload", sha256),
            "Content-Type": mime,
            "Content-Length": str(size),
            "X-SHA-256": sha256,
        }
        body = self._chunks(source, size, progress)
        async with self._http().put(f"{self.server}/upload", data=body, headers=headers) as response:
            if response.status in _TRANSIENT_STATUS:
                raise _Transient(f"PUT /upload: HTTP {response.status}")
            if response.status not in (200, 201):
                raise BlossomError(
                    f"PUT /upload: HTTP {response.status}",
                    server=self.server, status=response.status, reason=_reason(response),
                )
            try:
                data = await response.json(content_type=None)
            except ValueError:
                raise BlossomError("PUT /upload: the answer is not JSON", server=self.server) from None
        descriptor = parse_blob_descriptor(data, server=self.server)
        if descriptor.sha256 != sha256 or descriptor.size != size:
            raise BlobMismatch(
                f"{self.server} stored {descriptor.sha256[:16]} ({descriptor.size} bytes) "
                f"for {sha256[:16]} ({size} bytes)"
            )
        return descriptor

    # Download ----------------------------------------------------------------------------------

    async def download(
        self, sha256: str, target: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> Path:
        """Fetch the blob ``sha256`` into ``target``; it appears only if every byte hashes right."""
        if not is_sha256(sha256):
            raise BlossomError(f"not a lowercase sha256: {sha256[:80]!r}", server=self.server)
        target_path = Path(target)
        partial = target_path.with_name(target_path.name + ".partial")
        url = blob_url(self.server, sha256)
        headers: dict[str, str] = {}
        for authorised in (False, True):
            if authorised:
                headers["Authorization"] = await self.authorization("get", sha256)
            async with self._http().get(url, headers=headers, allow_redirects=True) as response:
                if response.status == 401 and not authorised:
                    continue
                if response.status != 200:
                    raise BlossomError(
                        f"GET {sha256[:16]}: HTTP {response.status}",
                        server=self.server, status=response.status, reason=_reason(response),
                    )
                if response.history and sha256_from_url(str(response.url)) != sha256:
                    raise BlobMismatch(f"{self.server} redirected {sha256[:16]} to a URL without that hash")
                digest = hashlib.sha256()
                total = response.content_length or 0
                done = 0
                handle = await asyncio.to_thread(open, partial, "wb")
                try:
                    async for chunk in response.content.iter_chunked(self._chunk_size):
                        digest.update(chunk)
                        await asyncio.to_thread(handle.write, chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                except BaseException:
                    await asyncio.to_thread(handle.close)
                    partial.unlink(missing_ok=True)
                    raise
                await asyncio.to_thread(handle.close)
            if digest.hexdigest() != sha256:
                partial.unlink(missing_ok=True)
                raise BlobMismatch(f"{self.server} served bytes hashing to {digest.hexdigest()[:16]} for {sha256[:16]}")
            partial.replace(target_path)
            return target_path
        raise BlossomError(f"GET {sha256[:16]}: unauthorised", server=self.server, status=401)
