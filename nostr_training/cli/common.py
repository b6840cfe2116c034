"""What every service command needs: settings, the user's signer, the daemon or an offline
context, and output in JSON or as a table."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Awaitable, Sequence, TypeVar

import click

from ..errors import ConfigError, MalformedEvent

__all__ = ["load_settings", "load_signer", "run", "emit", "relay_urls", "note", "table"]

T = TypeVar("T")


def load_settings(data_dir: str | None):
    """config.toml (and the data dir) as the daemon reads them, without this run's overrides."""
    from ..daemon.config import load_config

    return load_config(data_dir)


def load_signer(key_file: str | None, config: Any, *, required: bool):
    """The user's signer from the key file; None when there is no key and none is required."""
    from ..keys import load_key_file
    from ..signer import LocalSigner
    from .options import read_password, resolve_key_file

    path = Path(key_file) if key_file else (config.key_file or resolve_key_file(None, str(config.data_dir)))
    if not path.exists():
        if key_file or required:
            raise ConfigError(f"no key at {path}: create one with 'nostr-training keys generate'")
        return None
    return LocalSigner(load_key_file(path, read_password()))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


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

