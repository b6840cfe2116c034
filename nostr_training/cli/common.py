"""What every service command needs: settings, the user's signer, the daemon or an offline
context, and output in JSON or as a table."""

from __future__ import annotations

import json
import sys
from typing import Any, Awaitable, Sequence, TypeVar

import click

from ..errors import MalformedEvent

__all__ = ["load_settings", "load_signer", "run", "emit", "relay_urls", "note", "table", "signing_note"]

T = TypeVar("T")


def load_settings(data_dir: str | None):
    """config.toml (and the data dir) as the daemon reads them, without this run's overrides."""
    from ..daemon.config import load_config

    return load_config(data_dir)


def load_signer(key_file: str | None, config: Any, *, required: bool, signer_uri: str | None = None):
    """The user's signer: ``--signer bunker://...``, ``--key-file``, config.toml's ``[signer]``,
    else the default key file; None when there is no key and none is required.

    A bunker connected for the first time is remembered in config.toml (the spent secret
    dropped, the user's pubkey kept), so the next command needs no URI.
    """
    from ..user_signer import open_user_signer
    from .options import read_password

    def remember(profile: Any) -> None:
        from dataclasses import replace

        from ..daemon.config import load_config, write_config

        current = load_config(config.data_dir) if config.config_path.exists() else config
        write_config(replace(current, signer=profile))
        note(f"nostr-training: bunker connected for {profile.pubkey[:16]}...; kept in {config.config_path}")

    return open_user_signer(
        config, password=read_password, key_file=key_file, bunker_uri=signer_uri, required=required,
        on_connected=remember, on_auth_url=lambda url: note(f"nostr-training: approve this request in your signer: {url}"),
    )


def signing_note(signer: Any, pubkey: str, extra: str = "") -> None:
    """The stderr line of every command that signs: which key, held where."""
    from ..user_signer import signer_description

    note(f"nostr-training: signing as {pubkey[:16]}... ({signer_description(signer)}){extra}")


def run(coro: Awaitable[T]) -> T:
    """Run ``coro`` in a fresh loop; bunker sessions opened in it are closed before it ends."""
    import asyncio

    from ..user_signer import close_signer_sessions

    async def main() -> T:
        try:
            return await coro
        finally:
            await close_signer_sessions()

    return asyncio.run(main())


def emit(value: Any) -> None:
    """One JSON line on stdout, flushed (a reader of a pipe sees it at once)."""
    click.echo(json.dumps(value))
    sys.stdout.flush()


def note(text: str) -> None:
    """A remark for the user on stderr (never mixed into JSON output)."""
    click.echo(text, err=True)


def relay_urls(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    """A click callback: every --relay must be a ws:// or wss:// URL (a usage error otherwise)."""
    from ..nips.nip65 import normalize_relay_url

    out = []
    for value in values:
        try:
            out.append(normalize_relay_url(value))
        except MalformedEvent as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1], ctx=ctx, param=param) from None
    return tuple(out)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    """Rows as aligned columns, for a human reader."""
    cells = [[str(c) for c in header], *[[("-" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())

