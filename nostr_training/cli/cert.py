"""``cert issue|verify|export|revoke|list|accept|publish``: certificates anyone can verify offline.

``cert verify`` exits by the answer: 0 valid or expiring, 3 expired, 4 revoked, 5 not found,
6 invalid (1 stays "the command failed", 2 a usage error).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from .common import emit, table
from .options import data_dir_option, json_option, key_file_option
from .service_call import call_service

__all__ = ["register", "cert"]


def when(at: int | None) -> str:
    """A moment in the user's zone."""
    if at is None:
        return "-"
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _npub(pubkey: str | None) -> str:
    from ..nips.nip19 import npub_encode

    return npub_encode(pubkey) if pubkey else "-"


@click.group("cert")
def cert() -> None:
    """Certificates: issued by the course's issuer, verified by anyone, offline.

    \b
    Example:
      nostr-training cert issue 31924:<issuer hex>:rust-101 npub1learner...
      nostr-training cert verify 7K3M-9QXR-2D4F-HJ8P
      nostr-training cert verify certificate.json
    """


@cert.command("issue")
@click.argument("course")
@click.argument("learner")
@click.option("--reason", default=None, help="Certify without the completion records, and say why.")
@click.option("--private", "private", is_flag=True,
              help="Never publish it: the learner alone receives it (always so for a private course).")
@data_dir_option
@key_file_option
@json_option
def cert_issue(course: str, learner: str, reason: str | None, private: bool, data_dir: str | None, key_file: str | None,
               as_json: bool) -> int:
    """Award COURSE's certificate to LEARNER (npub or hex) with your key, the course's issuer.

    COURSE is a coordinate, an naddr, or your private course's local name.

    Signs with your key. Refused unless the learner completed the course's required lessons
    (trusted completion records in your index), or you give --reason. A private certificate
    (--private, or any certificate of a private course) is never published: the learner receives
    it in a gift wrap and alone decides to publish it ('cert publish').

    \b
    Example:
      nostr-training cert issue 31924:<issuer hex>:rust-101 npub1learner... --reason "exam passed"
      nostr-training cert issue 31924:<issuer hex>:jail-support npub1learner... --private
      nostr-training cert issue street-medic npub1learner...
    """
    answer = call_service(
        "cert", "issue", {"course": course, "learner": learner, "reason": reason, "private": private},
        data_dir=data_dir, key_file=key_file, signs=True,
    )
    if as_json:
        emit(answer)
    elif answer["issued"]:
        how = " privately (sent to the learner only)" if answer.get("private") else ""
        click.echo(f"issued {answer['code']} to {_npub(answer['learner'])}{how}, valid until {when(answer['valid_until'])}")
    else:
        click.echo(f"not issued: {answer['reason']}")
    return 0 if answer["issued"] else 1


@cert.command("verify")
@click.argument("reference")
@click.option("--expiring-days", type=click.IntRange(0, 36500), default=30, show_default=True,
              help="Say expiring when it expires within this many days.")
@data_dir_option
@json_option
def cert_verify(reference: str, expiring_days: int, data_dir: str | None, as_json: bool) -> int:
    """Check a certificate: a bundle FILE, a verification CODE or an NEVENT.

    No key needed: signatures, the issuer chain to the course, the validity window and
    revocations are checked from the file (no network) or the index. For a CODE or an NEVENT
    without a daemon, your relays are asked first for its revocations (and for an NEVENT your
    index does not hold, for the published certificate itself). Exit 0 valid or expiring,
    3 expired, 4 revoked, 5 not found, 6 invalid.

    \b
    Example:
      nostr-training cert verify certificate.json --json
    """
    body: dict[str, Any] = {"reference": reference, "expiring_days": expiring_days}
    path = Path(reference)
    if path.is_file():
        try:
            body["bundle"] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            body["bundle"] = "not UTF-8 text"
    verdict = call_service("cert", "verify", body, data_dir=data_dir, fetches="bundle" not in body)
    if as_json:
        emit(verdict)
    else:
        click.echo(f"{verdict['status'].upper()}: {verdict['reason']}")
        rows = [
            ("holder", verdict["holder_npub"]),
            ("course", f"{verdict['course_title'] or ''} {verdict['course'] or ''}".strip() or None),
            ("issuer", verdict["issuer_npub"]),
            ("code", verdict["code"]),
            ("valid from", when(verdict["valid_from"]) if verdict["valid_from"] else None),
            ("valid until", when(verdict["valid_until"]) if verdict["valid_until"] else None),
            ("revoked at", when(verdict["revoked_at"]) if verdict["revoked_at"] else None),
            ("problem", verdict["problem"]),
        ]
        for name, value in rows:
            if value:
                click.echo(f"  {name:<12}{value}")
    return int(verdict["exit_code"])


@cert.command("export")
@click.argument("reference")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the bundle here (default: stdout).")
@data_dir_option
def cert_export(reference: str, output: str | None, data_dir: str | None) -> None:
    """Write the bundle file for a certificate (CODE or NEVENT) from your index.

    The file holds the signed award, its definition, the course and any revocation: anyone
    verifies it with 'cert verify FILE' and no network.

    \b
    Example:
      nostr-training cert export 7K3M-9QXR-2D4F-HJ8P -o certificate.json
    """
    text = call_service("cert", "export", {"reference": reference}, data_dir=data_dir, fetches=True)["bundle"]
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cert.command("revoke")
@click.argument("reference")
@click.option("--reason", default="", help="Why: published with a public revocation, kept in your log for a private one.")
@click.option("--learner", default=None,
              help="REFERENCE is then a course (coordinate, naddr or local name): revoke this learner's certificate of it.")
@data_dir_option
@key_file_option
@json_option
def cert_revoke(reference: str, reason: str, learner: str | None, data_dir: str | None, key_file: str | None,
                as_json: bool) -> None:
    """Revoke a certificate you issued: an 8314 record and a NIP-09 deletion of the award, once.

    REFERENCE is the certificate (CODE or NEVENT), or with --learner its course. Signs with your
    key, which must be the award's issuer. For a private certificate only a marker naming the
    award by hash is published (no holder, no course, no reason, no deletion).

    \b
    Example:
      nostr-training cert revoke 7K3M-9QXR-2D4F-HJ8P --reason "issued in error"
      nostr-training cert revoke street-medic --learner npub1learner... --reason "failed practical"
    """
    answer = call_service(
        "cert", "revoke", {"reference": reference, "reason": reason, "learner": learner}, data_dir=data_dir,
        key_file=key_file, signs=True,
    )
    if as_json:
        emit(answer)
    else:
        click.echo(f"revoked {answer['award_id']}" if answer["revoked"] else f"already revoked {answer['award_id']}")


@cert.command("list")
@click.option("--expiring", type=click.IntRange(0, 36500), default=None, help="Only those expiring within DAYS.")
@click.option("--holder", default=None, help="Only this holder (npub or hex).")
@click.option("--course", default=None, help="Only this course (naddr, coordinate or your private course's local name).")
@data_dir_option
@json_option
def cert_list(expiring: int | None, holder: str | None, course: str | None, data_dir: str | None, as_json: bool) -> None:
    """Every holder's current certificate per course in your index, with its status.

    \b
    Example:
      nostr-training cert list --expiring 30
    """
    rows = call_service(
        "cert", "list", {"expiring": expiring, "holder": holder, "course": course}, data_dir=data_dir, fetches=True
    )["certificates"]
    if as_json:
        emit({"certificates": rows})
        return
    table(
        [(r["course_title"] or r["course"], _npub(r["holder"])[:20], r["status"], when(r["issued_at"]),
          when(r["expires_at"]), r["days_left"], r["code"]) for r in rows],
        ("course", "holder", "status", "issued", "expires", "days", "code"),
    )


@cert.command("accept")
@click.argument("reference")
@data_dir_option
@key_file_option
@json_option
def cert_accept(reference: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Show a certificate awarded to you in your NIP-58 profile badges (10008).

    Signs with your key (the learner's).

    \b
    Example:
      nostr-training cert accept 7K3M-9QXR-2D4F-HJ8P
    """
    answer = call_service("cert", "accept", {"reference": reference}, data_dir=data_dir, key_file=key_file, signs=True)
    if as_json:
        emit(answer)
    else:
        click.echo(f"shown in your profile badges ({answer['id']})")


@cert.command("publish")
@click.argument("reference")
@data_dir_option
@key_file_option
@json_option
def cert_publish(reference: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Publish a private certificate awarded to you: its definition, the award and your badges.

    Your choice alone: a private certificate reached only you. Signs your profile badges (10008)
    with your key (the learner's); the definition and the award keep the issuer's signatures.

    \b
    Example:
      nostr-training cert publish 7K3M-9QXR-2D4F-HJ8P
    """
    answer = call_service("cert", "publish", {"reference": reference}, data_dir=data_dir, key_file=key_file, signs=True)
    if as_json:
        emit(answer)
    else:
        from ..nips.nip19 import nevent_encode

        course = " and the course it was issued for" if answer.get("courses") else ""
        click.echo(f"published award {answer['award']}, its definition{course} and your profile badges")
        click.echo(f"anyone verifies it with: nostr-training cert verify {nevent_encode(answer['award'])}")


def register(cli: click.Group) -> None:
    cli.add_command(cert)
