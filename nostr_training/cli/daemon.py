"""CLI commands: ``daemon run|status|install-service`` and ``publish``.

They are thin over ``nostr_training.daemon``: ``run`` builds a ``Daemon`` from the config file and
the options; the others find a running daemon through its runtime file (``daemon.json``) and
talk to its local endpoint, or, when none runs, use the store (and for ``publish`` a
short-lived relay pool) directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from .options import data_dir_option, json_option, key_file_option, read_password

__all__ = ["register", "daemon", "publish", "service_unit"]


def _config(data_dir: str | None, relays: tuple[str, ...] = (), port: int | None = None, log_format: str | None = None):
    from ..daemon.config import load_config

    return load_config(data_dir).with_overrides(relays=relays or None, port=port, log_format=log_format)


def _signer(key_file: str | None, config: Any) -> Any:
    """The user's signer when a key file exists; the daemon can run without one."""
    from ..keys import load_key_file
    from ..signer import LocalSigner
    from .options import resolve_key_file

    path = Path(key_file) if key_file else (config.key_file or resolve_key_file(None, str(config.data_dir)))
    if not path.exists():
        if key_file:
            raise ConfigError(f"key file not found: {path}")
        return None
    return LocalSigner(load_key_file(path, read_password()))


@click.group("daemon")
def daemon() -> None:
    """Run the daemon (index, outbox, local relay) or ask the running one.

    \b
    Example:
      nostr-training daemon run --relay wss://relay.example.com
      nostr-training daemon status
    """


@daemon.command("run")
@data_dir_option
@key_file_option
@click.option("--relay", "relays", multiple=True, metavar="URL", help="Relay to use (repeatable); replaces the config's list for this run.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Local endpoint port (0 picks a free one; default from config, 4869).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, help="Log lines on stderr: text or json.")
def run_cmd(data_dir: str | None, key_file: str | None, relays: tuple[str, ...], port: int | None, log_format: str | None) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM.

    Writes a default config.toml on first run. Logs go to stderr.

    \b
    Example:
      nostr-training daemon run --relay wss://relay.example.com --log-format json
    """
    from ..daemon.app import Daemon
    from ..daemon.config import load_config, write_config
    from ..daemon.logging import setup_logging

    base = load_config(data_dir)
    if not base.config_path.exists():
        write_config(base.with_overrides(relays=relays or None))
    config = base.with_overrides(relays=relays or None, port=port, log_format=log_format)
    setup_logging(config.log_format)
    signer = _signer(key_file, config)
    if not config.relays:
        click.echo(f"nostr-training: no relays configured: pass --relay or edit {config.config_path}", err=True)
    try:
        asyncio.run(Daemon(config, signer=signer).run())
    except KeyboardInterrupt:
        pass


def _get_status(info: Any) -> dict[str, Any]:
    request = urllib.request.Request(info.http_url + "/status", headers={"Authorization": f"Bearer {info.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def _offline_status(config: Any) -> dict[str, Any]:
    from ..daemon.app import jsonable, open_store

    if not config.database_path.exists():
        return {"running": False, "store": None, "outbox_depth": 0, "outbox_refused": [], "relays": []}
    store = await open_store(config.database_path)
    try:
        entries = await store.outbox_entries()
        return {
            "running": False,
            "store": jsonable(await store.stats()),
            "outbox_depth": await store.outbox_depth(),
            "outbox_refused": [jsonable(e) for e in entries if e.state.value == "refused"][-20:],
            "relays": [{"url": r, "state": "-", "last_error": None} for r in config.relays],
        }
    finally:
        await store.close()


def _print_status(status: dict[str, Any]) -> None:
    if status.get("running"):
        click.echo(f"daemon   running (pid {status['pid']}, {status['url']}, up {status.get('uptime', 0)} s)")
        if status.get("pubkey"):
            click.echo(f"pubkey   {status['pubkey']}")
    else:
        click.echo("daemon   not running")
    store = status.get("store") or {}
    click.echo(f"events   {store.get('events', 0)} indexed")
    click.echo(f"outbox   {status.get('outbox_depth', 0)} to deliver")
    relays = status.get("relays") or []
    if relays:
        width = max(len(r["url"]) for r in relays)
        click.echo("")
        click.echo(f"{'RELAY'.ljust(width)}  {'STATE':<14} LAST ERROR")
        for r in relays:
            click.echo(f"{r['url'].ljust(width)}  {str(r.get('state')):<14} {r.get('last_error') or '-'}")
    refused = status.get("outbox_refused") or []
    if refused:
        click.echo("")
        click.echo("REFUSED")
        for e in refused:
            click.echo(f"{e['event_id'][:16]}  {e['relay']}  {e.get('last_message') or ''}")


@daemon.command("status")
@data_dir_option
@json_option
def status_cmd(data_dir: str | None, as_json: bool) -> int:
    """Show the daemon's relays and their state, outbox depth, events indexed, refusals.

    Exits 0 when the daemon runs, 1 when it does not (the store is then read directly).

    \b
    Example:
      nostr-training daemon status --json
    """
    from ..daemon.app import read_runtime

    config = _config(data_dir)
    info = read_runtime(config.data_dir)
    status: dict[str, Any]
    if info is not None:
        try:
            status = _get_status(info)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise ConfigError(f"daemon (pid {info.pid}) did not answer at {info.url}: {exc}") from exc
    else:
        status = asyncio.run(_offline_status(config))
    if as_json:
        click.echo(json.dumps(status))
    else:
        _print_status(status)
    return 0 if status.get("running") else 1


def service_unit(executable: str, data_dir: str | None = None) -> str:
    """A systemd --user unit that runs the daemon with JSON logs (journald keeps stderr)."""
    args = f"{executable} daemon run --log-format json"
    if data_dir:
        args += f" --data-dir {data_dir}"
    return (
        "[Unit]\n"
        "Description=nostr-training daemon (Nostr index, outbox and local relay)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={args}\n"
        "# The key password, if the key file has one: NOSTR_TRAINING_PASSWORD=...\n"
        "EnvironmentFile=-%h/.config/nostr-training/daemon.env\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=20\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


@daemon.command("install-service")
@data_dir_option
@click.option("--write", is_flag=True, help="Write ~/.config/systemd/user/nostr-training.service instead of printing it.")
def install_service_cmd(data_dir: str | None, write: bool) -> None:
    """Print (or write) a systemd --user unit that runs the daemon.

    \b
    Example:
      nostr-training daemon install-service --write
      systemctl --user daemon-reload && systemctl --user enable --now nostr-training
    """
    exe = shutil.which("nostr-training") or f"{sys.executable} -m nostr_training.cli"
    unit = service_unit(exe, data_dir)
    if not write:
        click.echo(unit, nl=False)
        return
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "systemd" / "user" / "nostr-training.service"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit)
    click.echo(f"wrote {path}")
    click.echo("enable it with: systemctl --user daemon-reload && systemctl --user enable --now nostr-training")


def _read_events() -> list[Any]:
    """Signed events from stdin: JSON lines, concatenated objects, or one JSON array."""
    from ..event import Event, verify_event
    from .toolbox import stdin_objects

    items: list[Any] = []
    for value in stdin_objects():
        items.extend(value if isinstance(value, list) else [value])
    return [verify_event(Event.from_dict(item)) for item in items]


async def _publish_via_daemon(info: Any, events: list[Any], timeout: float) -> list[dict[str, Any]]:
    from websockets.asyncio.client import connect

    out = []
    async with connect(info.url, max_size=None) as ws:
        for event in events:
            await ws.send(json.dumps(["EVENT", event.to_dict()]))
            async with asyncio.timeout(timeout):
                while True:
                    msg = json.loads(await ws.recv())
                    if msg[0] == "OK" and msg[1] == event.id:
                        break
            out.append({"id": event.id, "via": "daemon", "ok": msg[2], "message": msg[3]})
    return out


async def _publish_direct(config: Any, events: list[Any], relays: tuple[str, ...], timeout: float, daemon_running: bool) -> list[dict[str, Any]]:
    """Commit to the store's outbox and, without a daemon, send now with a short-lived pool.

    Whatever is not acknowledged stays queued: the daemon delivers it when it next runs.
    """
    from ..clock import SystemClock
    from ..daemon.app import make_pool, open_store
    from ..daemon.outbox import Outbox

    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(config.database_path)
    pool = None if daemon_running else make_pool(signer=None, clock=SystemClock())
    try:
        outbox = Outbox(store, pool, clock=SystemClock(), default_relays=config.relays, timeout=timeout, fetch_timeout=min(timeout, 5.0))
        for event in events:
            await outbox.submit(event, relays or None)
        if pool is not None:
            await outbox.deliver_due()
        out = []
        for event in events:
            for entry in await store.outbox_entries(event.id):
                out.append({
                    "id": event.id, "relay": entry.relay, "state": entry.state.value,
                    "message": entry.last_message or "", "via": "queued for the daemon" if daemon_running else "direct",
                })
        return out
    finally:
        if pool is not None:
            await pool.close()
        await store.close()


@click.command("publish")
@data_dir_option
@click.option("--relay", "relays", multiple=True, metavar="URL", help="Send to these relays instead of the outbox-model targets.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for each answer.")
def publish(data_dir: str | None, relays: tuple[str, ...], timeout: float) -> int:
    """Publish signed events from stdin (one JSON object per line, or a JSON array).

    With a daemon running, events go through its local endpoint into its outbox. Without one,
    they are committed to the outbox and sent directly; one JSON line per (event, relay) shows
    the result, and what is not yet acknowledged stays queued for the daemon. Exits 1 when a
    relay refused an event.

    \b
    Example:
      nostr-training publish --relay wss://relay.example.com < signed-event.json
    """
    from ..daemon.app import read_runtime

    config = _config(data_dir)
    events = _read_events()
    info = read_runtime(config.data_dir)
    if info is not None and not relays:
        results = asyncio.run(_publish_via_daemon(info, events, timeout))
        refused = any(not r["ok"] for r in results)
    else:
        if not relays and not config.relays:
            raise ConfigError(f"no relays: pass --relay or list relays in {config.config_path}")
        results = asyncio.run(_publish_direct(config, events, relays, timeout, info is not None))
        refused = any(r["state"] == "refused" for r in results)
    for r in results:
        click.echo(json.dumps(r))
    return 1 if refused else 0


def register(cli: click.Group) -> None:
    """Add this module's commands to the top-level group."""
    cli.add_command(daemon)
    cli.add_command(publish)
