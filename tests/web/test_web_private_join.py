"""Issue 15, the web page's join for a private lesson: the learner's "Join Now" on their daemon's
page sends the join request to the host as an ephemeral gift wrap (21059), as ``join`` does, and
the host's waiting room shows it; a join request signed elsewhere (the ``join-request`` control
route) goes the same way when its signer is the daemon's user, and is refused for anyone else,
never published. HTTP against a real daemon's server on loopback; the wire is the tests' fake
relay (services/private_wire.py), so what it carried is checked as an outsider reads it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import aiohttp
import pytest
from services.private_wire import assert_nothing_in_clear, exchange, people
from services.test_private_rooms import TITLE, invited
from services.training_world import T

from nostr_training import kinds
from nostr_training.cli.web import web_url
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.errors import PrivacyRefused
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.services import live
from nostr_training.signer import LocalSigner

MIN = 60


async def _learner_daemon(home, learner: Keys, learning, wire, clock: ManualClock) -> Daemon:
    """The learner's daemon on the learner's index and the shared wire, web view on."""
    config = load_config(home / "learner-daemon").with_overrides(relays=list(learning.config.relays), port=0)
    daemon = Daemon(config, signer=LocalSigner(learner), store=learning.store, pool=wire, clock=clock)
    await daemon.start()
    return daemon


async def _press_join(daemon: Daemon, lesson: str) -> tuple[int, str]:
    """Log in with the link ``open`` prints, read the lesson page's CSRF token, press Join Now."""
    assert daemon.server is not None
    base = daemon.server.http_url
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(web_url(base, daemon.server.token, lesson)) as page:
            assert page.status == 200
            html = await page.text()
        assert 'id="join-now"' in html, "the private lesson's page offers no Join Now"
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match is not None
        async with http.post(f"{base}/web/lesson/join", data={"csrf": match.group(1), "l": lesson},
                             headers={"Origin": origin}, allow_redirects=False) as answer:
            return answer.status, await answer.text()


async def test_join_now_on_the_web_page_reaches_the_host_of_a_private_lesson_in_a_gift_wrap(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock)
    await live.create_live_session(hosting, lesson.coordinate, live.ConferenceConfig(TITLE, host.public_key))
    await clock.advance(30 * MIN)
    await live.start_live_session(hosting, lesson.coordinate)
    await exchange(wire, hosting, learning)
    daemon = await _learner_daemon(tmp_path, learner, learning, wire, clock)
    try:
        status, text = await _press_join(daemon, lesson.coordinate)
        assert status == 303, text
        sent = await exchange(wire, daemon.services, hosting)
    finally:
        await daemon.stop()
    assert {e.kind for e in sent} == {kinds.GIFT_WRAP_EPHEMERAL}
    assert all(e.tag_values("p") == [host.public_key] for e in sent)
    [waiting] = await live.waiting(hosting, lesson.coordinate)
    assert waiting.pubkey == learner.public_key
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key], secrets=[TITLE, lesson.d])


async def test_a_join_request_signed_elsewhere_goes_wrapped_for_the_daemons_user_and_is_refused_for_others(tmp_path):
    clock = ManualClock(T)
    host, learner, wire, hosting, learning, lesson = await invited(tmp_path, clock)
    await live.create_live_session(hosting, lesson.coordinate, live.ConferenceConfig(TITLE, host.public_key))
    await exchange(wire, hosting, learning)
    await clock.advance(27 * MIN)

    stranger = Keys.generate()
    theirs = sign_event(kinds.build_join_request(lesson.coordinate, host.public_key, created_at=clock.now()),
                        stranger.secret)
    with pytest.raises(PrivacyRefused, match="private"):
        await live.submit_join_request(learning, theirs, stranger.public_key)

    mine = sign_event(kinds.build_join_request(lesson.coordinate, host.public_key, created_at=clock.now()),
                      learner.secret)
    assert await live.submit_join_request(learning, mine, learner.public_key) == mine.id  # same id, unsigned
    sent = await exchange(wire, hosting, learning)
    assert {e.kind for e in sent} == {kinds.GIFT_WRAP_EPHEMERAL}
    assert mine.id not in wire.events and theirs.id not in wire.events
    [waiting] = await live.waiting(hosting, lesson.coordinate)
    assert (waiting.pubkey, waiting.request) == (learner.public_key, mine.id)
    assert_nothing_in_clear(list(wire.events.values()), learners=[learner.public_key], secrets=[TITLE, lesson.d])


async def test_a_public_lessons_join_request_signed_elsewhere_is_still_published(tmp_path):
    clock = ManualClock(T)
    host, learner = Keys.generate(), Keys.generate()
    wire, (hosting, learning) = await people(tmp_path, clock, host, learner)
    lesson = kinds.Lesson(author=host.public_key, d="open-day", title="Open day", start=T + 30 * MIN,
                          end=T + 90 * MIN, instructor=host.public_key, waiting_room=True)
    event = sign_event(kinds.build_lesson(lesson, created_at=clock.now()), host.secret)
    await hosting.outbox.submit(event)
    await exchange(wire, hosting, learning)
    request = sign_event(kinds.build_join_request(lesson.coordinate, host.public_key, created_at=clock.now()),
                         learner.secret)
    assert await live.submit_join_request(learning, request, learner.public_key) == request.id
    await exchange(wire, hosting, learning)
    assert wire.events[request.id].sig == request.sig
