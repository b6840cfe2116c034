"""The CLI's service commands against a running daemon (through its control API) and without
one: publish, req, follow, relays, status; and the defects a new user hit."""

from __future__ import annotations

import asyncio
import json
import tomllib
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from daemon.daemon_fakes import FakePool, signed

from nostr_training import kinds
from nostr_training.cli import main
from nostr_training.daemon.app import Daemon, read_runtime
from nostr_training.daemon.config import load_config
from nostr_training.errors import ConfigError
from nostr_training.event import sign_event
from nostr_training.keys import Keys, save_key_file
from nostr_training.signer import LocalSigner

R = "wss://relay.example"
T = 1_800_000_000


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str, stdin: str = "") -> Result:
    """The CLI in-process exactly as the console script runs it (main -> sys.exit)."""
    with CliRunner().isolation(input=stdin) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


async def cli_in_thread(*args: str, stdin: str = "") -> Result:
    return await asyncio.to_thread(invoke, *args, stdin=stdin)


def exit_code(result: Result) -> int:
    return result.code


@pytest.fixture
def user(home) -> Keys:
    keys = Keys.generate()
    save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
    return keys


@pytest.fixture
async def daemon(home, user, clock):
    config = load_config().with_overrides(relays=[R], port=0)
    pool = FakePool()
    running = Daemon(config, signer=LocalSigner(user), pool=pool, clock=clock)
    await running.start()
    running.fake_pool = pool  # type: ignore[attr-defined]
    yield running
    await running.stop()


def lesson_event(host: Keys, d: str = "l1"):
    lesson = kinds.Lesson(author=host.public_key, d=d, title="Ownership", start=T + 86400, end=T + 90000,
                          instructor=host.public_key)
    return lesson, sign_event(kinds.build_lesson(lesson, created_at=T), host.secret)


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def test_publish_goes_through_the_control_api(daemon, user, clock):
    note = signed(user, 1, content="hello", created_at=clock.now())
    result = await cli_in_thread("publish", stdin=note.to_json())
    (line,) = lines(result)
    assert exit_code(result) == 0, result.output
    assert line["via"] == "daemon" and line["delivered"] and line["deliveries"][0]["target"] == R
    assert (R, note.id) in daemon.fake_pool.published


async def test_publish_exits_1_when_nothing_was_delivered(daemon, user, clock):
    daemon.fake_pool.down.add(R)
    note = signed(user, 1, content="nobody hears", created_at=clock.now())
    result = await cli_in_thread("publish", "--timeout", "2", stdin=note.to_json())
    (line,) = lines(result)
    assert exit_code(result) == 1
    assert line["accepted"] and not line["delivered"] and line["deliveries"][0]["state"] == "retrying"


def test_publish_refuses_a_relay_url_it_cannot_use(home, user):
    note = signed(user, 1, content="x")
    result = invoke("publish", "--relay", "http://x", stdin=note.to_json())
    assert result.code == 2 and "ws://" in result.stderr and result.stdout.strip() == ""


async def test_an_rsvp_to_an_unknown_lesson_is_refused_before_queueing(daemon, user, clock):
    host = Keys.generate()
    lesson, _ = lesson_event(host)
    rsvp = sign_event(kinds.build_rsvp(lesson, "accepted", created_at=clock.now()), user.secret)
    result = await cli_in_thread("publish", stdin=rsvp.to_json())
    (line,) = lines(result)
    assert exit_code(result) == 1 and not line["accepted"] and "no lesson" in line["error"]
    assert await daemon.store.outbox_entries(rsvp.id) == []
    forced = await cli_in_thread("publish", "--allow-unknown-lesson", stdin=rsvp.to_json())
    assert lines(forced)[0]["accepted"]


async def test_req_through_the_daemon_serves_my_gift_wraps_only(daemon, user, clock):
    mine = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", user.public_key)], content="a", created_at=clock.now())
    theirs = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", Keys.generate().public_key)], content="b",
                    created_at=clock.now())
    for wrap in (mine, theirs):
        await daemon.store.add(wrap)
    result = await cli_in_thread("req", "-k", "1059")
    assert exit_code(result) == 0 and [e["id"] for e in lines(result)] == [mine.id]
    by_json = await cli_in_thread("req", json.dumps({"ids": [theirs.id]}))
    assert exit_code(by_json) == 1 and lines(by_json) == []


async def test_req_without_a_daemon_reads_the_local_index(home, user):
    from nostr_training.daemon.app import open_store

    config = load_config()
    store = await open_store(config.database_path)
    note = signed(user, 1, content="indexed")
    await store.add(note)
    await store.close()
    result = await cli_in_thread("req", "-a", user.public_key)
    assert [e["id"] for e in lines(result)] == [note.id]
    assert "no daemon running" in result.stderr


async def test_follow_takes_effect_in_the_running_daemon(daemon, home):
    host = Keys.generate()
    course = f"{kinds.COURSE}:{host.public_key}:rust"
    assert not any(k.startswith("courses:") for k in daemon.fake_pool.subscriptions)
    added = await cli_in_thread("follow", "add", course, "--json")
    assert json.loads(added.stdout) == {"courses": [course]}
    assert any(k.startswith("courses:") for k in daemon.fake_pool.subscriptions), "subscribed without a restart"
    lessons = next(s for k, s in daemon.fake_pool.subscriptions.items() if k.startswith("lessons:"))
    assert course in lessons.filters[0].tags["a"]
    saved = tomllib.loads((home / "config.toml").read_text())
    assert saved["follow"]["courses"] == [course]
    assert R not in saved.get("relays", []), "this run's --relay is not written to config.toml"
    listed = await cli_in_thread("follow", "list")
    assert listed.stdout.split() == [course]
    removed = await cli_in_thread("follow", "remove", course)
    assert exit_code(removed) == 0 and not any(k.startswith("courses:") for k in daemon.fake_pool.subscriptions)
    again = await cli_in_thread("follow", "remove", course)
    assert exit_code(again) == 1 and "not following" in again.output


def test_follow_without_a_daemon_edits_config(home):
    host = Keys.generate()
    course = f"{kinds.COURSE}:{host.public_key}:rust"
    result = invoke("follow", "add", course)
    assert exit_code(result) == 0 and "when it starts" in result.stderr
    assert load_config().follow_courses == (course,)
    lesson = f"{kinds.LESSON}:{host.public_key}:l1"
    assert exit_code(invoke("follow", "add", lesson)) == 1


async def test_relays_set_publishes_both_lists(daemon, user):
    result = await cli_in_thread("relays", "set", R, "--inbox", "wss://inbox.example", "--json")
    body = json.loads(result.stdout)
    assert exit_code(result) == 0, result.output
    assert body["inbox"] == ["wss://inbox.example"] and body["read"] == [R]
    published = {daemon.store and eid for _, eid in daemon.fake_pool.published}
    found = {e.kind for e in [await daemon.store.get(eid) for eid in published] if e is not None}
    assert {kinds.RELAY_LIST, kinds.DM_RELAYS} <= found
    assert load_config().relays == (R,)


async def test_status_through_the_control_api(daemon):
    result = await cli_in_thread("daemon", "status", "--json")
    body = json.loads(result.stdout)
    assert exit_code(result) == 0 and body["running"] and body["pid"] and "components" in body


async def test_a_second_daemon_leaves_the_first_ones_files_alone(daemon, clock):
    before = read_runtime(daemon.config.data_dir)
    second = Daemon(daemon.config, pool=FakePool(), clock=clock)
    with pytest.raises(ConfigError, match="another daemon"):
        await second.start()
    await second.stop()
    assert read_runtime(daemon.config.data_dir) == before, "the runtime file still names the first daemon"


def test_keys_generate_says_how_to_publish_relay_lists(home):
    result = invoke("keys", "generate", "--log-n", "4")
    assert exit_code(result) == 0 and "relays set" in result.stderr


def test_version_flag():
    result = invoke("-V")
    assert "version" in result.output


def test_every_help_text_renders_its_examples():
    """``\\b`` keeps an Example block as written; a literal backslash-b would show instead."""
    import click

    from nostr_training.cli import _register, cli

    _register()

    def walk(command: click.Command, path: list[str]):
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    for path, _ in walk(cli, []):
        result = invoke(*path, "--help")
        assert result.code == 0 and "\\b" not in result.stdout, (path, result.stdout[:300])
        if path and not isinstance(_, click.Group):
            assert "Example" in result.stdout, path


def test_follow_add_keeps_what_the_user_wrote_in_config(home):
    (home).mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('# my relays\nrelays = [\n  "wss://mine.example",\n]\n\n[sfu]\nurl = "https://sfu.example"\n')
    host = Keys.generate()
    course = f"{kinds.COURSE}:{host.public_key}:rust"
    assert invoke("follow", "add", course).code == 0
    text = (home / "config.toml").read_text()
    saved = tomllib.loads(text)
    assert "# my relays" in text and saved["sfu"] == {"url": "https://sfu.example"}
    assert saved["relays"] == ["wss://mine.example"] and saved["follow"]["courses"] == [course]
