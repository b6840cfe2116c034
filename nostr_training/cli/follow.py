"""``follow add|remove|list``: the courses the daemon follows, changed without a restart."""

from __future__ import annotations

import click

from .common import emit, load_settings, note, run
from .options import data_dir_option, json_option

__all__ = ["register", "follow"]


@click.group("follow")
def follow() -> None:
    """Courses to follow: their lessons and updates reach your index.

    \b
    Example:
      nostr-training follow add naddr1...
      nostr-training follow list
    """


async def _offline(config, action: str, course: str | None) -> list[str]:
    from ..services.context import offline_context
    from ..services.follows import follow_course, followed_courses, unfollow_course

    async with offline_context(config, None, connect=False) as ctx:
        if action == "add":
            return await follow_course(ctx, course or "")
        if action == "remove":
            return await unfollow_course(ctx, course or "")
        return followed_courses(ctx)


def _change(data_dir: str | None, action: str, course: str | None) -> list[str]:
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is None:
        courses = run(_offline(config, action, course))
        if action != "list":
            note("nostr-training: saved in config.toml; the daemon follows it when it starts")
        return courses
    method = {"add": "POST", "remove": "DELETE", "list": "GET"}[action]
    return client.call(method, "/follows", {"course": course} if course else None)["courses"]


def _show(courses: list[str], as_json: bool) -> None:
    if as_json:
        emit({"courses": courses})
    else:
        for course in courses:
            click.echo(course)


@follow.command("add")
@click.argument("course")
@data_dir_option
@json_option
def follow_add(course: str, data_dir: str | None, as_json: bool) -> None:
    """Follow a course, given as naddr1... or 31924:<pubkey hex>:<d>.

    \b
    Example:
      nostr-training follow add 31924:17162c92...:jail-support
    """
    _show(_change(data_dir, "add", course), as_json)


@follow.command("remove")
@click.argument("course")
@data_dir_option
@json_option
def follow_remove(course: str, data_dir: str | None, as_json: bool) -> None:
    """Stop following a course.

    \b
    Example:
      nostr-training follow remove naddr1...
    """
    _show(_change(data_dir, "remove", course), as_json)


@follow.command("list")
@data_dir_option
@json_option
def follow_list(data_dir: str | None, as_json: bool) -> None:
    """The courses followed.

    \b
    Example:
      nostr-training follow list --json
    """
    _show(_change(data_dir, "list", None), as_json)


def register(cli: click.Group) -> None:
    cli.add_command(follow)
