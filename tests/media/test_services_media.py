"""Join tokens through the media service: admission read from the host's 8313s in the index,
the room key under E2EE, the window from the schedule, verified by livekit-api's TokenVerifier;
and a daemon without an SFU that still answers."""

from __future__ import annotations

import json

import jwt
import pytest
from livekit.api import TokenVerifier
from media_fixtures import API_KEY, SECRET, SECRET_ENV, config_for, context, decision, lesson_of, signed_lesson

from nostr_training import kinds
from nostr_training.clock import SystemClock
from nostr_training.errors import AdmissionRequired, RoomKeyRequired
from nostr_training.keys import Keys
from nostr_training.nips.nip59 import gift_wrap
from nostr_training.services.media import (
    JOIN_EARLY_SECONDS,
    JOIN_LATE_SECONDS,
    NO_SFU_MESSAGE,
    admitted,
    e2ee_key,
    held_room_key,
    join_token,
    sfu_status,
)
from nostr_training.sfu.base import e2ee_shared_key
from nostr_training.signer import LocalSigner

ROOM_KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def wall():
    return SystemClock()


@pytest.fixture
def host() -> Keys:
    return Keys.generate()


@pytest.fixture
def learner() -> Keys:
    return Keys.generate()


async def _setup(tmp_path, host, wall, *, sfu=True, **lesson_changes):
    """The host's context with a lesson starting in five minutes (inside the join window now)."""
    lesson = lesson_of(host, wall.now() + 300, **lesson_changes)
    cm = context(config_for(tmp_path / "host", sfu=sfu), host, wall)
    ctx = await cm.__aenter__()
    await ctx.store.add(signed_lesson(host, lesson, wall.now() - 100))
    return cm, ctx, lesson


async def test_the_host_token_verifies_with_livekit_and_carries_the_schedule_window(tmp_path, host, wall):
    cm, ctx, lesson = await _setup(tmp_path, host, wall)
    try:
        ticket = await join_token(ctx, lesson.coordinate, host.public_key)
    finally:
        await cm.__aexit__(None, None, None)
    claims = TokenVerifier(API_KEY, SECRET).verify(ticket.token)
    assert claims.identity == host.public_key
    assert claims.video.room == lesson.room and claims.video.room_join
    assert claims.video.can_publish and claims.video.room_admin
    raw = jwt.decode(ticket.token, SECRET, algorithms=["HS256"])
    assert (raw["nbf"], raw["exp"]) == (lesson.start - JOIN_EARLY_SECONDS, lesson.end + JOIN_LATE_SECONDS)
    assert (ticket.role, ticket.url, ticket.e2ee) == ("host", "wss://sfu.example.org", False)


async def test_a_learner_gets_a_token_only_while_the_hosts_newest_decision_admits(tmp_path, host, learner, wall):
    cm, ctx, lesson = await _setup(tmp_path, host, wall)
    try:
        with pytest.raises(AdmissionRequired):
            await join_token(ctx, lesson.coordinate, learner.public_key)
        # A stranger's "admit" is not the host's.
        stranger = Keys.generate()
        await ctx.store.add(decision(stranger, lesson.coordinate, learner.public_key, "admit", wall.now() - 50))
        assert not await admitted(ctx, lesson, learner.public_key)
        await ctx.store.add(decision(host, lesson.room, learner.public_key, "admit", wall.now() - 40))
        ticket = await join_token(ctx, lesson.coordinate, learner.public_key)
        claims = TokenVerifier(API_KEY, SECRET).verify(ticket.token)
        assert claims.identity == learner.public_key and claims.video.room == lesson.room
        assert not claims.video.can_publish and claims.video.can_subscribe and not claims.video.room_admin
        promoted = TokenVerifier(API_KEY, SECRET).verify(
            (await join_token(ctx, lesson.coordinate, learner.public_key, promoted=True)).token
        )
        assert promoted.video.can_publish
        await ctx.store.add(decision(host, lesson.coordinate, learner.public_key, "deny", wall.now() - 30))
        with pytest.raises(AdmissionRequired):
            await join_token(ctx, lesson.coordinate, learner.public_key)
    finally:
        await cm.__aexit__(None, None, None)


async def test_e2ee_refuses_anyone_without_the_room_key(tmp_path, host, learner, wall):
    cm, ctx, lesson = await _setup(tmp_path, host, wall, e2ee_required=True)
    try:
        await ctx.store.add(decision(host, lesson.coordinate, learner.public_key, "admit", wall.now() - 40))
        with pytest.raises(RoomKeyRequired):
            await join_token(ctx, lesson.coordinate, learner.public_key)
        with pytest.raises(RoomKeyRequired):
            await join_token(ctx, lesson.coordinate, host.public_key)
        ticket = await join_token(ctx, lesson.coordinate, learner.public_key, room_key=ROOM_KEY)
        assert ticket.e2ee and TokenVerifier(API_KEY, SECRET).verify(ticket.token).identity == learner.public_key
        assert e2ee_key(ctx, ROOM_KEY, 17) == e2ee_shared_key(ROOM_KEY, 17)
        assert e2ee_key(ctx, ROOM_KEY, 17).key_index == 1
        # Without a key nobody is let in, even when not admitted: both rules are checked.
        with pytest.raises((AdmissionRequired, RoomKeyRequired)):
            await join_token(ctx, lesson.coordinate, Keys.generate().public_key)
    finally:
        await cm.__aexit__(None, None, None)


async def test_without_an_sfu_the_room_still_answers_with_no_token(tmp_path, host, learner, wall):
    cm, ctx, lesson = await _setup(tmp_path, host, wall, sfu=False)
    try:
        ticket = await join_token(ctx, lesson.coordinate, host.public_key)
        assert ticket.token is None and ticket.url is None and ticket.message == NO_SFU_MESSAGE
        with pytest.raises(AdmissionRequired):
            await join_token(ctx, lesson.coordinate, learner.public_key)
        assert sfu_status(ctx) == {"configured": False, "message": NO_SFU_MESSAGE}
    finally:
        await cm.__aexit__(None, None, None)


async def test_status_names_the_sfu_and_never_its_secret(tmp_path, host, wall):
    cm, ctx, _ = await _setup(tmp_path, host, wall)
    try:
        shown = sfu_status(ctx)
    finally:
        await cm.__aexit__(None, None, None)
    assert shown["configured"] and shown["secret_from"] == f"env:{SECRET_ENV}"
    assert SECRET not in json.dumps(shown)


async def test_a_learner_finds_the_room_key_the_host_wrapped_and_ignores_a_strangers(tmp_path, host, learner, wall):
    lesson = lesson_of(host, wall.now() + 300, e2ee_required=True)
    async with context(config_for(tmp_path / "learner"), learner, wall) as ctx:
        await ctx.store.add(signed_lesson(host, lesson, wall.now() - 100))
        assert await held_room_key(ctx, lesson) is None
        stranger = Keys.generate()
        forged = kinds.build_room_key(lesson.room, bytes(32), 9, created_at=wall.now() - 20)
        await ctx.store.add(await gift_wrap(forged, LocalSigner(stranger), learner.public_key, now=wall.now()))
        assert await held_room_key(ctx, lesson) is None
        real = kinds.build_room_key(lesson.room, ROOM_KEY, 2, created_at=wall.now() - 10)
        await ctx.store.add(await gift_wrap(real, LocalSigner(host), learner.public_key, now=wall.now()))
        held = await held_room_key(ctx, lesson)
        assert held is not None and (held.key, held.epoch, held.author) == (ROOM_KEY, 2, host.public_key)
        await ctx.store.add(decision(host, lesson.coordinate, learner.public_key, "admit", wall.now() - 5))
        ticket = await join_token(ctx, lesson, learner.public_key, room_key=held.key)
        assert ticket.token is not None


async def test_an_open_lesson_lets_in_anyone_the_host_has_not_denied(tmp_path, host, learner, wall):
    cm, ctx, lesson = await _setup(tmp_path, host, wall, requires_rsvp=False)
    try:
        ticket = await join_token(ctx, lesson.coordinate, learner.public_key)
        assert TokenVerifier(API_KEY, SECRET).verify(ticket.token).identity == learner.public_key
        await ctx.store.add(decision(host, lesson.coordinate, learner.public_key, "deny", wall.now() - 30))
        with pytest.raises(AdmissionRequired):
            await join_token(ctx, lesson.coordinate, learner.public_key)
    finally:
        await cm.__aexit__(None, None, None)
