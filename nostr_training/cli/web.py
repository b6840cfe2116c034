"""``open``: the daemon's web view in a browser, logged in with this start's secret."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

import click

from ..errors import ConfigError
from .common import emit, load_settings, note
from .options import data_dir_option, json_option

__all__ = ["open_web", "register", "web_url"]


def web_url(http_url: str, control_token: str, lesson: str | None = None, *, teach: bool = False) -> str:
    """The login link: the secret derived from this start's control token, then the page."""
    from ..web.security import login_secret

    target = "/web/"
    if lesson:
        target = f"/web/{'teach' if teach else 'lesson'}?l={quote(lesson, safe='')}"
    return f"{http_url}/web/login?token={login_secret(control_token)}&next={quote(target, safe='')}"


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("open")
@click.argument("lesson", required=False)
@click.option("--teach", is_flag=True, help="Open the instructor's page of LESSON.")
@click.option("--no-browser", is_flag=True, help="Print the link only.")
@data_dir_option
@json_option
def open_web(lesson: str | None, teach: bool, no_browser: bool, data_dir: str | None, as_json: bool) -> None:
    """Open the web view of the running daemon (a lesson's page, or the list of lessons).

    The link carries a secret of this daemon start: anyone holding it can act as you until the
    daemon stops, so do not share it. A browser opens where there is a display.

    \b
    Example:
      nostr-training open
      nostr-training open 31923:<instructor hex>:intro-1
      nostr-training open 31923:<instructor hex>:intro-1 --teach --no-browser
    """
    from ..daemon.app import read_runtime
    from ..daemon.web import enabled

    config = load_settings(data_dir)
    if not enabled(config):
        raise ConfigError("the web view is off ([web] enabled = false in config.toml)")
    info = read_runtime(config.data_dir)
    if info is None:
        raise ConfigError("no daemon is running on this data dir: start one with `nostr-training daemon run`")
    url = web_url(info.http_url, info.token, lesson, teach=teach)
    opened = False
    if not no_browser and _has_display():
        import webbrowser

        opened = webbrowser.open(url, new=2)
    if as_json:
        emit({"url": url, "browser": opened})
        return
    click.echo(url)
    if not opened and not no_browser:
        note("no browser opened here (no display): open the link above in a browser on this machine")


def register(cli: click.Group) -> None:
    cli.add_command(open_web)
