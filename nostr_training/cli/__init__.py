"""The ``nostr-training`` command: a thin layer over the package's services.

Toolbox commands read JSON on stdin and write one JSON object per line on stdout. Errors are
one line on stderr, never a traceback: exit 1 for a negative answer (invalid, not found, not
met), exit 2 for a usage error.
"""

from __future__ import annotations

import sys

import click

from ..errors import NostrTrainingError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="nostr-training")
def cli() -> None:
    """Instructor-led live training sessions over Nostr.

    \b
    Keys: --key-file PATH, else $NOSTR_TRAINING_KEY_FILE, else the default key in the data
    dir ($NOSTR_TRAINING_HOME, else the XDG data dir). The key file holds a NIP-49 ncryptsec;
    its password comes from $NOSTR_TRAINING_PASSWORD or a prompt on a terminal.
    """


def _register() -> None:
    from . import calendar, cert, crm, daemon, event, follow, identity, query, recording, relays, rsvp, toolbox, web

    for module in (toolbox, daemon, query, follow, relays, identity, recording, rsvp, calendar, cert, crm, event, web):
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn library errors into one line on stderr."""
    _register()
    try:
        rv = cli.main(args=argv, prog_name="nostr-training", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("nostr-training: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"nostr-training: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except NostrTrainingError as exc:
        click.echo(f"nostr-training: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except (RecursionError, MemoryError, OSError, ValueError) as exc:
        # Nothing reaches the user as a traceback: what no layer below named is still one line.
        click.echo(f"nostr-training: {exc.__class__.__name__}: {str(exc)[:200] or 'no detail'}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
