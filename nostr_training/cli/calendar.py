"""``ics LESSON|COURSE``: lessons as an iCalendar file for any calendar app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import emit, load_settings, note, run
from .options import data_dir_option, json_option

__all__ = ["register", "ics"]


async def _offline(config: Any, target: str) -> tuple[str, bytes]:
    from ..services.calendar import calendar_ics
    from ..services.context import offline_context

    async with offline_context(config, None, connect=False) as ctx:
        return await calendar_ics(ctx, target)


@click.command("ics")
@click.argument("target")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
@click.option("--feed-url", is_flag=True, help="Print the URL a calendar app subscribes to (the running daemon serves it).")
@data_dir_option
@json_option
def ics(target: str, output: str | None, feed_url: bool, data_dir: str | None, as_json: bool) -> None:
    """Write a lesson, or every lesson of a course, as iCalendar (naddr1... or a coordinate).

    Each lesson keeps one UID for its whole life; a reschedule bumps SEQUENCE, a cancelled
    lesson stays as STATUS:CANCELLED, and alarms ring 24 h and 1 h before. A running daemon
    also serves a course as a feed calendar apps subscribe to:
    http://127.0.0.1:<port>/calendar/<course coordinate>.ics?token=<feed token>; --feed-url
    prints it (the feed token only opens calendars, and stays the same across restarts).

    \b
    Example:
      nostr-training ics 31924:17162c92...:jail-support -o course.ics
      nostr-training ics 31924:17162c92...:jail-support --feed-url
    """
    from urllib.parse import quote

    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if feed_url:
        from ..daemon.routes_rsvp import feed_path, feed_token
        from ..errors import ConfigError
        from ..services.follows import course_coordinate

        if client is None:
            raise ConfigError("the calendar feed is served by the daemon: start it with 'nostr-training daemon run'")
        url = f"{client.info.http_url}{feed_path(course_coordinate(target))}?token={feed_token(config.data_dir)}"
        if as_json:
            emit({"url": url})
        else:
            click.echo(url)
        return
    if client is not None:
        answer = client.call("GET", "/ics?target=" + quote(target, safe=""))
        name, data = answer["name"], answer["ics"].encode("utf-8")
    else:
        name, data = run(_offline(config, target))
    if output:
        Path(output).write_bytes(data)
        note(f"nostr-training: wrote {name!r} to {output}")
    if as_json:
        emit({"name": name, "ics": data.decode("utf-8"), "output": output})
    elif not output:
        click.echo(data.decode("utf-8"), nl=False)


def register(cli: click.Group) -> None:
    cli.add_command(ics)
