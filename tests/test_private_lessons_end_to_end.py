"""Issue 15, part A, end to end: a private lesson between three real daemons (host and two
learners, one ManualClock) over rust-nostr's relay on loopback, driven from the CLI.

The host schedules a private lesson with one seat in a private course and invites Ada and Bo;
both daemons receive it with no command (their private inbox opens the invitation, then the
host's envelopes, which the follows start following once the key arrives). Ada accepts and Bo
is waitlisted; Ada declines and Bo is promoted by a DM from the host's reminder scheduler. Then
an outsider with a fresh key asks the relay for everything: no lesson, course or RSVP in the
clear, and no title, local name or learner anywhere but the ``p`` of a gift wrap.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from test_cli_services import cli_in_thread

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.backoff import backoff
from nostr_training.daemon.config import load_config
from nostr_training.daemon.private_inbox import PrivateInbox
from nostr_training.daemon.relays import RelayPool
from nostr_training.daemon.reminders import ReminderScheduler
from nostr_training.event import verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.kinds.reminders import ReminderKind, parse_reminder
from nostr_training.nips.nip19 import npub_encode
from nostr_training.nips.nip59 import unwrap
from nostr_training.services.relay_lists import plan_relays, set_relays
from nostr_training.signer import LocalSigner

from relay_servers import start_rust_relay

pytestmark = pytest.mark.relay

MIN, DAY = 60, 86400
STEP = 60  # the reminder scheduler's interval, in the daemons' clock


async def eventually(check, *, clock: ManualClock | None = None, tries: int = 300, delay: float = 0.05):
    """Poll a predicate; with ``clock``, move the daemons' time a little each try (their follows
    flush and re-plan, and their schedulers tick, on that clock)."""
    for _ in range(tries):
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if clock is not None:
            await clock.advance(2)
        await asyncio.sleep(delay)
    raise AssertionError("condition never became true")


def fast_pool(**kw) -> RelayPool:
    return RelayPool(verify=verify_event, backoff=lambda: backoff(initial=0.05, maximum=0.3), **kw)


class Person:
    def __init__(self, home, keys: Keys):
        self.home, self.keys, self.daemon = home, keys, None
        self.inbox = PrivateInbox()

    @property
    def pubkey(self) -> str:
        return self.keys.public_key

    async def start(self, relay: str, clock: ManualClock, *, hosting: bool = False) -> None:
        config = replace(load_config(self.home).with_overrides(relays=[relay], port=0))
        components = (self.inbox, ReminderScheduler(interval=STEP)) if hosting else (self.inbox,)
        signer = LocalSigner(self.keys)
        self.daemon = Daemon(config, signer=signer, clock=clock, components=components,
                             pool_factory=lambda **_: fast_pool(sign=signer.sign_event))
        await self.daemon.start()

    @property
    def ctx(self):
        return self.daemon.services

    async def cli(self, *args: str):
        return await cli_in_thread(*args, "--data-dir", str(self.home))

    async def cli_json(self, *args: str):
        result = await self.cli(*args, "--json")
        assert result.code == 0, result.output
        return json.loads(result.stdout)

    async def roster(self, lesson: str) -> dict[str, tuple[str, int | None]]:
        listing = await self.cli_json("rsvp", "list", lesson)
        return {r["pubkey"]: (r["status"], r["waitlist_position"]) for r in listing["rows"]}

    async def reminders(self, lesson: str) -> list[ReminderKind]:
        """The reminders this person's daemon received for ``lesson`` (their DM inbox)."""
        wraps = await self.ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({self.pubkey})})])
        out = []
        for wrap in wraps:
            rumor = (await unwrap(wrap, LocalSigner(self.keys))).rumor
            if rumor.kind == kinds.DIRECT_MESSAGE and rumor.tag_value("a") == lesson:
                out.append(parse_reminder(rumor).kind)
        return out


@pytest.fixture
def relay(tmp_path):
    process = start_rust_relay(tmp_path / "relay", notes_per_minute=100_000)
    yield process
    process.stop()


@pytest.fixture
async def people(tmp_path, relay, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "correct horse")
    monkeypatch.setenv("TZ", "America/New_York")
    out = []
    for name in ("host", "ada", "bo"):
        home = tmp_path / name
        home.mkdir()
        keys = Keys.generate()
        save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
        out.append(Person(home, keys))
    yield out
    for person in out:
        if person.daemon is not None:
            await person.daemon.stop()


async def test_a_private_lesson_between_three_daemons_leaves_nothing_readable_on_the_relay(people, relay):
    host, ada, bo = people
    clock = ManualClock(int(time.time()) - 4 * 3600)
    url = relay.url
    await host.start(url, clock, hosting=True)
    await set_relays(host.ctx, plan_relays([url], inbox=[url]), wait=5)  # private answers reach the host there
    for learner in (ada, bo):
        await learner.start(url, clock)
        await set_relays(learner.ctx, plan_relays([url], inbox=[url]), wait=5)  # their DM inboxes (10050)

    # The host: a private course, and a one-seat private lesson in it with two invitees.
    created = await host.cli_json("course", "create", "jail-support", "Jail support", "--private")
    course = created["course"]
    assert course["private"] and course["d"] != "jail-support"
    start = clock.now() + 3 * DAY
    berlin = datetime.fromtimestamp(start, timezone.utc).astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")
    scheduled = await host.cli_json("lesson", "schedule", "jail-support", "intro", "Know your rights", "--start", berlin,
                                    "--tz", "Europe/Berlin", "--max-participants", "1",
                                    "--invite", npub_encode(ada.pubkey), "--invite", bo.pubkey)
    lesson = scheduled["lesson"]["coordinate"]
    assert scheduled["lesson"]["private"] and set(scheduled["lesson"]["invitees"]) == {ada.pubkey, bo.pubkey}
    table = await host.cli("lesson", "list")
    assert "Know your rights" in table.stdout and "private" in table.stdout and "(Europe/Berlin" in table.stdout

    # Both learners' daemons receive it with no command.
    for learner in (ada, bo):
        await eventually(lambda learner=learner: learner.ctx.store.lesson(lesson), clock=clock)
        listed = await learner.cli_json("lesson", "list")
        assert [(x["coordinate"], x["title"], x["private"]) for x in listed["lessons"]] == [(lesson, "Know your rights", True)]
        courses = await learner.cli_json("course", "list")
        assert [(c["title"], c["private"]) for c in courses["courses"]] == [("Jail support", True)]
        assert learner.inbox.invitations == 1

    # Ada takes the seat; Bo, a minute later, is waitlisted.
    answer = await ada.cli_json("rsvp", "answer", lesson, "confirmed")
    assert answer["private"] and answer["delivered"]
    await eventually(lambda: host.ctx.store.rsvps(lesson), clock=clock)
    await clock.advance(MIN)
    assert (await bo.cli("rsvp", "answer", lesson, "confirmed")).code == 0
    await eventually(lambda: _answers(host, lesson, 2), clock=clock)
    assert await host.roster(lesson) == {ada.pubkey: ("confirmed", None), bo.pubkey: ("waitlisted", 1)}
    assert await ada.roster(lesson) == {ada.pubkey: ("confirmed", None)}  # the learner's own answer

    # Ada declines: the seat goes to Bo, and the host's daemon tells Bo in a DM.
    await clock.advance(MIN)
    assert (await ada.cli("rsvp", "answer", lesson, "declined")).code == 0
    await eventually(lambda: _status(host, lesson, bo.pubkey, "confirmed"), clock=clock)
    assert (await host.roster(lesson))[ada.pubkey] == ("declined", None)
    reminders = await eventually(lambda: bo.reminders(lesson), clock=clock)
    assert ReminderKind.PROMOTED in reminders
    assert ReminderKind.PROMOTED not in await ada.reminders(lesson)

    # An outsider asks the relay for everything, with a fresh key.
    outsider = Keys.generate()
    async with fast_pool(sign=LocalSigner(outsider).sign_event) as pool:
        clear = await pool.fetch([Filter(kinds=frozenset({kinds.LESSON, kinds.COURSE, kinds.RSVP, kinds.DELETION}))],
                                 [url], timeout=10)
        everything = await pool.fetch([Filter(limit=5000)], [url], timeout=10)
    assert clear == []
    assert {e.kind for e in everything} <= {kinds.PRIVATE_CALENDAR_ITEM, kinds.GIFT_WRAP, kinds.DM_RELAYS,
                                            kinds.RELAY_LIST}
    assert any(e.kind == kinds.PRIVATE_CALENDAR_ITEM for e in everything)
    for event in everything:
        text = event.to_json()
        assert "Know your rights" not in text and "Jail" not in text and "jail-support" not in text
        assert course["d"] not in text and lesson.split(":")[2] not in text
        for learner in (ada, bo):
            if event.pubkey != learner.pubkey:  # their own relay lists name them, as any user's do
                named = learner.pubkey in text
                assert not named or (event.kind == kinds.GIFT_WRAP and event.tag_values("p") == [learner.pubkey])


async def _answers(person: Person, lesson: str, count: int) -> bool:
    return len(await person.ctx.store.rsvps(lesson)) == count


async def _status(person: Person, lesson: str, pubkey: str, status: str) -> bool:
    roster = {r["pubkey"]: r["status"] for r in (await person.cli_json("rsvp", "list", lesson))["rows"]}
    return roster.get(pubkey) == status
