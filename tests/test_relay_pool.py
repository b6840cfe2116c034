"""RelayPool against real relays (rust-nostr LocalRelay, PyPI nostr-relay) and a scripted fake.

The real relays run as child processes (tests/relay_servers.py). The fake relay is a tiny
websockets server in this process, for what no honest relay does: broken frames, forged
signatures, NIP-11 limits, never answering. Every await is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import pytest
from websockets.asyncio.server import serve

from nostr_training.clock import ManualClock
from nostr_training.daemon.backoff import backoff
from nostr_training.daemon.relays import PublishResult, RelayPool, RelayState
from nostr_training.errors import MalformedEvent, RelayError
from nostr_training.event import Event, EventTemplate, latest, sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.nips.nip59 import gift_wrap_with_key, unwrap_with_key
from nostr_training.signer import LocalSigner

from relay_servers import (  # noqa: F401  (pytest fixtures)
    free_port,
    nostr_relay,
    nostr_relay_auth,
    restartable_nostr_relay,
    rust_relay,
    rust_relay_auth,
    rust_relay_auth_write,
    set_nostr_relay_roles,
)

LIMIT = 20.0
"""Upper bound on any single wait; a test that reaches it has failed, not passed slowly."""


def fast_backoff():
    return backoff(initial=0.05, factor=2, maximum=0.3)


def now() -> int:
    return int(time.time())


def note(keys: Keys, content: str = "hello", *, kind: int = 1, tags=(), created_at: int | None = None) -> Event:
    return sign_event(EventTemplate(kind, tags, content, created_at or now()), keys.secret)


async def within(awaitable: Awaitable[Any], seconds: float = LIMIT) -> Any:
    return await asyncio.wait_for(awaitable, seconds)


async def wait_until(condition: Callable[[], bool], seconds: float = LIMIT) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def relay_status(pool: RelayPool, url: str):
    return next(s for s in pool.status() if s.url == url)


class Inbox:
    """Collects what a subscription delivers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []
        self.eose: list[str] = []

    async def on_event(self, relay: str, event: Event) -> None:
        self.events.append((relay, event))

    async def on_eose(self, relay: str) -> None:
        self.eose.append(relay)

    @property
    def ids(self) -> list[str]:
        return [e.id for _, e in self.events]


@pytest.fixture
async def make_pool():
    pools: list[RelayPool] = []

    def make(**kwargs: Any) -> RelayPool:
        kwargs.setdefault("backoff", fast_backoff)
        pool = RelayPool(**kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await within(pool.close())


# Real relays ----------------------------------------------------------------------------------


@pytest.mark.relay
async def test_publish_and_read_back_with_one_relay_down(make_pool, rust_relay, keys):
    down = f"ws://127.0.0.1:{free_port()}"
    pool = make_pool()
    event = note(keys)
    results = await within(pool.publish(event, [rust_relay.url, down], timeout=10))
    assert results[rust_relay.url] == PublishResult(True, results[rust_relay.url].message)
    assert not results[down].ok and results[down].prefix == "not-connected" and results[down].retryable
    found = await within(pool.fetch([Filter(authors=frozenset({keys.public_key}))], [down, rust_relay.url], 5))
    assert found == [event]
    assert relay_status(pool, down).state in (RelayState.BACKOFF, RelayState.CONNECTING)
    assert "Connect call failed" in relay_status(pool, down).last_error


@pytest.mark.relay
async def test_same_event_from_two_relays_is_delivered_once(make_pool, rust_relay, nostr_relay, keys):
    event = note(keys)
    urls = [rust_relay.url, nostr_relay.url]
    results = await within(make_pool().publish(event, urls))
    assert all(r.ok for r in results.values()), results
    pool = make_pool()
    inbox = Inbox()
    await pool.subscribe("mine", [Filter(authors=frozenset({keys.public_key}))], urls, inbox.on_event,
                         on_eose=inbox.on_eose)
    await wait_until(lambda: len(inbox.eose) == 2)
    assert inbox.ids == [event.id]
    assert [relay_status(pool, u).events_received for u in urls] == [1, 1]


@pytest.mark.relay
async def test_subscription_resumes_after_relay_restart(make_pool, restartable_nostr_relay, keys):
    relay = restartable_nostr_relay
    newest: dict[str, int] = {}
    inbox = Inbox()

    async def on_event(url: str, event: Event) -> None:
        newest[url] = max(newest.get(url, 0), event.created_at)
        await inbox.on_event(url, event)

    pool = make_pool()
    await pool.subscribe("resume", [Filter(authors=frozenset({keys.public_key}))], [relay.url], on_event,
                         since=newest.get, on_eose=inbox.on_eose)
    await wait_until(lambda: len(inbox.eose) == 1)
    before = note(keys, "before the restart")
    assert (await within(make_pool().publish(before, [relay.url])))[relay.url].ok
    await wait_until(lambda: len(inbox.events) == 1)

    relay.kill()
    await wait_until(lambda: relay_status(pool, relay.url).state is not RelayState.CONNECTED)
    relay.start()
    await wait_until(lambda: len(inbox.eose) == 2)
    after = note(keys, "after the restart")
    assert (await within(make_pool().publish(after, [relay.url])))[relay.url].ok
    await wait_until(lambda: len(inbox.events) == 2)

    assert inbox.ids == [before.id, after.id]
    # The resumed REQ asked from `before`'s timestamp, so the relay sent `before` again; the
    # pool swallowed the repeat.
    assert relay_status(pool, relay.url).events_received == 3


@pytest.mark.relay
async def test_addressable_revisions(make_pool, rust_relay, nostr_relay, keys):
    """Relays keep the newest revision; when two relays disagree the pool hands over both and
    the caller (the store) picks the winner by address."""
    t = now()
    lesson = lambda content, at: note(keys, content, kind=30023, tags=(("d", "lesson-1"),), created_at=at)  # noqa: E731
    old, new = lesson("draft", t - 10), lesson("final", t)
    pool = make_pool()
    by_address = [Filter(kinds=frozenset({30023}), authors=frozenset({keys.public_key}),
                         tags={"d": frozenset({"lesson-1"})})]

    for event in (old, new):
        assert (await within(pool.publish(event, [rust_relay.url])))[rust_relay.url].ok
    assert await within(pool.fetch(by_address, [rust_relay.url], 5)) == [new]

    assert (await within(pool.publish(old, [nostr_relay.url])))[nostr_relay.url].ok
    both = await within(pool.fetch(by_address, [rust_relay.url, nostr_relay.url], 5))
    assert both == [new, old]
    assert latest(both) == {new.address: new}


@pytest.mark.relay
async def test_relay_refusals_come_back_with_their_reason(make_pool, rust_relay, nostr_relay, keys):
    pool = make_pool()
    too_big = note(keys, "x" * 5000)
    result = (await within(pool.publish(too_big, [nostr_relay.url])))[nostr_relay.url]
    # nostr-relay answers with an empty event id; the pool attributes it to the one pending EVENT.
    assert result == PublishResult(False, "invalid: 280 characters should be enough for anybody")
    assert not result.retryable

    good = note(keys, "original")
    forged = Event(good.id, good.pubkey, good.created_at, good.kind, good.tags, "forged", good.sig)
    result = (await within(pool.publish(forged, [rust_relay.url])))[rust_relay.url]
    assert not result.ok and result.prefix == "invalid", result


@pytest.mark.relay
async def test_concurrent_refusals_with_empty_ids_each_reach_their_publish(make_pool, nostr_relay, keys):
    """nostr-relay answers every refused EVENT with an empty id, in order, throttling 2, 4 and 8 s
    before the three answers; each must come back as its own refusal, not as a timeout."""
    pool = make_pool()
    too_big = note(keys, "x" * 5000)
    too_old = note(keys, "old", created_at=now() - 2 * 365 * 86400)
    future = note(keys, "future", created_at=now() + 7200)
    events = [too_big, too_old, future]
    results = await within(asyncio.gather(*(pool.publish(e, [nostr_relay.url], timeout=40) for e in events)), 50)
    assert [r[nostr_relay.url] for r in results] == [
        PublishResult(False, "invalid: 280 characters should be enough for anybody"),
        PublishResult(False, f"invalid: {too_old.created_at} is too old"),
        PublishResult(False, f"invalid: {future.created_at} is in the future"),
    ]
    assert relay_status(pool, nostr_relay.url).unexpected_dropped == 0


@pytest.mark.relay
async def test_auth_that_nostr_relay_never_answers_is_unconfirmed_and_the_event_resent(
        make_pool, nostr_relay_auth, keys):
    """nostr-relay refuses the unauthenticated with ``restricted:`` (the AUTH it leads to is the
    proof) and sends no OK for a good AUTH."""
    url = nostr_relay_auth.url
    set_nostr_relay_roles(nostr_relay_auth, keys.public_key, "w")
    event = note(keys)
    pool = make_pool(sign=LocalSigner(keys).sign_event, auth_timeout=0.5)
    assert (await within(pool.publish(event, [url])))[url] == PublishResult(True, "")
    status = relay_status(pool, url)
    assert status.state is RelayState.CONNECTED and status.last_error == "AUTH unconfirmed: no OK within 0.5 s"
    assert await within(pool.fetch([Filter(ids=frozenset({event.id}))], [url], 5)) == [event]


@pytest.mark.relay
async def test_auth_refused_by_a_nostr_relay_notice_ends_the_publish(make_pool, nostr_relay_auth, keys):
    """nostr-relay refuses a bad AUTH (here: a relay URL it does not know itself by) with a NOTICE;
    the timeout is long, so only the NOTICE can end the wait in time."""
    url = f"ws://localhost:{nostr_relay_auth.port}"
    pool = make_pool(sign=LocalSigner(keys).sign_event, auth_timeout=LIMIT * 2)
    result = (await within(pool.publish(note(keys), [url], timeout=LIMIT)))[url]
    assert result == PublishResult(False, f"invalid: Wrong domain: {url}")
    status = relay_status(pool, url)
    assert status.state is RelayState.CONNECTED and status.last_error == f"AUTH refused: invalid: Wrong domain: {url}"


@pytest.mark.relay
async def test_gift_wraps_need_auth_as_their_recipient(make_pool, rust_relay_auth, alice, bob):
    url = rust_relay_auth.url
    wrap = gift_wrap_with_key(EventTemplate(14, (("p", bob.public_key),), "see you at 10", now()),
                              alice.secret, bob.public_key, now=now())
    assert (await within(make_pool().publish(wrap, [url])))[url].ok
    inbox_filter = [Filter(kinds=frozenset({1059}), tags={"p": frozenset({bob.public_key})})]

    anonymous = make_pool()
    assert await within(anonymous.fetch(inbox_filter, [url], 5)) == []
    assert "auth-required" in relay_status(anonymous, url).last_error

    as_alice = make_pool(sign=LocalSigner(alice).sign_event)
    assert await within(as_alice.fetch(inbox_filter, [url], 5)) == []

    as_bob = make_pool(sign=LocalSigner(bob).sign_event)
    found = await within(as_bob.fetch(inbox_filter, [url], 5))
    assert found == [wrap]
    assert unwrap_with_key(found[0], bob.secret).rumor.content == "see you at 10"
    assert relay_status(as_bob, url).state is RelayState.AUTHENTICATED

    inbox = Inbox()
    await as_bob.subscribe("inbox", inbox_filter, [url], inbox.on_event, on_eose=inbox.on_eose)
    await wait_until(lambda: inbox.eose == [url])
    assert inbox.ids == [wrap.id]


@pytest.mark.relay
async def test_publish_to_a_write_auth_relay_authenticates_and_resends(make_pool, rust_relay_auth_write, keys):
    url = rust_relay_auth_write.url
    event = note(keys)
    refused = (await within(make_pool().publish(event, [url])))[url]
    assert not refused.ok and refused.prefix == "auth-required"
    signed_in = make_pool(sign=LocalSigner(keys).sign_event)
    assert (await within(signed_in.publish(event, [url])))[url].ok
    assert relay_status(signed_in, url).state is RelayState.AUTHENTICATED


@pytest.mark.relay
async def test_a_callback_may_publish_through_the_same_pool(make_pool, rust_relay, keys):
    """Callbacks run outside the relay's reader, so waiting for an OK inside one cannot deadlock."""
    pool = make_pool()
    replies: list[PublishResult] = []

    async def reply(url: str, event: Event) -> None:
        if event.content == "ping":
            results = await within(pool.publish(note(keys, "pong"), [url]))
            replies.append(results[url])

    await pool.subscribe("echo", [Filter(authors=frozenset({keys.public_key}))], [rust_relay.url], reply)
    await within(pool.publish(note(keys, "ping"), [rust_relay.url]))
    await wait_until(lambda: len(replies) == 1)
    assert replies[0].ok


# The fake relay -------------------------------------------------------------------------------


class FakeRelay:
    """A scripted relay: stores what it is sent, serves it with our own filter matcher, and
    lets a test inject frames. Optionally serves a NIP-11 document."""

    def __init__(self, information: dict[str, Any] | None = None, *, answer_events: bool = True):
        self.information = information
        self.answer_events = answer_events
        self.received: list[list[Any]] = []
        self.stored: list[Event] = []
        self.open: dict[Any, dict[str, list[Filter]]] = {}
        self.max_open = 0
        self.connections = 0
        self.on_req: Callable[[Any, str], Awaitable[None]] | None = None
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> "FakeRelay":
        self.server = await serve(self._handle, "127.0.0.1", 0, process_request=self._nip11, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await within(self.server.wait_closed(), 5)

    def _nip11(self, connection: Any, request: Any) -> Any:
        if request.headers.get("Accept") == "application/nostr+json":
            if self.information is None:
                return connection.respond(HTTPStatus.NOT_FOUND, "no NIP-11 here\n")
            response = connection.respond(HTTPStatus.OK, json.dumps(self.information))
            response.headers["Content-Type"] = "application/nostr+json"
            return response
        return None

    async def _handle(self, ws: Any) -> None:
        self.connections += 1
        self.open[ws] = {}
        try:
            async for frame in ws:
                message = json.loads(frame)
                self.received.append(message)
                await self._answer(ws, message)
        finally:
            del self.open[ws]

    async def _answer(self, ws: Any, message: list[Any]) -> None:
        if message[0] == "EVENT" and self.answer_events:
            event = Event.from_dict(message[1])
            self.stored.append(event)
            await ws.send(json.dumps(["OK", event.id, True, ""]))
            for peer, subs in list(self.open.items()):
                for sub, filters in list(subs.items()):
                    if any(f.matches(event) for f in filters):
                        await peer.send(json.dumps(["EVENT", sub, event.to_dict()]))
        elif message[0] == "REQ":
            sub = message[1]
            filters = [Filter.from_dict(f) for f in message[2:]]
            self.open[ws][sub] = filters
            self.max_open = max(self.max_open, len(self.open[ws]))
            if self.on_req is not None:
                await self.on_req(ws, sub)
            for event in self.stored:
                if any(f.matches(event) for f in filters):
                    await ws.send(json.dumps(["EVENT", sub, event.to_dict()]))
            await ws.send(json.dumps(["EOSE", sub]))
        elif message[0] == "CLOSE":
            self.open[ws].pop(message[1], None)

    def sent(self, kind: str) -> list[list[Any]]:
        return [m for m in self.received if m[0] == kind]


async def test_malformed_frames_are_dropped_and_counted_while_the_connection_lives(make_pool, alice, caplog):
    good, forged_source = note(alice, "good"), note(alice, "real")
    forged = dict(forged_source.to_dict(), content="forged")

    async def hostile(ws: Any, sub: str) -> None:
        for frame in (
            "this is not json",
            json.dumps({"EVENT": sub}),
            json.dumps(["EVENT", sub, {"id": 5}]),
            json.dumps(["EVENT", 7, good.to_dict()]),
            json.dumps(["OK", "xyz", "yes", ""]),
            json.dumps(["EVENT", sub, forged]),
            json.dumps(["EVENT", sub, dict(good.to_dict(), sig="00" * 64)]),
            json.dumps(["WHO-KNOWS", sub]),
            json.dumps(["EVENT", "never-opened", good.to_dict()]),
            json.dumps(["NOTICE", "x" * 3_000_000]),
            json.dumps(["EVENT", sub, good.to_dict()]),
        ):
            await ws.send(frame)

    async with FakeRelay() as relay:
        relay.on_req = hostile
        pool = make_pool()
        inbox = Inbox()
        with caplog.at_level(logging.WARNING, logger="nostr_training.relays"):
            await pool.subscribe("k", [Filter(authors=frozenset({alice.public_key}))], [relay.url],
                                 inbox.on_event, on_eose=inbox.on_eose)
            await wait_until(lambda: inbox.eose == [relay.url])
        assert inbox.ids == [good.id]
        status = relay_status(pool, relay.url)
        assert (status.malformed_dropped, status.invalid_signature_dropped, status.unexpected_dropped) == (7, 2, 1)
        assert status.events_received == 1 and status.state is RelayState.CONNECTED
        assert relay.connections == 1
        assert "over the limit" in caplog.text and "signature does not verify" in caplog.text
        # Still the same connection, still working.
        assert (await within(pool.publish(note(alice, "after"), [relay.url])))[relay.url].ok
        assert relay.connections == 1


async def test_nip11_max_message_length_refuses_before_sending(make_pool, alice):
    async with FakeRelay({"limitation": {"max_message_length": 1000}}) as relay:
        pool = make_pool()
        small, big = note(alice, "fits"), note(alice, "y" * 1000)
        results = await within(pool.publish(big, [relay.url]))
        assert not results[relay.url].ok
        assert "max_message_length of 1000" in results[relay.url].message
        assert results[relay.url].prefix == "invalid"
        assert (await within(pool.publish(small, [relay.url])))[relay.url].ok
        assert [m[1]["id"] for m in relay.sent("EVENT")] == [small.id]
        assert relay_status(pool, relay.url).limits.max_message_length == 1000


async def test_nip11_max_subscriptions_packs_subscriptions_into_fewer_reqs(make_pool, alice, bob, keys):
    async with FakeRelay({"limitation": {"max_subscriptions": 2}}) as relay:
        pool = make_pool()
        authors = [alice, bob, keys]
        for k in authors:
            await within(pool.publish(note(k, f"from {k.public_key[:8]}"), [relay.url]))
        inboxes = [Inbox() for _ in authors]
        for i, (k, inbox) in enumerate(zip(authors, inboxes, strict=True)):
            await pool.subscribe(f"key{i}", [Filter(authors=frozenset({k.public_key}))], [relay.url],
                                 inbox.on_event, on_eose=inbox.on_eose)
        await wait_until(lambda: all(inbox.eose for inbox in inboxes))
        fetched = await within(pool.fetch([Filter(kinds=frozenset({1}))], [relay.url], 5))
        assert len(fetched) == 3
        assert relay.max_open == 2
        assert len({m[1] for m in relay.sent("REQ")}) == 2
        for k, inbox in zip(authors, inboxes, strict=True):
            assert [e.pubkey for e in map(lambda pair: pair[1], inbox.events)] == [k.public_key]

        await pool.unsubscribe("key1")
        await pool.unsubscribe("key0")
        await pool.unsubscribe("key2")
        await wait_until(lambda: not any(relay.open.values()))
        assert relay.sent("CLOSE")


async def test_every_member_of_a_resent_shared_req_gets_its_eose(make_pool, alice, bob, keys):
    """A shared REQ sent again asks each member's ``since`` again, so each must hear EOSE again:
    a cursor waiting for it would otherwise stop moving until the next reconnect."""
    async with FakeRelay({"limitation": {"max_subscriptions": 2}}) as relay:
        pool = make_pool()
        inboxes = [Inbox() for _ in range(3)]
        asked = [0, 0, 0]

        def since_of(i):
            def since(url):
                asked[i] += 1
                return None
            return since

        for i, k in enumerate([alice, bob, keys]):
            await pool.subscribe(f"key{i}", [Filter(authors=frozenset({k.public_key}))], [relay.url],
                                 inboxes[i].on_event, since=since_of(i), on_eose=inboxes[i].on_eose)
            await wait_until(lambda i=i: all(0 < len(inboxes[j].eose) == asked[j] for j in range(i + 1)))
        assert asked[0] >= 3 and len(relay.sent("REQ")) >= 3


async def test_publish_without_an_answer_times_out(make_pool, alice):
    async with FakeRelay(answer_events=False) as relay:
        result = (await within(make_pool().publish(note(alice), [relay.url], timeout=0.3)))[relay.url]
        assert result == PublishResult(False, "timeout: no answer within 0.3 s")
        assert result.retryable


async def test_a_failing_callback_is_logged_and_the_subscription_goes_on(make_pool, alice, caplog):
    async with FakeRelay() as relay:
        pool = make_pool()
        inbox = Inbox()

        async def flaky(url: str, event: Event) -> None:
            if event.content == "boom":
                raise RuntimeError("callback bug")
            await inbox.on_event(url, event)

        await pool.subscribe("k", [Filter(authors=frozenset({alice.public_key}))], [relay.url], flaky,
                             on_eose=inbox.on_eose)
        await wait_until(lambda: inbox.eose == [relay.url])
        with caplog.at_level(logging.ERROR, logger="nostr_training.relays"):
            await within(pool.publish(note(alice, "boom"), [relay.url]))
            fine = note(alice, "fine")
            await within(pool.publish(fine, [relay.url]))
            await wait_until(lambda: len(inbox.events) == 1)
        assert inbox.ids == [fine.id]
        assert "callback bug" in caplog.text


class SilentAuthRelay(FakeRelay):
    """Challenges on connect, refuses REQ and EVENT with ``auth-required:`` until it gets an AUTH,
    and never answers the AUTH: no real relay here both asks with ``auth-required:`` and stays
    silent (rust-nostr always sends the OK, nostr-relay never says ``auth-required:``)."""

    def __init__(self) -> None:
        super().__init__()
        self.authenticated: set[Any] = set()

    async def _handle(self, ws: Any) -> None:
        await ws.send(json.dumps(["AUTH", "challenge"]))
        await super()._handle(ws)

    async def _answer(self, ws: Any, message: list[Any]) -> None:
        if message[0] == "AUTH":
            self.authenticated.add(ws)
        elif ws in self.authenticated:
            await super()._answer(ws, message)
        elif message[0] == "REQ":
            await ws.send(json.dumps(["CLOSED", message[1], "auth-required: who are you?"]))
        elif message[0] == "EVENT":
            await ws.send(json.dumps(["OK", message[1]["id"], False, "auth-required: who are you?"]))


async def test_a_req_is_resent_after_an_auth_that_gets_no_ok(make_pool, alice):
    async with SilentAuthRelay() as relay:
        pool = make_pool(sign=LocalSigner(alice).sign_event, auth_timeout=0.2)
        inbox = Inbox()
        await pool.subscribe("k", [Filter(authors=frozenset({alice.public_key}))], [relay.url], inbox.on_event,
                             on_eose=inbox.on_eose)
        await wait_until(lambda: inbox.eose == [relay.url])
        assert len(relay.sent("AUTH")) == 1 and len(relay.sent("REQ")) == 2
        assert relay_status(pool, relay.url).state is RelayState.CONNECTED


async def test_a_publish_given_up_during_auth_leaves_it_to_finish(make_pool, alice):
    """The AUTH outlives the caller that started it, so the relay never stays 'authenticating'."""
    async with SilentAuthRelay() as relay:
        pool = make_pool(sign=LocalSigner(alice).sign_event, auth_timeout=1)
        event = note(alice)
        publishing = asyncio.create_task(pool.publish(event, [relay.url], timeout=LIMIT))
        await wait_until(lambda: relay.sent("AUTH"))
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        await wait_until(lambda: relay_status(pool, relay.url).state is RelayState.CONNECTED)
        assert (await within(pool.publish(event, [relay.url])))[relay.url] == PublishResult(True, "")
        assert len(relay.sent("AUTH")) == 1


async def test_close_stops_everything(make_pool, alice):
    async with FakeRelay() as relay:
        pool = make_pool()
        await pool.subscribe("k", [Filter()], [relay.url], Inbox().on_event)
        await within(pool.publish(note(alice), [relay.url]))
        await within(pool.close())
        assert [s.state for s in pool.status()] == []
        await wait_until(lambda: not relay.open)
        with pytest.raises(RelayError, match="closed"):
            await pool.add_relay(relay.url)


async def test_remove_relay_disconnects(make_pool, alice):
    async with FakeRelay() as relay:
        pool = make_pool()
        await pool.add_relay(relay.url)
        await wait_until(lambda: relay.connections == 1 and len(relay.open) == 1)
        await within(pool.remove_relay(relay.url + "/"))
        assert pool.status() == []
        await wait_until(lambda: not relay.open)


async def test_reconnect_waits_on_the_injected_clock(make_pool):
    """The wait between attempts is the pool's clock's: a ManualClock holds the next attempt
    until it is advanced, and state times come from it too."""
    clock = ManualClock(1_900_000_000)
    attempts: list[str] = []

    async def refuse(url: str, **kwargs: Any) -> Any:
        attempts.append(url)
        raise OSError("connection refused")

    url = f"ws://127.0.0.1:{free_port()}"
    pool = make_pool(clock=clock, connect=refuse, backoff=lambda: iter([30.0] * 10))
    await pool.add_relay(url)
    await wait_until(lambda: relay_status(pool, url).state is RelayState.BACKOFF)
    assert relay_status(pool, url).since == clock.now()
    assert relay_status(pool, url).last_error == "connect failed: OSError: connection refused"
    await clock.advance(29)
    assert attempts == [url]
    await clock.advance(1)
    await wait_until(lambda: len(attempts) == 2)


async def test_a_subscription_and_a_fetch_need_a_filter(make_pool):
    pool = make_pool()
    with pytest.raises(MalformedEvent, match="at least one filter"):
        await pool.subscribe("k", [], ["ws://127.0.0.1:1"], Inbox().on_event)
    with pytest.raises(MalformedEvent, match="at least one filter"):
        await pool.fetch([], ["ws://127.0.0.1:1"])
    assert pool.status() == []


async def test_since_is_merged_into_each_filter_and_callbacks_use_the_callers_spelling(make_pool, alice):
    async with FakeRelay() as relay:
        spelled = relay.url.replace("ws://", "WS://") + "/"
        asked: list[str] = []

        def since(url: str) -> int:
            asked.append(url)
            return 1_700_000_000

        old = note(alice, "old", created_at=1_600_000_000)
        new = note(alice, "new")
        pool = make_pool()
        await within(pool.publish(old, [relay.url]))
        await within(pool.publish(new, [relay.url]))
        inbox = Inbox()
        filters = [Filter(authors=frozenset({alice.public_key})), Filter(kinds=frozenset({1}), since=1_800_000_000)]
        await pool.subscribe("k", filters, [spelled], inbox.on_event, since=since, on_eose=inbox.on_eose)
        await wait_until(lambda: inbox.eose == [spelled])
        assert asked == [spelled]
        assert inbox.events == [(spelled, new)]
        req = relay.sent("REQ")[-1]
        assert req[2:] == [{"authors": [alice.public_key], "since": 1_700_000_000},
                           {"kinds": [1], "since": 1_800_000_000}]


class ClosingOnceRelay(FakeRelay):
    """Closes the first REQ of every subscription id with ``rate-limited:``, then behaves."""

    def __init__(self) -> None:
        super().__init__()
        self.closed_once: set[str] = set()

    async def _answer(self, ws: Any, message: list[Any]) -> None:
        if message[0] == "REQ" and message[1] not in self.closed_once:
            self.closed_once.add(message[1])
            await ws.send(json.dumps(["CLOSED", message[1], "rate-limited: slow down"]))
            return
        await super()._answer(ws, message)


async def test_a_subscription_closed_for_a_passing_reason_is_asked_again(make_pool, alice):
    """A relay that closes a REQ (rate-limited) must not leave the subscription deaf until the
    next reconnect: the pool asks again, later, and live events flow."""
    async with ClosingOnceRelay() as relay:
        pool = make_pool()
        inbox = Inbox()
        await pool.subscribe("k", [Filter(authors=frozenset({alice.public_key}))], [relay.url], inbox.on_event,
                             on_eose=inbox.on_eose)
        await wait_until(lambda: inbox.eose == [relay.url])
        assert len(relay.sent("REQ")) == 2
        live = note(alice, "after the close")
        await within(pool.publish(live, [relay.url]))
        await wait_until(lambda: inbox.ids == [live.id])
