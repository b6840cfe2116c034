"""``attendance proof|verify``: a learner's host-signed attendance, shown and checked offline.

Attendance and completion records are never published; each learner holds their own, delivered
privately by the host. ``attendance proof`` prints them as JSON (the proof file);
``attendance verify`` checks such a file with no network and no key, like ``cert verify``.
"""

from __future__ import annotations

import sys
from datetime import datetime

import click

from .common import emit, note
from .options import data_dir_option, json_option, key_file_option
from .service_call import call_service

__all__ = ["register"]


@click.command("proof")
@click.argument("lesson_ref", metavar="LESSON")
@data_dir_option
@key_file_option
@json_option
def attendance_proof(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """Print your host-signed attendance record for LESSON (and completion record) as JSON.

    Reads your private inbox (without a daemon, your gift wraps are fetched from your relays
    first). Exit 1 when the host has sent you no record for that lesson. Anyone checks the
    printed file with 'attendance verify FILE', offline.

    \b
    Example:
      nostr-training attendance proof intro > intro-attendance.json
    """
    answer = call_service("attendance", "proof", {"lesson": lesson_ref}, data_dir=data_dir, key_file=key_file,
                          reads_inbox=True)
    if as_json:
        emit(answer)
    else:
        click.echo(answer["proof"], nl=False)
    return 0


@click.command("verify")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@json_option
def attendance_verify(file: click.utils.LazyFile, as_json: bool) -> int:
    """Check an attendance proof FILE (or stdin) offline: signatures, strict parse, one learner.

    Prints the lesson, the learner, the host, the minutes attended and whether the lesson was
    completed. No network and no key. Exit 0 when it verifies, 1 when it does not.

    \b
    Example:
      nostr-training attendance verify intro-attendance.json
    """
    from ..nips.nip19 import npub_encode
    from ..services.records import check_attendance_proof

    try:
        text = file.read()
    except UnicodeDecodeError:
        text = "not UTF-8 text"
    check = check_attendance_proof(text)
    if as_json:
        emit(check.to_dict())
    else:
        click.echo(f"{'VALID' if check.valid else 'INVALID'}: {check.reason}")
        rows = [
            ("lesson", check.lesson),
            ("learner", npub_encode(check.learner) if check.learner else None),
            ("host", npub_encode(check.host) if check.host else None),
            ("minutes", check.minutes),
            ("rule met", None if check.met is None else ("yes" if check.met else "no")),
            ("complete", "yes" if check.complete else ("no" if check.valid else None)),
            ("completed", datetime.fromtimestamp(check.completed_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
             if check.completed_at else None),
            ("door", f"{check.door_checks} check(s) by the host" if check.door_checks else None),
        ]
        for name, value in rows:
            if value is not None:
                click.echo(f"  {name:<10}{value}")
    if not check.valid:
        note(f"nostr-training: the proof does not verify: {check.reason}")
    sys.stdout.flush()
    return 0 if check.valid else 1


def register(cli: click.Group) -> None:
    """Add ``proof`` and ``verify`` to the ``attendance`` group (defined with the live commands)."""
    group = cli.commands.get("attendance")
    if isinstance(group, click.Group):
        group.add_command(attendance_proof)
        group.add_command(attendance_verify)
