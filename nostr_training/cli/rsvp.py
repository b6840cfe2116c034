"""``rsvp answer|list``: answer a lesson, and the instructor's view of who comes.

``rsvp`` is a group (``rsvp answer LESSON STATUS``, ``rsvp list LESSON``): click cannot take a
lesson as the group's own argument beside subcommands without guessing, so the short form
``rsvp LESSON STATUS`` is not offered.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from .common import emit, load_settings, load_signer, note, run, table
from .options import data_dir_option, json_option, key_file_option

__all__ = ["register", "rsvp"]

STATUSES = ("confirmed", "tentative", "declined", "accepted")


@click.group("rsvp")
def rsvp() -> None:
    """Answer lessons, and see who answered yours.

    \b
    Example:
      nostr-training rsvp answer naddr1... confirmed
      nostr-training rsvp list 31923:17162c92...:role-play-1
    """


def _when(seconds: int, tzid: str | None) -> str:
    """The moment in the user's zone, and in the lesson's when that reads differently."""
    from ..kinds.reminders import zone

    mine = datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone()
    text = f"{mine:%Y-%m-%d %H:%M %Z}"
    there = zone(tzid)
    if there is not None:
        theirs = datetime.fromtimestamp(seconds, tz=there)
        if f"{theirs:%H:%M %Z}" != f"{mine:%H:%M %Z}":
            text += f" ({theirs:%H:%M %Z} lesson time)"
    return text


async def _answer_offline(config: Any, signer: Any, lesson: str, status: str, message: str, wait: float) -> dict:
    from ..services.context import offline_context
    from ..services.private_training import fetch_private
    from ..services.rsvp import rsvp_to_lesson

    async with offline_context(config, signer) as ctx:
        if config.relays:  # a private lesson (or its revision) may be waiting in the user's gift wraps
            report = await fetch_private(ctx)
            if report is not None and (report.invitations or report.items):
                note(f"nostr-training: fetched {report.invitations} invitation(s) and {len(report.items)} private "
                     "item(s) first")
        return (await rsvp_to_lesson(ctx, lesson, status, message, wait=wait)).to_dict()


@rsvp.command("answer")
@click.argument("lesson")
@click.argument("status", type=click.Choice(STATUSES, case_sensitive=False))
@click.option("--note", "message", default="", help="A note for the instructor (public).")
@click.option("--timeout", type=click.FloatRange(0, 300), default=10.0, show_default=True)
@data_dir_option
@key_file_option
@json_option
def rsvp_answer(lesson: str, status: str, message: str, timeout: float, data_dir: str | None, key_file: str | None,
                as_json: bool) -> int:
    """Answer a lesson (naddr1... or 31923:<pubkey>:<d>): confirmed, tentative or declined.

    A new answer replaces your earlier one. RSVPs close when the session starts, or at the
    instructor's cut-off. Signs with your key.

    \b
    Example:
      nostr-training rsvp answer naddr1... confirmed --note "joining from Lisbon"
    """
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        note("nostr-training: signing with the daemon's key")
        result = client.call("POST", "/rsvp", {"lesson": lesson, "status": status, "note": message, "wait": timeout},
                             timeout=timeout + 30)
    else:
        signer = load_signer(key_file, config, required=True)
        note(f"nostr-training: signing with {run(signer.get_public_key())[:16]}...; no daemon running: sending directly")
        result = run(_answer_offline(config, signer, lesson, status, message, timeout))
    if as_json:
        emit(result)
    else:
        where = ", ".join(d["target"] for d in result["deliveries"] if d["state"] == "delivered") or "nowhere yet (queued)"
        private = "  (private: gift-wrapped to the host only)" if result.get("private") else ""
        click.echo(f"{result['status']}  {result['lesson']}  {result['id'][:16]}  delivered to {where}{private}")
    return 0 if result["delivered"] else 1


async def _list_offline(config: Any, signer: Any, lesson: str) -> dict:
    """Without a daemon: fetch and open the user's gift wraps first (private answers reach the
    host only there), when there is a key and a relay to ask."""
    from ..services.context import offline_context
    from ..services.private_training import fetch_private
    from ..services.rsvp import rsvp_list

    fetch = signer is not None and bool(config.relays)
    async with offline_context(config, signer, connect=fetch) as ctx:
        if fetch:
            report = await fetch_private(ctx)
            if report is not None:
                note(f"nostr-training: no daemon running: fetched your gift wraps from {len(config.relays)} relay(s) "
                     f"({report.rumors} private answer(s) or notice(s) opened)")
        return (await rsvp_list(ctx, lesson)).to_dict()


def _reminders(lines: list[dict]) -> str:
    return ", ".join(line["kind"] for line in lines) or "-"


@rsvp.command("list")
@click.argument("lesson")
@data_dir_option
@key_file_option
@json_option
def rsvp_list_command(lesson: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Who answered a lesson: status, waitlist place, re-confirmation, reminders sent and failed.

    \b
    Example:
      nostr-training rsvp list 31923:17162c92...:role-play-1 --json
    """
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        listing = client.call("GET", "/rsvp/list?lesson=" + _quote(lesson))
    else:
        listing = run(_list_offline(config, load_signer(key_file, config, required=False), lesson))
    if as_json:
        emit(listing)
        return
    seats = "unlimited" if listing["seats"] is None else str(listing["seats"])
    cancelled = "  CANCELLED" if listing["cancelled"] else ""
    click.echo(f"{listing['title']}  {_when(listing['start'], listing['start_tzid'])}  seats: {seats}{cancelled}")
    rows = [
        (
            r["pubkey"][:16], r["status"], r["waitlist_position"], "yes" if r["needs_reconfirmation"] else "",
            _reminders(r["reminders_sent"]),
            "; ".join(f"{f['kind']} ({f['state']})" for f in r["reminders_failed"])
            or ("" if r["inbox"] else "no inbox relays (10050)"),
        )
        for r in listing["rows"]
    ]
    table(rows, ("LEARNER", "STATUS", "WAIT#", "RECONFIRM", "REMINDERS SENT", "FAILED"))
    for warning in listing["warnings"]:
        note(f"nostr-training: {warning}")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def register(cli: click.Group) -> None:
    cli.add_command(rsvp)
