"""SFU webhooks POSTed to a running daemon's server: signed ones are kept once each in the
action log, forged and stale ones are refused, and the evidence does not depend on arrival order
(nor on a restart). No LiveKit server is involved: the requests are signed with livekit-api."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import aiohttp
import pytest
from daemon.daemon_fakes import FakePool
from media_fixtures import SECRET, SECRET_ENV, config_for, lesson_of, sign_webhook, signed_lesson, webhook

from nostr_training.clock import SystemClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.routes_media import WEBHOOK_PATH, SfuStatus
from nostr_training.keys import Keys
from nostr_training.rules.attendance import Join, Leave
from nostr_training.services.media import session_evidence, webhook_events, webhook_evidence
from nostr_training.signer import LocalSigner

ALICE = "aa" * 32
BOB = "bb" * 32


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def _daemon(home, host: Keys, *, sfu: bool = True) -> Daemon:
    running = Daemon(
        config_for(home, relays=("wss://relay.example",), sfu=sfu), signer=LocalSigner(host), pool=FakePool(),
        clock=SystemClock(), components=(SfuStatus(),),
    )
    await running.start()
    return running


async def _post(daemon: Daemon, body: str, token: str | None) -> int:
    assert daemon.server is not None
    headers = {"Content-Type": "application/webhook+json"}
    if token is not None:
        headers["Authorization"] = token
    async with aiohttp.ClientSession() as session:
        async with session.post(daemon.server.http_url + WEBHOOK_PATH, data=body, headers=headers) as response:
            return response.status


def _session(room: str, t0: int, prefix: str = "EV"):
    """One sitting's webhooks; LiveKit's event ids are unique across rooms, hence ``prefix``."""
    events = [
        webhook("room_started", "EV_room", t0, room),
        webhook("participant_joined", "EV_a1", t0 + 10, room, ALICE, "PA_a1"),
        webhook("participant_joined", "EV_b1", t0 + 20, room, BOB, "PA_b1"),
        webhook("participant_left", "EV_a2", t0 + 600, room, ALICE, "PA_a1"),
        webhook("participant_joined", "EV_a3", t0 + 700, room, ALICE, "PA_a2"),
        webhook("participant_connection_aborted", "EV_b2", t0 + 900, room, BOB, "PA_b1"),
        webhook("participant_left", "EV_a4", t0 + 3000, room, ALICE, "PA_a2"),
        webhook("room_finished", "EV_end", t0 + 3100, room),
    ]
    for event in events:
        event.id = event.id.replace("EV", prefix, 1)
    return events


async def test_signed_webhooks_become_evidence_once_and_forged_or_stale_ones_are_refused(home, keys):
    daemon = await _daemon(home, keys)
    try:
        lesson = lesson_of(keys, daemon.clock.now())
        await daemon.store.add(signed_lesson(keys, lesson, daemon.clock.now() - 10))
        t0 = lesson.start
        events = _session(lesson.room, t0)
        for event in events:
            assert await _post(daemon, *sign_webhook(event)) == 200
        # Delivered twice (LiveKit retries, or a replay of a captured request): counted once.
        body, token = sign_webhook(events[1])
        assert await _post(daemon, body, token) == 200
        forged_body, forged_token = sign_webhook(
            webhook("participant_joined", "EV_forged", t0 + 5, lesson.room, BOB), secret="forger-" + "q" * 40
        )
        assert await _post(daemon, forged_body, forged_token) == 401
        assert await _post(daemon, forged_body, None) == 401
        # A captured request replayed after its token expired is refused.
        stale = sign_webhook(webhook("participant_joined", "EV_stale", t0 + 6, lesson.room, BOB), ttl=timedelta(seconds=-120))
        assert await _post(daemon, *stale) == 401
        # The body swapped under a valid signature is refused.
        assert await _post(daemon, forged_body, token) == 401
        kept = await webhook_events(daemon.services, lesson.coordinate)
        assert [e.id for e in kept] == [e.id for e in events]
        evidence = await webhook_evidence(daemon.services, lesson.coordinate)
        assert evidence == [
            Join(ALICE, t0 + 10, connection="PA_a1", source="livekit"),
            Join(BOB, t0 + 20, connection="PA_b1", source="livekit"),
            Leave(ALICE, t0 + 600, connection="PA_a1", source="livekit"),
            Join(ALICE, t0 + 700, connection="PA_a2", source="livekit"),
            Leave(BOB, t0 + 900, connection="PA_b1", source="livekit"),
            Leave(ALICE, t0 + 3000, connection="PA_a2", source="livekit"),
        ]
        assert (await session_evidence(daemon.services, lesson.coordinate)).observed == tuple(evidence)
        status = await daemon.status()
        assert status["components"]["sfu"]["configured"] is True
        assert SECRET not in str(status)
    finally:
        await daemon.stop()
    # The evidence is durable: a restarted daemon reads the same.
    again = await _daemon(home, keys)
    try:
        assert await webhook_evidence(again.services, lesson.coordinate) == evidence
    finally:
        await again.stop()


async def test_out_of_order_and_repeated_delivery_gives_the_same_evidence(home, keys):
    daemon = await _daemon(home, keys)
    try:
        now = daemon.clock.now()
        first = lesson_of(keys, now, d="in-order")
        second = lesson_of(keys, now, d="shuffled")
        for lesson in (first, second):
            await daemon.store.add(signed_lesson(keys, lesson, now - 10))
        for event in _session(first.room, first.start):
            assert await _post(daemon, *sign_webhook(event)) == 200
        shuffled = _session(second.room, second.start, "EV2") * 2
        random.Random(7).shuffle(shuffled)
        for event in shuffled:
            assert await _post(daemon, *sign_webhook(event)) == 200
        in_order = await webhook_evidence(daemon.services, first.coordinate)
        assert len(in_order) == 6
        assert await webhook_evidence(daemon.services, second.coordinate) == in_order
    finally:
        await daemon.stop()


async def test_without_an_sfu_there_is_no_webhook_route_and_status_says_so(home, keys):
    daemon = await _daemon(home, keys, sfu=False)
    try:
        lesson = lesson_of(keys, daemon.clock.now())
        assert await _post(daemon, *sign_webhook(webhook("room_started", "EV_1", lesson.start, lesson.room))) in (404, 405)
        assert (await daemon.status())["components"]["sfu"]["configured"] is False
    finally:
        await daemon.stop()


def test_a_lesson_without_a_room_uses_its_own_coordinate_as_the_sfu_room(keys):
    from nostr_training.services.media import sfu_room_name

    lesson = dataclasses.replace(lesson_of(keys, 1_800_000_000), room=None)
    assert sfu_room_name(lesson) == lesson.coordinate


async def test_the_control_api_hands_out_tokens_and_refuses_the_unadmitted(home, keys):
    from livekit.api import TokenVerifier
    from media_fixtures import API_KEY, decision

    daemon = await _daemon(home, keys)
    learner = Keys.generate()
    try:
        lesson = lesson_of(keys, daemon.clock.now() + 300)
        await daemon.store.add(signed_lesson(keys, lesson, daemon.clock.now() - 10))
        assert daemon.server is not None
        headers = {"Authorization": f"Bearer {daemon.server.token}"}
        url = daemon.server.http_url + "/api/media/token"
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(url, json={"lesson": lesson.coordinate, "pubkey": learner.public_key}) as refused:
                assert refused.status >= 400 and "admitted" in (await refused.json())["error"]
            await daemon.store.add(decision(keys, lesson.coordinate, learner.public_key, "admit", daemon.clock.now() - 5))
            async with session.post(url, json={"lesson": lesson.coordinate, "pubkey": learner.public_key}) as answer:
                ticket = await answer.json()
        assert TokenVerifier(API_KEY, SECRET).verify(ticket["token"]).identity == learner.public_key
    finally:
        await daemon.stop()


async def test_webhook_joins_and_leaves_reach_the_hosts_attendance(home, keys):
    """The SFU's verified joins and leaves are attendance evidence for that pubkey: the live
    service's session evidence (from which the host's records are computed) carries them."""
    from nostr_training.rules.rooms import attendance_evidence
    from nostr_training.services.live import load_evidence

    daemon = await _daemon(home, keys)
    try:
        now = daemon.clock.now()
        lesson = lesson_of(keys, now, d="sfu-attendance")
        await daemon.store.add(signed_lesson(keys, lesson, now - 10))
        for event in _session(lesson.room, lesson.start):
            assert await _post(daemon, *sign_webhook(event)) == 200
        evidence = await load_evidence(daemon.services, lesson)
        observed = [(type(o).__name__, o.pubkey, o.at) for o in evidence.observed]
        assert ("Join", ALICE, lesson.start + 10) in observed and ("Leave", ALICE, lesson.start + 600) in observed
        used = [e for e in attendance_evidence(evidence) if getattr(e, "pubkey", None) == ALICE]
        assert sum(isinstance(e, Join) for e in used) == 2 and sum(isinstance(e, Leave) for e in used) >= 1
    finally:
        await daemon.stop()
