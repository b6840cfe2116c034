"""Fuzz and abandon the local endpoint: a seeded stream of hostile frames over several
connections, and clients that ask for a lot and then stop reading. Every frame gets an answer
or a clean close, nothing reaches the log as a traceback, memory stays bounded, and stopping
never waits on a client."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nostr_training import kinds
from nostr_training.daemon.http import HttpServer
from nostr_training.daemon.local_relay import LocalRelay
from nostr_training.daemon.outbox import Outbox
from nostr_training.keys import Keys
from nostr_training.store.sqlite import SqliteStore

from daemon_fakes import FakePool, signed

SEED = 20261201
FRAMES = 1500


@pytest.fixture
async def endpoint(tmp_path, clock):
    store = await SqliteStore.open(tmp_path / "index.sqlite")
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=["wss://up.example"])
    local = LocalRelay(store, submit_many=outbox.submit_many, clock=clock, max_message_bytes=256 * 1024,
                       max_buffer_bytes=256 * 1024, send_timeout=0.5)
    server = HttpServer(local, host="127.0.0.1", port=0, token="t")
    await server.start()
    yield local, server, store
    await server.stop()
    await store.close()


def hostile(rng: random.Random, keys: Keys, now: int) -> str:
    """One frame: valid, subtly wrong, or garbage."""
    good = signed(keys, rng.choice([1, kinds.LESSON, kinds.RSVP, kinds.GIFT_WRAP]), tags=[("d", str(rng.random()))],
                  content="x" * rng.randint(0, 300), created_at=now - rng.randint(0, 10_000)).to_dict()
    values = [None, True, -1, 0, 2**63, 2**64, 1e308, "", "\ud800", "a" * 70, [], {}, [[]], "REQ", 3.5]
    subid = rng.choice(["s", "x" * 64, "x" * 65, "\udfff", 7, None, ""])
    bad_filter = {rng.choice(["ids", "authors", "kinds", "#e", "#p", "#t", "since", "until", "limit", "search", "#"]):
                  rng.choice(values + [[rng.choice(values)]])}
    mutated = dict(good)
    field = rng.choice(list(mutated))
    mutated[field] = rng.choice(values)
    choices = [
        json.dumps(["REQ", subid, bad_filter]),
        json.dumps(["REQ", "ok", {"kinds": [1], "limit": rng.randint(0, 50)}]),
        json.dumps(["COUNT", subid, bad_filter]),
        json.dumps(["EVENT", good]),
        json.dumps(["EVENT", mutated]),
        json.dumps(["AUTH", mutated]),
        json.dumps(["CLOSE", subid]),
        json.dumps([rng.choice(values)] + [rng.choice(values) for _ in range(rng.randint(0, 4))]),
        json.dumps(rng.choice(values)),
        "[" * rng.randint(1, 5000),
        "{" + '"a":' * rng.randint(1, 50),
        bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))).decode("latin-1"),
        '["REQ","s",{"since":' + "9" * rng.randint(19, 400) + "}]",
    ]
    return rng.choice(choices)


async def test_seeded_hostile_frames(endpoint, clock, caplog):
    local, server, _ = endpoint
    rng = random.Random(SEED)
    keys = Keys.generate()
    sockets = [await connect(server.url, max_size=None) for _ in range(4)]
    for ws in sockets:
        await ws.recv()  # challenge
    try:
        for start in range(0, FRAMES, 25):
            ws = sockets[(start // 25) % len(sockets)]
            for _ in range(25):
                await ws.send(hostile(rng, keys, clock.now()))
            sentinel = f"sentinel-{start}"
            await ws.send(json.dumps(["REQ", sentinel, {"ids": ["0" * 64]}]))
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await ws.recv())
                    assert isinstance(message, list) and message[0] in ("NOTICE", "CLOSED", "OK", "EOSE", "EVENT", "COUNT")
                    if message == ["EOSE", sentinel]:
                        break
    finally:
        for ws in sockets:
            await ws.close()
    assert local.counters.connections == 4 and local.counters.slow_clients_dropped == 0
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info][:3]


async def test_clients_that_stop_reading_are_cut_off_and_stopping_waits_for_none(endpoint, clock):
    local, server, store = endpoint
    author = Keys.generate()
    # 30 MB a REQ: more than the kernel's socket buffers hold, so the daemon's own sends stall.
    await store.add_many([signed(author, 1, content=f"{i} " + "z" * 30_000, created_at=clock.now() - i) for i in range(1000)])
    abandoned = []
    for i in range(20):
        ws = await connect(server.url, max_size=None, max_queue=1)
        await ws.send(json.dumps(["REQ", f"all-{i}", {"kinds": [1]}]))
        abandoned.append(ws)  # never read again
    async with asyncio.timeout(30):
        while local.counters.slow_clients_dropped < 20:
            await asyncio.sleep(0.05)
    assert local.sessions == set(), "no session keeps a buffer for a client that left it"
    reader = await connect(server.url, max_size=None)
    await reader.recv()
    await reader.send(json.dumps(["REQ", "one", {"kinds": [1], "limit": 1}]))
    assert json.loads(await reader.recv())[:2] == ["EVENT", "one"]
    for ws in abandoned:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
    await reader.close()


async def test_stopping_does_not_wait_on_a_stalled_client(endpoint, clock):
    local, server, store = endpoint
    author = Keys.generate()
    await store.add_many([signed(author, 1, content=f"{i} " + "z" * 30_000, created_at=clock.now() - i) for i in range(1000)])
    local.send_timeout = 60  # the client is not cut off before the stop: the stop itself must not wait
    stalled = await connect(server.url, max_size=None, max_queue=1)
    await stalled.send(json.dumps(["REQ", "all", {"kinds": [1]}]))
    await asyncio.sleep(0.3)
    async with asyncio.timeout(5):  # a hang guard, not a speed target
        await server.stop()
    assert local.sessions == set()
