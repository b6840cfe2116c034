"""What each page shows, as plain dicts for the templates, built from the same services the CLI
and the control API use (no rule is re-implemented here).

- ``lesson_page``: the learner's view of one lesson (``services.live.live_session_view``),
  its details (instructor's name and npub, duration, times in the viewer's and the lesson's
  zone), the join link (with an SFU token where ``[sfu]`` is configured, the room key in the
  link's fragment where E2EE is on), the recording and the learner's progress on it
  (``services.recordings``), and the learner's certificate for the course;
- ``teach_page``: the host's view: waiting room, RSVP list with waitlist, attendance table;
- ``course_page``: modules and lessons in order with the user's progress on each;
- ``certificate_verdict``: ``rules.verification.verify_certificate`` on the index or a bundle.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import kinds
from ..errors import MalformedEvent, NostrTrainingError, NotFound
from ..filters import Filter
from ..kinds.calendar import Course, Lesson
from ..kinds.certificate_bundle import parse_certificate_bundle
from ..nips.nip19 import npub_encode
from ..rules.rooms import admission, next_moment
from ..rules.verification import Verdict, verify_certificate
from ..services import live
from ..services.certificates import definition_coordinate
from ..services.context import ServiceContext
from ..services.media import join_token, sfu_config
from ..services.recordings import recording_ready, recording_status

__all__ = [
    "attendance_csv",
    "certificate_verdict",
    "course_page",
    "home_page",
    "lesson_page",
    "next_change",
    "teach_page",
    "when",
]

_FORMAT = "%a %d %b %Y %H:%M %Z"


def when(ts: int | None, tzid: str | None = None) -> dict[str, Any] | None:
    """A moment in the viewer's zone (the machine the daemon runs on) and in the lesson's."""
    if ts is None:
        return None
    local = datetime.fromtimestamp(ts).astimezone()
    out: dict[str, Any] = {"ts": ts, "iso": local.isoformat(), "local": local.strftime(_FORMAT), "lesson": None}
    if tzid:
        try:
            there = datetime.fromtimestamp(ts, ZoneInfo(tzid))
        except (ZoneInfoNotFoundError, ValueError):
            return out
        if there.utcoffset() != local.utcoffset() or there.tzname() != local.tzname():
            out["lesson"] = f"{there.strftime(_FORMAT)} ({tzid})"
    return out


def minutes(seconds: int | float | None) -> str:
    if not seconds:
        return "0 min"
    whole = int(seconds)
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


async def person(ctx: ServiceContext, pubkey: str) -> dict[str, str]:
    """A pubkey as people read it: the kind-0 name where the index has one, and the npub."""
    name = None
    events = await ctx.store.query([Filter(kinds=frozenset({kinds.METADATA}), authors=frozenset({pubkey}))])
    if events:
        try:
            profile = kinds.parse_profile(events[0])
            name = profile.display_name or profile.name
        except MalformedEvent:
            name = None
    npub = npub_encode(pubkey)
    return {"pubkey": pubkey, "npub": npub, "name": name or f"{npub[:12]}…{npub[-6:]}", "short": f"{npub[:12]}…"}


async def _me(ctx: ServiceContext) -> str:
    return await ctx.require_signer().get_public_key()


async def home_page(ctx: ServiceContext) -> dict[str, Any]:
    """Every lesson the index knows, soonest first, and whether the user hosts it."""
    me = await _me(ctx)
    lessons = await live.list_lessons(ctx)
    courses = await live.list_courses(ctx)
    rows = [
        {"coordinate": lesson.coordinate, "title": lesson.title, "start": when(lesson.start, lesson.start_tzid),
         "hosting": me in (lesson.author, lesson.instructor)}
        for lesson in sorted(lessons, key=lambda x: x.start)
    ]
    return {"me": await person(ctx, me), "lessons": rows,
            "courses": [{"coordinate": c.coordinate, "title": c.title} for c in courses]}


def _room_key_fragment(room_key: bytes | None) -> str:
    if room_key is None:
        return ""
    return "#e2ee=" + base64.urlsafe_b64encode(room_key).decode().rstrip("=")


async def _join_link(ctx: ServiceContext, lesson: Lesson, me: str, view: dict[str, Any]) -> dict[str, Any] | None:
    """The link an admitted learner opens: an SFU URL with its token where ``[sfu]`` is set here,
    the room's link otherwise; the room key goes only into the fragment (never to a server)."""
    if not view.get("join_url"):
        return None
    room_key = None
    if lesson.e2ee_required:
        keys = await live.room_keys(ctx, lesson)
        room_key = keys[0].key if keys else None
        if room_key is None:
            return None
    fragment = _room_key_fragment(room_key)
    if sfu_config(ctx) is not None:
        ticket = await join_token(ctx, lesson, me, room_key=room_key)
        if ticket.url and ticket.token:
            return {"url": f"{ticket.url}?access_token={ticket.token}{fragment}", "sfu": True, "e2ee": room_key is not None}
    return {"url": f"{view['join_url']}{fragment}", "sfu": False, "e2ee": room_key is not None}


async def _recording(ctx: ServiceContext, lesson: Lesson, hosting: bool) -> dict[str, Any] | None:
    recording = await recording_ready(ctx, lesson)
    if recording is None:
        return None
    out: dict[str, Any] = {
        "url": recording.url, "mime": recording.mime, "duration": recording.duration or lesson.duration_seconds,
        "encrypted": recording.encrypted, "progress": None,
    }
    if not hosting:
        try:
            out["progress"] = (await recording_status(ctx, lesson.coordinate)).to_dict()
        except NotFound:
            out["progress"] = None
    return out


async def _certificate(ctx: ServiceContext, lesson: Lesson, me: str) -> dict[str, Any] | None:
    """The learner's certificate for the lesson's course, with its code, if one was awarded."""
    if lesson.course is None:
        return None
    course = await ctx.store.course(lesson.course)
    if course is None or not course.certification_enabled:
        return None
    definition = definition_coordinate(course)
    for award in await ctx.store.awards(me):
        if award.definition == definition:
            return {"code": award.code, "valid_from": when(award.valid_from), "valid_until": when(award.valid_until),
                    "award": award.event_id}
    return None


async def lesson_page(ctx: ServiceContext, ref: str) -> dict[str, Any]:
    """The learner's page for one lesson: before, during or after, as the rules say now."""
    lesson = await live.resolve_lesson(ctx, ref)
    me = await _me(ctx)
    hosting = me in (lesson.author, lesson.instructor)
    view = await live.live_session_view(ctx, lesson.coordinate)
    now = ctx.clock.now()
    phase = "during" if view["is_live"] else ("after" if (view["is_ended"] or view["is_missed"]) else "before")
    if view["is_cancelled"]:
        phase = "cancelled"
    join = await _join_link(ctx, lesson, me, view) if phase == "during" and not hosting else None
    return {
        "lesson": {
            "coordinate": lesson.coordinate, "title": lesson.title, "summary": lesson.summary,
            "description": lesson.description, "course": lesson.course, "start": when(lesson.start, lesson.start_tzid),
            "end": when(lesson.end, lesson.start_tzid), "tzid": lesson.start_tzid,
            "duration": minutes(lesson.duration_seconds), "requires_rsvp": lesson.requires_rsvp,
            "max_participants": lesson.max_participants, "e2ee": lesson.e2ee_required,
            "waiting_room": lesson.waiting_room,
        },
        "instructor": await person(ctx, lesson.instructor),
        "me": await person(ctx, me),
        "hosting": hosting,
        "phase": phase,
        "now": now,
        "view": view,
        "seconds_to_start": max(0, lesson.start - now),
        "attendance": minutes(view["attendance_seconds"]),
        "join": join,
        "recording": await _recording(ctx, lesson, hosting) if phase == "after" else None,
        "certificate": await _certificate(ctx, lesson, me) if phase == "after" else None,
        "record": view.get("record"),
    }


async def teach_page(ctx: ServiceContext, ref: str, *, rsvps: Any = None) -> dict[str, Any]:
    """The host's page: state, waiting room, RSVPs (from ``rsvps``, the RSVP service's listing,
    when given), attendance; refused for a lesson the user does not host."""
    lesson = await live.resolve_lesson(ctx, ref)
    me = await _me(ctx)
    if me not in (lesson.author, lesson.instructor):
        raise NotFound(f"you do not host lesson {lesson.d}")
    details = await live.get_conference_details(ctx, lesson.coordinate)
    table = await live.attendance_table(ctx, lesson.coordinate)
    people = {}
    waiting = []
    ev = await live.load_evidence(ctx, lesson)
    asked = {q.author for q in ev.join_requests} | {d.participant for d in ev.decisions}
    statuses = [admission(ev, pk) for pk in asked - {lesson.author, lesson.instructor}]
    for status in sorted(statuses, key=lambda s: (s.admission.value != "waiting", s.requested_at or 0, s.pubkey)):
        people[status.pubkey] = await person(ctx, status.pubkey)
        waiting.append({"who": people[status.pubkey], "admission": status.admission.value, "reason": status.reason,
                        "requested_at": when(status.requested_at)})
    rows = []
    for row in table["rows"]:
        who = people.get(row["pubkey"]) or await person(ctx, row["pubkey"])
        rows.append({**row, "who": who, "time": minutes(row["total_seconds"])})
    rsvp_rows = []
    if rsvps is not None:
        for row in rsvps.rows:
            rsvp_rows.append({"who": await person(ctx, row.pubkey), "status": row.status,
                              "waitlist_position": row.waitlist_position,
                              "needs_reconfirmation": row.needs_reconfirmation, "answered_at": when(row.answered_at)})
    recording = await _recording(ctx, lesson, True)
    return {
        "lesson": {"coordinate": lesson.coordinate, "title": lesson.title, "start": when(lesson.start, lesson.start_tzid),
                   "duration": minutes(lesson.duration_seconds), "allow_recording": lesson.allow_recording,
                   "max_participants": lesson.max_participants},
        "state": table["state"],
        "details": details,
        "waiting": waiting,
        "attendance": rows,
        "rsvps": rsvp_rows if rsvps is not None else None,
        "recording": recording,
        "me": await person(ctx, me),
    }


def attendance_csv(table: dict[str, Any]) -> str:
    """The attendance table as CSV (one row per learner), as ``attendance export --csv``."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pubkey", "npub", "total_seconds", "join_count", "met", "completed", "published"])
    for row in table["rows"]:
        writer.writerow([row["pubkey"], npub_encode(row["pubkey"]), row["total_seconds"], row["join_count"],
                         "" if row["met"] is None else str(row["met"]).lower(), str(row["completed"]).lower(),
                         str(row["published"]).lower()])
    return out.getvalue()


async def _lesson_progress(ctx: ServiceContext, lesson: Lesson, me: str) -> str:
    try:
        view = await live.live_session_view(ctx, lesson.coordinate)
    except NostrTrainingError:
        return "unknown"
    if view["completed"]:
        return "completed"
    if lesson.recording_url or view["has_recording"]:
        try:
            status = await recording_status(ctx, lesson.coordinate)
            if status.completed:
                return "completed (recording)"
            return f"recording {status.percent:.0f} % watched"
        except NostrTrainingError:
            pass
    return str(view["state"]).replace("_", " ")


async def course_page(ctx: ServiceContext, ref: str) -> dict[str, Any]:
    """Modules and lessons in the course's order, with the user's progress on each."""
    course: Course | None = await ctx.store.course(ref)
    if course is None:
        raise NotFound(f"no course {ref} in the index: follow it first")
    me = await _me(ctx)
    known = {lesson.coordinate: lesson for lesson in await ctx.store.lessons(course.coordinate)}
    modules = course.modules or ((kinds.Module("Lessons", course.lessons or tuple(sorted(known, key=lambda c: known[c].start))),))
    out = []
    for module in modules:
        items = []
        for coord in module.lessons:
            lesson = known.get(coord)
            if lesson is None:
                items.append({"coordinate": coord, "title": coord.split(":", 2)[-1], "known": False})
                continue
            items.append({"coordinate": coord, "title": lesson.title, "known": True,
                          "start": when(lesson.start, lesson.start_tzid),
                          "progress": await _lesson_progress(ctx, lesson, me)})
        out.append({"title": module.title, "lessons": items})
    return {"course": {"coordinate": course.coordinate, "title": course.title, "description": course.description,
                       "author": await person(ctx, course.author)}, "modules": out}


async def certificate_verdict(ctx: ServiceContext, *, code: str | None, bundle_text: str | None) -> Verdict:
    """A certificate's status from a dropped bundle file, or from the index by its code."""
    now = ctx.clock.now()
    if bundle_text:
        return verify_certificate(parse_certificate_bundle(bundle_text), now=now, code=code or None)
    events = await ctx.store.query([Filter(kinds=frozenset({
        kinds.BADGE_AWARD, kinds.BADGE_DEFINITION, kinds.COURSE, kinds.CERTIFICATE_REVOCATION}))], now=now)
    return verify_certificate(events, now=now, code=code or "")


async def next_change(ctx: ServiceContext, ref: str) -> int | None:
    """When this lesson's page changes by time alone (start, join window, closing), or None."""
    lesson = await live.resolve_lesson(ctx, ref)
    now = ctx.clock.now()
    ev = await live.load_evidence(ctx, lesson)
    moments = [m for m in (next_moment(ev, now), lesson.start, lesson.end) if m is not None and m > now]
    return min(moments) if moments else None
