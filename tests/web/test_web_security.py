"""The web view's gate without a browser: the login secret, sessions, CSRF tokens, the switch,
and the hub that wakes event streams."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from nostr_training.daemon.web import WebHub, enabled
from nostr_training.event import Event
from nostr_training.web.security import SECURITY_HEADERS, SessionBook, cookie_name, login_secret

TOKEN = "per-start-control-token"


def test_the_login_secret_is_derived_and_never_the_control_token():
    secret = login_secret(TOKEN)
    assert secret == login_secret(TOKEN) and secret != TOKEN and TOKEN not in secret
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert login_secret(TOKEN + "x") != secret


def test_sessions_need_the_secret_and_keep_their_own_csrf_token():
    book = SessionBook(TOKEN)
    assert not book.secret_matches(None) and not book.secret_matches(TOKEN) and not book.secret_matches("")
    assert book.secret_matches(login_secret(TOKEN))
    one, two = book.open(1), book.open(2)
    assert one.session_id != two.session_id and one.csrf != two.csrf
    assert book.find(one.session_id) == one and book.find("nope") is None and book.find(None) is None
    assert book.csrf_ok(one, one.csrf) and not book.csrf_ok(one, two.csrf) and not book.csrf_ok(one, None)


def test_the_oldest_session_goes_first_past_the_limit():
    book = SessionBook(TOKEN, limit=3)
    sessions = [book.open(i) for i in range(5)]
    assert len(book) == 3
    assert [book.find(s.session_id) is not None for s in sessions] == [False, False, True, True, True]


def test_cookie_names_carry_the_port_and_headers_forbid_framing_and_inline_script():
    assert cookie_name(4869) != cookie_name(4870)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"
    assert not any(name.lower().startswith("access-control-") for name in SECURITY_HEADERS)


def test_the_web_view_is_on_unless_config_turns_it_off():
    assert enabled(SimpleNamespace(extra={}))
    assert enabled(SimpleNamespace(extra={"web": {"enabled": True}}))
    assert not enabled(SimpleNamespace(extra={"web": {"enabled": False}}))


async def test_the_hub_wakes_streams_by_lesson_person_and_author_without_blocking():
    hub = WebHub()
    queue = hub.subscribe()
    lesson, learner, author = "31923:" + "a" * 64 + ":x", "b" * 64, "c" * 64
    event = Event(id="0" * 64, pubkey=author, created_at=1, kind=8313, tags=(("a", lesson), ("p", learner)), content="", sig="0" * 128)
    hub.on_event(event)
    got = {queue.get_nowait() for _ in range(3)}
    assert got == {lesson, learner, author}
    for _ in range(100):  # a stream that does not read never blocks indexing
        hub.publish("x")
    assert queue.full()
    hub.unsubscribe(queue)
    hub.publish("y")
    assert len(hub) == 0
    await asyncio.sleep(0)
