"""``audit``: what your relays show a stranger about your private training."""

from __future__ import annotations

import click

from .common import emit, relay_urls, table
from .options import data_dir_option, json_option, key_file_option
from .service_call import call_service

__all__ = ["register", "audit"]


@click.command("audit")
@click.option("--relay", "relays", multiple=True, metavar="URL", callback=relay_urls,
              help="Read these relays (default: yours).")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds to wait for relays.")
@data_dir_option
@key_file_option
@json_option
def audit(relays: tuple[str, ...], timeout: float, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """Read your relays as a stranger would and report anything private they show.

    A fresh key reads every kind the relays serve. A leak is a title, description or address of
    one of your private courses, lessons, rooms or certificates, a learner of one named outside
    a gift wrap's recipient tag, or any attendance record. Exits 1 when there is a leak.

    \b
    Example:
      nostr-training audit
      nostr-training audit --relay wss://relay.example.org --json
    """
    answer = call_service("privacy", "audit", {"relays": list(relays), "timeout": timeout},
                          data_dir=data_dir, key_file=key_file)
    if as_json:
        emit(answer)
    else:
        click.echo(f"read {answer['events']} events from {', '.join(answer['relays'])} as a stranger; "
                   f"checked for {answer['private_items']} private items and {answer['learners']} of their learners")
        for url in answer["unanswered"]:
            click.echo(f"{url} did not answer")
        if answer["leaks"]:
            table([(leak["kind"], leak["event"][:16], leak["why"]) for leak in answer["leaks"]], ("kind", "event", "leak"))
        else:
            click.echo("nothing private shows")
    return 1 if answer["leaks"] else 0


def register(cli: click.Group) -> None:
    cli.add_command(audit)
