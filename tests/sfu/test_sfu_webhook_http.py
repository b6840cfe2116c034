"""The webhook endpoint over real HTTP on 127.0.0.1: verified events pass, refused ones do not."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from test_sfu_webhooks import ALICE, API_KEY, ROOM, SECRET, T0, sign, webhook

from nostr_training.sfu.base import SfuEventType
from nostr_training.sfu.config import SecretText, SfuConfig
from nostr_training.sfu.livekit import LiveKitAdapter, WebhookLedger
from nostr_training.sfu.webhook_http import MAX_WEBHOOK_BODY, webhook_handler


@pytest.fixture
async def endpoint():
    adapter = LiveKitAdapter(SfuConfig("livekit", "wss://sfu.example.org", API_KEY, SecretText(SECRET)))
    ledger = WebhookLedger(ROOM)
    seen = []

    async def on_event(event):
        seen.append(event)
        ledger.record(event)

    app = web.Application()
    app.router.add_post("/sfu/webhook", webhook_handler(adapter, on_event))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/sfu/webhook"
    try:
        yield url, seen, ledger
    finally:
        await runner.cleanup()


async def _post(url, body, token):
    headers = {"Content-Type": "application/webhook+json"}
    if token is not None:
        headers["Authorization"] = token
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_a_signed_webhook_reaches_the_ledger_once(endpoint):
    url, seen, ledger = endpoint
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE))
    assert await _post(url, body, token) == 200
    assert await _post(url, body, token) == 200
    assert [e.type for e in seen] == [SfuEventType.JOINED, SfuEventType.JOINED]
    assert len(ledger) == 1 and len(ledger.evidence()) == 1


async def test_forged_and_unsigned_webhooks_are_refused(endpoint):
    url, seen, _ = endpoint
    body, token = sign(webhook("participant_joined", "EV_1", T0, identity=ALICE), secret="forger-" + "q" * 40)
    assert await _post(url, body, token) == 401
    assert await _post(url, body, None) == 401
    assert seen == []


async def test_an_oversized_body_is_refused_unread(endpoint):
    url, seen, _ = endpoint
    assert await _post(url, b"x" * (MAX_WEBHOOK_BODY + 1), "token") == 413
    assert seen == []
