"""The daemon as a whole, in process: runtime file, lock, status, live indexing to local
clients; and the CLI commands around it (status without a daemon, the unit file, help)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from nostr_training.cli import _register, cli
from nostr_training.daemon.app import Daemon, read_runtime
from nostr_training.daemon.config import load_config
from nostr_training.errors import ConfigError
from nostr_training.signer import LocalSigner
from nostr_training.store.memory import MemoryStore

from daemon_fakes import FakePool, signed

R = "ws://127.0.0.1:9"


@pytest.fixture
def config(home):
    return load_config().with_overrides(relays=[R], port=0)


async def test_start_status_stop(config, alice, clock):
    store = await MemoryStore.open()
    pool = FakePool()
    daemon = Daemon(config, signer=LocalSigner(alice), store=store, pool=pool, clock=clock)
    await daemon.start()
    try:
        info = read_runtime(config.data_dir)
        assert info is not None and info.pid == os.getpid() and info.url == daemon.url
        assert stat.S_IMODE(config.runtime_path.stat().st_mode) == 0o600
        assert pool.relays == [R]
        assert any(k.startswith("own:") for k in pool.subscriptions)
        with pytest.raises(ConfigError, match="another daemon"):
            await Daemon(config, store=store, pool=FakePool(), clock=clock).start()

        # An event arriving from a relay is indexed and pushed to a local subscriber.
        async with connect(daemon.url) as ws:
            await ws.recv()  # AUTH challenge
            await ws.send(json.dumps(["REQ", "mine", {"authors": [alice.public_key]}]))
            assert json.loads(await ws.recv()) == ["EOSE", "mine"]
            own = next(s for s in pool.subscriptions.values() if s.key.startswith("own:"))
            note = signed(alice, 1, content="from a relay", created_at=clock.now())
            await own.on_event(R, note)
            got = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert got[:2] == ["EVENT", "mine"] and got[2]["id"] == note.id

        status = await daemon.status()
        assert status["running"] and status["pubkey"] == alice.public_key
        assert status["store"]["events"] == 1 and status["outbox_depth"] == 0
        assert status["relays"][0]["url"] == R
        assert status["counters"]["follows"]["stored"] == 1
    finally:
        await daemon.stop()
    assert not config.runtime_path.exists()
    assert read_runtime(config.data_dir) is None
    await store.close()


def test_status_without_a_daemon_reads_the_store(home):
    _register()
    result = CliRunner().invoke(cli, ["daemon", "status", "--json"], standalone_mode=False)
    assert result.return_value == 1
    body = json.loads(result.output)
    assert body["running"] is False and body["outbox_depth"] == 0
    text = CliRunner().invoke(cli, ["daemon", "status"], standalone_mode=False)
    assert "not running" in text.output


def test_stale_runtime_file_is_ignored(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "daemon.json").write_text(json.dumps(
        {"pid": os.getpid(), "port": 1, "url": "ws://127.0.0.1:1", "token": "t", "started_at": 0}
    ))
    assert read_runtime(home) is None  # the pid lives, but no daemon holds the lock


def test_install_service_prints_a_user_unit(home):
    _register()
    result = CliRunner().invoke(cli, ["daemon", "install-service"])
    assert result.exit_code == 0
    assert "ExecStart=" in result.output and "daemon run --log-format json" in result.output
    assert "WantedBy=default.target" in result.output


def test_install_service_writes_the_unit(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _register()
    result = CliRunner().invoke(cli, ["daemon", "install-service", "--write"])
    assert result.exit_code == 0
    assert (tmp_path / "xdg" / "systemd" / "user" / "nostr-training.service").read_text().startswith("[Unit]")


@pytest.mark.parametrize("args", [["daemon"], ["daemon", "run"], ["daemon", "status"], ["daemon", "install-service"], ["publish"]])
def test_every_command_has_an_example(args):
    _register()
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_publish_refuses_unsigned_input(home):
    _register()
    result = CliRunner().invoke(cli, ["publish", "--relay", R], input='{"kind": 1}\n', standalone_mode=False)
    assert result.exception is not None and "id" in str(result.exception)


def test_contrib_unit_matches_the_generated_one():
    from nostr_training.cli.daemon import service_unit

    shipped = (Path(__file__).resolve().parents[2] / "contrib" / "nostr-training.service").read_text()
    assert shipped.endswith(service_unit("%h/.local/bin/nostr-training"))


async def test_port_in_use_is_a_config_error(config, clock):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = config.with_overrides(port=taken.getsockname()[1])
        daemon = Daemon(busy, store=await MemoryStore.open(), pool=FakePool(), clock=clock)
        with pytest.raises(ConfigError, match="cannot serve on"):
            await daemon.run()
    assert not busy.runtime_path.exists()
    assert read_runtime(busy.data_dir) is None


async def test_relays_only_the_outbox_needed_are_let_go(config, alice, clock):
    store = await MemoryStore.open()
    pool = FakePool(down={"wss://theirs.example"})
    daemon = Daemon(config, signer=LocalSigner(alice), store=store, pool=pool, clock=clock)
    await daemon.start()
    try:
        note = signed(alice, 1, created_at=clock.now())
        await daemon.outbox.submit(note, ["wss://theirs.example", "wss://done.example"])
        pool.relays += ["wss://theirs.example", "wss://done.example"]
        await daemon.outbox.deliver_due()
        pool.subscriptions.clear()  # subscriptions hold a relay too: count only the outbox here
        assert await daemon.prune_relays() == ["wss://done.example"]
        assert pool.relays == [R, "wss://theirs.example"], "configured, and still owed a delivery"
        pool.down.clear()
        await clock.advance(3600)
        await daemon.outbox.deliver_due()
        assert await daemon.prune_relays() == ["wss://theirs.example"]
        assert pool.relays == [R]
    finally:
        await daemon.stop()
        await store.close()
