"""``crm import|export|list|show|link|require|expiring|certify``: contacts and their training.

Every answer reads the index for every learner (not only you): a contact's training is what
their linked pubkey holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cert import when
from .common import emit, table
from .options import data_dir_option, json_option, key_file_option
from .service_call import call_service

__all__ = ["register", "crm"]


@click.group("crm")
def crm() -> None:
    """Contacts, linked to Nostr identities, and the training they hold.

    \b
    Example:
      nostr-training crm import contacts.csv
      nostr-training crm require "Ana Lima" 31924:<hex>:first-aid 31924:<hex>:fire-safety
    """


def _contacts_table(contacts: list[dict]) -> None:
    table([(c["id"], c["name"], c["email"], (c["npub"] or "")[:20], ";".join(c["tags"])) for c in contacts],
          ("id", "name", "email", "npub", "tags"))


@crm.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@data_dir_option
@json_option
def crm_import(file: str, dry_run: bool, data_dir: str | None, as_json: bool) -> None:
    """Add and update contacts from a CSV file (- for stdin): name, email, notes, tags, npub, id.

    \b
    Example:
      nostr-training crm import contacts.csv --dry-run
    """
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    answer = call_service("crm", "import", {"csv": text, "dry_run": dry_run}, data_dir=data_dir)
    if as_json:
        emit(answer)
    else:
        verb = "would add" if dry_run else "added"
        click.echo(f"{verb} {answer['added']}, updated {answer['updated']}, unchanged {answer['unchanged']}")


@crm.command("export")
@click.option("--tag", default=None, help="Only contacts with this tag.")
@data_dir_option
def crm_export(tag: str | None, data_dir: str | None) -> None:
    """Contacts as CSV on stdout (imports back unchanged).

    \b
    Example:
      nostr-training crm export > contacts.csv
    """
    click.echo(call_service("crm", "export", {"tag": tag}, data_dir=data_dir)["csv"], nl=False)


@crm.command("list")
@click.option("--tag", default=None, help="Only contacts with this tag.")
@click.option("--certified-in", "course", default=None, help="Only contacts holding a valid certificate of COURSE.")
@click.option("--include-expired", is_flag=True, help="With --certified-in: expired certificates count too.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@data_dir_option
@json_option
def crm_list(tag: str | None, course: str | None, include_expired: bool, as_csv: bool, data_dir: str | None, as_json: bool) -> None:
    """Contacts, or those certified in a course (filter_contacts_by_certification).

    \b
    Example:
      nostr-training crm list --certified-in 31924:<hex>:first-aid --include-expired
    """
    body = {"tag": tag, "certified_in": course, "include_expired": include_expired}
    contacts = call_service("crm", "list", body, data_dir=data_dir)["contacts"]
    if as_json:
        emit({"contacts": contacts})
    elif as_csv:
        from ..crm import Contact, format_contacts_csv

        click.echo(format_contacts_csv(
            Contact(c["name"], c["email"], c["notes"], tuple(c["tags"]), c["pubkey"], c["id"]) for c in contacts
        ), nl=False)
    else:
        _contacts_table(contacts)


@crm.command("show")
@click.argument("contact")
@data_dir_option
@json_option
def crm_show(contact: str, data_dir: str | None, as_json: bool) -> None:
    """A contact's training status (id, npub or name): enrolled, completed, certificates, hours.

    \b
    Example:
      nostr-training crm show 12
    """
    answer = call_service("crm", "show", {"contact": contact}, data_dir=data_dir)
    if as_json:
        emit(answer)
        return
    c = answer["contact"]
    click.echo(f"{c['name']} <{c['email']}> {c['npub'] or '(not linked)'}")
    click.echo(f"  enrolled {answer['enrolled']}, completed {answer['completed']}, certificates {answer['certifications_earned']}"
               f" ({answer['certifications_expiring']} expiring), {answer['total_hours']} h, last activity {when(answer['last_activity'])}")
    for s in answer["certifications"]:
        click.echo(f"  {s['status']:<9}{s['course']}  expires {when(s['expires_at'])}  {s['code']}")


@crm.command("link")
@click.argument("contact")
@click.argument("identity")
@data_dir_option
@json_option
def crm_link(contact: str, identity: str, data_dir: str | None, as_json: bool) -> None:
    """Link a contact to a Nostr identity (npub, nprofile or hex).

    \b
    Example:
      nostr-training crm link 12 npub1...
    """
    answer = call_service("crm", "link", {"contact": contact, "identity": identity}, data_dir=data_dir)
    if as_json:
        emit(answer)
    else:
        click.echo(f"{answer['name']} (id {answer['id']}) is {answer['npub']}")


@crm.command("require")
@click.argument("contact")
@click.argument("courses", nargs=-1, required=True)
@data_dir_option
@json_option
def crm_require(contact: str, courses: tuple[str, ...], data_dir: str | None, as_json: bool) -> int:
    """Does the contact hold every course's certificate now? Exit 0 met, 1 not met.

    \b
    Example:
      nostr-training crm require "Ana Lima" 31924:<hex>:first-aid 31924:<hex>:fire-safety
    """
    answer = call_service("crm", "require", {"contact": contact, "courses": list(courses)}, data_dir=data_dir)
    if as_json:
        emit(answer)
    else:
        click.echo(f"{answer['contact']['name']}: {'met' if answer['met'] else 'NOT met'}")
        table([(r["course"], "yes" if r["met"] else "no", r["status"], when(r["expires_at"])) for r in answer["requirements"]],
              ("course", "met", "status", "expires"))
    return 0 if answer["met"] else 1


@crm.command("expiring")
@click.option("--days", type=click.IntRange(0, 36500), default=30, show_default=True)
@data_dir_option
@json_option
def crm_expiring(days: int, data_dir: str | None, as_json: bool) -> None:
    """Contacts whose certificates expire within DAYS, fewest days left first.

    \b
    Example:
      nostr-training crm expiring --days 60 --json
    """
    rows = call_service("crm", "expiring", {"days": days}, data_dir=data_dir)["expiring"]
    if as_json:
        emit({"expiring": rows})
    else:
        table([(r["contact"]["name"], r["course"], r["days_left"], when(r["expires_at"]), r["code"]) for r in rows],
              ("name", "course", "days", "expires", "code"))


@crm.command("certify")
@click.argument("contact")
@click.argument("course")
@click.option("--reason", default=None, help="Certify without the completion records, and say why.")
@data_dir_option
@key_file_option
@json_option
def crm_certify(contact: str, course: str, reason: str | None, data_dir: str | None, key_file: str | None, as_json: bool) -> int:
    """Issue COURSE's certificate to the contact's linked identity (add_certification_to_contact).

    Signs with your key, which must be the course's issuer.

    \b
    Example:
      nostr-training crm certify 12 31924:<hex>:first-aid --reason "assessed in person"
    """
    answer = call_service("crm", "certify", {"contact": contact, "course": course, "reason": reason},
                          data_dir=data_dir, key_file=key_file, signs=True)
    if as_json:
        emit(answer)
    else:
        click.echo(f"issued {answer['code']}" if answer["issued"] else f"not issued: {answer['reason']}")
    return 0 if answer["issued"] else 1


def register(cli: click.Group) -> None:
    cli.add_command(crm)
