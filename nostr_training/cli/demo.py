"""``nostr-training demo``: the whole class on this machine, in one command (see ``nostr_training.demo``)."""

from __future__ import annotations

import asyncio
import sys

import click

from ..errors import NostrTrainingError
from .options import json_option

__all__ = ["demo", "invoke"]


def invoke(args: list[str]) -> tuple[int, str, str]:
    """One ``nostr-training`` command in this process, as the console script runs it:
    (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from . import main

    with CliRunner().isolation() as (out, err, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


@click.command("demo")
@click.option("--keep", "keep", type=click.Path(file_okay=False), default=None,
              help="Keep the three data dirs (and the relay's log) in DIR and say how to look at them.")
@click.option("--relay", "relays", multiple=True, metavar="URL",
              help="Run the class against these relays instead of a local one (repeatable).")
@click.option("--private", "private", is_flag=True,
              help="Run the whole class as a private course: invite-only, nothing about it in the clear.")
@json_option
def demo(keep: str | None, relays: tuple[str, ...], private: bool, as_json: bool) -> int:
    """Run a whole class on this machine: a relay, an instructor and two learners, one accelerated clock.

    Starts rust-nostr's relay on 127.0.0.1 (the 'demo' extra) and three daemons in temporary
    data dirs, then schedules a course and a 60-minute lesson, takes RSVPs with a waitlist,
    sends reminders as DMs, runs the live session (waiting room, room keys, a dropped
    connection), hands each learner their signed attendance privately and verifies it offline,
    issues a certificate and verifies it offline, publishes and watches the recording, checks a
    CRM requirement, runs a private lesson, and reads the relay as a stranger to show nothing
    private is there. It ends with a summary per learner and leaves nothing running, also
    when stopped by SIGTERM or SIGHUP.

    \b
    Example:
      nostr-training demo
      nostr-training demo --keep /tmp/class --json
      nostr-training demo --private
    """
    from ..demo import DemoFailed, DemoOptions, DemoStopped, run_demo

    options = DemoOptions(keep=keep, relays=tuple(relays), as_json=as_json, tty=sys.stdout.isatty(), private=private)
    try:
        summary = asyncio.run(run_demo(options, invoke))
    except DemoStopped as exc:
        # Stopped by a signal, after cleaning up: say so, and exit as the signal's shell code.
        click.echo(f"nostr-training: demo: {exc}", err=True)
        return 128 + exc.signum
    except DemoFailed as exc:
        raise NostrTrainingError(f"demo: {exc}") from None
    return 0 if summary.ok else 1
