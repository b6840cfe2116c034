"""Private courses and lessons from the command line, with no daemon running: every command runs
in an offline context on its own data dir and talks to a real relay on loopback.

The host creates a private course with an invitee and schedules a lesson in it (private without
asking), lists it marked private, invites a second learner by lesson; each learner's ``lesson
list`` fetches their invitation and the host's envelopes first and says so; a private answer
reaches the host's ``rsvp list`` only through the gift wrap; refusals are one clear line."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from test_cli_services import cli_in_thread

from nostr_training import kinds
from nostr_training.daemon.backoff import backoff
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import EventTemplate, sign_event, verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.nips.nip19 import npub_encode

from relay_servers import rust_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.relay


class User:
    def __init__(self, home: Path, url: str):
        self.home, self.keys = home, Keys.generate()
        home.mkdir(parents=True)
        save_key_file(home / "key.ncryptsec", self.keys, "correct horse", log_n=4)
        write_config(load_config(home).with_overrides(relays=[url]))

    @property
    def npub(self) -> str:
        return npub_encode(self.keys.public_key)

    async def cli(self, *args: str):
        return await cli_in_thread(*args, "--data-dir", str(self.home))

    async def cli_json(self, *args: str):
        result = await self.cli(*args, "--json")
        assert result.code == 0, result.output
        return json.loads(result.stdout), result.stderr


@pytest.fixture
async def town(tmp_path, rust_relay, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "correct horse")
    monkeypatch.setenv("TZ", "UTC")
    users = {name: User(tmp_path / name, rust_relay.url) for name in ("host", "ada", "bo")}
    async with RelayPool(verify=verify_event, backoff=lambda: backoff(initial=0.05, maximum=0.3)) as pool:
        for user in users.values():  # everyone's DM inbox (10050): invitations and answers go there
            inbox = sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", rust_relay.url),), "", int(time.time())),
                               user.keys.secret)
            results = await pool.publish(inbox, [rust_relay.url], timeout=10)
            assert all(r.ok for r in results.values())
    return users


async def next_second() -> None:
    """Until the wall clock's second changes: answers are ordered by the second they were seen."""
    now = int(time.time())
    while int(time.time()) == now:
        await asyncio.sleep(0.05)


def _local(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M")


async def test_a_private_course_from_the_cli_without_a_daemon(town, rust_relay):
    host, ada, bo = town["host"], town["ada"], town["bo"]
    created, err = await host.cli_json("course", "create", "jail-support", "Jail support", "--private", "--invite", ada.npub)
    course = created["course"]
    assert course["private"] and course["d"] != "jail-support" and course["invitees"] == [ada.keys.public_key]
    assert "signed with npub1" in err
    readable = await host.cli("course", "create", "jail-support", "Jail support")  # a revision keeps it private
    assert readable.code == 0 and "private: call it 'jail-support' here" in readable.stdout

    start = int(time.time()) + 3 * 86400
    start -= start % 60
    scheduled, _ = await host.cli_json("lesson", "schedule", "jail-support", "intro", "Know your rights",
                                       "--start", _local(start), "--max-participants", "1")
    lesson = scheduled["lesson"]
    assert lesson["private"] and lesson["course"] == course["coordinate"] and lesson["start"] == start
    table = await host.cli("lesson", "list")
    assert "Know your rights" in table.stdout and "private" in table.stdout and "UTC" in table.stdout
    shown, _ = await host.cli_json("lesson", "show", "intro")  # the local name works everywhere
    assert shown["lesson"]["coordinate"] == lesson["coordinate"]

    invited = await host.cli("lesson", "invite", "intro", bo.npub, ada.npub)
    assert invited.code == 0, invited.output
    assert f"invited {bo.npub}" in invited.stdout and f"already invited {ada.npub}" in invited.stdout
    assert "its lessons share one key" in invited.stderr

    listed, err = await ada.cli_json("lesson", "list")
    assert "no daemon running: fetched your invitations" in err
    assert [(x["coordinate"], x["title"], x["private"]) for x in listed["lessons"]] == [
        (lesson["coordinate"], "Know your rights", True)]

    # Answers count from when the host sees them (without a daemon: when it fetches them), so
    # the host looks in between; the answers land in different seconds.
    answered, err = await ada.cli_json("rsvp", "answer", lesson["coordinate"], "confirmed")
    assert answered["private"] and answered["delivered"], answered
    listing, err = await host.cli_json("rsvp", "list", lesson["coordinate"])
    assert "no daemon running: fetched your gift wraps" in err
    assert [(r["pubkey"], r["status"]) for r in listing["rows"]] == [(ada.keys.public_key, "confirmed")]
    await next_second()
    readable = await bo.cli("rsvp", "answer", lesson["coordinate"], "confirmed")  # Bo never listed it first
    assert readable.code == 0 and "gift-wrapped to the host only" in readable.stdout
    assert "fetched 1 invitation(s)" in readable.stderr
    listing, err = await host.cli_json("rsvp", "list", lesson["coordinate"])
    rows = {r["pubkey"]: (r["status"], r["waitlist_position"]) for r in listing["rows"]}
    assert rows == {ada.keys.public_key: ("confirmed", None), bo.keys.public_key: ("waitlisted", 1)}

    async with RelayPool(verify=verify_event) as pool:
        clear = await pool.fetch([Filter(kinds=frozenset({kinds.COURSE, kinds.LESSON, kinds.RSVP}))],
                                 [rust_relay.url], timeout=10)
        everything = await pool.fetch([Filter(limit=1000)], [rust_relay.url], timeout=10)
    assert clear == [] and everything
    assert not [e.id for e in everything if "Know your rights" in e.to_json() or "jail-support" in e.to_json()]


async def test_refusals_are_one_clear_line(town):
    host, ada = town["host"], town["ada"]
    assert (await host.cli("course", "create", "open", "Open course")).code == 0
    start = _local(int(time.time()) + 86400)
    refused = await host.cli("lesson", "schedule", "open", "secret", "Secret", "--start", start, "--private")
    assert refused.code != 0 and "is public" in refused.stderr and "--private" in refused.stderr
    refused = await host.cli("course", "invite", "open", ada.npub)
    assert refused.code != 0 and "public" in refused.stderr
    refused = await host.cli("course", "create", "open", "Open course", "--private")
    assert refused.code != 0 and "public already" in refused.stderr
    listed, _ = await host.cli_json("lesson", "list")
    assert listed["lessons"] == []
