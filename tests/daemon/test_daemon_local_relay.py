"""The local relay endpoint, driven by a plain websockets client: NIP-01, NIP-11, NIP-42,
gift-wrap privacy, exact Host/Origin checks, the token-guarded control API, malformed input."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from polling import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nostr_training import kinds
from nostr_training.daemon.http import HttpServer, Route, host_allowed, origin_allowed
from nostr_training.daemon.local_relay import LocalRelay
from nostr_training.daemon.outbox import Outbox
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.nips.nip42 import auth_template
from nostr_training.store.base import OutboxState
from nostr_training.store.memory import MemoryStore

from daemon_fakes import FakePool, signed

UPSTREAM = "wss://upstream.example"


class Endpoint:
    """The local relay behind its HTTP server, as the daemon runs them (tests read both)."""

    def __init__(self, local: LocalRelay, server: HttpServer):
        self.local = local
        self.server = server
        self.store = local.store
        self.counters = local.counters
        self.broadcast = local.broadcast

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
async def relay(clock):
    store = await MemoryStore.open()
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[UPSTREAM])

    async def status(_):
        return {"outbox_depth": await store.outbox_depth()}

    local = LocalRelay(store, submit_many=outbox.submit_many, clock=clock, max_message_bytes=64 * 1024)
    server = HttpServer(local, host="127.0.0.1", port=0, token="sekrit")
    server.add_route(Route("GET", "/status", status))
    await server.start()
    yield Endpoint(local, server)
    await server.stop()
    await store.close()


async def recv(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def open_client(relay, **kw):
    ws = await connect(relay.url, **kw)
    challenge = await recv(ws)
    assert challenge[0] == "AUTH" and isinstance(challenge[1], str) and challenge[1]
    return ws, challenge[1]


async def until(ws, kind, subid=None):
    """Messages up to and including the first of ``kind`` (for ``subid``)."""
    got = []
    while True:
        msg = await recv(ws)
        got.append(msg)
        if msg[0] == kind and (subid is None or msg[1] == subid):
            return got


def http_get(url, headers):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), json.loads(exc.read())


async def test_nip11_document(relay):
    status, ctype, doc = await asyncio.to_thread(
        http_get, "http" + relay.url[2:], {"Accept": "application/nostr+json"}
    )
    assert status == 200 and ctype == "application/nostr+json"
    assert 42 in doc["supported_nips"] and 1 in doc["supported_nips"]
    assert doc["limitation"]["max_message_length"] == 64 * 1024
    assert "pubkey" not in doc


async def test_status_requires_the_token(relay):
    base = "http" + relay.url[2:] + "/api/status"
    assert (await asyncio.to_thread(http_get, base, {}))[0] == 401
    assert (await asyncio.to_thread(http_get, base, {"Authorization": "Bearer wrong"}))[0] == 401
    status, _, body = await asyncio.to_thread(http_get, base, {"Authorization": "Bearer sekrit"})
    assert status == 200 and body == {"outbox_depth": 0}


async def test_website_origin_is_refused(relay):
    for origin in ("https://evil.example", "https://127.evil.example", "http://127.0.0.1.evil.example",
                   "http://localhost:3000", "null"):
        with pytest.raises(InvalidStatus) as info:
            await connect(relay.url, origin=origin)
        assert info.value.response.status_code == 403, origin
    status, _, _ = await asyncio.to_thread(
        http_get, "http" + relay.url[2:] + "/api/status", {"Authorization": "Bearer sekrit", "Origin": "https://evil.example"}
    )
    assert status == 403
    ws, _ = await open_client(relay, origin=f"http://localhost:{relay.port}")
    await ws.close()


async def test_foreign_host_is_refused(relay):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1."""
    for host in ("127.evil.example", "127.0.0.1.nip.io", f"evil.example:{relay.port}", "127.0.0.1:1"):
        status, _, body = await asyncio.to_thread(
            http_get, "http" + relay.url[2:] + "/api/status", {"Authorization": "Bearer sekrit", "Host": host}
        )
        assert status == 403 and body == {"error": "forbidden host"}, host


def test_host_and_origin_are_parsed_exactly():
    port = 4869
    assert host_allowed("127.0.0.1:4869", port) and host_allowed("localhost:4869", port)
    assert host_allowed("[::1]:4869", port) and host_allowed(None, port)
    for bad in ("127.0.0.1", "127.0.0.2:4869", "127.evil.example:4869", "127.0.0.1.nip.io:4869",
                "localhost.evil.example:4869", "user@127.0.0.1:4869", "127.0.0.1:4869/x"):
        assert not host_allowed(bad, port), bad
    assert origin_allowed(None, port) and origin_allowed("http://127.0.0.1:4869", port)
    assert origin_allowed("http://localhost:4869", port)
    for bad in ("https://127.0.0.1:4869", "http://127.0.0.1.evil.example:4869", "http://localhost:80",
                "null", "http://127.evil.example:4869", "file://"):
        assert not origin_allowed(bad, port), bad


async def test_req_serves_stored_events_then_live_ones(relay, alice, bob, clock):
    course = f"{kinds.COURSE}:{alice.public_key}:rust"
    lesson = signed(alice, kinds.LESSON, tags=[("d", "l1"), ("a", course)], content="one", created_at=clock.now())
    await relay.store.add(lesson)
    reader, _ = await open_client(relay)
    await reader.send(json.dumps(["REQ", "lessons", {"kinds": [kinds.LESSON], "#a": [course]}]))
    got = await until(reader, "EOSE", "lessons")
    assert [m[2]["id"] for m in got if m[0] == "EVENT"] == [lesson.id]

    writer, _ = await open_client(relay)
    second = signed(alice, kinds.LESSON, tags=[("d", "l2"), ("a", course)], content="two", created_at=clock.now())
    await writer.send(json.dumps(["EVENT", second.to_dict()]))
    assert await recv(writer) == ["OK", second.id, True, ""]
    live = await recv(reader)
    assert live[:2] == ["EVENT", "lessons"] and live[2]["id"] == second.id
    # It went to the outbox, committed for the upstream relay (alice's own relay list is looked
    # up after the OK, by the sender: the placeholder row says so until then).
    entries = {e.relay or e.target.kind.value: e.state for e in await relay.store.outbox_entries(second.id)}
    assert entries == {UPSTREAM: OutboxState.PENDING, "lookup": OutboxState.PENDING}

    await reader.send(json.dumps(["CLOSE", "lessons"]))
    third = signed(alice, kinds.LESSON, tags=[("d", "l3"), ("a", course)], created_at=clock.now())
    await writer.send(json.dumps(["EVENT", third.to_dict()]))
    assert (await recv(writer))[2] is True
    await reader.send(json.dumps(["REQ", "probe", {"ids": [third.id]}]))
    after_close = await until(reader, "EOSE", "probe")
    assert [m[1] for m in after_close if m[0] == "EVENT"] == ["probe"]  # nothing more on "lessons"
    await reader.close()
    await writer.close()


async def test_events_that_fail_verification_are_refused(relay, alice, clock):
    ws, _ = await open_client(relay)
    good = signed(alice, 1, content="hi", created_at=clock.now())
    forged = dict(good.to_dict(), content="changed")
    await ws.send(json.dumps(["EVENT", forged]))
    ok = await recv(ws)
    assert ok[:3] == ["OK", good.id, False] and ok[3].startswith("invalid:")
    bad_sig = dict(good.to_dict(), sig="00" * 64)
    await ws.send(json.dumps(["EVENT", bad_sig]))
    assert (await recv(ws))[3].startswith("invalid:")
    await ws.send(json.dumps(["EVENT", good.to_dict()]))
    assert await recv(ws) == ["OK", good.id, True, ""]
    await ws.send(json.dumps(["EVENT", good.to_dict()]))
    assert (await recv(ws))[2:] == [True, "duplicate: already have this event"]
    assert await relay.store.get(good.id) == good
    await ws.close()


async def test_a_signed_dm_written_to_the_endpoint_is_refused_not_queued(relay, alice, clock):
    ws, _ = await open_client(relay)
    dm = signed(alice, kinds.DIRECT_MESSAGE, content="meet at 10", created_at=clock.now())
    await ws.send(json.dumps(["EVENT", dm.to_dict()]))
    ok = await recv(ws)
    assert ok[:3] == ["OK", dm.id, False] and ok[3].startswith("invalid:") and "gift wrap" in ok[3]
    assert await relay.store.get(dm.id) is None
    await ws.close()


async def test_malformed_input_gets_a_notice_and_the_connection_lives(relay, alice, clock):
    ws, _ = await open_client(relay)
    for frame in ["not json", '{"a": 1}', "[]", '["FOO", 1]', '["REQ", 5, {}]', '["CLOSE"]', "[1, 2]"]:
        await ws.send(frame)
        msg = await recv(ws)
        assert msg[0] == "NOTICE" and msg[1].startswith("invalid:")
    await ws.send(json.dumps(["REQ", "bad-filter", {"kinds": ["x"]}]))
    closed = await recv(ws)
    assert closed[:2] == ["CLOSED", "bad-filter"] and closed[2].startswith("invalid:")
    assert relay.counters.malformed == 7
    await ws.send(json.dumps(["REQ", "fine", {"kinds": [1]}]))
    assert (await until(ws, "EOSE", "fine"))[-1] == ["EOSE", "fine"]
    await ws.close()


async def test_huge_message_closes_only_that_connection(relay):
    ws, _ = await open_client(relay)
    await ws.send(json.dumps(["REQ", "x", {"search": "a" * 100_000}]))
    with pytest.raises(ConnectionClosed) as info:
        await recv(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    again, _ = await open_client(relay)
    await again.send(json.dumps(["REQ", "ok", {"limit": 1}]))
    assert (await until(again, "EOSE", "ok"))[-1] == ["EOSE", "ok"]
    await again.close()


async def test_gift_wraps_only_to_the_authenticated_recipient(relay, alice, bob, clock):
    carol = Keys.generate()
    to_bob = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    to_carol = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", carol.public_key)], content="y", created_at=clock.now())
    for wrap in (to_bob, to_carol):
        await relay.store.add(wrap)
    ws, challenge = await open_client(relay)

    await ws.send(json.dumps(["REQ", "w", {"kinds": [kinds.GIFT_WRAP], "#p": [bob.public_key]}]))
    closed = await recv(ws)
    assert closed[:2] == ["CLOSED", "w"] and closed[2].startswith("auth-required:")
    await ws.send(json.dumps(["REQ", "all", {}]))
    assert [m for m in await until(ws, "EOSE", "all") if m[0] == "EVENT"] == []

    wrong = sign_event(auth_template(relay.url, "not-the-challenge", created_at=clock.now()), bob.secret)
    await ws.send(json.dumps(["AUTH", wrong.to_dict()]))
    refused = await recv(ws)
    assert refused[:3] == ["OK", wrong.id, False] and refused[3].startswith("invalid:")

    auth = sign_event(auth_template(relay.url, challenge, created_at=clock.now()), bob.secret)
    await ws.send(json.dumps(["AUTH", auth.to_dict()]))
    assert await recv(ws) == ["OK", auth.id, True, ""]
    await ws.send(json.dumps(["REQ", "w", {"kinds": [kinds.GIFT_WRAP]}]))
    got = [m[2]["id"] for m in await until(ws, "EOSE", "w") if m[0] == "EVENT"]
    assert got == [to_bob.id]

    # Live: a new wrap to carol is not pushed to bob's subscription; one to bob is.
    writer, _ = await open_client(relay)
    later_carol = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", carol.public_key)], content="z", created_at=clock.now())
    later_bob = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="w", created_at=clock.now())
    await relay.store.add(later_carol)
    relay.broadcast(later_carol)
    await relay.store.add(later_bob)
    relay.broadcast(later_bob)
    live = await recv(ws)
    assert live[2]["id"] == later_bob.id
    await ws.close()
    await writer.close()


async def test_auth_accepts_any_loopback_name_but_not_another_host(relay, alice, clock):
    ws, challenge = await open_client(relay)
    elsewhere = sign_event(auth_template("wss://relay.example.com", challenge, created_at=clock.now()), alice.secret)
    await ws.send(json.dumps(["AUTH", elsewhere.to_dict()]))
    assert (await recv(ws))[2] is False
    by_name = sign_event(auth_template(f"ws://localhost:{relay.port}", challenge, created_at=clock.now()), alice.secret)
    await ws.send(json.dumps(["AUTH", by_name.to_dict()]))
    assert await recv(ws) == ["OK", by_name.id, True, ""]
    stale = sign_event(auth_template(relay.url, challenge, created_at=clock.now() - 3600), alice.secret)
    await ws.send(json.dumps(["AUTH", stale.to_dict()]))
    assert (await recv(ws))[2] is False
    await ws.close()


async def test_auth_events_are_not_accepted_as_events(relay, alice, clock):
    ws, challenge = await open_client(relay)
    auth = sign_event(auth_template(relay.url, challenge, created_at=clock.now()), alice.secret)
    await ws.send(json.dumps(["EVENT", auth.to_dict()]))
    assert (await recv(ws))[2] is False
    assert await relay.store.outbox_entries(auth.id) == []
    await ws.close()


async def test_count(relay, alice, clock):
    for i in range(3):
        await relay.store.add(signed(alice, 1, content=str(i), created_at=clock.now() - i))
    ws, _ = await open_client(relay)
    await ws.send(json.dumps(["COUNT", "c", {"kinds": [1]}]))
    assert await recv(ws) == ["COUNT", "c", {"count": 3}]
    await ws.close()


async def test_auth_for_any_other_relay_is_refused(relay, alice, clock):
    """NIP-42 binds an AUTH to one relay: names that merely start like loopback, other ports
    (the daemon's own upstream relay on this machine) and other paths are someone else."""
    ws, challenge = await open_client(relay)
    for url in ("wss://127.evil.example", "ws://127.0.0.1.evil.example", f"ws://127.0.0.1:{relay.port + 1}",
                "ws://localhost:1/other", f"ws://127.0.0.1:{relay.port}/other", "ws://127.0.0.2:" + str(relay.port)):
        auth = sign_event(auth_template(url, challenge, created_at=clock.now()), alice.secret)
        await ws.send(json.dumps(["AUTH", auth.to_dict()]))
        answer = await recv(ws)
        assert answer[:3] == ["OK", auth.id, False], url
    for url in (relay.url, f"ws://localhost:{relay.port}/", f"ws://[::1]:{relay.port}"):
        auth = sign_event(auth_template(url, challenge, created_at=clock.now()), alice.secret)
        await ws.send(json.dumps(["AUTH", auth.to_dict()]))
        assert (await recv(ws))[:3] == ["OK", auth.id, True], url
    await ws.close()


async def test_count_obeys_the_same_visibility_as_req(relay, alice, bob, clock):
    to_bob = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="x", created_at=clock.now())
    await relay.store.add(to_bob)
    ws, challenge = await open_client(relay)
    for probe in ({"ids": [to_bob.id]}, {"#p": [bob.public_key]}, {}):
        await ws.send(json.dumps(["COUNT", "c", probe]))
        assert await recv(ws) == ["COUNT", "c", {"count": 0}], probe
        await ws.send(json.dumps(["REQ", "r", probe]))
        assert [m for m in await until(ws, "EOSE", "r") if m[0] == "EVENT"] == [], probe
    await ws.send(json.dumps(["COUNT", "c", {"kinds": [kinds.GIFT_WRAP], "#p": [bob.public_key]}]))
    assert (await recv(ws))[2].startswith("auth-required:")
    # Authenticated as alice, bob's wraps still count for nothing; as bob, they count.
    auth = sign_event(auth_template(relay.url, challenge, created_at=clock.now()), alice.secret)
    await ws.send(json.dumps(["AUTH", auth.to_dict()]))
    await recv(ws)
    await ws.send(json.dumps(["COUNT", "c", {"kinds": [kinds.GIFT_WRAP], "#p": [bob.public_key]}]))
    assert await recv(ws) == ["COUNT", "c", {"count": 0}]
    auth = sign_event(auth_template(relay.url, challenge, created_at=clock.now()), bob.secret)
    await ws.send(json.dumps(["AUTH", auth.to_dict()]))
    await recv(ws)
    await ws.send(json.dumps(["COUNT", "c", {"ids": [to_bob.id]}]))
    assert await recv(ws) == ["COUNT", "c", {"count": 1}]
    await ws.close()


@pytest.mark.parametrize("frame", [
    '["REQ","\\ud800",{}]',
    '["REQ","s",{"since":9223372036854775808}]',
    '["REQ","s",{"until":99999999999999999999999}]',
    '["COUNT","s",{"since":9223372036854775808}]',
    '["REQ","s",{"#t":["\\ud800"]}]',
    '["EVENT",{"id":"\\ud800"}]',
    '["CLOSE","\\udfff"]',
    '["AUTH",{"id":"\\ud800","kind":22242}]',
    '["REQ","s",{"limit":-1}]',
    '["REQ","s",{"kinds":[1e400]}]',
    '["EVENT",[]]',
    '["REQ","s",[]]',
    '["COUNT"]',
    '["AUTH"]',
])
async def test_hostile_frames_get_an_answer_and_the_connection_lives(relay, frame, caplog):
    ws, _ = await open_client(relay)
    await ws.send(frame)
    answer = await recv(ws)
    assert answer[0] in ("NOTICE", "CLOSED", "OK", "EOSE"), answer
    await ws.send(json.dumps(["REQ", "after", {"limit": 1}]))
    assert (await until(ws, "EOSE", "after"))[-1] == ["EOSE", "after"]
    await ws.close()
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"


@pytest.mark.parametrize("limit", [None, 1, 5, 7, 40])
async def test_paged_replay_serves_exactly_what_one_query_would(relay, limit):
    """Replays are read a page at a time; with pages of 3 and many events in the same second,
    a REQ still gets exactly the events (and order) one unpaged query gives."""
    import random as _random

    rng = _random.Random(limit or 0)
    author = Keys.generate()
    events = [signed(author, 1, content=str(i), created_at=1_800_000_000 + rng.choice([0, 0, 1, 2, 2, 2, 5]))
              for i in range(30)]
    for ev in events:
        await relay.store.add(ev)
    relay.local.page_size = 3
    wanted = {"authors": [author.public_key]} | ({"limit": limit} if limit is not None else {})
    from nostr_training.filters import Filter

    expected = [e.id for e in await relay.store.query([Filter.from_dict(wanted)])]
    ws, _ = await open_client(relay)
    await ws.send(json.dumps(["REQ", "p", wanted]))
    got = [m[2]["id"] for m in await until(ws, "EOSE", "p") if m[0] == "EVENT"]
    assert got == expected
    await ws.close()


async def test_events_from_many_connections_commit_together(relay, clock):
    """Group commit: EVENTs in flight from three connections share transactions, and each OK
    comes after the commit holding its event (the event is in the store when the OK arrives)."""
    sockets = [(await open_client(relay))[0] for _ in range(3)]
    authors = [Keys.generate() for _ in sockets]
    sent: dict[str, int] = {}
    for i in range(100):
        for n, (ws, author) in enumerate(zip(sockets, authors, strict=True)):
            event = signed(author, 1, content=f"{n}-{i}", created_at=clock.now())
            sent[event.id] = n
            await ws.send(json.dumps(["EVENT", event.to_dict()]))
    oks = {}
    for ws in sockets:
        while len([1 for eid in oks if sent[eid] == sockets.index(ws)]) < 100:
            message = await recv(ws)
            assert message[0] == "OK" and message[2] is True, message
            assert await relay.store.get(message[1]) is not None, "committed before its OK"
            oks[message[1]] = True
    assert set(oks) == set(sent)
    committer = relay.local.committer
    assert committer.events == 300 and committer.batches < 300
    for ws in sockets:
        await ws.close()


async def test_a_burst_of_events_is_checked_off_the_loop_with_the_same_answers(relay, alice, clock):
    """A burst goes to the intake's worker process; a forged event in it is refused with its
    id, a frame that is not a plain EVENT gets the answer it gets alone, the rest commit."""
    ws, _ = await open_client(relay)
    warm_up = [signed(alice, 1, content=f"first {i}", created_at=clock.now()) for i in range(20)]
    for event in warm_up:  # the first burst starts the worker (and is checked on the loop meanwhile)
        await ws.send(json.dumps(["EVENT", event.to_dict()]))
    assert [(await recv(ws))[2] for _ in warm_up] == [True] * 20
    await eventually(lambda: relay.local.intake.ready)
    events = [signed(alice, 1, content=f"burst {i}", created_at=clock.now()) for i in range(60)]
    forged = dict(events[20].to_dict(), content="changed")
    frames = [json.dumps(["EVENT", e.to_dict()]) for e in events]
    frames[20] = json.dumps(["EVENT", forged])
    frames[40] = json.dumps(["EVENT", events[40].to_dict(), "extra"])
    for frame in frames:
        await ws.send(frame)
    answers = {}
    while len(answers) < 60:
        message = await recv(ws)
        assert message[0] == "OK", message
        answers[message[1]] = message[2:]
    assert answers[events[20].id][0] is False and answers[events[20].id][1].startswith("invalid:")
    assert answers[""] == [False, "invalid: an event must be a JSON object"]
    valid = [e for i, e in enumerate(events) if i not in (20, 40)]
    assert all(answers[e.id] == [True, ""] for e in valid)
    assert all([await relay.store.get(e.id) for e in valid])
    assert await relay.store.get(events[20].id) is None and await relay.store.get(events[40].id) is None
    assert relay.local.intake.in_worker > 0, "the burst was checked in the worker process"
    await ws.close()


async def test_a_run_of_frames_of_every_length_reaches_the_client_intact(relay, alice, clock):
    """Frames queued together go out in one write with the three RFC 6455 length forms."""
    events = [
        signed(alice, 1, content="x" * size, created_at=clock.now() - i)
        for i, size in enumerate((10, 300, 70_000, 200_000, 5))
    ]
    await relay.store.add_many(events)
    ws, _ = await open_client(relay, max_size=None)
    await ws.send(json.dumps(["REQ", "all", {"kinds": [1]}]))
    got = await until(ws, "EOSE", "all")
    assert [m[2]["content"] for m in got[:-1]] == [e.content for e in events]
    await ws.close()


async def test_an_event_sent_just_before_the_client_leaves_is_still_stored(relay, alice, clock):
    """Fire and forget: the client closes before its OK; the event is committed all the same."""
    ws, _ = await open_client(relay)
    event = signed(alice, 1, content="fire and forget", created_at=clock.now())
    await ws.send(json.dumps(["EVENT", event.to_dict()]))
    await ws.close()
    await eventually(lambda: relay.store.get(event.id))
