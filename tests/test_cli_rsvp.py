"""Answering lessons, the instructor's RSVP view and calendar export: the services, the CLI (with
and without a daemon) and the daemon's subscribable feed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
from daemon.daemon_fakes import FakePool, signed
from test_cli_services import cli_in_thread, invoke, lines

from nostr_training import kinds
from nostr_training.daemon.app import Daemon, read_runtime
from nostr_training.daemon.config import load_config
from nostr_training.daemon.outbox import Outbox
from nostr_training.daemon.reminders import ReminderScheduler
from nostr_training.errors import NotFound, RsvpRefused
from nostr_training.event import sign_event
from nostr_training.keys import Keys, save_key_file
from nostr_training.kinds.calendar import rsvp_d
from nostr_training.nips.nip19 import naddr_encode
from nostr_training.services.context import ServiceContext
from nostr_training.services.rsvp import REMINDER_ACTION, REMINDER_DROPPED_ACTION, rsvp_list, rsvp_to_lesson
from nostr_training.signer import LocalSigner
from nostr_training.store.memory import MemoryStore
from nostr_training.store.sqlite import SqliteStore

R = "wss://relay.example"
T = 1_800_000_000
DAY, HOUR = 86400, 3600


def make_lesson(host: Keys, d: str = "l1", start: int = T + 3 * DAY, **kw) -> kinds.Lesson:
    return kinds.Lesson(author=host.public_key, d=d, title=f"Lesson {d}", start=start, end=start + HOUR,
                        instructor=host.public_key, **kw)


async def add_lesson(store, host: Keys, lesson: kinds.Lesson, created_at: int = T - DAY) -> kinds.Lesson:
    from dataclasses import replace

    event = sign_event(kinds.build_lesson(lesson, created_at=created_at), host.secret)
    await store.add(event)
    return replace(lesson, event_id=event.id, created_at=created_at)


@pytest.fixture
async def ctx(alice, clock):
    store = await MemoryStore.open()
    context = ServiceContext(config=None, store=store,  # type: ignore[arg-type]
                             outbox=Outbox(store, FakePool(), clock=clock, default_relays=[R]), clock=clock,
                             signer=LocalSigner(alice), live=False)
    yield context
    await store.close()


# The service ----------------------------------------------------------------------------------


async def test_an_answer_is_a_31925_with_the_deterministic_d_the_revision_and_the_host(ctx, alice, bob):
    lesson = await add_lesson(ctx.store, bob, make_lesson(bob))
    naddr = naddr_encode(kinds.LESSON, bob.public_key, lesson.d)
    answer = await rsvp_to_lesson(ctx, naddr, "confirmed", "from Lisbon", wait=0)
    event = answer.event
    tags = {t[0]: t[1] for t in event["tags"]}
    assert event["kind"] == kinds.RSVP and tags["d"] == rsvp_d(lesson.coordinate) and tags["status"] == "accepted"
    assert tags["e"] == lesson.event_id and tags["p"] == bob.public_key and tags["a"] == lesson.coordinate
    assert event["content"] == "from Lisbon" and answer.report.accepted
    (stored,) = await ctx.store.rsvps(lesson.coordinate)
    assert stored.status is kinds.RsvpStatus.ACCEPTED and stored.author == alice.public_key


async def test_answers_are_refused_when_closed_cancelled_or_unknown(ctx, bob, clock):
    with pytest.raises(NotFound):
        await rsvp_to_lesson(ctx, make_lesson(bob).coordinate, "accepted", wait=0)
    started = await add_lesson(ctx.store, bob, make_lesson(bob, "started", start=T - 60))
    with pytest.raises(RsvpRefused, match="started"):
        await rsvp_to_lesson(ctx, started.coordinate, "accepted", wait=0)
    cut = await add_lesson(ctx.store, bob, make_lesson(bob, "cut", rsvp_until=T - 1))
    with pytest.raises(RsvpRefused, match="closed"):
        await rsvp_to_lesson(ctx, cut.coordinate, "tentative", wait=0)
    gone = await add_lesson(ctx.store, bob, make_lesson(bob, "gone"))
    await ctx.store.add(signed(bob, kinds.DELETION, tags=[("a", gone.coordinate), ("e", gone.event_id), ("k", "31923")],
                               created_at=T - 10))
    with pytest.raises(RsvpRefused, match="cancelled"):
        await rsvp_to_lesson(ctx, gone.coordinate, "accepted", wait=0)
    assert await ctx.store.outbox_entries() == []


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
async def test_any_clients_answer_counts_and_the_newest_valid_one_wins(store_kind, tmp_path, bob):
    store = await (MemoryStore.open() if store_kind == "memory" else SqliteStore.open(tmp_path / "i.sqlite"))
    learner, legacy = Keys.generate(), Keys.generate()
    lesson = make_lesson(bob)
    ours = sign_event(kinds.build_rsvp(lesson, "accepted", created_at=T), learner.secret)
    other_client = signed(learner, kinds.RSVP, created_at=T + 10,  # Amethyst-style: a random d
                          tags=[("a", lesson.coordinate), ("d", "3f9c2a"), ("status", "declined")])
    broken = signed(learner, kinds.RSVP, created_at=T + 20,  # newer, but no status: does not count
                    tags=[("a", lesson.coordinate), ("d", "zz")])
    old_form = signed(legacy, kinds.RSVP, created_at=T, tags=[("a", lesson.coordinate), ("d", "x"), ("l", "tentative", "status")])
    for event in (ours, other_client, broken, old_form):
        await store.add(event)
    answers = {r.author: r.status.value for r in await store.rsvps(lesson.coordinate)}
    assert answers == {learner.public_key: "declined", legacy.public_key: "tentative"}
    await store.close()


# The CLI through a daemon ---------------------------------------------------------------------


@pytest.fixture
def user(home) -> Keys:
    keys = Keys.generate()
    save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
    return keys


@pytest.fixture
async def hosting(home, user, clock):
    """The user's daemon hosting lessons, with the reminder scheduler, on a fake pool."""
    config = load_config().with_overrides(relays=[R], port=0)
    scheduler = ReminderScheduler(interval=600)
    running = Daemon(config, signer=LocalSigner(user), pool=FakePool(), clock=clock, components=(scheduler,))
    await running.start()
    running.scheduler = scheduler  # type: ignore[attr-defined]
    yield running
    await running.stop()


async def tick(daemon, clock, seconds: int = 600) -> None:
    await clock.advance(seconds)
    scheduler = daemon.scheduler
    async with asyncio.timeout(5):
        while not (scheduler.waiting.is_set() and scheduler.next_due > clock.now()):
            await asyncio.sleep(0.001)


async def test_rsvp_list_shows_status_waitlist_and_reminders_sent_and_failed(hosting, user, clock):
    store = hosting.store
    lesson = await add_lesson(store, user, make_lesson(user, "small", start=T + DAY - 300, max_participants=1))
    seated, waiting, silent = Keys.generate(), Keys.generate(), Keys.generate()
    await store.add(signed(seated, kinds.DM_RELAYS, tags=[("relay", R)], created_at=T - DAY))
    await store.add(signed(waiting, kinds.DM_RELAYS, tags=[("relay", R)], created_at=T - DAY))
    for when, keys in enumerate((seated, waiting, silent)):
        await store.add(sign_event(kinds.build_rsvp(lesson, "accepted", created_at=T - 600 + when), keys.secret))
    await store.add(sign_event(kinds.build_rsvp(lesson, "accepted", created_at=T - 500), seated.secret))
    await tick(hosting, clock)  # 24 h before: the seated learner is told; nobody else is owed it
    silent_rsvp = sign_event(kinds.build_rsvp(lesson, "tentative", created_at=clock.now()), silent.secret)
    await store.add(silent_rsvp)
    await tick(hosting, clock, 23 * HOUR)  # 1 h before: seated and the tentative learner without an inbox

    result = await cli_in_thread("rsvp", "list", lesson.coordinate, "--json")
    assert result.code == 0, result.output
    (listing,) = lines(result)
    rows = {r["pubkey"]: r for r in listing["rows"]}
    assert [r["status"] for r in listing["rows"]] == ["confirmed", "waitlisted", "tentative"]
    assert rows[waiting.public_key]["waitlist_position"] == 1 and rows[waiting.public_key]["reminders_sent"] == []
    assert [r["kind"] for r in rows[seated.public_key]["reminders_sent"]] == ["24h", "1h"]
    assert rows[seated.public_key]["reminders_failed"] == []
    failed = rows[silent.public_key]["reminders_failed"]
    assert [f["kind"] for f in failed] == ["1h"] and failed[0]["state"].startswith("unreachable") and "10050" in failed[0]["state"]
    assert not rows[silent.public_key]["inbox"]
    assert any("kind 0" in w for w in listing["warnings"]) and any("10050" in w for w in listing["warnings"])
    readable = await cli_in_thread("rsvp", "list", lesson.coordinate)
    assert "waitlisted" in readable.stdout and "unreachable" in readable.stdout and "kind 0" in readable.stderr


async def test_a_reminder_missed_while_no_daemon_ran_is_dropped_and_listed(hosting, user, clock):
    """The answer reached the index two days ago (the daemon of then); the 24 h reminder's window
    closed an hour before this daemon started: it is logged as dropped, once, never sent."""
    store = hosting.store
    learner = Keys.generate()
    lesson = await add_lesson(store, user, make_lesson(user, "soon", start=T + 11 * HOUR), created_at=T - 3 * DAY)
    await store.add(signed(learner, kinds.DM_RELAYS, tags=[("relay", R)], created_at=T - 3 * DAY))
    await store.add(sign_event(kinds.build_rsvp(lesson, "accepted", created_at=T - 2 * DAY), learner.secret), now=T - 2 * DAY)
    await tick(hosting, clock)
    await tick(hosting, clock)
    (dropped,) = await store.actions(action=REMINDER_DROPPED_ACTION, subject=lesson.coordinate)
    assert dropped.pubkey == learner.public_key and dropped.key.startswith("reminder:24h:")
    assert await store.actions(action=REMINDER_ACTION, subject=lesson.coordinate) == []
    listing = await rsvp_list(hosting.services, lesson.coordinate)
    (row,) = listing.rows
    assert [(f.kind, f.state.split(":")[0]) for f in row.failed] == [("24h", "dropped")] and row.sent == ()


async def test_a_cancelled_lesson_tells_who_answered_yes_or_maybe_and_stays_in_the_calendar(hosting, user, clock):
    store = hosting.store
    lesson = await add_lesson(store, user, make_lesson(user, "off", start=T + 3 * DAY, max_participants=1))
    keen, waiting, maybe, no = (Keys.generate() for _ in range(4))
    for n, (keys, answer) in enumerate(((keen, "accepted"), (waiting, "accepted"), (maybe, "tentative"), (no, "declined"))):
        await store.add(signed(keys, kinds.DM_RELAYS, tags=[("relay", R)], created_at=T - DAY))
        await store.add(sign_event(kinds.build_rsvp(lesson, answer, created_at=T - 100 + n), keys.secret), now=T - 100 + n)
    await store.add(signed(user, kinds.DELETION, tags=[("a", lesson.coordinate), ("e", lesson.event_id), ("k", "31923")],
                           created_at=T + 300), now=T + 300)
    await tick(hosting, clock)
    told = {a.pubkey: a.detail for a in await store.actions(action=REMINDER_ACTION, subject=lesson.coordinate)}
    assert told == {keen.public_key: "cancelled", waiting.public_key: "cancelled", maybe.public_key: "cancelled"}
    status = await hosting.status()
    assert status["components"]["reminders"]["sent"] == 3 and status["components"]["reminders"]["profile"] is False
    result = await cli_in_thread("ics", lesson.coordinate)
    assert result.code == 0, result.output
    (event,) = icalendar.Calendar.from_ical(result.stdout).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED" and not event.walk("VALARM")
    refused = await cli_in_thread("rsvp", "answer", lesson.coordinate, "confirmed")
    assert refused.code == 1 and "cancelled" in refused.stderr


async def test_rsvp_answer_through_the_daemon(hosting, user, clock):
    host = Keys.generate()
    lesson = await add_lesson(hosting.store, host, make_lesson(host))
    result = await cli_in_thread("rsvp", "answer", lesson.coordinate, "tentative", "--note", "maybe late", "--json")
    assert result.code == 0, result.output
    (line,) = lines(result)
    assert line["status"] == "tentative" and line["delivered"] and "daemon's key" in result.stderr
    (answer,) = await hosting.store.rsvps(lesson.coordinate)
    assert answer.author == user.public_key and answer.note == "maybe late"
    late = await add_lesson(hosting.store, host, make_lesson(host, "late", start=T - 5))
    refused = await cli_in_thread("rsvp", "answer", late.coordinate, "confirmed")
    assert refused.code == 1 and "started" in refused.stderr


async def test_the_calendar_feed_takes_its_own_token_in_the_url(hosting, user):
    """The feed has its own read-only token, kept in the data dir across restarts: the control
    API's secret never goes into a calendar app's URL, and it opens nothing else."""
    from nostr_training.daemon.routes_rsvp import feed_token

    course = kinds.Course(author=user.public_key, d="c1", title="Course one")
    lesson = await add_lesson(hosting.store, user, make_lesson(user, course=course.coordinate))
    await hosting.store.add(sign_event(kinds.build_course(course, created_at=T - DAY), user.secret))
    info = read_runtime(hosting.config.data_dir)
    token = feed_token(hosting.config.data_dir)
    assert token != info.token and feed_token(hosting.config.data_dir) == token
    url = f"{info.http_url}/calendar/{course.coordinate}.ics"
    printed = await cli_in_thread("ics", course.coordinate, "--feed-url")
    assert printed.stdout.strip() == f"{url}?token={token}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"token": token}) as response:
            assert response.status == 200 and response.content_type == "text/calendar"
            calendar = icalendar.Calendar.from_ical(await response.read())
        async with session.get(url, params={"token": token[:-1] + "x"}) as wrong:
            assert wrong.status == 401
        async with session.get(url, params={"token": info.token}) as control:
            assert control.status == 401, "the control API's secret does not open the feed"
        async with session.get(url) as none:
            assert none.status == 401
        async with session.get(f"{info.http_url}/api/status", params={"token": token}) as api:
            assert api.status == 401, "the feed token opens nothing else"
    (event,) = calendar.walk("VEVENT")
    assert event["SUMMARY"] == lesson.title and str(calendar["X-WR-CALNAME"]) == "Course one"


# Calendar export across a DST change ---------------------------------------------------------


def test_ics_of_a_course_across_the_end_of_summer_time(home, user):
    """Weekly 09:00 Paris lessons on both sides of 25 October 2026: the file says 09:00 local
    each time, and the UTC instants move by the hour the clocks went back."""
    paris = ZoneInfo("Europe/Paris")
    course = kinds.Course(author=user.public_key, d="weekly", title="Weekly")
    starts = [int(datetime(2026, 10, day, 9, tzinfo=paris).timestamp()) for day in (18, 25)]
    starts.append(int(datetime(2026, 11, 1, 9, tzinfo=paris).timestamp()))

    async def fill() -> None:
        from nostr_training.daemon.app import open_store

        store = await open_store(load_config().database_path)
        await store.add(sign_event(kinds.build_course(course, created_at=T), user.secret))
        for i, start in enumerate(starts):
            lesson = make_lesson(user, f"w{i}", start=start, course=course.coordinate, start_tzid="Europe/Paris")
            await add_lesson(store, user, lesson, created_at=T)
        moved = make_lesson(user, "w2", start=starts[2] + HOUR, course=course.coordinate, start_tzid="Europe/Paris")
        await add_lesson(store, user, moved, created_at=T + 10)  # a material change: SEQUENCE 1
        await store.close()

    asyncio.run(fill())
    out = home / "weekly.ics"
    result = invoke("ics", course.coordinate, "-o", str(out))
    assert result.code == 0, result.output
    calendar = icalendar.Calendar.from_ical(out.read_bytes())
    events = sorted(calendar.walk("VEVENT"), key=lambda e: e.decoded("DTSTART"))
    local = [e.decoded("DTSTART") for e in events]
    assert [(d.hour, str(d.tzinfo)) for d in local] == [(9, "Europe/Paris"), (9, "Europe/Paris"), (10, "Europe/Paris")]
    utc = [d.astimezone(timezone.utc) for d in local]
    assert [d.hour for d in utc] == [7, 8, 9], "summer time (UTC+2), then winter time (UTC+1)"
    assert utc[1] - utc[0] == timedelta(days=7, hours=1)
    assert [int(e["SEQUENCE"]) for e in events] == [0, 0, 1]
    assert calendar.walk("VTIMEZONE"), "the zone travels with the file"
    single = invoke("ics", f"31923:{user.public_key}:w0")
    assert single.code == 0 and single.stdout.count("BEGIN:VEVENT") == 1
