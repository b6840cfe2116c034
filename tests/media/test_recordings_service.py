"""Recordings end to end: ``recording publish`` uploads to the in-process Blossom server and
publishes a valid 1063 and the lesson's recording tag through a real relay on loopback; an E2EE
session's recording is encrypted and its key reaches admitted participants only; a learner who
watches half then seeks to the end does not complete, one who watches 90 % does."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os

import pytest
from blossom_server import BlossomServer
from media_fixtures import config_for, context, decision, inbox_list, lesson_of, signed_lesson
from test_cli_services import invoke

from nostr_training import kinds
from nostr_training.clock import SystemClock
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.media.blossom import BlossomClient
from nostr_training.media.encrypt import ALGORITHM, decrypt_file
from nostr_training.nips.nip59 import unwrap
from nostr_training.services.context import offline_context
from nostr_training.services.publish import _deliver_now
from nostr_training.services.recordings import (
    COMPLETION_ACTION,
    E2EE_RECORDING_NOTE,
    publish_recording,
    received_recording_key,
    record_progress,
    recording_ready,
    recording_status,
)
from nostr_training.signer import LocalSigner

from relay_servers import rust_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.relay


@pytest.fixture
def wall():
    return SystemClock()


@pytest.fixture
async def blossom(tmp_path):
    root = tmp_path / "blobs"
    root.mkdir()
    async with BlossomServer(root) as server:
        yield server


def _media(path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def _fetch(url: str, *filters: Filter):
    async with RelayPool() as pool:
        return await pool.fetch(list(filters), [url], timeout=10)


async def test_recording_publish_uploads_and_publishes_the_1063_and_the_lessons_tag(home, rust_relay, blossom, tmp_path, wall):
    host = Keys.generate()
    save_key_file(home / "key.ncryptsec", host, "correct horse", log_n=4)
    config = load_config()
    write_config(dataclasses.replace(config, relays=(rust_relay.url,)))
    lesson = lesson_of(host, wall.now() - 7200, allow_recording=True)
    meeting = kinds.Meeting(
        author=host.public_key, d="sitting-1", room=lesson.room, title="Ownership", starts=lesson.start,
        status=kinds.MeetingStatus.ENDED, lesson=lesson.coordinate, ends=lesson.end,
    )
    async with offline_context(load_config(), None, connect=False) as ctx:
        await ctx.store.add(signed_lesson(host, lesson, wall.now() - 8000))
        await ctx.store.add(sign_event(kinds.build_meeting(meeting, created_at=wall.now() - 100), host.secret))
    video = tmp_path / "session.webm"
    data = _media(video, 3 * (1 << 20) + 123)

    result = await asyncio.to_thread(
        invoke, "recording", "publish", lesson.coordinate, str(video), "--server", blossom.url, "--json"
    )
    assert result.code == 0, result.output
    published = json.loads(result.stdout)
    digest = hashlib.sha256(data).hexdigest()
    assert blossom.holds(digest) and published["sha256"] == digest and not published["encrypted"]
    assert "uploaded" in result.stderr  # plain progress lines when stderr is not a terminal

    found = await _fetch(rust_relay.url, Filter(ids=frozenset({published["recording_id"]})))
    recording = kinds.parse_recording(found[0])
    assert (recording.sha256, recording.size, recording.mime) == (digest, len(data), "video/webm")
    assert recording.lesson == lesson.coordinate and recording.url == published["url"] and recording.url.endswith(digest + ".webm")
    assert recording.duration == lesson.duration_seconds and not recording.encrypted
    revisions = await _fetch(
        rust_relay.url, Filter(kinds=frozenset({kinds.LESSON}), authors=frozenset({host.public_key}), tags={"d": frozenset({lesson.d})})
    )
    newest = kinds.parse_lesson(revisions[0])
    assert newest.recording_url == recording.url and newest.event_id == published["lesson_revision"]
    assert (newest.title, newest.start, newest.end) == (lesson.title, lesson.start, lesson.end)
    sittings = await _fetch(rust_relay.url, Filter(ids=frozenset(published["meetings"])))
    assert len(sittings) == 1 and ["r", recording.url, "recording"] in [list(t) for t in sittings[0].tags]
    assert kinds.parse_meeting(sittings[0]).status is kinds.MeetingStatus.ENDED

    # Run again: nothing is uploaded twice, nothing is published twice.
    puts = blossom.put_count
    again = await asyncio.to_thread(
        invoke, "recording", "publish", lesson.coordinate, str(video), "--server", blossom.url, "--json"
    )
    assert again.code == 0, again.output
    assert json.loads(again.stdout)["already_published"] and blossom.put_count == puts


async def test_an_e2ee_recording_is_encrypted_and_its_key_reaches_admitted_participants_only(rust_relay, blossom, tmp_path, wall):
    host, admitted_learner, denied_learner = Keys.generate(), Keys.generate(), Keys.generate()
    lesson = lesson_of(host, wall.now() - 7200, allow_recording=True, e2ee_required=True)
    video = tmp_path / "session.webm"
    data = _media(video, (1 << 20) + 77)
    async with context(config_for(tmp_path / "host", relays=(rust_relay.url,)), host, wall, connect=True) as ctx:
        await ctx.store.add(signed_lesson(host, lesson, wall.now() - 8000))
        for learner in (admitted_learner, denied_learner):
            await ctx.store.add(inbox_list(learner, rust_relay.url, wall.now() - 7000))
            await ctx.store.add(decision(host, lesson.room, learner.public_key, "admit", wall.now() - 6000))
        await ctx.store.add(decision(host, lesson.coordinate, denied_learner.public_key, "deny", wall.now() - 5000))
        result = await publish_recording(ctx, lesson.coordinate, str(video), server=blossom.url)
        await _deliver_now(ctx, result.event_ids, 10)
        # Someone admitted later gets the key from a rerun, which uploads and publishes nothing again.
        late = Keys.generate()
        await ctx.store.add(decision(host, lesson.coordinate, late.public_key, "admit", wall.now() - 1))
        puts = blossom.put_count
        rerun = await publish_recording(ctx, lesson.coordinate, str(video), server=blossom.url)
        assert rerun.already_published and rerun.recording_id == result.recording_id and blossom.put_count == puts
        assert rerun.keys_sent_to == (late.public_key,)
    assert result.encrypted and result.keys_sent_to == (admitted_learner.public_key,)
    assert E2EE_RECORDING_NOTE in result.notes
    stored = blossom.path_of(result.sha256).read_bytes()
    assert result.sha256 != hashlib.sha256(data).hexdigest() and data[:4096] not in stored

    recording = kinds.parse_recording((await _fetch(rust_relay.url, Filter(ids=frozenset({result.recording_id}))))[0])
    assert recording.encryption_algorithm == ALGORITHM and recording.file_type == "video/webm"
    assert recording.mime == "application/octet-stream" and recording.original_sha256 == hashlib.sha256(data).hexdigest()
    assert not any(tag[0] in ("decryption-key", "key") for tag in (await _fetch(rust_relay.url, Filter(ids=frozenset({result.recording_id}))))[0].tags)

    def wraps_to(keys: Keys) -> Filter:
        return Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({keys.public_key})})

    assert await _fetch(rust_relay.url, wraps_to(denied_learner)) == []
    wraps = await _fetch(rust_relay.url, wraps_to(admitted_learner))
    assert len(wraps) == 1
    opened = await unwrap(wraps[0], LocalSigner(admitted_learner))
    assert opened.rumor.kind == kinds.RECORDING_KEY and opened.seal.pubkey == host.public_key

    async with context(config_for(tmp_path / "learner", sfu=False), admitted_learner, wall) as learner_ctx:
        lessons = await _fetch(rust_relay.url, Filter(kinds=frozenset({kinds.LESSON}), authors=frozenset({host.public_key})))
        for event in [*lessons, *await _fetch(rust_relay.url, Filter(ids=frozenset({result.recording_id}))), *wraps]:
            await learner_ctx.store.add(event)
        key = await received_recording_key(learner_ctx, lesson.coordinate)
    assert key is not None and key.sha256 == result.sha256 and key.recording == result.recording_id
    async with BlossomClient(blossom.url, LocalSigner(admitted_learner)) as client:
        sealed = await client.download(result.sha256, tmp_path / "sealed.bin")
    assert decrypt_file(sealed, tmp_path / "clear.webm", key.key) == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "clear.webm").read_bytes() == data


async def _watching_learner(tmp_path, name: str, host: Keys, lesson: kinds.Lesson, recording_event, wall):
    learner = Keys.generate()
    cm = context(config_for(tmp_path / name, sfu=False), learner, wall)
    ctx = await cm.__aenter__()
    await ctx.store.add(signed_lesson(host, lesson, wall.now() - 9000))
    await ctx.store.add(recording_event)
    return learner, cm, ctx


def _recording_event(host: Keys, lesson: kinds.Lesson, created_at: int, duration: int):
    recording = kinds.Recording(
        author=host.public_key, url="https://blossom.example/" + "ab" * 32 + ".webm", mime="video/webm", sha256="ab" * 32,
        size=1000, lesson=lesson.coordinate, created_at=created_at, duration=duration,
    )
    return sign_event(kinds.build_recording(recording, created_at=created_at), host.secret)


async def test_watching_half_then_seeking_to_the_end_does_not_complete_and_ninety_percent_does(tmp_path, wall):
    host = Keys.generate()
    lesson = lesson_of(host, wall.now() - 7200, allow_recording=True)
    event = _recording_event(host, lesson, wall.now() - 3000, 1000)

    skimmer, cm, ctx = await _watching_learner(tmp_path, "skimmer", host, lesson, event, wall)
    try:
        assert (await recording_ready(ctx, lesson.coordinate)).event_id == event.id
        assert not (await record_progress(ctx, lesson.coordinate, 0, 500)).met
        again = await record_progress(ctx, lesson.coordinate, 0, 500)  # watching the same half twice adds nothing
        assert again.watched_seconds == 500
        # Seek to the end: the jump itself is no range; only the last 20 s played count.
        progress = await record_progress(ctx, lesson.coordinate, 980, 1000)
        assert (progress.percent, progress.met, progress.completed) == (52.0, False, False)
        assert await ctx.store.actions(action=COMPLETION_ACTION) == []
    finally:
        await cm.__aexit__(None, None, None)

    watcher, cm, ctx = await _watching_learner(tmp_path, "watcher", host, lesson, event, wall)
    try:
        await record_progress(ctx, lesson.coordinate, 0, 300)
        await record_progress(ctx, lesson.coordinate, 250, 600)
        progress = await record_progress(ctx, lesson.coordinate, 600, 900)
        assert (progress.percent, progress.met, progress.completed) == (90.0, True, True)
        rumors = await ctx.store.query([Filter(kinds=frozenset({kinds.COMPLETION_RECORD}))], include_private=True)
        completion = kinds.parse_completion_record(rumors[0])
        assert (completion.author, completion.learner, completion.subject) == (watcher.public_key, watcher.public_key, lesson.coordinate)
        assert completion.basis is kinds.CompletionBasis.RECORDING and completion.evidence == (event.id,)
        sent = await ctx.store.actions(action=COMPLETION_ACTION)
        wraps = {e.event_id for e in await ctx.store.outbox_entries() if e.kind == kinds.GIFT_WRAP}
        assert [a.pubkey for a in sent] == [host.public_key] and sent[0].event_id in wraps
        # Completion is kept: later viewing neither repeats nor lowers it.
        await record_progress(ctx, lesson.coordinate, 0, 10)
        status = await recording_status(ctx, lesson.coordinate)
        assert status.completed and status.percent == 90.0
        assert len(await ctx.store.actions(action=COMPLETION_ACTION)) == 1
    finally:
        await cm.__aexit__(None, None, None)


async def test_recording_progress_and_status_on_the_command_line(home, tmp_path, wall):
    host, learner = Keys.generate(), Keys.generate()
    save_key_file(home / "key.ncryptsec", learner, "correct horse", log_n=4)
    lesson = lesson_of(host, wall.now() - 7200, allow_recording=True)
    event = _recording_event(host, lesson, wall.now() - 3000, 600)
    async with offline_context(load_config(), None, connect=False) as ctx:
        await ctx.store.add(signed_lesson(host, lesson, wall.now() - 9000))
        await ctx.store.add(event)
    half = await asyncio.to_thread(invoke, "recording", "progress", lesson.coordinate, "0", "300")
    assert half.code == 1 and "(50.0 %)" in half.stdout and "not yet" in half.stdout
    done = await asyncio.to_thread(invoke, "recording", "progress", lesson.coordinate, "300", "540", "--json")
    assert done.code == 0 and json.loads(done.stdout)["completed"]
    status = await asyncio.to_thread(invoke, "recording", "status", lesson.coordinate)
    assert status.code == 0 and "(90.0 %): completed" in status.stdout
    refused = await asyncio.to_thread(invoke, "recording", "publish", lesson.coordinate, str(tmp_path / "none.webm"))
    assert refused.code == 1 and "only the lesson's host" in refused.stderr
