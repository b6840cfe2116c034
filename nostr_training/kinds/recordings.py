"""Session recordings as NIP-94 file metadata (kind 1063) with an ``a`` back to the lesson.

The blob itself lives on a Blossom server addressed by its sha256 (``x``); the lesson's 31923
also gets an ``r`` tag with the URL once the recording exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..event import Event, EventTemplate
from . import FILE_METADATA as FILE_METADATA_KIND
from . import LESSON as LESSON_KIND
from . import _wire
from ._wire import Reader

__all__ = ["Recording", "build_recording", "parse_recording"]

_MIME = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")


@dataclass(frozen=True, slots=True)
class Recording:
    author: str
    url: str
    mime: str
    sha256: str
    size: int
    lesson: str
    created_at: int
    original_sha256: str | None = None
    caption: str = ""
    event_id: str | None = None


def _check_url(url: str) -> str:
    _wire.check_text("url", url)
    if not url.startswith(("https://", "http://")):
        raise _wire.malformed("url", f"must be an http(s) URL, got {url[:80]!r}")
    return url


def build_recording(recording: Recording, *, created_at: int) -> EventTemplate:
    """A 1063 describing the uploaded file; ``recording.author`` and ``event_id`` are not written."""
    if not _MIME.fullmatch(recording.mime):
        raise _wire.malformed("m", f"must be a lowercase MIME type, got {recording.mime!r}")
    tags: list[tuple[str, ...]] = [
        ("url", _check_url(recording.url)),
        ("m", recording.mime),
        ("x", _wire.check_sha256("x", recording.sha256)),
        ("size", _wire.check_int("size", recording.size)),
        ("a", _wire.check_coordinate("a", recording.lesson, (LESSON_KIND,))),
    ]
    if recording.original_sha256 is not None:
        tags.append(("ox", _wire.check_sha256("ox", recording.original_sha256)))
    tags.append(_wire.alt("Recording of a live training session"))
    return EventTemplate(FILE_METADATA_KIND, tuple(tags), recording.caption, created_at)


def parse_recording(event: Event) -> Recording:
    r = Reader(event, FILE_METADATA_KIND)
    url = r.required("url")
    if not url.startswith(("https://", "http://")):
        raise r.fail("url", f"must be an http(s) URL, got {url[:80]!r}")
    mime = r.required("m")
    if not _MIME.fullmatch(mime):
        raise r.fail("m", f"must be a lowercase MIME type, got {mime[:80]!r}")
    sha = r.required("x")
    if not _wire.is_hex(sha, 64):
        raise r.fail("x", f"must be a 64-character lowercase sha256 hex, got {sha[:70]!r}")
    original = r.optional("ox")
    if original is not None and not _wire.is_hex(original, 64):
        raise r.fail("ox", f"must be a 64-character lowercase sha256 hex, got {original[:70]!r}")
    return Recording(
        author=event.pubkey,
        url=url,
        mime=mime,
        sha256=sha,
        size=r.required_int("size"),
        lesson=r.one_coordinate((LESSON_KIND,)),
        created_at=event.created_at,
        original_sha256=original,
        caption=event.content,
        event_id=event.id,
    )
