"""The daemon against real relays (rust-nostr's LocalRelay and PyPI nostr-relay as child
processes) and real clients (our pool, nostr-sdk's Client), plus the daemon process itself:
SIGTERM shutdown and SIGKILL in the middle of ingesting and publishing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import nostr_sdk
import pytest
from click.testing import CliRunner
from polling import eventually
from websockets.asyncio.client import connect

from nostr_training import kinds
from nostr_training.cli import _register, cli
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon, read_runtime
from nostr_training.daemon.backoff import backoff
from nostr_training.daemon.config import DaemonConfig, load_config, write_config
from nostr_training.daemon.follows import RESUME_OVERLAP
from nostr_training.daemon.outbox import Outbox
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.signer import LocalSigner
from nostr_training.store.base import OutboxState
from nostr_training.store.sqlite import SqliteStore

from daemon_fakes import signed
from relay_servers import nostr_relay, restartable_rust_relay, rust_relay  # noqa: F401  (fixtures)

pytestmark = pytest.mark.relay

EXE = str(Path(sys.executable).parent / "nostr-training")


def fast_pool(**kw) -> RelayPool:
    return RelayPool(verify=verify_event, backoff=lambda: backoff(initial=0.05, maximum=0.3), **kw)




async def relay_has(url: str, ids: set[str]) -> set[str]:
    async with fast_pool() as pool:
        found = await pool.fetch([Filter(ids=frozenset(ids))], [url], timeout=10)
    return {e.id for e in found}


async def test_outbox_delivers_once_the_down_relay_comes_up(tmp_path, restartable_rust_relay, nostr_relay, alice):
    down = restartable_rust_relay
    down.stop()
    clock = ManualClock(int(time.time()))
    store = await SqliteStore.open(tmp_path / "index.sqlite")
    pool = fast_pool(clock=clock)
    try:
        outbox = Outbox(store, pool, clock=clock, default_relays=[nostr_relay.url, down.url], timeout=5)
        note = signed(alice, 1, content=f"hello {os.urandom(4).hex()}", created_at=int(time.time()))
        await outbox.submit(note)
        await outbox.deliver_due()
        first = {e.relay: e for e in await store.outbox_entries(note.id)}
        assert first[nostr_relay.url].state is OutboxState.DELIVERED
        assert first[down.url].state is OutboxState.RETRYING
        assert first[down.url].last_message.split(":")[0] in ("not-connected", "timeout")

        down.start()

        async def delivered() -> bool:
            await clock.advance(3600)
            await outbox.deliver_due()
            return await store.outbox_depth() == 0

        await eventually(delivered, tries=200, delay=0.1)
        assert {e.state for e in await store.outbox_entries(note.id)} == {OutboxState.DELIVERED}
        assert await relay_has(down.url, {note.id}) == {note.id}
        assert await relay_has(nostr_relay.url, {note.id}) == {note.id}
    finally:
        await pool.close()
        await store.close()


async def test_refusal_reason_is_recorded_and_shown_by_status(home, nostr_relay, alice):
    config = load_config().with_overrides(relays=[nostr_relay.url])
    config.data_dir.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(int(time.time()))
    store = await SqliteStore.open(config.database_path)
    pool = fast_pool(clock=clock)
    try:
        outbox = Outbox(store, pool, clock=clock, default_relays=config.relays, timeout=5)
        too_long = signed(alice, 1, content="x" * 5000, created_at=int(time.time()))
        await outbox.submit(too_long)
        await outbox.deliver_due()
        (entry,) = await store.outbox_entries(too_long.id)
        assert entry.state is OutboxState.REFUSED
        assert entry.last_message.startswith("invalid:") and "280 characters" in entry.last_message
        await clock.advance(86400)
        assert await outbox.deliver_due() == 0
    finally:
        await pool.close()
        await store.close()
    _register()
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["daemon", "status"], standalone_mode=False)
    assert "REFUSED" in result.output and "280 characters" in result.output
    assert result.return_value == 1  # not running


def daemon_config(home: Path, relays, *, authors=()) -> DaemonConfig:
    config = load_config(home).with_overrides(relays=list(relays) or None, port=0)
    return DaemonConfig(**{**config.__dict__, "follow_authors": tuple(authors)})


async def test_nostr_sdk_client_reads_lessons_from_the_local_endpoint(tmp_path, alice):
    daemon = Daemon(daemon_config(tmp_path / "home", []))
    await daemon.start()
    try:
        course = f"{kinds.COURSE}:{alice.public_key}:rust"
        lesson = signed(alice, kinds.LESSON, tags=[("d", "l1"), ("a", course), ("title", "Ownership")],
                        content="Bring a laptop", created_at=int(time.time()))
        await daemon.store.add(lesson)
        client = nostr_sdk.Client()
        url = nostr_sdk.RelayUrl.parse(daemon.url)
        await client.add_relay(url)
        await client.connect()
        target = nostr_sdk.ReqTarget.single(url, [nostr_sdk.Filter().kind(nostr_sdk.Kind(kinds.LESSON))])
        events = await client.fetch_events(target, timedelta(seconds=5))
        await client.shutdown()
        assert [e.id().to_hex() for e in events] == [lesson.id]
        assert events[0].content() == "Bring a laptop" and events[0].verify()
    finally:
        await daemon.stop()


async def test_our_pool_authenticates_to_the_local_endpoint_for_gift_wraps(tmp_path, bob):
    daemon = Daemon(daemon_config(tmp_path / "home", []))
    await daemon.start()
    try:
        wrap = signed(Keys.generate(), kinds.GIFT_WRAP, tags=[("p", bob.public_key)], content="sealed",
                      created_at=int(time.time()))
        await daemon.store.add(wrap)
        wanted = [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({bob.public_key})})]
        async with fast_pool() as anonymous:
            assert await anonymous.fetch(wanted, [daemon.url], timeout=3) == []
        async with fast_pool(sign=LocalSigner(bob).sign_event) as authed:
            got = await authed.fetch(wanted, [daemon.url], timeout=5)
        assert [e.id for e in got] == [wrap.id]
        assert daemon.local.counters.auths == 1
    finally:
        await daemon.stop()


async def publish_to(url: str, events) -> None:
    async with fast_pool() as pool:
        for ev in events:
            results = await pool.publish(ev, [url], timeout=10)
            assert results[url].ok, results[url].message


async def test_cursors_resume_after_restart(tmp_path, rust_relay):
    author = Keys.generate()
    base = int(time.time()) - 3 * RESUME_OVERLAP
    # 30 events over 1.5 overlaps: a resumed REQ asks again for those within one overlap only.
    history = [signed(author, 1, content=str(i), created_at=base + i * RESUME_OVERLAP // 20) for i in range(30)]
    await publish_to(rust_relay.url, history)
    config = daemon_config(tmp_path / "home", [rust_relay.url], authors=[author.public_key])

    first = Daemon(config)
    await first.start()
    try:
        await eventually(lambda: first.follows.counters.stored == 30)
        (sub,) = [s for s in first.follows.subscriptions() if s.name == "authors"]
        await eventually(lambda: first.follows.cursor(rust_relay.url, sub.key) == history[-1].created_at)
    finally:
        await first.stop()

    second = Daemon(config)
    await second.start()
    try:
        assert second.follows.cursor(rust_relay.url, sub.key) == history[-1].created_at
        fresh = signed(author, 1, content="new", created_at=int(time.time()))
        await publish_to(rust_relay.url, [fresh])
        await eventually(lambda: second.follows.counters.stored == 1)
        # Only the overlap before the cursor was asked for again, not the whole history.
        since = history[-1].created_at - RESUME_OVERLAP
        again = sum(1 for e in history if e.created_at >= since)
        await eventually(lambda: second.follows.counters.duplicates == again)
        assert second.follows.counters.received == again + 1 < len(history)
        assert (await second.store.stats())["events"] == 31
    finally:
        await second.stop()


def start_daemon_process(home: Path, *args: str) -> tuple[subprocess.Popen[bytes], dict]:
    env = {**os.environ, "NOSTR_TRAINING_HOME": str(home)}
    env.pop("NOSTR_TRAINING_KEY_FILE", None)
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "daemon.log", "ab")
    proc = subprocess.Popen([EXE, "daemon", "run", "--log-format", "json", *args], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    log.close()
    for _ in range(400):
        info = read_runtime(home)
        if info is not None and info.pid == proc.pid:
            return proc, {"url": info.url, "token": info.token}
        if proc.poll() is not None:
            raise AssertionError((home / "daemon.log").read_text())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("daemon did not start: " + (home / "daemon.log").read_text())


def test_first_run_with_relay_options_keeps_them_out_of_config(tmp_path):
    """--relay and --port are "for this run": the config.toml the first run writes has neither."""
    home = tmp_path / "home"
    proc, info = start_daemon_process(home, "--relay", "ws://127.0.0.1:9", "--port", "0")
    try:
        config = (home / "config.toml").read_text()
        assert "127.0.0.1:9" not in config and "relays = []" in config
        assert info["url"].startswith("ws://127.0.0.1:") and not info["url"].endswith(":4869")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0


def test_sigterm_stops_cleanly_and_removes_the_runtime_file(tmp_path, monkeypatch, alice):
    home = tmp_path / "home"
    write_config(daemon_config(home, []))
    save_key_file(home / "key.ncryptsec", alice, "pw", log_n=4)
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "pw")
    proc, _ = start_daemon_process(home)
    env = {**os.environ, "NOSTR_TRAINING_HOME": str(home)}
    status = subprocess.run([EXE, "daemon", "status", "--json"], env=env, capture_output=True, timeout=30)
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["running"] and body["pid"] == proc.pid and body["pubkey"] == alice.public_key
    assert "own" in body["subscriptions"] and "giftwraps" in body["subscriptions"]
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(20) == 0
    assert not (home / "daemon.json").exists()
    lines = [json.loads(line) for line in (home / "daemon.log").read_text().splitlines() if line.startswith("{")]
    assert any(line["msg"] == "daemon stopped" for line in lines)
    after = subprocess.run([EXE, "daemon", "status"], env=env, capture_output=True, timeout=30)
    assert after.returncode == 1 and b"not running" in after.stdout


def run_cli(args, stdin: str):
    _register()
    return CliRunner().invoke(cli, args, input=stdin, standalone_mode=False)


async def test_publish_without_a_daemon_sends_directly(home, rust_relay, alice):
    note = signed(alice, 1, content=f"direct {os.urandom(4).hex()}", created_at=int(time.time()))
    result = await asyncio.to_thread(run_cli, ["publish", "--relay", rust_relay.url], note.to_json() + "\n")
    assert result.exception is None, result.output
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line == {
        "id": note.id, "accepted": True, "delivered": True, "error": None, "via": "direct",
        "deliveries": [{"target": rust_relay.url, "state": "delivered", "message": ""}],
    }
    assert "no daemon running" in result.stderr
    assert result.return_value == 0
    assert await relay_has(rust_relay.url, {note.id}) == {note.id}


async def test_publish_goes_through_a_running_daemon(home, rust_relay, alice):
    config = load_config().with_overrides(relays=[rust_relay.url], port=0)
    daemon = Daemon(config)
    await daemon.start()
    try:
        note = signed(alice, 1, content=f"via daemon {os.urandom(4).hex()}", created_at=int(time.time()))
        result = await asyncio.to_thread(run_cli, ["publish"], note.to_json() + "\n")
        assert result.exception is None, result.output
        line = json.loads(result.stdout)
        assert (line["id"], line["via"], line["accepted"], line["delivered"]) == (note.id, "daemon", True, True)
        assert line["deliveries"] == [{"target": rust_relay.url, "state": "delivered", "message": ""}]
        async def delivered():
            return [e.state for e in await daemon.store.outbox_entries(note.id)] == [OutboxState.DELIVERED]
        await eventually(delivered)
        assert await relay_has(rust_relay.url, {note.id}) == {note.id}
    finally:
        await daemon.stop()


async def send_through_daemon(url: str, events, acked: list[str], stop_after: int, killed: asyncio.Event) -> None:
    try:
        async with connect(url) as ws:
            await ws.recv()  # AUTH challenge
            for ev in events:
                await ws.send(json.dumps(["EVENT", ev.to_dict()]))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg[0] == "OK":
                        break
                assert msg[1] == ev.id and msg[2] is True, msg
                acked.append(ev.id)
                if len(acked) == stop_after:
                    killed.set()
    except Exception:  # the daemon was SIGKILLed under us
        return


async def test_sigkill_mid_ingest_and_publish_loses_nothing(tmp_path, nostr_relay):
    # nostr-relay (SQLite on disk), not the rust relay: the latter rate-limits bulk writes.
    relay = nostr_relay
    author, writer = Keys.generate(), Keys.generate()
    home = tmp_path / "home"
    write_config(daemon_config(home, [relay.url], authors=[author.public_key]))
    now = int(time.time())
    history = [signed(author, 1, content=f"old {i}", created_at=now - 700 + i) for i in range(600)]
    await publish_to(relay.url, history)

    proc, info = start_daemon_process(home)
    outgoing = [signed(writer, 1, content=f"out {i}", created_at=now + i % 50) for i in range(400)]
    live = [signed(author, 1, content=f"live {i}", created_at=now + i % 50) for i in range(400)]
    acked: list[str] = []
    killed, kill_done = asyncio.Event(), asyncio.Event()

    async def feed() -> None:
        """Half the live events before the kill, the rest while the daemon is down."""
        await publish_to(relay.url, live[:200])
        await kill_done.wait()
        await publish_to(relay.url, live[200:])

    sender = asyncio.create_task(send_through_daemon(info["url"], outgoing, acked, 150, killed))
    feeder = asyncio.create_task(feed())
    await asyncio.wait_for(killed.wait(), 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    kill_done.set()
    await sender
    await feeder
    acked_at_kill = set(acked)
    assert 150 <= len(acked_at_kill) < len(outgoing)
    store = await SqliteStore.open(home / "index.sqlite")
    try:
        indexed_at_kill = await store.count([Filter(authors=frozenset({author.public_key}))])
    finally:
        await store.close()
    assert indexed_at_kill < len(history) + len(live)

    proc, info = start_daemon_process(home)
    try:
        async def settled() -> bool:
            store = await SqliteStore.open(home / "index.sqlite")
            try:
                depth = await store.outbox_depth()
                indexed = await store.count([Filter(authors=frozenset({author.public_key}))])
            finally:
                await store.close()
            return depth == 0 and indexed == len(history) + len(live)
        await eventually(settled, tries=300, delay=0.1)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0

    store = await SqliteStore.open(home / "index.sqlite")
    try:
        committed = {e.id for e in await store.query([Filter(authors=frozenset({writer.public_key}))])}
        assert acked_at_kill <= committed  # every acknowledged publish survived the kill
        entries = await store.outbox_entries()
        pairs = [(e.event_id, e.relay) for e in entries]
        assert len(pairs) == len(set(pairs))  # one delivery row per (event, relay)
        assert {e.event_id for e in entries} == committed
        assert all(e.state is OutboxState.DELIVERED for e in entries)
        stats = await store.stats()
        assert stats["events"] == len(history) + len(live) + len(committed)  # nothing stored twice
    finally:
        await store.close()
    assert await relay_has(relay.url, committed) == committed


async def test_deletions_revisions_and_expired_events_through_both_relays(tmp_path, rust_relay, nostr_relay):
    """What the daemon serves is right whatever each relay does with revisions, deletions by
    ``e`` and ``a``, and already-expired events (nostr-relay ignores deletion by ``a`` and
    serves expired events)."""
    host = Keys.generate()
    now = int(time.time())
    course = f"{kinds.COURSE}:{host.public_key}:py"
    lesson_v1 = signed(host, kinds.LESSON, tags=[("d", "l1"), ("a", course), ("title", "v1")], created_at=now - 300)
    lesson_v2 = signed(host, kinds.LESSON, tags=[("d", "l1"), ("a", course), ("title", "v2")], created_at=now - 200)
    doomed = signed(host, kinds.LESSON, tags=[("d", "l2"), ("a", course), ("title", "cancelled")], created_at=now - 200)
    note = signed(host, 1, content="typo", created_at=now - 200)
    expired = signed(host, 1, tags=[("expiration", str(now - 60))], content="gone", created_at=now - 120)
    by_e = signed(host, kinds.DELETION, tags=[("e", note.id), ("k", "1")], created_at=now - 100)
    by_a = signed(host, kinds.DELETION, tags=[("a", f"{kinds.LESSON}:{host.public_key}:l2"), ("k", str(kinds.LESSON))],
                  created_at=now - 100)
    for url in (rust_relay.url, nostr_relay.url):
        await publish_to(url, [lesson_v1, lesson_v2, doomed, note, by_e, by_a])
    async with fast_pool() as pool:  # nostr-relay takes an already-expired event; rust-nostr refuses it
        await pool.publish(expired, [nostr_relay.url], timeout=10)
        quirky = {e.id for e in await pool.fetch([Filter(authors=frozenset({host.public_key}))], [nostr_relay.url], 10)}
    assert {doomed.id, expired.id} <= quirky, "nostr-relay no longer has the quirks this test is about"

    daemon = Daemon(daemon_config(tmp_path / "home", [rust_relay.url, nostr_relay.url], authors=[host.public_key]))
    await daemon.start()
    try:
        (sub,) = [s for s in daemon.follows.subscriptions() if s.name == "authors"]
        await eventually(lambda: all(daemon.follows.cursor(r, sub.key) for r in (rust_relay.url, nostr_relay.url)))
        served = {e.id for e in await daemon.store.query([Filter(authors=frozenset({host.public_key}))])}
        assert served == {lesson_v2.id, by_e.id, by_a.id}
        assert await daemon.store.get(expired.id) is None
        lessons = await daemon.store.lessons_of_course(course)
        assert [e.id for e in lessons] == [lesson_v2.id]
    finally:
        await daemon.stop()
