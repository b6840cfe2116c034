"""Session recordings: publish one (Blossom + NIP-94 1063 + the lesson's and meeting's ``r`` tag),
and complete a lesson by watching it.

Publishing is the host's: the file goes to a Blossom server (resume-safe, streamed; encrypted
first when the lesson requires E2EE, since then the recording is the host's own and the blob
server must not see clear media either), or an existing Blossom URL is taken as it is. The 1063
and the new lesson and meeting revisions go through the outbox, once (the action log holds
``recording|<lesson>|<x>``). For an encrypted recording the file key goes to every participant
the host admitted, as an 8320 rumor gift-wrapped to each (``send_private``, once per person);
the host keeps the key as a private 8320 of its own, so a rerun (the plaintext's hash names the
published recording; nothing is uploaded again) sends it to whoever was admitted since.

A private lesson's recording (``Lesson.private``) is never announced in the clear: the 1063
is kept by the host as a private event and gift-wrapped (1059) as a rumor to each admitted
participant, once each (``recording-meta|<id>|<participant>``), and the lesson and meeting
revisions naming it go out as envelopes under the lesson's (or its course's) view key; the
file key goes as for any encrypted recording.

"Recording ready" is observable from the index rather than pushed: ``recording_ready`` reads
the host's newest 1063 for the lesson, which is what the reminders service watches for.

Watching is the learner's: ``record_progress`` keeps each played range as a private action-log
entry (never published), applies ``rules.completion.evaluate_recording`` (unique seconds >= 90 %
of the recording's ``duration``; seeking is not watching) and, the first time it is met, keeps
a 31931 completion rumor of the learner's own in the store and gift-wraps it to the host, who
alone may sign the public completion record.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from .. import kinds
from ..errors import BlossomError, MalformedEvent, NostrTrainingError, NotFound, RecordingRefused
from ..event import Event, EventTemplate
from ..filters import Filter
from ..kinds import CompletionBasis, CompletionRecord, Lesson, Recording, RecordingKey
from ..media.blossom import BlossomClient, hash_file
from ..media.recording import upload_recording
from ..nips.blossom import sha256_from_url
from ..nips.nip59 import make_rumor, unwrap
from ..rules.completion import RecordingCompletion, evaluate_recording
from ..rules.rooms import Admission, admission, session_hosts
from ..sfu.base import RecordingPlan, recording_plan
from ..store.base import ActionRecord, AddOutcome
from .context import ServiceContext
from .live import publish_private_session
from .media import load_lesson, session_evidence
from .messages import send_private
from .private import deliver_rumor

__all__ = [
    "COMPLETION_ACTION",
    "E2EE_RECORDING_NOTE",
    "WATCH_ACTION",
    "PublishedRecording",
    "RecordingProgress",
    "admitted_participants",
    "publish_recording",
    "received_recording_key",
    "record_progress",
    "recording_ready",
    "recording_status",
]

WATCH_ACTION = "recording_watch"
COMPLETION_ACTION = "recording_completion"
E2EE_RECORDING_NOTE = (
    "this session is end-to-end encrypted: the SFU saw only ciphertext and cannot record it, so the "
    "recording is the host's own, and it is uploaded encrypted; its key goes to each admitted participant"
)
_MIME = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PublishedRecording:
    lesson: str
    recording_id: str
    url: str
    sha256: str
    size: int
    mime: str
    encrypted: bool
    duration: int
    lesson_revision: str | None = None
    meetings: tuple[str, ...] = ()
    keys_sent_to: tuple[str, ...] = ()
    key_wraps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    already_published: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def event_ids(self) -> list[str]:
        """Every event this publication queued: the 1063, the revisions, the key wraps."""
        revisions = [self.lesson_revision] if self.lesson_revision else []
        return [self.recording_id, *revisions, *self.meetings, *self.key_wraps]


@dataclass(frozen=True)
class RecordingProgress:
    lesson: str
    learner: str
    recording_url: str
    duration_seconds: float
    watched_seconds: float
    percent: float
    threshold_percent: int
    met: bool
    completed: bool
    completed_at: int | None = None
    ranges: tuple[tuple[float, float], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hosts(lesson: Lesson) -> frozenset[str]:
    return frozenset({lesson.author, lesson.instructor})


# Ready ----------------------------------------------------------------------------------------


async def recording_ready(ctx: ServiceContext, lesson: str | Lesson) -> Recording | None:
    """The lesson's recording as the host published it (newest 1063), or None while there is none."""
    found = lesson if isinstance(lesson, Lesson) else await load_lesson(ctx, lesson)
    events = await ctx.store.query(
        [Filter(kinds=frozenset({kinds.FILE_METADATA}), authors=_hosts(found), tags={"a": frozenset({found.coordinate})})],
        now=ctx.clock.now(), include_private=found.private,
    )
    for event in events:
        try:
            return kinds.parse_recording(event)
        except MalformedEvent:
            continue
    return None


# Publish --------------------------------------------------------------------------------------


async def admitted_participants(ctx: ServiceContext, lesson: Lesson) -> list[str]:
    """Learners the host admitted (``rules.rooms.admission``), newest decision standing."""
    ev = await session_evidence(ctx, lesson)
    known = {d.participant for d in ev.decisions} | {r.author for r in ev.join_requests}
    return sorted(p for p in known - _hosts(lesson) if admission(ev, p).admission is Admission.ADMITTED)


async def _blossom_server(ctx: ServiceContext, me: str, server: str | None) -> str:
    if server:
        return server
    lists = await ctx.store.query([Filter(kinds=frozenset({kinds.BLOSSOM_SERVERS}), authors=frozenset({me}))])
    for event in lists:
        for tag in event.tags:
            if len(tag) > 1 and tag[0] == "server" and tag[1].startswith(("https://", "http://")):
                return tag[1]
    raise RecordingRefused("no Blossom server: pass --server URL (or publish your 10063 Blossom server list)")


async def _head_url(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.head(url, allow_redirects=True) as response:
            if response.status != 200 or response.content_length is None:
                raise BlossomError(f"HEAD {url[:120]}: HTTP {response.status}, no size")
            mime = response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip().lower()
            return response.content_length, mime
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BlossomError(f"HEAD {url[:120]}: {type(exc).__name__}: {exc}") from None


async def _newest_own(ctx: ServiceContext, kind: int, me: str, d: str, *, private: bool = False) -> Event | None:
    events = await ctx.store.query(
        [Filter(kinds=frozenset({kind}), authors=frozenset({me}), tags={"d": frozenset({d})})], now=ctx.clock.now(),
        include_private=private,
    )
    return events[0] if events else None


async def publish_recording(
    ctx: ServiceContext,
    lesson: str,
    source: str,
    *,
    server: str | None = None,
    mime: str | None = None,
    duration: int | None = None,
    caption: str = "",
    progress: Progress | None = None,
) -> PublishedRecording:
    """Publish the recording of ``lesson`` from a file path or an existing Blossom URL.

    Refused when the lesson does not allow recording, when the user is not its host, and for an
    E2EE lesson given a URL (its blob would be clear media the participants never agreed to).
    """
    found = await load_lesson(ctx, lesson)
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    if me not in _hosts(found):
        raise RecordingRefused(f"only the lesson's host publishes its recording (you are {me[:16]})")
    plan = recording_plan(allow_recording=found.allow_recording, e2ee_required=found.e2ee_required)
    if plan is RecordingPlan.NONE:
        raise RecordingRefused("this session does not allow recording (recording_allowed is false on the lesson)")
    encrypt = plan is RecordingPlan.HOST_LOCAL
    notes = [E2EE_RECORDING_NOTE] if encrypt else []
    length = duration if duration is not None else found.duration_seconds
    if length <= 0:
        raise MalformedEvent(f"a recording lasts at least a second, not {length}", field="duration")
    if mime is not None and not _MIME.fullmatch(mime):
        raise MalformedEvent(f"--mime must be a lowercase MIME type, not {mime!r}", field="mime")
    is_url = source.startswith(("https://", "http://"))
    if is_url:
        if encrypt:
            raise RecordingRefused(
                "this session is end-to-end encrypted: publish the host's own recording file (it is encrypted "
                "before upload), not a URL"
            )
        identity = sha256_from_url(source)
        if identity is None:
            raise RecordingRefused(f"{source[:120]} is not a Blossom URL (its path must be the file's sha256)")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise NotFound(f"no recording file at {path}")
        identity, _ = await asyncio.to_thread(hash_file, path)
    once = f"recording|{found.coordinate}|{identity}"
    done = await ctx.store.get_action(once)
    published = await ctx.store.get(done.event_id) if done is not None and done.event_id else None
    if published is not None:
        # Published before (the plaintext's hash names an encrypted one): finish what may not
        # have been done, the key deliveries, and upload nothing.
        previous = kinds.parse_recording(published)
        if found.private:
            await _deliver_private_recording(ctx, found, published)
        sent, wraps = await _deliver_recording_key(ctx, found, previous) if previous.encrypted else ([], [])
        return PublishedRecording(
            lesson=found.coordinate, recording_id=published.id, url=previous.url, sha256=previous.sha256,
            size=previous.size, mime=previous.mime, encrypted=previous.encrypted, duration=previous.duration or length,
            keys_sent_to=tuple(sent), key_wraps=tuple(wraps), notes=tuple(notes), already_published=True,
        )
    if is_url:
        size, served = await _head_url(source)
        recording = Recording(
            author=me, url=source, mime=mime or served, sha256=identity, size=size, lesson=found.coordinate,
            created_at=ctx.clock.now(), caption=caption, duration=length,
        )
    else:
        kind = mime or (mimetypes.guess_type(path.name)[0] or "application/octet-stream").lower()
        async with BlossomClient(await _blossom_server(ctx, me, server), signer, clock=ctx.clock) as client:
            uploaded = await upload_recording(client, path, mime=kind, encrypt=encrypt, progress=progress)
        recording = Recording(
            author=me, url=uploaded.descriptor.url,
            mime="application/octet-stream" if uploaded.encrypted else kind,
            sha256=uploaded.descriptor.sha256, size=uploaded.descriptor.size, lesson=found.coordinate,
            created_at=ctx.clock.now(), caption=caption, duration=length,
            original_sha256=uploaded.plaintext_sha256 if uploaded.encrypted else None,
            encryption_algorithm=uploaded.algorithm, file_type=kind if uploaded.encrypted else None,
        )
        if uploaded.key is not None and uploaded.algorithm is not None:
            # The host keeps the file key as a private rumor of its own (never published), so
            # a rerun, or a participant admitted later, still gets it.
            kept = kinds.build_recording_key(
                found.coordinate, recording.sha256, uploaded.key, alg=uploaded.algorithm, created_at=ctx.clock.now()
            )
            await ctx.store.add_private(make_rumor(kept, me), now=ctx.clock.now())
    now = ctx.clock.now()
    if found.private:
        event = await _publish_private_recording(ctx, found, recording, once)
    else:
        event = await signer.sign_event(kinds.build_recording(recording, created_at=now))
        submission = await ctx.outbox.submit(
            event, action=ActionRecord(once, "recording_published", now, subject=found.coordinate, pubkey=me,
                                       event_id=event.id)
        )
        if submission.outcome is AddOutcome.ALREADY_DONE:
            raise RecordingRefused("this recording is being published by another process; run the command again")
    lesson_revision = None
    lesson_event = await _newest_own(ctx, kinds.LESSON, me, found.d, private=found.private) if me == found.author else None
    if lesson_event is not None:
        lesson_revision = await _revise(ctx, found, kinds.with_recording_tag(
            lesson_event, recording.url, created_at=max(now, lesson_event.created_at + 1)))
    else:
        notes.append("the lesson is not yours to revise (or not in the index): its recording tag was not set")
    meetings = []
    for meeting in await ctx.store.query(
        [Filter(kinds=frozenset({kinds.MEETING}), authors=frozenset({me}), tags={"a": frozenset({found.coordinate})})],
        now=now, include_private=found.private,
    ):
        meetings.append(await _revise(ctx, found, kinds.with_recording_tag(
            meeting, recording.url, created_at=max(now, meeting.created_at + 1))))
    sent, wraps = [], []
    if recording.encrypted:
        sent, wraps = await _deliver_recording_key(ctx, found, kinds.parse_recording(event))
        if not await admitted_participants(ctx, found):
            notes.append("no participant was admitted: the recording key went to nobody (rerun once they are)")
    return PublishedRecording(
        lesson=found.coordinate, recording_id=event.id, url=recording.url, sha256=recording.sha256, size=recording.size,
        mime=recording.mime, encrypted=recording.encrypted, duration=length, lesson_revision=lesson_revision,
        meetings=tuple(meetings), keys_sent_to=tuple(sent), key_wraps=tuple(wraps), notes=tuple(notes),
    )


async def _revise(ctx: ServiceContext, lesson: Lesson, template: EventTemplate) -> str:
    """A lesson or meeting revision naming the recording: signed and published for a public
    lesson; for a private one an envelope the invitees open (``publish_private_session``)."""
    if lesson.private:
        return (await publish_private_session(ctx, lesson, [template]))[0]
    revised = await ctx.require_signer().sign_event(template)
    await ctx.outbox.submit(revised)
    return revised.id


async def _publish_private_recording(ctx: ServiceContext, lesson: Lesson, recording: Recording, once: str) -> Event:
    """A private lesson's 1063: never published; the host keeps it as a private event (so
    ``recording_ready`` finds it and a rerun knows it) and sends it to every admitted participant
    as a 1059 rumor (``_deliver_private_recording``). Refused when another process got there first."""
    now = ctx.clock.now()
    me = await ctx.require_signer().get_public_key()
    rumor = make_rumor(kinds.build_recording(recording, created_at=now), me)
    if not await ctx.store.record_action(ActionRecord(once, "recording_published", now, subject=lesson.coordinate,
                                                      pubkey=me, event_id=rumor.id)):
        raise RecordingRefused("this recording is being published by another process; run the command again")
    await ctx.store.add_private(rumor, now=now)
    await _deliver_private_recording(ctx, lesson, rumor)
    return rumor


async def _deliver_private_recording(ctx: ServiceContext, lesson: Lesson, rumor: Event) -> list[str]:
    """The kept 1063 rumor to each admitted participant not sent it yet (once each): a rerun
    reaches whoever was admitted since. Returns the wrap ids sent now."""
    _, deliveries = await deliver_rumor(ctx, rumor.template(), await admitted_participants(ctx, lesson),
                                        once=f"recording-meta|{rumor.id}", keep=False)
    return [d.wrap_id for d in deliveries if d.sent and d.wrap_id]


async def _deliver_recording_key(ctx: ServiceContext, lesson: Lesson, recording: Recording) -> tuple[list[str], list[str]]:
    """Send the kept file key to every admitted participant not sent it yet: (who, wrap ids)."""
    me = await ctx.require_signer().get_public_key()
    kept = await ctx.store.query(
        [Filter(kinds=frozenset({kinds.RECORDING_KEY}), authors=frozenset({me}), tags={"x": frozenset({recording.sha256})})],
        include_private=True,
    )
    if not kept:
        raise RecordingRefused(
            f"the key of the encrypted recording {recording.sha256[:16]} is not in this data dir: "
            "publish the recording from where it was encrypted"
        )
    key = kinds.parse_recording_key(kept[0])
    now = ctx.clock.now()
    sent: list[str] = []
    wraps: list[str] = []
    for participant in await admitted_participants(ctx, lesson):
        rumor = kinds.build_recording_key(
            lesson.coordinate, recording.sha256, key.key, alg=key.alg, created_at=now, recording=recording.event_id
        )
        delivery = await send_private(
            ctx, rumor, participant,
            action=ActionRecord(
                f"recording-key|{recording.sha256}|{participant}", "recording_key_sent", now,
                subject=lesson.coordinate, pubkey=participant,
            ),
        )
        if delivery.sent:
            sent.append(participant)
            if delivery.wrap_id:
                wraps.append(delivery.wrap_id)
    return sent, wraps


async def received_recording_key(ctx: ServiceContext, lesson: str | Lesson) -> RecordingKey | None:
    """The key of the lesson's encrypted recording, from an 8320 the host gift-wrapped to this user."""
    found = lesson if isinstance(lesson, Lesson) else await load_lesson(ctx, lesson)
    recording = await recording_ready(ctx, found)
    if recording is None or not recording.encrypted:
        return None
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    wraps = await ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})])
    for wrap in wraps:
        try:
            opened = await unwrap(wrap, signer)
        except NostrTrainingError:  # a wrap we cannot open (not for us, damaged) holds no key for us
            continue
        if opened.rumor.kind != kinds.RECORDING_KEY or opened.rumor.pubkey != recording.author:
            continue
        try:
            key = kinds.parse_recording_key(opened.rumor)
        except MalformedEvent:
            continue
        if key.lesson == found.coordinate and key.sha256 == recording.sha256:
            return key
    return None


# Watching -------------------------------------------------------------------------------------


def _number(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise MalformedEvent(f"{name} must be a non-negative number of seconds, not {value!r}", field=name)
    return float(value)


async def _ranges(ctx: ServiceContext, lesson: str, learner: str, sha256: str) -> list[tuple[float, float]]:
    out = []
    for record in await ctx.store.actions(action=WATCH_ACTION, subject=lesson, pubkey=learner):
        try:
            data = json.loads(record.detail or "")
            if data.get("x") == sha256:
                out.append((float(data["from"]), float(data["to"])))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out)


async def _progress(ctx: ServiceContext, found: Lesson, me: str) -> tuple[RecordingProgress, Recording]:
    recording = await recording_ready(ctx, found)
    if recording is None:
        raise NotFound(f"lesson {found.coordinate} has no published recording yet")
    duration = float(recording.duration or found.duration_seconds)
    ranges = await _ranges(ctx, found.coordinate, me, recording.sha256)
    done = await ctx.store.get_action(f"recording-complete|{found.coordinate}|{me}")
    previous = None
    if done is not None and done.detail:
        try:
            previous = RecordingCompletion(**json.loads(done.detail))
        except (TypeError, ValueError):
            previous = None
    result = evaluate_recording(ranges, duration, previous=previous)
    return RecordingProgress(
        lesson=found.coordinate, learner=me, recording_url=recording.url, duration_seconds=duration,
        watched_seconds=result.watched_seconds, percent=round(100 * result.watched_seconds / duration, 1),
        threshold_percent=result.threshold_percent, met=result.met, completed=done is not None,
        completed_at=done.done_at if done is not None else None, ranges=tuple(ranges),
    ), recording


async def recording_status(ctx: ServiceContext, lesson: str) -> RecordingProgress:
    """How much of the lesson's recording this user has watched, and whether it completed the lesson."""
    found = await load_lesson(ctx, lesson)
    me = await ctx.require_signer().get_public_key()
    progress, _ = await _progress(ctx, found, me)
    return progress


async def record_progress(ctx: ServiceContext, lesson: str, start: float, end: float) -> RecordingProgress:
    """Keep one played range ``start..end`` (seconds into the recording) and complete the lesson
    the first time the unique seconds watched reach the rule's threshold."""
    start, end = _number(start, "from"), _number(end, "to")
    if end <= start:
        raise MalformedEvent(f"a played range ends after it starts, not {start:g}..{end:g}", field="to")
    found = await load_lesson(ctx, lesson)
    me = await ctx.require_signer().get_public_key()
    recording = await recording_ready(ctx, found)
    if recording is None:
        raise NotFound(f"lesson {found.coordinate} has no published recording yet")
    if recording.encryption_algorithm and me not in session_hosts(found) and await received_recording_key(ctx, found) is None:
        raise RecordingRefused(
            f"the recording of {found.coordinate} is end-to-end encrypted and no key for it reached you:"
            " only participants the host admitted can watch it"
        )
    now = ctx.clock.now()
    await ctx.store.record_action(
        ActionRecord(
            f"recording-watch|{found.coordinate}|{me}|{recording.sha256}|{start:g}|{end:g}", WATCH_ACTION, now,
            subject=found.coordinate, pubkey=me,
            detail=json.dumps({"x": recording.sha256, "from": start, "to": end}, separators=(",", ":")),
        )
    )
    progress, recording = await _progress(ctx, found, me)
    if progress.met and not progress.completed:
        await _complete(ctx, found, me, recording, progress)
        progress, _ = await _progress(ctx, found, me)
    return progress


async def _complete(ctx: ServiceContext, found: Lesson, me: str, recording: Recording, progress: RecordingProgress) -> None:
    now = ctx.clock.now()
    template = kinds.build_completion_record(
        CompletionRecord(
            author=me, subject=found.coordinate, learner=me, completed_at=now, basis=CompletionBasis.RECORDING,
            created_at=now, evidence=(recording.event_id,) if recording.event_id else (),
        ),
        created_at=now,
    )
    rumor = make_rumor(template, me)
    await ctx.store.add_private(rumor, now=now)
    result = evaluate_recording(progress.ranges, progress.duration_seconds)
    detail = json.dumps(asdict(result), separators=(",", ":"))
    action = ActionRecord(
        f"recording-complete|{found.coordinate}|{me}", COMPLETION_ACTION, now, subject=found.coordinate,
        pubkey=found.instructor, detail=detail,
    )
    if me == found.instructor:
        await ctx.store.record_action(replace(action, event_id=rumor.id))
        return
    await send_private(ctx, template, found.instructor, action=action)  # the log then names the wrap

