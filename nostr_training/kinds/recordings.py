"""Session recordings as NIP-94 file metadata (kind 1063) with an ``a`` back to the lesson.

The blob itself lives on a Blossom server addressed by its sha256 (``x``); the lesson's 31923
also gets an ``r`` tag with the URL once the recording exists.

The recording of an end-to-end encrypted session is uploaded encrypted: its 1063 says how
(``encryption-algorithm``, ``file-type`` = the MIME type before encryption, ``ox`` = the
plaintext's sha256, as NIP-17 kind 15 names them) but never carries the key. The key travels as
a kind-8320 rumor (``build_recording_key``), gift-wrapped to each admitted participant.
``duration`` (whole seconds) is what "watched 90 %" is measured against.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from ..event import Event, EventTemplate
from . import FILE_METADATA as FILE_METADATA_KIND
from . import LESSON as LESSON_KIND
from . import MEETING as MEETING_KIND
from . import RECORDING_KEY as RECORDING_KEY_KIND
from . import _wire
from ._wire import Reader
from .calendar import RECORDING_MARK

__all__ = [
    "RECORDING_KEY_ALT",
    "Recording",
    "RecordingKey",
    "build_recording",
    "build_recording_key",
    "parse_recording",
    "parse_recording_key",
    "with_recording_tag",
]

RECORDING_KEY_ALT = "Key of an encrypted session recording (only ever inside a gift wrap)"
_ALG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

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
    encryption_algorithm: str | None = None
    """Set when the blob is encrypted; the key is never here (see ``RecordingKey``)."""
    file_type: str | None = None
    """The MIME type of the recording before encryption (``m`` is then the blob's own type)."""
    duration: int | None = None
    """Length of the recording in seconds: the denominator of "watched 90 %"."""

    @property
    def encrypted(self) -> bool:
        return self.encryption_algorithm is not None


@dataclass(frozen=True, slots=True)
class RecordingKey:
    """The file key of one encrypted recording, read from an unsigned 8320 rumor."""

    author: str
    lesson: str
    sha256: str
    """The encrypted blob's hash (the 1063's ``x``): which file this key opens."""
    key: bytes = field(repr=False)
    alg: str
    created_at: int
    recording: str | None = None
    """The 1063's event id, when the sender knew it."""
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
    if recording.encryption_algorithm is not None:
        if not _ALG.fullmatch(recording.encryption_algorithm):
            raise _wire.malformed("encryption-algorithm", f"must be a lowercase scheme name, got {recording.encryption_algorithm!r}")
        tags.append(("encryption-algorithm", recording.encryption_algorithm))
    if recording.file_type is not None:
        if not _MIME.fullmatch(recording.file_type):
            raise _wire.malformed("file-type", f"must be a lowercase MIME type, got {recording.file_type!r}")
        tags.append(("file-type", recording.file_type))
    if recording.duration is not None:
        tags.append(("duration", _wire.check_int("duration", recording.duration, minimum=1)))
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
    algorithm = r.optional("encryption-algorithm")
    if algorithm is not None and not _ALG.fullmatch(algorithm):
        raise r.fail("encryption-algorithm", f"must be a lowercase scheme name, got {algorithm[:70]!r}")
    file_type = r.optional("file-type")
    if file_type is not None and not _MIME.fullmatch(file_type):
        raise r.fail("file-type", f"must be a lowercase MIME type, got {file_type[:80]!r}")
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
        encryption_algorithm=algorithm,
        file_type=file_type,
        duration=r.optional_int("duration", minimum=1),
    )


def with_recording_tag(event: Event, url: str, *, created_at: int) -> EventTemplate:
    """A new revision of a lesson (31923) or meeting (30313) whose ``["r", url, "recording"]``
    names ``url``; every other tag is kept as it was, so nothing another client wrote is lost."""
    if event.kind not in (LESSON_KIND, MEETING_KIND):
        raise _wire.malformed("r", f"a recording tag goes on a lesson or a meeting, not kind {event.kind}")
    _check_url(url)
    kept = [tuple(tag) for tag in event.tags if not (len(tag) > 2 and tag[0] == "r" and tag[2] == RECORDING_MARK)]
    return EventTemplate(event.kind, (*kept, ("r", url, RECORDING_MARK)), event.content, created_at)


# Recording key 8320 (rumor only) --------------------------------------------------------------


def build_recording_key(
    lesson: str, sha256: str, key: bytes, *, alg: str, created_at: int, recording: str | None = None
) -> EventTemplate:
    """The 8320 rumor giving one participant the key of the encrypted blob ``sha256``."""
    _wire.check_coordinate("a", lesson, (LESSON_KIND,))
    _wire.check_sha256("x", sha256)
    if not _ALG.fullmatch(alg):
        raise _wire.malformed("content", f"alg must be a lowercase scheme name, got {alg!r}")
    if len(key) != 32:
        raise _wire.malformed("content", f"a recording key is 32 bytes, got {len(key)}")
    content = json.dumps({"alg": alg, "key": base64.b64encode(bytes(key)).decode("ascii")}, separators=(",", ":"))
    tags: list[tuple[str, ...]] = [("a", lesson), ("x", sha256)]
    if recording is not None:
        tags.append(("e", _wire.check_event_id("e", recording)))
    tags.append(_wire.alt(RECORDING_KEY_ALT))
    return EventTemplate(RECORDING_KEY_KIND, tuple(tags), content, created_at)


def parse_recording_key(event: Event) -> RecordingKey:
    """Read an unwrapped 8320 rumor; a signed one is refused since it may have been published."""
    r = Reader(event, RECORDING_KEY_KIND)
    if event.sig is not None:
        raise r.fail("sig", "a recording key must be an unsigned rumor from a gift wrap, not a signed event")
    lesson = r.one_coordinate((LESSON_KIND,))
    sha = r.required("x")
    if not _wire.is_hex(sha, 64):
        raise r.fail("x", f"must be a 64-character lowercase sha256 hex, got {sha[:70]!r}")
    recording = r.optional("e")
    if recording is not None:
        r.event_id("e", recording)
    try:
        body = json.loads(event.content)
    except ValueError:
        raise r.fail("content", "must be a JSON object {alg, key}") from None
    if not isinstance(body, dict) or not isinstance(body.get("alg"), str) or not isinstance(body.get("key"), str):
        raise r.fail("content", "must be a JSON object {alg, key} of strings")
    if not _ALG.fullmatch(body["alg"]):
        raise r.fail("content", f"alg must be a lowercase scheme name, got {body['alg'][:70]!r}")
    try:
        key = base64.b64decode(body["key"], validate=True)
    except (binascii.Error, ValueError):
        raise r.fail("content", "key is not standard base64") from None
    if len(key) != 32:
        raise r.fail("content", f"a recording key is 32 bytes, got {len(key)}")
    return RecordingKey(
        author=event.pubkey,
        lesson=lesson,
        sha256=sha,
        key=key,
        alg=body["alg"],
        created_at=event.created_at,
        recording=recording,
        event_id=event.id,
    )
