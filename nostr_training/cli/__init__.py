"""The ``nostr-training`` command: a thin layer over the package's services.

Toolbox commands read JSON on stdin and write one JSON object per line on stdout. Errors are
one line on stderr, never a traceback: exit 1 for a negative answer (invalid, not found, not
met), exit 2 for a usage error.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import NostrTrainingError

__all__ = ["COMMANDS", "cli", "main"]

#: Top-level commands: name -> (module in this package, attribute, first paragraph of its help).
#: A command's module is imported only when that command runs, so ``--help`` and ``event verify``
#: start without the daemon, asyncio, NaCl or every kind module; ``--help`` lists the help text
#: kept here (``tests/test_cli_startup.py`` checks it against each command's own docstring).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "course": ("live", "course", 'Courses you teach or follow.'),
    "lesson": ("live", "lesson", 'Lessons: schedule, move, cancel, look up, and your own status in one.'),
    "session": ("live", "session", "The host's live session: create the room, start, end, status."),
    "room": ("live", "room", 'The waiting room: who asks to join, admit or deny them.'),
    "attendance": ("live", "attendance", "Attendance per learner: the host's records, or the time so far; your own proof."),
    "join": ("live", "join", 'Ask to join (or rejoin) a live lesson; prints the link once you are admitted and hold the key.'),
    "leave": ("live", "leave", "Leave a live lesson (the host's daemon rekeys for those who stay)."),
    "presence": ("live", "presence", "Say you are in LESSON's room now (NIP-53 presence), e.g. to raise your hand."),
    "cert": ("cert", "cert", "Certificates: issued by the course's issuer, verified by anyone, offline."),
    "crm": ("crm", "crm", "Contacts, linked to Nostr identities, and the training they hold."),
    "audit": ("audit", "audit", "Read your relays as a stranger would and report anything private they show."),
    "demo": (
        "demo",
        "demo",
        "Run a whole class on this machine: a relay, an instructor and two learners, one accelerated clock.",
    ),
    "daemon": ("daemon", "daemon", "Run the daemon (index, outbox, local relay) or ask the running one."),
    "dm": ("toolbox", "dm_command", "Make a NIP-17 DM: prints one gift wrap per receiver, then one for you."),
    "event": ("toolbox", "event_group", "Sign event templates and verify events (JSON on stdin, one per line)."),
    "follow": ("follow", "follow", "Courses to follow: their lessons and updates reach your index."),
    "ics": (
        "calendar",
        "ics",
        "Write a lesson, or every lesson of a course, as iCalendar (naddr1... or a coordinate).",
    ),
    "keys": ("toolbox", "keys_group", "Create, import, show and export your key (kept encrypted as a NIP-49 ncryptsec)."),
    "nip19": (
        "toolbox",
        "nip19_group",
        "Encode and decode NIP-19 bech32 entities (npub, nsec, note, nprofile, nevent, naddr).",
    ),
    "open": ("web", "open_web", "Open the web view of the running daemon (a lesson's page, or the list of lessons)."),
    "profile": (
        "identity",
        "profile_group",
        "Your Nostr profile (kind 0): the name DM clients and calendars show for you.",
    ),
    "publish": ("daemon", "publish", "Publish signed events from stdin (one JSON object per line, or a JSON array)."),
    "recording": (
        "recording",
        "recording",
        "A lesson's recording: publish it (host), record what you watched and see your progress.",
    ),
    "relays": ("relays", "relays", "Your relays: where you publish and where others reach you."),
    "req": ("query", "req", "Print the events matching a NIP-01 filter, one JSON object a line, newest first."),
    "rsvp": ("rsvp", "rsvp", "Answer lessons, and see who answered yours."),
    "signer": (
        "identity",
        "signer_group",
        "Sign with a NIP-46 remote signer (a bunker) instead of a key file on this machine.",
    ),
    "unwrap": (
        "toolbox",
        "unwrap_command",
        "Open gift wraps from stdin addressed to you; prints each rumor (its pubkey is the verified author).",
    ),
    "wrap": (
        "toolbox",
        "wrap_command",
        "Gift-wrap (NIP-59) rumor templates from stdin to each --to; prints one wrap per line.",
    ),
}

#: Commands another module adds to a group: the group's module loads them when it is loaded.
EXTENSIONS: dict[str, tuple[str, ...]] = {"event": ("event",), "attendance": ("records",)}


class _LazyGroup(click.Group):
    """A group that imports a command's module the first time that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"{__name__}.{module}"), attribute), cmd_name)
            for extension in EXTENSIONS.get(cmd_name, ()):
                importlib.import_module(f"{__name__}.{extension}").register(self)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS`` without importing the modules (click's layout)."""
        listed = [
            (name, self.commands.get(name) or click.Command(name, help=COMMANDS[name][2]))
            for name in self.list_commands(ctx)
        ]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in listed])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="nostr-training")
def cli() -> None:
    """Instructor-led live training sessions over Nostr.

    \b
    Keys: --key-file PATH, else $NOSTR_TRAINING_KEY_FILE, else the default key in the data
    dir ($NOSTR_TRAINING_HOME, else the XDG data dir). The key file holds a NIP-49 ncryptsec;
    its password comes from $NOSTR_TRAINING_PASSWORD or a prompt on a terminal.
    """


def _register() -> None:
    """Load every command now (tests that inspect the whole tree)."""
    for name in COMMANDS:
        cli.get_command(click.Context(cli), name)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn library errors into one line on stderr."""
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
