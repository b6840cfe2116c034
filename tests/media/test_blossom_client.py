"""The Blossom client against the in-process BUD-01/02/11 server on 127.0.0.1: upload, download
by hash, authorisation refusals, and resume-safe retries."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import aiohttp
import pytest
from blossom_server import BlossomServer

from nostr_training.clock import ManualClock
from nostr_training.errors import BlobMismatch, BlossomError
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.media.blossom import BlossomClient, hash_file
from nostr_training.media.encrypt import ALGORITHM, decrypt_file, encrypt_file
from nostr_training.media.recording import upload_recording
from nostr_training.nips.blossom import authorization_template, encode_authorization
from nostr_training.signer import LocalSigner

NOW = 1_800_000_000


@pytest.fixture
async def server(tmp_path):
    root = tmp_path / "blobs"
    root.mkdir()
    async with BlossomServer(root, clock=ManualClock(NOW)) as running:
        yield running


@pytest.fixture
async def client(server, keys):
    async with BlossomClient(server.url, LocalSigner(keys), clock=server.clock, retry_delay=0, chunk_size=1 << 16) as c:
        yield c


@pytest.fixture
def recording(tmp_path) -> Path:
    path = tmp_path / "lesson.webm"
    path.write_bytes(os.urandom(700_000))
    return path


async def test_upload_stores_the_exact_bytes_and_returns_the_descriptor(server, client, recording):
    seen: list[tuple[int, int]] = []
    descriptor = await client.upload_file(recording, mime="video/webm", progress=lambda done, total: seen.append((done, total)))
    sha256, size = hash_file(recording)
    assert (descriptor.sha256, descriptor.size, descriptor.type) == (sha256, size, "video/webm")
    assert descriptor.url == f"{server.url}/{sha256}.webm"
    assert descriptor.uploaded == NOW
    assert server.path_of(sha256).read_bytes() == recording.read_bytes()
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (size, size) and len(seen) > 1


async def test_a_blob_the_server_holds_is_not_sent_again(server, client, recording):
    await client.upload_file(recording)
    received = server.bytes_received
    descriptor = await client.upload_file(recording)
    assert server.put_count == 1 and server.bytes_received == received
    assert descriptor.size == recording.stat().st_size


async def test_download_by_hash(server, client, tmp_path, recording):
    sha256 = server.put_blob(recording.read_bytes(), "video/webm")
    target = await client.download(sha256, tmp_path / "copy.webm")
    assert target.read_bytes() == recording.read_bytes()


async def test_download_refuses_bytes_that_do_not_hash_right(server, client, tmp_path):
    sha256 = server.put_blob(b"the real recording")
    server.path_of(sha256).write_bytes(b"something else")
    with pytest.raises(BlobMismatch):
        await client.download(sha256, tmp_path / "copy.bin")
    assert not list(tmp_path.glob("copy.bin*"))


async def test_download_of_a_missing_blob(client, tmp_path):
    with pytest.raises(BlossomError) as caught:
        await client.download("00" * 32, tmp_path / "copy.bin")
    assert caught.value.status == 404 and caught.value.reason == "blob not found"


async def test_a_server_that_wants_auth_for_get_gets_a_scoped_token(server, client, tmp_path):
    server.require_get_auth = True
    sha256 = server.put_blob(b"members only")
    assert (await client.head(sha256)).size == len(b"members only")
    assert (await client.download(sha256, tmp_path / "m.bin")).read_bytes() == b"members only"
    assert [status for status, _ in server.refusals].count(401) == 2


async def test_resume_after_a_dropped_connection(server, client, recording):
    server.faults = ["drop"]
    descriptor = await client.upload_file(recording)
    assert server.put_count == 2
    assert server.path_of(descriptor.sha256).read_bytes() == recording.read_bytes()
    assert not list(server.root.glob(".upload-*"))


async def test_a_stored_upload_whose_answer_was_lost_is_not_sent_twice(server, client, recording):
    server.faults = ["lost-answer"]
    received_before = server.bytes_received
    descriptor = await client.upload_file(recording)
    assert server.put_count == 1
    assert server.bytes_received - received_before == recording.stat().st_size
    assert descriptor.sha256 == hash_file(recording)[0]


async def test_a_busy_server_is_asked_again(server, client, recording):
    server.faults = ["unavailable", "unavailable"]
    descriptor = await client.upload_file(recording)
    assert server.put_count == 3 and server.holds(descriptor.sha256)


async def test_retries_wait_on_the_injected_clock(server, keys, recording):
    clock = server.clock
    asleep = asyncio.Event()
    real_sleep = clock.sleep

    async def sleep(seconds):
        asleep.set()
        await real_sleep(seconds)

    clock.sleep = sleep
    server.faults = ["unavailable"]
    async with BlossomClient(server.url, LocalSigner(keys), clock=clock, retry_delay=30) as c:
        upload = asyncio.ensure_future(c.upload_file(recording))
        await asyncio.wait_for(asleep.wait(), 30)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not upload.done() and server.put_count == 1
        await clock.advance(30)
        descriptor = await upload
    assert server.put_count == 2 and server.holds(descriptor.sha256)


async def test_retries_end_with_an_error(server, keys, recording):
    server.faults = ["drop"] * 3
    async with BlossomClient(server.url, LocalSigner(keys), clock=server.clock, retry_delay=0, attempts=3) as c:
        with pytest.raises(BlossomError, match="after 3 attempts"):
            await c.upload_file(recording)
    assert not server.holds(hash_file(recording)[0])


async def test_a_refusal_is_not_retried(server, client, recording):
    with pytest.raises(BlossomError) as caught:
        await client.upload_file(recording, sha256="ab" * 32)
    assert caught.value.status == 409
    assert server.put_count == 1


async def test_an_encrypted_recording_round_trips_through_the_server(client, tmp_path, recording):
    sealed = tmp_path / "lesson.webm.enc"
    encrypted = encrypt_file(recording, sealed)
    descriptor = await client.upload_file(sealed, sha256=encrypted.ciphertext_sha256)
    assert descriptor.sha256 == encrypted.ciphertext_sha256 != encrypted.plaintext_sha256
    fetched = await client.download(descriptor.sha256, tmp_path / "fetched.enc")
    assert decrypt_file(fetched, tmp_path / "plain.webm", encrypted.key) == encrypted.plaintext_sha256
    assert (tmp_path / "plain.webm").read_bytes() == recording.read_bytes()


# The server's BUD-11 checks, driven with raw requests -------------------------------------------

BODY = b"raw upload body"
BODY_SHA = __import__("hashlib").sha256(BODY).hexdigest()


def _header(keys: Keys, *, verb="upload", created_at=NOW - 5, expiration=NOW + 60, sha256=(BODY_SHA,), servers=("127.0.0.1",), standard=False):
    event = sign_event(
        authorization_template(verb, created_at=created_at, expiration=expiration, sha256=sha256, servers=servers),
        keys.secret,
    )
    if standard:
        return "Nostr " + base64.b64encode(event.to_json().encode()).decode()
    return encode_authorization(event)


async def _put(server, headers, body=BODY):
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{server.url}/upload", data=body, headers=headers) as response,
    ):
        return response.status, response.headers.get("X-Reason", "")


@pytest.mark.parametrize("standard", [False, True], ids=["base64url", "standard-base64"])
async def test_server_accepts_both_base64_alphabets(server, keys, standard):
    status, _ = await _put(server, {"Authorization": _header(keys, standard=standard), "X-SHA-256": BODY_SHA})
    assert status == 201
    assert server.path_of(BODY_SHA).read_bytes() == BODY


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"expiration": NOW}, "expired"),
        ({"created_at": NOW + 30, "expiration": NOW + 60}, "future"),
        ({"verb": "get"}, "allows get"),
        ({"servers": ("cdn.example.com",)}, "other servers"),
        ({"sha256": ("cd" * 32,)}, "other blobs"),
        ({"sha256": ()}, "missing required tag 'x'"),
    ],
)
async def test_server_refuses_tokens_outside_their_scope(server, keys, changes, reason):
    status, why = await _put(server, {"Authorization": _header(keys, **changes), "X-SHA-256": BODY_SHA})
    assert status == 401 and reason in why
    assert not server.holds(BODY_SHA)


async def test_server_refuses_an_upload_without_authorization(server):
    status, why = await _put(server, {"X-SHA-256": BODY_SHA})
    assert (status, why) == (401, "authorization required")


async def test_server_checks_the_token_against_the_body_when_no_hash_header_is_sent(server, keys):
    status, _ = await _put(server, {"Authorization": _header(keys, sha256=("cd" * 32,))})
    assert status == 401 and not server.holds(BODY_SHA)
    status, _ = await _put(server, {"Authorization": _header(keys)})
    assert status == 201


async def test_server_refuses_a_body_that_is_not_the_announced_hash(server, keys):
    other = b"not the announced body"
    status, _ = await _put(server, {"Authorization": _header(keys), "X-SHA-256": BODY_SHA}, body=other)
    assert status == 409
    assert not server.holds(BODY_SHA) and not list(server.root.iterdir())


async def test_server_answers_200_for_a_blob_it_already_holds(server, keys):
    headers = {"Authorization": _header(keys), "X-SHA-256": BODY_SHA}
    assert (await _put(server, headers))[0] == 201
    assert (await _put(server, headers))[0] == 200


async def test_server_get_and_head_follow_bud01(server):
    sha256 = server.put_blob(b"%PDF-1.4", "application/pdf")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/{sha256}.pdf") as response:
            assert response.status == 200 and await response.read() == b"%PDF-1.4"
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        async with session.head(f"{server.url}/{sha256}") as response:
            assert response.status == 200 and response.headers["Content-Length"] == "8"
        async with session.get(f"{server.url}/not-a-hash") as response:
            assert response.status == 400 and response.headers["X-Reason"]
        async with session.head(f"{server.url}/{'00' * 32}") as response:
            assert response.status == 404
        async with session.options(f"{server.url}/upload") as response:
            assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, PUT, DELETE"
            assert response.headers["Access-Control-Allow-Headers"].startswith("Authorization")


async def test_an_empty_file_uploads_and_downloads(server, client, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    descriptor = await client.upload_file(empty)
    assert (descriptor.size, descriptor.sha256) == (0, hash_file(empty)[0])
    assert (await client.download(descriptor.sha256, tmp_path / "back.bin")).read_bytes() == b""


async def test_head_describes_a_held_blob(server, client):
    sha256 = server.put_blob(b"x" * 10, "video/mp4")
    held = await client.head(sha256)
    assert (held.size, held.type, held.url) == (10, "video/mp4", f"{server.url}/{sha256}.mp4")
    assert await client.head("00" * 32) is None


async def test_a_clear_recording_upload(server, client, recording):
    uploaded = await upload_recording(client, recording, mime="video/webm", encrypt=False)
    assert not uploaded.encrypted and uploaded.key is None
    assert uploaded.descriptor.sha256 == uploaded.plaintext_sha256 == hash_file(recording)[0]
    assert uploaded.descriptor.type == "video/webm"


async def test_an_e2ee_recording_is_encrypted_before_it_leaves(server, client, recording, tmp_path):
    uploaded = await upload_recording(client, recording, mime="video/webm", encrypt=True)
    assert uploaded.encrypted and len(uploaded.key) == 32 and uploaded.algorithm == ALGORITHM
    assert uploaded.descriptor.type == "application/octet-stream"
    assert not server.holds(uploaded.plaintext_sha256)
    stored = server.path_of(uploaded.descriptor.sha256).read_bytes()
    assert recording.read_bytes()[:4096] not in stored
    assert sorted(p.name for p in recording.parent.iterdir()) == ["blobs", recording.name]
    fetched = await client.download(uploaded.descriptor.sha256, tmp_path / "fetched.enc")
    assert decrypt_file(fetched, tmp_path / "plain.webm", uploaded.key) == uploaded.plaintext_sha256
    assert uploaded.key.hex() not in repr(uploaded)
