"""CLI commands: ``daemon run|status|install-service`` and ``publish``.

They are thin: ``run`` builds a ``Daemon`` from config.toml and this run's options; ``status``
and ``publish`` call a running daemon's control API, or, when none runs, the same services on
the data dir's own store (``publish`` then delivers with a short-lived relay pool, and what is
not acknowledged stays queued for the daemon).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from .common import emit, load_settings, load_signer, note, relay_urls, run
from .options import data_dir_option, json_option, key_file_option, signer_option

__all__ = ["register", "daemon", "publish", "service_unit"]


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
@signer_option
@click.option("--relay", "relays", multiple=True, metavar="URL", help="Relay to use (repeatable); replaces the config's list for this run.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Local endpoint port (0 picks a free one; default from config, 4869).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, help="Log lines on stderr: text or json.")
def run_cmd(data_dir: str | None, key_file: str | None, signer_uri: str | None, relays: tuple[str, ...], port: int | None, log_format: str | None) -> None:
    """Run the daemon in the foreground until SIGINT or SIGTERM.

    Writes a default config.toml on first run. Logs go to stderr.

    \b
    Example:
      nostr-training daemon run --relay wss://relay.example.com --log-format json
      nostr-training daemon run --signer 'bunker://<pubkey>?relay=wss://relay.nsec.app&secret=...'
    """
    from ..daemon.app import Daemon
    from ..daemon.config import write_config
    from ..daemon.logging import setup_logging

    base = load_settings(data_dir)
    if not base.config_path.exists():
        write_config(base)  # the defaults: --relay and --port are for this run only
    config = base.with_overrides(relays=relays or None, port=port, log_format=log_format)
    setup_logging(config.log_format)
    signer = load_signer(key_file, config, required=False, signer_uri=signer_uri)
    if not config.relays:
        note("nostr-training: no relays configured: pass --relay or run 'nostr-training relays set URL...'")
    from ..daemon.hosted import hosted_components

    try:
        run(Daemon(config, signer=signer, components=tuple(hosted_components(config))).run())
    except KeyboardInterrupt:
        pass


async def _offline_status(config: Any) -> dict[str, Any]:
    from ..services.context import offline_context
    from ..services.status import store_status

    if not config.database_path.exists():
        return {"running": False, "store": None, "outbox_depth": 0, "outbox_refused": [], "relays": []}
    async with offline_context(config, None, connect=False) as ctx:
        body = await store_status(ctx)
    return {"running": False, **body, "relays": [{"url": r, "state": "-", "last_error": None} for r in config.relays]}


def _print_status(status: dict[str, Any]) -> None:
    if status.get("running"):
        click.echo(f"daemon   running (pid {status['pid']}, {status['url']}, up {status.get('uptime', 0)} s)")
        if status.get("pubkey"):
            click.echo(f"pubkey   {status['pubkey']}")
    else:
        click.echo("daemon   not running")
    store = status.get("store") or {}
    click.echo(f"events   {store.get('events', 0)} indexed")
    indexing = status.get("indexing") or {}
    if indexing and not indexing.get("ok"):
        click.echo(f"NOT INDEXING since {indexing.get('since')}: {indexing.get('error')} (retrying; nothing is skipped)")
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
            click.echo(f"{e['event_id'][:16]}  {e['target']}  {e.get('message') or ''}")
    for name, body in (status.get("components") or {}).items():
        click.echo(f"{name:<8} {json.dumps(body)}")


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
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    status = client.call("GET", "/status") if client is not None else run(_offline_status(config))
    if as_json:
        emit(status)
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


#: Events sent to the daemon per control-API call: a daemon that dies mid-way costs at most one
#: batch of uncertainty, and everything reported before it was committed.
PUBLISH_BATCH = 50


def _publish_via_daemon(client: Any, events: list[Any], relays: tuple[str, ...], wait: float, allow_unknown: bool) -> list[dict[str, Any]]:
    """Batch by batch, printing each batch's results as they come: if the daemon dies, what it
    committed before has been reported."""
    from .client import DaemonGone

    out: list[dict[str, Any]] = []
    for start in range(0, len(events), PUBLISH_BATCH):
        batch = events[start:start + PUBLISH_BATCH]
        body = {"events": [e.to_dict() for e in batch], "relays": list(relays), "wait": wait,
                "allow_unknown_lessons": allow_unknown}
        try:
            answer = client.call("POST", "/publish", body, timeout=wait + 30)
        except DaemonGone as exc:
            raise DaemonGone(
                f"{exc}; {len(out)} of {len(events)} events were committed before and will be delivered when it runs again"
            ) from None
        for result in answer["results"]:
            line = dict(result, via="daemon")
            emit(line)
            out.append(line)
    return out


async def _publish_direct(config: Any, events: list[Any], relays: tuple[str, ...], wait: float, allow_unknown: bool) -> list[dict[str, Any]]:
    from ..services.context import offline_context
    from ..services.publish import publish_events

    async with offline_context(config, None) as ctx:
        reports = await publish_events(ctx, events, relays=relays or None, wait=wait, check_lessons=not allow_unknown)
    return [dict(r.to_dict(), via="direct") for r in reports]


@click.command("publish")
@data_dir_option
@click.option("--relay", "relays", multiple=True, metavar="URL", callback=relay_urls,
              help="Send to these relays instead of the outbox-model targets.")
@click.option("--timeout", type=click.FloatRange(0, 300), default=10.0, show_default=True,
              help="Seconds to wait for the relays' answers.")
@click.option("--allow-unknown-lesson", is_flag=True, help="Publish an RSVP to a lesson this index does not know.")
def publish(data_dir: str | None, relays: tuple[str, ...], timeout: float, allow_unknown_lesson: bool) -> int:
    """Publish signed events from stdin (one JSON object per line, or a JSON array).

    Our training kinds are checked with the strict parsers first. With a daemon running, events
    are committed to its outbox and delivered by it; without one they are committed to the data
    dir's outbox and sent directly, and what is not acknowledged stays queued for the daemon.
    One JSON line per event tells where it was delivered, refused or is still pending. Exits 1
    when an event was refused or delivered nowhere yet.

    \b
    Example:
      nostr-training publish --relay wss://relay.example.com < signed-event.json
    """
    from .client import running_daemon

    config = load_settings(data_dir)
    events = _read_events()
    client = running_daemon(config.data_dir)
    if client is not None:
        results = _publish_via_daemon(client, events, relays, timeout, allow_unknown_lesson)
    else:
        if not relays and not config.relays:
            raise ConfigError(f"no relays: pass --relay or run 'nostr-training relays set URL...' ({config.config_path})")
        note("nostr-training: no daemon running: sending directly; what is not acknowledged stays queued for the daemon")
        results = run(_publish_direct(config, events, relays, timeout, allow_unknown_lesson))
        for line in results:
            emit(line)
    return 0 if all(r["accepted"] and r["delivered"] for r in results) else 1


def register(cli: click.Group) -> None:
    """Add this module's commands to the top-level group."""
    cli.add_command(daemon)
    cli.add_command(publish)
