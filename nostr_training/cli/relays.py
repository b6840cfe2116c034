"""``relays set|show``: the user's relay lists (NIP-65 10002, NIP-17 10050) and config."""

from __future__ import annotations

from typing import Any

import click

from .common import emit, load_settings, load_signer, note, relay_urls, run, table
from .options import data_dir_option, json_option, key_file_option

__all__ = ["register", "relays"]


@click.group("relays")
def relays() -> None:
    """Your relays: where you publish and where others reach you.

    \b
    Example:
      nostr-training relays set wss://relay.example.com wss://nos.lol
      nostr-training relays show
    """


async def _offline(config: Any, signer: Any, plan: Any, wait: float) -> list[Any]:
    from ..services.context import offline_context
    from ..services.relay_lists import set_relays

    async with offline_context(config, signer) as ctx:
        return [r.to_dict() for r in await set_relays(ctx, plan, wait=wait)]


@relays.command("set")
@click.argument("urls", nargs=-1, callback=relay_urls)
@click.option("--read", "read_only", multiple=True, metavar="URL", callback=relay_urls, help="A relay you only read from.")
@click.option("--write", "write_only", multiple=True, metavar="URL", callback=relay_urls, help="A relay you only write to.")
@click.option("--inbox", multiple=True, metavar="URL", callback=relay_urls,
              help="Where DMs and room keys reach you (NIP-17; default: your read relays).")
@click.option("--timeout", type=click.FloatRange(0, 300), default=10.0, show_default=True)
@data_dir_option
@key_file_option
@json_option
def relays_set(urls: tuple[str, ...], read_only: tuple[str, ...], write_only: tuple[str, ...], inbox: tuple[str, ...],
               timeout: float, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """Publish your relay list (10002) and DM inbox (10050), and use them in config.toml.

    Without them, people who answer your lessons cannot find where to send, and nobody can
    send you a DM or a room key. Signs with your key.

    \b
    Example:
      nostr-training relays set wss://relay.example.com --inbox wss://inbox.example.com
    """
    from ..daemon.config import update_config
    from ..services.relay_lists import plan_relays
    from .client import running_daemon

    plan = plan_relays(urls, read_only=read_only, write_only=write_only, inbox=inbox)
    config = load_settings(data_dir)
    update_config(config.config_path, {("", "relays"): tuple(dict.fromkeys([*plan.write, *plan.read]))})
    client = running_daemon(config.data_dir)
    if client is not None:
        results = client.call("POST", "/relays", {"relays": list(urls), "read": list(read_only), "write": list(write_only),
                                                  "inbox": list(inbox), "wait": timeout}, timeout=timeout + 30)["results"]
    else:
        signer = load_signer(key_file, config, required=True)
        note(f"nostr-training: signing with {run(signer.get_public_key())[:16]}...; no daemon running: sending directly")
        config = load_settings(data_dir)
        results = run(_offline(config, signer, plan, timeout))
    if as_json:
        emit({"read": plan.read, "write": plan.write, "inbox": plan.inbox, "results": results})
    else:
        table([("read", " ".join(plan.read)), ("write", " ".join(plan.write)), ("inbox", " ".join(plan.inbox))], ("", "RELAYS"))
        for r in results:
            where = ", ".join(d["target"] for d in r["deliveries"] if d["state"] == "delivered") or "nowhere yet"
            click.echo(f"{r['id'][:16]}  delivered to {where}")
    return 0 if all(r["delivered"] for r in results) else 1


@relays.command("show")
@data_dir_option
@json_option
def relays_show(data_dir: str | None, as_json: bool) -> None:
    """The relays in config.toml.

    \b
    Example:
      nostr-training relays show --json
    """
    config = load_settings(data_dir)
    if as_json:
        emit({"relays": list(config.relays)})
    else:
        for url in config.relays:
            click.echo(url)


def register(cli: click.Group) -> None:
    cli.add_command(relays)
