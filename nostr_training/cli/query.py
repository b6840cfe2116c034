"""``req``: read events as the user, from the daemon's index, the local index, or any relay."""

from __future__ import annotations

from typing import Any

import click

from ..errors import MalformedEvent
from .common import emit, load_settings, load_signer, note, relay_urls, run
from .options import data_dir_option, key_file_option

__all__ = ["register", "req"]


def _filter_from_options(kinds: tuple[int, ...], authors: tuple[str, ...], ids: tuple[str, ...],
                         tags: tuple[str, ...], limit: int | None, since: int | None, until: int | None) -> dict[str, Any]:
    from ..nips.nip19 import decode

    def hex_key(value: str) -> str:
        return decode(value).data if value.startswith(("npub1", "note1")) else value

    out: dict[str, Any] = {}
    if kinds:
        out["kinds"] = list(kinds)
    if authors:
        out["authors"] = [hex_key(a) for a in authors]
    if ids:
        out["ids"] = [hex_key(i) for i in ids]
    for tag in tags:
        name, sep, value = tag.partition("=")
        if not sep or len(name) != 1:
            raise MalformedEvent(f"--tag takes NAME=VALUE with a one-letter name, got {tag!r}", field="tag")
        out.setdefault(f"#{name}", []).append(value)
    for key, value in (("limit", limit), ("since", since), ("until", until)):
        if value is not None:
            out[key] = value
    return out


async def _from_relays(config: Any, signer: Any, filters: list[Any], relays: tuple[str, ...], timeout: float) -> list[Any]:
    from ..clock import SystemClock
    from ..daemon.app import make_pool
    from ..errors import RelayUnreachable

    pool = make_pool(signer=signer, clock=SystemClock())
    try:
        events = await pool.fetch(filters, list(relays), timeout=timeout)
        down = [s for s in pool.status() if not s.state.is_up and s.events_received == 0]
    finally:
        await pool.close()
    if down and len(down) == len(relays) and not events:
        raise RelayUnreachable("; ".join(f"{s.url} did not answer ({s.last_error or 'no connection'})" for s in down))
    for status in down:
        note(f"nostr-training: {status.url} did not answer ({status.last_error or 'no connection'})")
    return events


async def _from_index(config: Any, signer: Any, filters: list[Any]) -> list[Any]:
    from ..services.context import offline_context
    from ..services.query import query_index

    async with offline_context(config, signer, connect=False) as ctx:
        return await query_index(ctx, filters)


@click.command("req")
@click.argument("filters", nargs=-1)
@click.option("-k", "--kind", "kinds", type=int, multiple=True, help="Kind (repeatable).")
@click.option("-a", "--author", "authors", multiple=True, help="Author, hex or npub (repeatable).")
@click.option("-i", "--id", "ids", multiple=True, help="Event id, hex or note (repeatable).")
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Tag condition, e.g. -t a=31923:<pk>:<d>.")
@click.option("-l", "--limit", type=click.IntRange(0), default=None, help="At most this many events.")
@click.option("--since", type=click.IntRange(0), default=None, help="Unix seconds.")
@click.option("--until", type=click.IntRange(0), default=None, help="Unix seconds.")
@click.option("--relay", "relays", multiple=True, metavar="URL", callback=relay_urls,
              help="Ask these relays instead of the index (NIP-42 AUTH as you when asked).")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds to wait for relays.")
@data_dir_option
@key_file_option
def req(filters: tuple[str, ...], kinds: tuple[int, ...], authors: tuple[str, ...], ids: tuple[str, ...],
        tags: tuple[str, ...], limit: int | None, since: int | None, until: int | None, relays: tuple[str, ...],
        timeout: float, data_dir: str | None, key_file: str | None) -> int:
    """Print the events matching a NIP-01 filter, one JSON object a line, newest first.

    FILTERS are NIP-01 filter objects as JSON; the options build one instead. Without --relay
    the daemon's index answers (your own gift wraps included); with no daemon running, the
    local index is read directly. Exits 1 when nothing matched.

    \b
    Example:
      nostr-training req -k 31923 -t a=31924:<pubkey hex>:jail-support
      nostr-training req '{"kinds":[1059]}' | nostr-training unwrap
      nostr-training req --relay wss://relay.example.com -k 10002 -a npub1...
    """
    import json

    from ..services.query import parse_filters
    from .client import running_daemon

    raw: list[Any] = []
    for text in filters:
        try:
            raw.append(json.loads(text))
        except ValueError as exc:
            raise MalformedEvent(f"a filter must be a JSON object: {exc}", field="filter") from None
    if not raw:
        raw = [_filter_from_options(kinds, authors, ids, tags, limit, since, until)]
    parsed = parse_filters(raw)
    config = load_settings(data_dir)
    if relays:
        events = run(_from_relays(config, load_signer(key_file, config, required=False), parsed, relays, timeout))
        lines = [e.to_dict() for e in events]
    else:
        client = running_daemon(config.data_dir)
        if client is not None:
            lines = client.call("POST", "/req", {"filters": raw})["events"]
        else:
            note("nostr-training: no daemon running: reading the local index (it may be behind the relays)")
            lines = [e.to_dict() for e in run(_from_index(config, load_signer(key_file, config, required=False), parsed))]
    for line in lines:
        emit(line)
    return 0 if lines else 1


def register(cli: click.Group) -> None:
    cli.add_command(req)
