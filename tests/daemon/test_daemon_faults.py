"""Faults the daemon must survive without losing anything: a full disk, a second start."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

from polling import eventually
from websockets.asyncio.client import connect

from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.signer import LocalSigner

from daemon_fakes import FakePool, signed

R = "ws://127.0.0.1:9"


@contextlib.contextmanager
def small_disk(path: Path, size: str = "3m"):
    """A tmpfs of ``size`` at ``path`` (the test needs root, as CI has)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        raise AssertionError(f"cannot mount a tmpfs for the full-disk test: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave: int, name: str = "filler") -> Path:
    """Fill the filesystem at ``path`` up to ``leave`` bytes free."""
    filler = path / name
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


async def test_a_full_disk_stops_indexing_visibly_and_loses_nothing(tmp_path, monkeypatch, alice):
    with small_disk(tmp_path / "disk") as disk:
        monkeypatch.setenv("NOSTR_TRAINING_HOME", str(disk / "home"))
        config = load_config().with_overrides(relays=[R], port=0)
        clock = ManualClock(1_800_000_000)
        pool = FakePool()
        daemon = Daemon(config, signer=LocalSigner(alice), pool=pool, clock=clock)
        await daemon.start()
        try:
            own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
            await own.on_eose(R)
            filler = fill(disk, leave=64 * 1024)
            author = Keys.generate()
            sent = []
            for i in range(400):
                note = signed(alice, 1, content=f"note {i} " + "x" * 900, created_at=clock.now() + i)
                sent.append(note)
                await own.on_event(R, note)
            await daemon.follows.commit()
            status = await daemon.status()
            assert status["indexing"]["ok"] is False and "full" in status["indexing"]["error"]
            stored_before = (await daemon.store.stats())["events"]
            assert stored_before < len(sent)
            assert daemon.follows.cursor(R, own.key) is None or daemon.follows.cursor(R, own.key) < sent[-1].created_at

            # An event written to the endpoint now is refused with error:, not a dropped connection.
            last = fill(disk, leave=0, name="last-bytes")
            accepted, refused = [], []
            async with connect(daemon.url) as ws:
                await ws.recv()
                for i in range(300):
                    extra = signed(author, 1, content=f"while full {i} " + "y" * 2000, created_at=clock.now())
                    await ws.send(json.dumps(["EVENT", extra.to_dict()]))
                    ok = json.loads(await ws.recv())
                    assert ok[:2] == ["OK", extra.id]
                    (accepted if ok[2] else refused).append((extra, ok[3]))
                    if refused:
                        break
                assert refused and refused[0][1].startswith("error:") and "full" in refused[0][1]
                await ws.send(json.dumps(["REQ", "alive", {"limit": 1}]))
                assert json.loads(await ws.recv())[0] in ("EVENT", "EOSE"), "the connection lives on"
            for extra, _ in accepted:
                assert await daemon.store.get(extra.id) == extra, "every OK true was committed"

            # Space again: the next round writes what waited and asks the relays again.
            subscribed_before = pool.subscribe_calls
            filler.unlink()
            last.unlink()
            await clock.advance(daemon.follows.flush_interval)
            for _ in range(50):
                if (await daemon.status())["indexing"]["ok"]:
                    break
                await clock.advance(daemon.follows.flush_interval)
            assert (await daemon.status())["indexing"]["ok"]
            # The commit that reports ok sends the subscriptions again right after: wait for it.
            await eventually(lambda: pool.subscribe_calls > subscribed_before)
            stored = {e.id for e in await daemon.store.query([Filter()])}
            assert {e.id for e in sent} <= stored
        finally:
            await daemon.stop()


def test_publish_through_a_daemon_killed_midway_reports_what_was_committed(tmp_path, alice):
    """The daemon is SIGKILLed while ``publish`` streams 20,000 events to it: the CLI prints the
    events it was told are committed, one error line, exits 1; every one of them is in the
    outbox when the daemon runs again."""
    import signal
    import sys
    import time

    from nostr_training.daemon.app import read_runtime
    from nostr_training.daemon.config import write_config

    exe = str(Path(sys.executable).with_name("nostr-training"))
    home = tmp_path / "home"
    home.mkdir()
    write_config(load_config(home).with_overrides(relays=["ws://127.0.0.1:9"], port=0))
    env = {**os.environ, "NOSTR_TRAINING_HOME": str(home)}
    env.pop("NOSTR_TRAINING_KEY_FILE", None)
    log = open(home / "daemon.log", "ab")
    daemon = subprocess.Popen([exe, "daemon", "run"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if read_runtime(home) is not None:
                break
            assert daemon.poll() is None, (home / "daemon.log").read_text()
            time.sleep(0.05)
        assert read_runtime(home) is not None, "the daemon did not start within a minute"
        events = "\n".join(signed(alice, 1, content=f"n{i}", created_at=1_800_000_000 + i).to_json() for i in range(20000))
        publisher = subprocess.Popen([exe, "publish", "--timeout", "0"], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        publisher.stdin.write(events.encode())
        publisher.stdin.close()
        deadline = time.monotonic() + 30
        first = publisher.stdout.readline()  # the first batch is committed: now kill the daemon
        assert first, publisher.stderr.read()
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        out = first + publisher.stdout.read()
        err = publisher.stderr.read().decode()
        assert publisher.wait(max(1, deadline - time.monotonic())) == 1
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
    reported = [json.loads(line) for line in out.decode().splitlines()]
    assert 0 < len(reported) < 20000 and all(r["accepted"] for r in reported)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped answering" in lines[0] and "Traceback" not in err, err
    assert f"{len(reported)} of 20000 events were committed" in lines[0]

    import asyncio

    from nostr_training.store.sqlite import SqliteStore

    async def queued() -> set[str]:
        store = await SqliteStore.open(home / "index.sqlite")
        try:
            return {e.event_id for e in await store.outbox_entries()}
        finally:
            await store.close()

    assert {r["id"] for r in reported} <= asyncio.run(queued())


async def test_a_data_dir_left_world_readable_is_made_private(home, alice):
    """An existing 755 data dir with 644 files (an older version, a loose umask) is tightened
    at start, and the index the daemon creates is the user's alone."""
    import stat

    home.mkdir(parents=True)
    os.chmod(home, 0o755)
    old = home / "notes.txt"
    old.write_text("old")
    os.chmod(old, 0o644)
    config = load_config().with_overrides(relays=[R], port=0)
    daemon = Daemon(config, signer=LocalSigner(alice), pool=FakePool(), clock=ManualClock(1_800_000_000))
    await daemon.start()
    try:
        mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
        assert mode(home) == 0o700 and mode(old) == 0o600
        for name in ("index.sqlite", "daemon.json", "daemon.lock"):
            assert mode(home / name) == 0o600, name
        for extra in home.glob("index.sqlite-*"):
            assert mode(extra) == 0o600, extra.name
    finally:
        await daemon.stop()
