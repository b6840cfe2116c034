"""Issue 16's "Done when", in a real browser: Debian's chromium driven by Playwright, a real relay
on loopback (rust-nostr's), daemons in-process on one ManualClock.

- an RSVP from the page reaches the relay as a 31925 signed by the learner;
- the countdown turns into "Join Now" when the host starts the session (no reload: the daemon's
  event stream says the page changed);
- the host admits the learner from the waiting room (no reload on either side) and the
  learner's page then shows the join link, with the room key only in its fragment;
- a learner who watches 50 % of the recording and seeks to the end does not complete; watching
  90 % of the unique seconds does (the video element is played at 16x in the browser);
- a foreign Origin, a foreign Host, no secret, no cookie or no CSRF token is refused.

``NT_SCREENSHOTS=DIR`` saves a PNG of each state there (``scripts/screenshots.py`` sets it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import aiohttp
import pytest
from blossom_server import BlossomServer
from polling import eventually
from web_world import Person, launch_browser, make_video, require_chromium

from nostr_training import kinds
from nostr_training.clock import ManualClock, SystemClock
from nostr_training.daemon.app import make_pool
from nostr_training.event import verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.services import live
from nostr_training.services.certificates import export_bundle, issue_certificate
from nostr_training.services.recordings import recording_status
from nostr_training.services.relay_lists import plan_relays, set_relays

from relay_servers import rust_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.relay

MIN = 60
SHOTS = os.environ.get("NT_SCREENSHOTS")


async def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
async def browser():
    require_chromium()
    playwright, chromium = await launch_browser()
    yield chromium
    await chromium.close()
    await playwright.stop()


@pytest.fixture
async def world(tmp_path, rust_relay, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TZ", "America/New_York")
    clock = ManualClock(SystemClock().now() - 4 * 3600)
    people = []
    for name in ("host", "ada"):
        home = tmp_path / name
        home.mkdir()
        people.append(Person(home, Keys.generate(), name))
    yield clock, people, rust_relay.url
    for person in people:
        await person.stop()


async def _lesson(host: Person, learner: Person, clock: ManualClock, url: str, d: str, **options):
    """The host schedules a lesson 30 minutes ahead; the learner follows its course and sees it."""
    await host.start(url, clock)
    course = await live.create_course(host.ctx, f"course-{d}", "Street medic basics")
    lesson = await live.schedule_lesson(host.ctx, course.coordinate, d, "Wound care", clock.now() + 30 * MIN, 60,
                                        tzid="Europe/Berlin", **options)
    await learner.start(url, clock, courses=(course.coordinate,))
    await set_relays(learner.ctx, plan_relays([url], inbox=[url]), wait=5)
    await eventually(lambda: learner.ctx.store.lesson(lesson.coordinate))
    for person in (host, learner):
        await person.live.run_once()  # each daemon follows the lesson's session events
    return lesson


async def _on_relay(url: str, author: str, kind: int):
    pool = make_pool(signer=None, clock=SystemClock())
    try:
        return await pool.fetch([Filter(kinds=frozenset({kind}), authors=frozenset({author}))], [url], timeout=5)
    finally:
        await pool.close()


async def test_rsvp_countdown_join_now_and_admission_without_reload(world, browser):
    clock, (host, ada), url = world
    lesson = await _lesson(host, ada, clock, url, "wound-care", requires_rsvp=True, waiting_room=True,
                           e2ee_required=True, max_participants=10)
    learner_ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    host_ctx = await browser.new_context(viewport={"width": 900, "height": 900})
    page = await learner_ctx.new_page()
    await page.goto(ada.login_url(lesson.coordinate))
    assert "token=" not in page.url and page.url.endswith("/web/lesson?l=" + lesson.coordinate)
    await page.wait_for_selector("body[data-live='open']")
    assert await page.locator("h1").inner_text() == "Wound care"
    assert re.search(r"\d+ min \d+ s", await page.locator(".countdown").inner_text())
    details = await page.locator(".details").inner_text()
    assert "npub1" in details and "1 h 0 min" in details and "Europe/Berlin" in details
    await shot(page, "learner-before")

    # RSVP from the page: a 31925 signed by the learner reaches the relay.
    await page.get_by_role("button", name="Going", exact=True).click()
    await page.wait_for_selector("#rsvp-status:text('accepted')")
    rsvps = await eventually(lambda: _on_relay(url, ada.pubkey, kinds.RSVP))
    assert rsvps[0].kind == 31925 and verify_event(rsvps[0]) and rsvps[0].tag_value("status") == "accepted"
    assert rsvps[0].tag_value("a") == lesson.coordinate

    # The host opens the room 15 minutes ahead and, at the start, starts the session from the page.
    teach = await host_ctx.new_page()
    await teach.goto(host.login_url(lesson.coordinate, teach=True))
    await teach.wait_for_selector("body[data-live='open']")
    await eventually(lambda: _rsvp_listed(host, lesson.coordinate))
    await clock.advance(14 * MIN)  # a minute before the host's daemon would open it by itself
    await teach.locator("#session-create").click()
    await teach.wait_for_selector("#session-start")
    await ada.live.run_once()  # the learner's daemon follows the new room's events too
    await clock.advance(16 * MIN)
    await host.live.run_once()
    refreshes = await page.evaluate("document.body.dataset.refreshes || '0'")
    await teach.locator("#session-start").click()
    await teach.wait_for_selector("#session-end")

    # The learner's countdown turns into "Join Now" without a reload.
    await page.wait_for_selector("#join-now", timeout=15000)
    assert int(await page.evaluate("document.body.dataset.refreshes")) > int(refreshes)
    await page.locator("#join-now").click()
    await page.wait_for_selector("#waiting")
    await shot(page, "learner-during-waiting")

    # The host sees the request arrive and admits from the waiting room, without a reload.
    marker = await teach.evaluate("window.performance.timeOrigin")
    await teach.wait_for_selector(f"li[data-pubkey='{ada.pubkey}'] button.admit", timeout=15000)
    await shot(teach, "instructor")
    await teach.locator(f"li[data-pubkey='{ada.pubkey}'] button.admit").click()
    await teach.wait_for_selector(f"li[data-pubkey='{ada.pubkey}']:has-text('admitted')", timeout=15000)
    assert await teach.evaluate("window.performance.timeOrigin") == marker  # same document: no reload
    await host.live.run_once()  # the host's daemon sends the room key to the admitted learner

    # The learner's page shows the join link (room key in the fragment only), without a reload.
    origin = await page.evaluate("window.performance.timeOrigin")
    link = await page.wait_for_selector("#join-link", timeout=15000)
    href = await link.get_attribute("href")
    assert href and "#e2ee=" in href and href.startswith("https://")
    assert await page.evaluate("window.performance.timeOrigin") == origin
    assert int(await page.locator("#participants").inner_text()) >= 0
    await shot(page, "learner-during")

    # The attendance table downloads as CSV; the course page lists the lesson with its progress.
    csv = await host_ctx.request.get(host.base + "/web/teach/attendance.csv?l=" + lesson.coordinate)
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    assert (await csv.text()).splitlines()[0].startswith("pubkey,npub,total_seconds,join_count")
    await page.goto(ada.base + "/web/course?c=" + lesson.course)
    assert "Wound care" in await page.locator("ol.lessons").inner_text()
    assert await page.locator("ol.lessons .progress").inner_text() == "live"
    await learner_ctx.close()
    await host_ctx.close()


async def _rsvp_listed(host: Person, lesson: str) -> bool:
    return bool(await host.ctx.store.rsvps(lesson))


async def test_recording_completes_at_90_percent_not_by_seeking(world, browser, tmp_path):
    clock, (host, ada), url = world
    lesson = await _lesson(host, ada, clock, url, "knots", requires_rsvp=False, waiting_room=False,
                           e2ee_required=False, allow_recording=True)
    await clock.advance(20 * MIN)
    await host.live.run_once()  # the host's daemon opens the room 15 minutes ahead (auto-start)
    await eventually(lambda: ada.ctx.store.query([Filter(kinds=frozenset({kinds.ROOM}))]))
    await ada.live.run_once()
    await clock.advance(10 * MIN)
    await host.live.run_once()
    await live.start_live_session(host.ctx, lesson.coordinate)
    await clock.advance(50 * MIN)
    await host.live.run_once()  # the host's tick refreshes the live meeting in this very second
    await live.end_live_session(host.ctx, lesson.coordinate)

    video = make_video(tmp_path / "session.webm", 60)
    (tmp_path / "blobs").mkdir()
    async with BlossomServer(tmp_path / "blobs") as blossom:
        sha = blossom.put_blob(video.read_bytes(), "video/webm")
        host_ctx = await browser.new_context()
        teach = await host_ctx.new_page()
        await teach.goto(host.login_url(lesson.coordinate, teach=True))
        await teach.fill("input[name=source]", f"{blossom.url}/{sha}.webm")
        await teach.fill("input[name=duration]", "60")
        await teach.get_by_role("button", name="Publish recording").click()
        await teach.wait_for_selector(f"text=Published: {blossom.url}/{sha}.webm")
        await eventually(lambda: _has_recording(ada, lesson.coordinate))
        await eventually(lambda: _ended(ada, lesson.coordinate))

        context = await browser.new_context(viewport={"width": 390, "height": 844})
        page = await context.new_page()
        await page.goto(ada.login_url(lesson.coordinate))
        await page.wait_for_function("() => document.querySelector('video') && document.querySelector('video').readyState >= 2")
        assert await page.locator("#completion").inner_text() == "Not completed yet"

        # Half of it at 16x, then a seek to the end: 30 s + the last second are not 90 %.
        await _play(page, start=0, stop=30)
        await _play(page, start=59, stop=None)
        status = await eventually(lambda: _reported(ada, lesson.coordinate, 50))
        assert 50 <= status.percent < 90 and not status.completed
        assert await page.locator("#completion").inner_text() == "Not completed yet"

        # Watching on from 30 s to 55 s brings the unique seconds past 90 %: completed.
        await _play(page, start=30, stop=55)
        status = await eventually(lambda: _completed(ada, lesson.coordinate))
        assert status.percent >= 90
        await page.wait_for_selector("#completion:text('Completed by watching the recording')")

        # The host certifies the course; its exported certificate file, dropped on the learner's
        # certificate page, verifies (rules.verification through the page).
        course = await host.ctx.store.course(lesson.course)
        await live.create_course(host.ctx, course.d, course.title, certification=True)
        issued = await issue_certificate(host.ctx, lesson.course, ada.pubkey, reason="watched the whole recording")
        # The learner's daemon follows its awards. Under load a relay may rate-limit the host's
        # burst of events; the outbox retries on the daemons' clock, so let that clock move.
        for _ in range(120):
            if await ada.ctx.store.awards(ada.pubkey):
                break
            await clock.advance(30)
            await asyncio.sleep(0.1)
        await eventually(lambda: ada.ctx.store.awards(ada.pubkey))
        await eventually(lambda: _certifies(ada, lesson.course))
        await page.goto(ada.base + "/web/lesson?l=" + lesson.coordinate)
        assert await page.locator("#cert-code").inner_text() == issued.code
        await shot(page, "learner-after")
        bundle = tmp_path / "certificate.json"
        bundle.write_text(await export_bundle(host.ctx, issued.award_id))
        await page.goto(ada.base + "/web/certificate")
        await page.set_input_files("#bundle", str(bundle))
        await page.get_by_role("button", name="Verify").click()
        verdict = await (await page.wait_for_selector("#verdict")).inner_text()
        assert verdict.startswith("Valid") and issued.code in verdict and "Street medic basics" in verdict
        await shot(page, "certificate")
        await context.close()
        await host_ctx.close()


async def _has_recording(person: Person, lesson: str) -> bool:
    from nostr_training.services.recordings import recording_ready

    return await recording_ready(person.ctx, lesson) is not None


async def _ended(person: Person, lesson: str) -> bool:
    return (await live.live_session_view(person.ctx, lesson))["is_ended"]


async def _certifies(person: Person, course: str) -> bool:
    found = await person.ctx.store.course(course)
    return found is not None and found.certification_enabled


async def _completed(person: Person, lesson: str):
    status = await recording_status(person.ctx, lesson)
    return status if status.completed else None


async def _reported(person: Person, lesson: str, at_least: float):
    status = await recording_status(person.ctx, lesson)
    return status if status.percent >= at_least else None


async def _play(page, *, start: float, stop: float | None) -> None:
    """Seek to ``start``, play at 16x (muted) and pause at ``stop`` (or play to the end)."""
    await page.evaluate(
        """async ([start, stop]) => {
            const v = document.querySelector('video');
            v.muted = true; v.playbackRate = 16;
            if (Math.abs(v.currentTime - start) > 0.01) {
              await new Promise(r => { v.addEventListener('seeked', r, {once: true}); v.currentTime = start; });
            }
            await new Promise(resolve => {
              const check = () => {
                if (stop !== null && v.currentTime >= stop) { v.removeEventListener('timeupdate', check); v.pause(); resolve(); }
              };
              v.addEventListener('timeupdate', check);
              v.addEventListener('ended', () => { v.removeEventListener('timeupdate', check); resolve(); }, {once: true});
              v.play();
            });
        }""",
        [start, stop],
    )


async def test_refused_without_secret_cookie_csrf_or_from_elsewhere(world, browser):
    clock, (host, _), url = world
    await host.start(url, clock)
    base = host.base
    port = host.daemon.server.port
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for an IP host
        async def status(method: str, path: str, **kw) -> int:
            async with http.request(method, base + path, allow_redirects=False, **kw) as answer:
                return answer.status

        assert await status("GET", "/web/") == 401  # no cookie
        assert await status("GET", "/web/login") == 401  # no secret
        assert await status("GET", "/web/login?token=" + "0" * 64) == 401  # a wrong one
        assert await status("GET", "/web/login?token=" + host.daemon.server.token) == 401  # the API token is not it
        login = host.login_url()
        assert await status("GET", login[len(base):], headers={"Host": f"evil.example:{port}"}) == 403
        assert await status("GET", login[len(base):], headers={"Origin": "http://evil.example"}) == 403
        assert await status("GET", login[len(base):], headers={"Host": f"127.0.0.1:{port + 1}"}) == 403
        async with http.get(login, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == "/web/"
            cookie = answer.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        async with http.get(base + "/web/") as answer:
            assert answer.status == 200
            csp = answer.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Referrer-Policy"] == "no-referrer"
            assert "Access-Control-Allow-Origin" not in answer.headers
            html = await answer.text()
            assert "<script>" not in html and host.daemon.server.token not in html and "nsec" not in html
        same = {"Origin": base}
        form = {"l": "31923:" + host.pubkey + ":x", "status": "accepted"}
        assert await status("POST", "/web/lesson/rsvp", data=form, headers=same) == 403  # no CSRF token
        csrf = re.search(r'name="csrf" content="([^"]+)"', html).group(1)
        assert await status("POST", "/web/lesson/rsvp", data={**form, "csrf": csrf}) == 403  # no Origin
        assert await status("POST", "/web/lesson/rsvp", data={**form, "csrf": csrf},
                            headers={"Origin": "http://evil.example"}) == 403
        assert await status("POST", "/web/lesson/rsvp", data={**form, "csrf": csrf}, headers=same) == 404  # passes the gate
        assert await status("OPTIONS", "/web/lesson/rsvp", headers={"Origin": "http://evil.example"}) == 403

    # In the browser: without the link, nothing; with it, the token leaves the address bar.
    context = await browser.new_context()
    page = await context.new_page()
    answer = await page.goto(base + "/web/")
    assert answer.status == 401
    await page.goto(host.login_url())
    assert page.url == base + "/web/"
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies[f"nt_session_{port}"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/"
    await page.goto(base + "/web/certificate?code=NOPE-NOPE")
    assert "not" in (await page.locator("#verdict").inner_text()).lower()
    await context.close()


async def test_web_view_can_be_turned_off(world):
    clock, (host, _), url = world
    await host.start(url, clock, web=False)
    async with aiohttp.ClientSession() as http, http.get(host.login_url(), allow_redirects=False) as answer:
        assert answer.status == 404


async def test_open_prints_a_login_link_for_the_running_daemon(world):
    from test_cli_services import cli_in_thread

    clock, (host, _), url = world
    await host.start(url, clock)
    lesson = f"31923:{host.pubkey}:intro"
    result = await cli_in_thread("open", lesson, "--teach", "--no-browser", "--json", "--data-dir", str(host.home))
    assert result.code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer == {"url": host.login_url(lesson, teach=True), "browser": False}
    assert answer["url"].startswith(f"http://127.0.0.1:{host.daemon.server.port}/web/login?token=")
    assert host.daemon.server.token not in answer["url"]
    async with aiohttp.ClientSession() as http, http.get(answer["url"], allow_redirects=False) as login:
        assert login.status == 303 and login.headers["Location"] == "/web/teach?l=" + lesson
    await host.stop()
    gone = await cli_in_thread("open", "--no-browser", "--data-dir", str(host.home))
    assert gone.code == 1 and "no daemon is running" in gone.stderr
