"""``event create|link|rsvp-sync|checkin|checkout``: in-person and hybrid training events."""

from __future__ import annotations

from datetime import datetime

import click

from .common import emit
from .options import data_dir_option, json_option, key_file_option
from .service_call import call_service

__all__ = ["register", "event"]


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Unix seconds, or an ISO 8601 time (a time without a zone is in the user's zone)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither unix seconds nor an ISO 8601 time", ctx=ctx, param=param) from None
    return int((parsed if parsed.tzinfo else parsed.astimezone()).timestamp())


@click.group("event")
def event() -> None:
    """Training events in person or hybrid: RSVPs enrol, door check-ins count as attendance.

    \b
    Example:
      nostr-training event create --d fa-2027-03 --title "First aid, Leeds" --start 2027-03-02T10:00 \\
          --end 2027-03-02T11:00 --location "Leeds Central Library" --course 31924:<hex>:first-aid
      nostr-training event checkin 31923:<hex>:fa-2027-03 npub1learner...
    """


@event.command("create")
@click.option("--d", "d", required=True, help="The event's identifier (d tag).")
@click.option("--title", required=True)
@click.option("--start", required=True, callback=_moment, help="Unix seconds or ISO 8601.")
@click.option("--end", required=True, callback=_moment, help="Unix seconds or ISO 8601.")
@click.option("--location", required=True)
@click.option("--course", default=None, help="The course this event is a lesson of.")
@click.option("--lesson", default=None, help="An existing lesson this event delivers.")
@click.option("--mode", type=click.Choice(["in_person", "hybrid"]), default="in_person", show_default=True)
@click.option("--tz", "tzid", default=None, help="IANA zone of the event (e.g. Europe/London).")
@data_dir_option
@key_file_option
@json_option
def event_create(d: str, title: str, start: int, end: int, location: str, course: str | None, lesson: str | None,
                 mode: str, tzid: str | None, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Publish a NIP-52 event (31923) linked to a course or lesson (create_training_event).

    Signs with your key: you are the host whose door checks count.

    \b
    Example:
      nostr-training event create --d fa-1 --title "First aid" --start 1803000000 --end 1803003600 \\
          --location "Hall B" --course 31924:<hex>:first-aid
    """
    body = {"d": d, "title": title, "start": start, "end": end, "location": location, "course": course,
            "lesson": lesson, "mode": mode, "tzid": tzid}
    answer = call_service("event", "create", body, data_dir=data_dir, key_file=key_file, signs=True)
    emit(answer) if as_json else click.echo(f"created {answer['event']}")


@event.command("link")
@click.argument("event_ref", metavar="EVENT")
@click.option("--course", default=None)
@click.option("--lesson", default=None)
@data_dir_option
@key_file_option
@json_option
def event_link(event_ref: str, course: str | None, lesson: str | None, data_dir: str | None, key_file: str | None,
               as_json: bool) -> None:
    """Link your event to a course and/or lesson (link_event_to_training). Signs with your key.

    \b
    Example:
      nostr-training event link 31923:<hex>:fa-1 --lesson 31923:<hex>:first-aid-1
    """
    answer = call_service("event", "link", {"event": event_ref, "course": course, "lesson": lesson},
                          data_dir=data_dir, key_file=key_file, signs=True)
    emit(answer) if as_json else click.echo(f"linked {answer['event']}: {answer['link']}")


@event.command("rsvp-sync")
@click.argument("event_ref", metavar="EVENT")
@click.argument("learner")
@click.argument("status")
@data_dir_option
@key_file_option
@json_option
def event_rsvp_sync(event_ref: str, learner: str, status: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Record LEARNER's answer (going, maybe, not_going, or accepted, tentative, declined).

    going and maybe enrol, not_going withdraws. Nobody signs an RSVP for someone else: for
    another learner this records your enrolment of them; for yourself it signs your lesson RSVP.
    The daemon does this by itself for learners' own RSVPs to your events.

    \b
    Example:
      nostr-training event rsvp-sync 31923:<hex>:fa-1 npub1learner... going
    """
    answer = call_service("event", "rsvp-sync", {"event": event_ref, "pubkey": learner, "status": status},
                          data_dir=data_dir, key_file=key_file, signs=True)
    emit(answer) if as_json else click.echo(("enrolled" if answer["enrolled"] else "withdrawn") + f" ({answer['status']})")


def _check(action: str, event_ref: str, learner: str, at: int | None, data_dir: str | None, key_file: str | None,
           as_json: bool) -> None:
    answer = call_service("event", "check", {"event": event_ref, "pubkey": learner, "action": action, "at": at},
                          data_dir=data_dir, key_file=key_file, signs=True)
    if as_json:
        emit(answer)
    else:
        done = "checked in" if action == "check_in" else "checked out"
        click.echo(f"{done} at {datetime.fromtimestamp(answer['at']).astimezone():%H:%M %Z}" if answer["ids"] else "already recorded")


@event.command("checkin")
@click.argument("event_ref", metavar="EVENT")
@click.argument("learner")
@click.option("--at", callback=_moment, default=None, help="When (default: now).")
@data_dir_option
@key_file_option
@json_option
def event_checkin(event_ref: str, learner: str, at: int | None, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Check LEARNER in at the door: a host-signed 8316 handed to the learner privately, queued even offline.

    \b
    Example:
      nostr-training event checkin 31923:<hex>:fa-1 npub1learner...
    """
    _check("check_in", event_ref, learner, at, data_dir, key_file, as_json)


@event.command("checkout")
@click.argument("event_ref", metavar="EVENT")
@click.argument("learner")
@click.option("--at", callback=_moment, default=None, help="When (default: now).")
@data_dir_option
@key_file_option
@json_option
def event_checkout(event_ref: str, learner: str, at: int | None, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Check LEARNER out at the door: a host-signed 8316 handed to the learner privately, queued even offline.

    \b
    Example:
      nostr-training event checkout 31923:<hex>:fa-1 npub1learner...
    """
    _check("check_out", event_ref, learner, at, data_dir, key_file, as_json)


def register(cli: click.Group) -> None:
    """Join the toolbox's ``event`` group (sign, verify) when it is there: one noun, one group."""
    existing = cli.commands.get("event")
    if isinstance(existing, click.Group) and existing is not event:
        for name, command in event.commands.items():
            existing.add_command(command, name)
    else:
        cli.add_command(event)
