"""An in-process Blossom server on 127.0.0.1, written to the BUD-01/02/11 text (hzrd149/blossom
at ef3c79e), for the demo (``nostr-training demo`` publishes its recording here), the client's tests and
the upload benchmark. No Blossom server is installable here, so this one follows the spec's
MUSTs and is strict where the spec lets a server be:

- BUD-01 ``GET|HEAD /<sha256>[.ext]``: 400 for a malformed path, 404 when absent, the blob's
  ``Content-Type`` (``application/octet-stream`` when unknown) and ``Content-Length``;
  ``Access-Control-Allow-Origin: *`` on every answer; ``X-Reason`` on every error.
- BUD-02 ``PUT /upload``: the bytes are stored unmodified under the sha256 computed over exactly
  what was received (streamed to disk, never held in memory); 409 when ``X-SHA-256`` differs;
  201 for a new blob, 200 with the same descriptor for one already held.
- BUD-11: ``Authorization: Nostr <token>``, base64url or standard base64; kind 24242,
  ``created_at`` not in the future, ``expiration`` in the future, the ``t`` verb of the endpoint,
  this server's domain among the ``server`` tags if there are any, and an ``x`` tag matching the
  implied hash where the endpoint table requires it (upload) or the token carries any.

Faults for resume tests: ``faults`` is a queue of what the next uploads suffer: ``"lost-answer"``
stores the blob and then answers 500 (the client never hears it was stored), ``"drop"`` reads part
of the body, stores nothing and closes the connection; ``"unavailable"`` answers 503 unread.
"""

from __future__ import annotations

import hashlib
import mimetypes
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from aiohttp import web

from ..clock import Clock, SystemClock
from ..errors import NostrTrainingError
from ..nips.blossom import check_authorization, decode_authorization, is_sha256

_EXT = {"video/mp4": "mp4", "video/webm": "webm", "application/octet-stream": "bin"}


@dataclass
class BlossomServer:
    root: Path
    clock: Clock = field(default_factory=SystemClock)
    require_upload_auth: bool = True
    require_get_auth: bool = False
    domain: str = "127.0.0.1"
    faults: list[str] = field(default_factory=list)
    put_count: int = 0
    bytes_received: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)
    url: str = ""
    _types: dict[str, str] = field(default_factory=dict)
    _uploaded: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    # Lifecycle --------------------------------------------------------------------------------

    async def start(self) -> BlossomServer:
        app = web.Application(client_max_size=1 << 40)
        app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        app.router.add_route("PUT", "/upload", self._upload)
        app.router.add_route("GET", "/{name}", self._get)
        app.router.add_route("HEAD", "/{name}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Helpers ----------------------------------------------------------------------------------

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256

    def holds(self, sha256: str) -> bool:
        return self.path_of(sha256).exists()

    def put_blob(self, data: bytes, mime: str = "application/octet-stream") -> str:
        """Store ``data`` directly (as if uploaded earlier); returns its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        self.path_of(digest).write_bytes(data)
        self._types[digest] = mime
        self._uploaded[digest] = self.clock.now()
        return digest

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refusals.append((status, reason))
        return web.Response(status=status, headers={"X-Reason": reason, "Access-Control-Allow-Origin": "*"})

    def _authorise(self, request: web.Request, verb: str, sha256: str | None, x_required: bool) -> str | None:
        """None when allowed, else the reason for a 401."""
        header = request.headers.get("Authorization")
        if header is None:
            return "authorization required"
        try:
            event = decode_authorization(header)
            check_authorization(
                event, verb=verb, server=self.domain, now=self.clock.now(), sha256=sha256, x_required=x_required
            )
        except NostrTrainingError as exc:
            return str(exc)
        return None

    def _descriptor(self, sha256: str) -> dict[str, object]:
        mime = self._types.get(sha256, "application/octet-stream")
        ext = _EXT.get(mime) or (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
        return {
            "url": f"{self.url}/{sha256}.{ext}",
            "sha256": sha256,
            "size": self.path_of(sha256).stat().st_size,
            "type": mime,
            "uploaded": self._uploaded.get(sha256, 0),
        }

    # BUD-01 -----------------------------------------------------------------------------------

    async def _preflight(self, request: web.Request) -> web.Response:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Headers": "Authorization, *",
                "Access-Control-Allow-Methods": "GET, HEAD, PUT, DELETE",
                "Access-Control-Max-Age": "86400",
            },
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        sha256 = request.match_info["name"].split(".", 1)[0]
        if not is_sha256(sha256):
            return self._refuse(400, "the path is not a lowercase sha256")
        if self.require_get_auth:
            why = self._authorise(request, "get", sha256, x_required=False)
            if why:
                return self._refuse(401, why)
        path = self.path_of(sha256)
        if not path.exists():
            return self._refuse(404, "blob not found")
        headers = {
            "Content-Type": self._types.get(sha256, "application/octet-stream"),
            "Access-Control-Allow-Origin": "*",
            "Accept-Ranges": "none",
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(path.stat().st_size)
            return web.Response(status=200, headers=headers)
        return web.FileResponse(path, headers=headers)

    # BUD-02 -----------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        self.put_count += 1
        claimed = request.headers.get("X-SHA-256")
        if claimed is not None and not is_sha256(claimed):
            return self._refuse(400, "X-SHA-256 is not a lowercase sha256")
        if self.require_upload_auth and claimed is not None:
            why = self._authorise(request, "upload", claimed, x_required=True)
            if why:
                return self._refuse(401, why)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "unavailable":
            return self._refuse(503, "fault: try again later")
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".upload-", delete=False) as handle:
            partial = Path(handle.name)
            try:
                received = 0
                async for chunk in request.content.iter_chunked(1 << 16):
                    digest.update(chunk)
                    handle.write(chunk)
                    received += len(chunk)
                    self.bytes_received += len(chunk)
                    if fault == "drop" and received >= 1 << 16:
                        request.transport.close()
                        raise ConnectionResetError("fault: connection dropped mid-body")
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        sha256 = digest.hexdigest()
        if claimed is not None and claimed != sha256:
            partial.unlink(missing_ok=True)
            return self._refuse(409, "X-SHA-256 does not match the body")
        if self.require_upload_auth and claimed is None:
            why = self._authorise(request, "upload", sha256, x_required=True)
            if why:
                partial.unlink(missing_ok=True)
                return self._refuse(401, why)
        existed = self.holds(sha256)
        if existed:
            partial.unlink()
        else:
            partial.replace(self.path_of(sha256))
            self._types[sha256] = request.headers.get("Content-Type", "application/octet-stream").split(";")[0]
            self._uploaded[sha256] = self.clock.now()
        if fault == "lost-answer":
            return self._refuse(500, "fault: stored, answer lost")
        return web.json_response(
            self._descriptor(sha256), status=200 if existed else 201, headers={"Access-Control-Allow-Origin": "*"}
        )
