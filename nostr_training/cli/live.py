"""Live training from the command line: ``course``, ``lesson``, ``session``, ``room``,
``attendance``, ``join``, ``leave`` and ``presence``.

Each command runs one operation of ``daemon.routes_live.OPERATIONS``: through the running
daemon's control API, or without a daemon in an offline context on the data dir (the same
service code). Times are read in ``--tz`` (default: $TZ, else UTC) and shown in the user's zone
and the lesson's own.
"""

from __future__ import annotations

import csv
import io
import os
import zoneinfo
from datetime import datetime, timezone
from typing import Any

import click

from .common import emit, load_settings, load_signer, note, run, table
from .options import data_dir_option, json_option, key_file_option

__all__ = ["register"]


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    name = name or os.environ.get("TZ") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"not an IANA time zone: {name!r}") from None


def _user_zone_name() -> str:
    return os.environ.get("TZ") or "UTC"


def _parse_time(text: str, zone: zoneinfo.ZoneInfo) -> int:
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use YYYY-MM-DD HH:MM") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp())


def _when(ts: int | None, tzid: str | None = None) -> str:
    """A moment in the user's zone, and in the lesson's when that differs."""
    if ts is None:
        return "-"
    mine = datetime.fromtimestamp(ts, timezone.utc).astimezone(_zone(_user_zone_name()))
    text = mine.strftime("%Y-%m-%d %H:%M %Z")
    if tzid and tzid != _user_zone_name():
        theirs = datetime.fromtimestamp(ts, timezone.utc).astimezone(_zone(tzid))
        text += theirs.strftime(f" ({tzid} %H:%M)")
    return text


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


async def _offline(config: Any, signer: Any, operation: str, body: dict[str, Any]) -> Any:
    from ..daemon.routes_live import OPERATIONS, PRIVATE_READS
    from ..services.context import offline_context
    from ..services.private_training import fetch_private

    reads_private = operation in PRIVATE_READS and signer is not None and bool(config.relays)
    async with offline_context(config, signer, connect=operation in _SIGNING_OPS() or reads_private) as ctx:
        if reads_private:
            report = await fetch_private(ctx)
            if report is not None:
                note(f"nostr-training: no daemon running: fetched your invitations and private lessons from "
                     f"{len(config.relays)} relay(s) ({report.invitations} new invitation(s), "
                     f"{len(report.items)} private item(s) opened)")
        return await OPERATIONS[operation](ctx, body)


def _SIGNING_OPS() -> frozenset[str]:
    from ..daemon.routes_live import SIGNING

    return SIGNING


def call(data_dir: str | None, key_file: str | None, operation: str, body: dict[str, Any]) -> Any:
    """Run ``operation`` through the daemon, else offline; say which key signed (stderr)."""
    from .client import running_daemon

    config = load_settings(data_dir)
    client = running_daemon(config.data_dir)
    if client is not None:
        answer = client.call("POST", f"/live/{operation}", body)
        where = "the daemon's key"
    else:
        signer = load_signer(key_file, config, required=operation in _SIGNING_OPS())
        answer = run(_offline(config, signer, operation, body))
        where = "your key file" if key_file is None else key_file
    signed_by = answer.get("signed_by") if isinstance(answer, dict) else None
    if signed_by:
        from ..nips.nip19 import npub_encode

        note(f"nostr-training: signed with {npub_encode(signed_by)} ({where})")
    return answer


def _common(f: Any) -> Any:
    return data_dir_option(key_file_option(json_option(f)))


# course ---------------------------------------------------------------------------------------


@click.group("course")
def course() -> None:
    """Courses you teach or follow.

    \b
    Example:
      nostr-training course create safety-101 "Safety 101"
      nostr-training course list
    """


@course.command("create")
@click.argument("d")
@click.argument("title")
@click.option("--description", default="", help="What the course is about.")
@click.option("--certification/--no-certification", default=None,
              help="Completing the course earns a certificate (kept as it was when not given).")
@click.option("--validity-days", type=click.IntRange(1), default=None, help="How long a certificate stays valid.")
@click.option("--issuer", default=None, metavar="NPUB", help="The key that signs the certificates (default: yours).")
@click.option("--private", is_flag=True, default=False,
              help="Never published in the clear: only invitees read it and its lessons (D stays a local name).")
@click.option("--invite", "invitees", multiple=True, metavar="NPUB",
              help="Invite this learner (npub or hex) to a private course; repeatable.")
@_common
def course_create(d: str, title: str, description: str, certification: bool | None, validity_days: int | None,
                  issuer: str | None, private: bool, invitees: tuple[str, ...], data_dir: str | None,
                  key_file: str | None, as_json: bool) -> None:
    """Create (or retitle) a course, signed with your key.

    A private course (--private) is published only encrypted, under a random id: D stays its
    name on your machine; its lessons are private too, and one invitation opens them all.

    \b
    Example:
      nostr-training course create safety-101 "Safety 101" --description "Basics"
      nostr-training course create safety-101 "Safety 101" --certification --validity-days 365
      nostr-training course create jail-support "Jail support" --private --invite npub1...
    """
    body: dict[str, Any] = {"d": d, "title": title, "description": description, "private": private,
                            "invitees": list(invitees)}
    if certification is not None:
        body["certification"] = certification
    if validity_days is not None:
        body["validity_days"] = validity_days
    if issuer is not None:
        body["issuer"] = issuer
    answer = call(data_dir, key_file, "course/create", body)
    if as_json:
        emit(answer)
    else:
        x = answer["course"]
        private_note = f" (private: call it {d!r} here; invitees: {len(x['invitees'])})" if x["private"] else ""
        click.echo(f"course {x['coordinate']}{private_note}")


def _invited(answer: dict[str, Any]) -> None:
    from ..nips.nip19 import npub_encode

    for pubkey in answer["invited"]:
        reason = answer["unreachable"].get(pubkey)
        click.echo(f"invited {npub_encode(pubkey)}" + (f" (not reachable yet: {reason})" if reason else ""))
    for pubkey in answer["already_invited"]:
        click.echo(f"already invited {npub_encode(pubkey)}")
    if answer["key_item"] != answer["item"]:
        note(f"nostr-training: the invitation opens the course {answer['key_item']} (its lessons share one key)")


@course.command("invite")
@click.argument("course_ref", metavar="COURSE")
@click.argument("invitees", nargs=-1, required=True, metavar="NPUB...")
@_common
def course_invite(course_ref: str, invitees: tuple[str, ...], data_dir: str | None, key_file: str | None,
                  as_json: bool) -> None:
    """Invite learners to your private course: each gets its key once, in a gift wrap, and then
    sees every lesson and revision of it. Signed with your key.

    \b
    Example:
      nostr-training course invite jail-support npub1... npub1...
    """
    answer = call(data_dir, key_file, "course/invite", {"course": course_ref, "invitees": list(invitees)})
    if as_json:
        emit(answer)
    else:
        _invited(answer)


@course.command("list")
@_common
def course_list(data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Courses in your index.

    \b
    Example:
      nostr-training course list --json
    """
    answer = call(data_dir, key_file, "course/list", {})
    if as_json:
        emit(answer)
    else:
        table([(c["d"], c["title"], len(c["lessons"]), c["author"][:12], "private" if c["private"] else "")
               for c in answer["courses"]], ("course", "title", "lessons", "author", "visibility"))


@course.command("show")
@click.argument("course_ref", metavar="COURSE")
@_common
def course_show(course_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """A course and its lessons.

    \b
    Example:
      nostr-training course show safety-101
    """
    answer = call(data_dir, key_file, "course/show", {"course": course_ref})
    if as_json:
        emit(answer)
        return
    private = "  private" if answer["course"]["private"] else ""
    click.echo(f"{answer['course']['title']}  ({answer['course']['coordinate']}){private}")
    _lesson_table(answer["lessons"])


# lesson ---------------------------------------------------------------------------------------


def _lesson_table(lessons: list[dict[str, Any]]) -> None:
    table([(x["d"], x["title"], _when(x["start"], x["tzid"]), f"{x['duration_minutes']} min",
            "private" if x.get("private") else "") for x in lessons],
          ("lesson", "title", "start", "duration", "visibility"))


@click.group("lesson")
def lesson() -> None:
    """Lessons: schedule, move, cancel, look up, and your own status in one.

    \b
    Example:
      nostr-training lesson schedule safety-101 intro "Intro" --start "2026-12-01 17:00" --tz Europe/Berlin --minutes 60
      nostr-training lesson status intro
    """


@lesson.command("schedule")
@click.argument("course_ref", metavar="COURSE")
@click.argument("d")
@click.argument("title")
@click.option("--start", required=True, help="Local start, YYYY-MM-DD HH:MM in --tz.")
@click.option("--tz", "tz", default=None, help="IANA zone of the lesson (default: $TZ, else UTC).")
@click.option("--minutes", type=click.IntRange(1), default=60, show_default=True, help="Duration.")
@click.option("--max-participants", type=click.IntRange(1), default=None)
@click.option("--rsvp/--no-rsvp", default=True, show_default=True,
              help="Take RSVPs (confirmed, seated learners are admitted automatically); --no-rsvp for a drop-in lesson.")
@click.option("--waiting-room/--no-waiting-room", default=True, show_default=True)
@click.option("--e2ee/--no-e2ee", default=True, show_default=True, help="Require end-to-end encrypted media.")
@click.option("--recording/--no-recording", default=False, show_default=True, help="Allow recording.")
@click.option("--rsvp-until", default=None, help="RSVPs close at this local time (YYYY-MM-DD HH:MM in --tz); default: the start.")
@click.option("--private", is_flag=True, default=False,
              help="A private lesson (automatic in a private course; refused in a public one).")
@click.option("--invite", "invitees", multiple=True, metavar="NPUB",
              help="Invite this learner (npub or hex); repeatable. They get the course's key.")
@_common
def lesson_schedule(course_ref: str, d: str, title: str, start: str, tz: str | None, minutes: int,
                    max_participants: int | None, rsvp: bool, waiting_room: bool, e2ee: bool, recording: bool,
                    rsvp_until: str | None, private: bool, invitees: tuple[str, ...], data_dir: str | None,
                    key_file: str | None, as_json: bool) -> None:
    """Schedule a live lesson in a course (D tags computed); signed with your key.

    A lesson of a private course is private: published only encrypted under the course's key,
    with a random id (D stays its name on your machine).

    \b
    Example:
      nostr-training lesson schedule safety-101 intro "Intro" --start "2026-12-01 17:00" --tz Europe/Berlin
      nostr-training lesson schedule jail-support intro "Intro" --start "2026-12-01 17:00" --invite npub1...
    """
    zone = _zone(tz)
    body = {"course": course_ref, "d": d, "title": title, "start": _parse_time(start, zone), "duration_minutes": minutes,
            "tzid": zone.key, "max_participants": max_participants, "requires_rsvp": rsvp, "waiting_room": waiting_room,
            "e2ee_required": e2ee, "allow_recording": recording,
            "rsvp_until": _parse_time(rsvp_until, zone) if rsvp_until else None, "private": private,
            "invitees": list(invitees)}
    answer = call(data_dir, key_file, "lesson/schedule", body)
    if as_json:
        emit(answer)
    else:
        x = answer["lesson"]
        private_note = f" (private: call it {d!r} here; invitees: {len(x['invitees'])})" if x["private"] else ""
        click.echo(f"lesson {x['coordinate']}{private_note}\nstarts {_when(x['start'], x['tzid'])}, "
                   f"{x['duration_minutes']} min")


@lesson.command("invite")
@click.argument("lesson_ref", metavar="LESSON")
@click.argument("invitees", nargs=-1, required=True, metavar="NPUB...")
@_common
def lesson_invite(lesson_ref: str, invitees: tuple[str, ...], data_dir: str | None, key_file: str | None,
                  as_json: bool) -> None:
    """Invite learners to your private lesson: each gets the key of its course once (it opens
    the course's lessons), in a gift wrap. Signed with your key.

    \b
    Example:
      nostr-training lesson invite intro npub1...
    """
    answer = call(data_dir, key_file, "lesson/invite", {"lesson": lesson_ref, "invitees": list(invitees)})
    if as_json:
        emit(answer)
    else:
        _invited(answer)


@lesson.command("reschedule")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--start", required=True, help="New local start, YYYY-MM-DD HH:MM in --tz.")
@click.option("--tz", "tz", default=None, help="IANA zone (default: the lesson's own zone).")
@click.option("--minutes", type=click.IntRange(1), default=None, help="New duration.")
@_common
def lesson_reschedule(lesson_ref: str, start: str, tz: str | None, minutes: int | None, data_dir: str | None,
                      key_file: str | None, as_json: bool) -> None:
    """Move a lesson that has not started; signed with your key.

    \b
    Example:
      nostr-training lesson reschedule intro --start "2026-12-02 17:00" --tz Europe/Berlin
    """
    if tz is None:  # the new time is read in the lesson's own zone, as it was scheduled
        tz = call(data_dir, key_file, "lesson/show", {"lesson": lesson_ref})["lesson"].get("tzid")
    zone = _zone(tz)
    answer = call(data_dir, key_file, "lesson/reschedule",
                  {"lesson": lesson_ref, "start": _parse_time(start, zone), "duration_minutes": minutes, "tzid": zone.key})
    if as_json:
        emit(answer)
    else:
        click.echo(f"lesson {answer['lesson']['coordinate']} now starts {_when(answer['lesson']['start'], answer['lesson']['tzid'])}")


@lesson.command("cancel")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--reason", default="", help="Shown to learners.")
@_common
def lesson_cancel(lesson_ref: str, reason: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Cancel a lesson before it goes live (a NIP-09 deletion); signed with your key.

    \b
    Example:
      nostr-training lesson cancel intro --reason "instructor ill"
    """
    answer = call(data_dir, key_file, "lesson/cancel", {"lesson": lesson_ref, "reason": reason})
    if as_json:
        emit(answer)
    else:
        click.echo(f"cancelled {lesson_ref} (deletion {answer['deletion'][:16]})")


@lesson.command("list")
@click.option("--course", "course_ref", default=None, help="Only this course's lessons (coordinate).")
@_common
def lesson_list(course_ref: str | None, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Lessons in your index, soonest first.

    \b
    Example:
      nostr-training lesson list --json
    """
    answer = call(data_dir, key_file, "lesson/list", {"course": course_ref})
    if as_json:
        emit(answer)
    else:
        _lesson_table(answer["lessons"])


@lesson.command("show")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def lesson_show(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """One lesson and its session state.

    \b
    Example:
      nostr-training lesson show intro
    """
    answer = call(data_dir, key_file, "lesson/show", {"lesson": lesson_ref})
    if as_json:
        emit(answer)
        return
    x = answer["lesson"]
    for label, value in (("lesson", x["coordinate"]), ("title", x["title"]), ("start", _when(x["start"], x["tzid"])),
                         ("duration", f"{x['duration_minutes']} min"), ("state", answer["state"]),
                         ("room", x["room"]), ("join at", x["location"]), ("e2ee required", x["e2ee_required"]),
                         ("visibility", "private" if x.get("private") else "public")):
        click.echo(f"{label:14} {value if value is not None else '-'}")


@lesson.command("status")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def lesson_status(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Your own view of a lesson: countdown, live, participants, your time so far, completion.

    \b
    Example:
      nostr-training lesson status intro --json
    """
    view = call(data_dir, key_file, "lesson/status", {"lesson": lesson_ref})["view"]
    if as_json:
        emit(view)
        return
    record = view["record"] or {}
    rows = [("lesson", view["title"]), ("state", view["state"]), ("starts", _when(view["start"], view["tzid"])),
            ("starts in", _duration(view["time_until_start"])), ("live", view["is_live"]),
            ("participants", view["participant_count"]), ("admission", view["admission"]),
            ("your time", _duration(record.get("total_seconds", view["attendance_seconds"]))),
            ("joins", record.get("join_count", view["join_count"])), ("completed", view["completed"]),
            ("join link", view["join_url"] or f"none: {view['join_reason']}"), ("recording", view["recording_url"])]
    for label, value in rows:
        click.echo(f"{label:13} {value if value is not None else '-'}")


# session and room -----------------------------------------------------------------------------


@click.group("session")
def session() -> None:
    """The host's live session: create the room, start, end, status.

    \b
    Example:
      nostr-training session start intro
      nostr-training session end intro
    """


def _lesson_op(operation: str, lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool,
               **extra: Any) -> dict[str, Any]:
    answer = call(data_dir, key_file, operation, {"lesson": lesson_ref, **extra})
    if as_json:
        emit(answer)
    return answer


@session.command("create")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--service", default=None, help="Conference service base URL (default: config [live] service).")
@_common
def session_create(lesson_ref: str, service: str | None, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Create the room now (the daemon does it 15 min before the start otherwise); no call starts.

    \b
    Example:
      nostr-training session create intro
    """
    answer = _lesson_op("session/create", lesson_ref, data_dir, key_file, as_json, service=service)
    if not as_json:
        click.echo(f"room {answer['room_id']}\njoin  {answer['join_url']}")


@session.command("start")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def session_start(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Go live (the meeting's status becomes live); only the host.

    \b
    Example:
      nostr-training session start intro
    """
    if not as_json:
        _lesson_op("session/start", lesson_ref, data_dir, key_file, False)
        click.echo(f"{lesson_ref}: live")
    else:
        _lesson_op("session/start", lesson_ref, data_dir, key_file, True)


@session.command("end")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def session_end(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """End the session: each learner gets their attendance and completion records privately, keys retired.

    \b
    Example:
      nostr-training session end intro
    """
    answer = _lesson_op("session/end", lesson_ref, data_dir, key_file, as_json)
    if not as_json:
        click.echo(f"{lesson_ref}: ended; recording: {answer['recording_url'] or 'none'}")
        _attendance_rows(answer["attendance"]["rows"])


@session.command("status")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def session_status(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """State, room, and how many are in it (the same for everyone).

    \b
    Example:
      nostr-training session status intro --json
    """
    answer = _lesson_op("session/status", lesson_ref, data_dir, key_file, as_json)
    if not as_json:
        for label in ("state", "room_id", "is_active", "participant_count"):
            click.echo(f"{label:18} {answer[label]}")
        click.echo(f"{'starts':18} {_when(answer['start'], answer['tzid'])}")


@click.group("room")
def room() -> None:
    """The waiting room: who asks to join, admit or deny them.

    \b
    Example:
      nostr-training room waiting intro
      nostr-training room admit intro <pubkey>
    """


@room.command("waiting")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def room_waiting(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Who waits for a decision, in request order.

    \b
    Example:
      nostr-training room waiting intro
    """
    answer = _lesson_op("room/waiting", lesson_ref, data_dir, key_file, as_json)
    if not as_json:
        table([(w["pubkey"], _when(w["requested_at"]), w["reason"]) for w in answer["waiting"]],
              ("pubkey", "asked at", "why waiting"))


def _decide(decision: str, lesson_ref: str, pubkey: str, reason: str, data_dir: str | None, key_file: str | None,
            as_json: bool) -> None:
    answer = _lesson_op("room/decide", lesson_ref, data_dir, key_file, as_json, participant=pubkey, decision=decision,
                        reason=reason)
    if not as_json:
        click.echo(f"{decision} {pubkey[:16]} ({answer['event'][:16]})")


@room.command("admit")
@click.argument("lesson_ref", metavar="LESSON")
@click.argument("pubkey")
@click.option("--reason", default="")
@_common
def room_admit(lesson_ref: str, pubkey: str, reason: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Admit a participant (8313 admit, signed by the host).

    \b
    Example:
      nostr-training room admit intro 17162c92...
    """
    _decide("admit", lesson_ref, pubkey, reason, data_dir, key_file, as_json)


@room.command("deny")
@click.argument("lesson_ref", metavar="LESSON")
@click.argument("pubkey")
@click.option("--reason", default="")
@_common
def room_deny(lesson_ref: str, pubkey: str, reason: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Deny (or remove) a participant (8313 deny, signed by the host).

    \b
    Example:
      nostr-training room deny intro 17162c92... --reason "not enrolled"
    """
    _decide("deny", lesson_ref, pubkey, reason, data_dir, key_file, as_json)


# attendance, join, leave ----------------------------------------------------------------------


def _attendance_rows(rows: list[dict[str, Any]]) -> None:
    table([(r["pubkey"][:16], _duration(r["total_seconds"]), r["join_count"], r["met"], r["completed"],
            "signed" if r["published"] else "so far") for r in rows],
          ("learner", "time", "joins", "met", "completed", "record"))


@click.group("attendance")
def attendance() -> None:
    """Attendance per learner: the host's records, or the time so far; your own proof.

    \b
    Example:
      nostr-training attendance show intro
      nostr-training attendance export intro --csv > intro.csv
      nostr-training attendance proof intro > proof.json
      nostr-training attendance verify proof.json
    """


@attendance.command("show")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def attendance_show(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Attendance of a lesson.

    \b
    Example:
      nostr-training attendance show intro --json
    """
    answer = _lesson_op("attendance/show", lesson_ref, data_dir, key_file, as_json)
    if not as_json:
        click.echo(f"state: {answer['state']}")
        _attendance_rows(answer["rows"])


@attendance.command("export")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (the default; --json for JSON).")
@_common
def attendance_export(lesson_ref: str, as_csv: bool, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Attendance as CSV (pubkey, seconds, joins, met, completed, published).

    \b
    Example:
      nostr-training attendance export intro --csv > intro.csv
    """
    answer = _lesson_op("attendance/show", lesson_ref, data_dir, key_file, as_json)
    if as_json:
        return
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["pubkey", "total_seconds", "join_count", "met", "completed", "published"])
    for r in answer["rows"]:
        writer.writerow([r["pubkey"], r["total_seconds"], r["join_count"], r["met"], r["completed"], r["published"]])
    click.echo(out.getvalue(), nl=False)


@click.command("join")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--consent/--no-consent", default=None, help="Recording consent (where recording is allowed).")
@click.option("--reconnect", is_flag=True, help="Coming back after a dropped connection: a join claim is recorded; it counts as a new join once the previous connection had lapsed (no heartbeat within the grace).")
@_common
def join(lesson_ref: str, consent: bool | None, reconnect: bool, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Ask to join (or rejoin) a live lesson; prints the link once you are admitted and hold the key.

    \b
    Example:
      nostr-training join intro
    """
    answer = call(data_dir, key_file, "join", {"lesson": lesson_ref, "consent": consent, "reconnect": reconnect})
    if as_json:
        emit(answer)
    elif answer["url"]:
        click.echo(f"join {answer['url']}" + (f" (room key epoch {answer['epoch']})" if answer["epoch"] else ""))
    else:
        click.echo(f"no link yet: {answer['reason']}")


@click.command("leave")
@click.argument("lesson_ref", metavar="LESSON")
@_common
def leave(lesson_ref: str, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Leave a live lesson (the host's daemon rekeys for those who stay).

    \b
    Example:
      nostr-training leave intro
    """
    answer = call(data_dir, key_file, "leave", {"lesson": lesson_ref})
    if as_json:
        emit(answer)
    else:
        click.echo(f"left {lesson_ref}")


@click.command("presence")
@click.argument("lesson_ref", metavar="LESSON")
@click.option("--hand/--no-hand", "hand", default=False, help="Raise your hand (--hand) or lower it.")
@_common
def presence(lesson_ref: str, hand: bool, data_dir: str | None, key_file: str | None, as_json: bool) -> None:
    """Say you are in LESSON's room now (NIP-53 presence), e.g. to raise your hand.

    A running daemon already says so every minute while you are in a live session; this sends
    one now. A private lesson's presence goes to its host only, in a gift wrap.

    \b
    Example:
      nostr-training presence intro --hand
    """
    answer = call(data_dir, key_file, "presence", {"lesson": lesson_ref, "hand": hand})
    if as_json:
        emit(answer)
    else:
        click.echo(f"present in {lesson_ref}" + (", hand raised" if hand else ""))


def register(cli: click.Group) -> None:
    for command in (course, lesson, session, room, attendance, join, leave, presence):
        cli.add_command(command)

