"""The control API for live sessions: ``POST /live/<operation>`` with a JSON body.

``OPERATIONS`` maps each operation to a service call on a ``ServiceContext``; the daemon's
routes and the CLI without a daemon (``offline_context``) run the very same table, so a command
behaves alike either way. Every answer of an operation that signs carries ``signed_by`` (the
key used), which the CLI reports on stderr.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..errors import MalformedEvent
from ..event import Event, verify_event
from ..kinds.calendar import Course, Lesson
from ..kinds.rooms import Decision
from ..nips.nip19 import pubkey_from_text
from ..rules.rooms import session_state
from ..services import live, private_training
from ..services.context import ServiceContext
from .http import Route

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["OPERATIONS", "SIGNING", "PRIVATE_READS", "routes", "lesson_dict", "course_dict"]

Operation = Callable[[ServiceContext, dict[str, Any]], Awaitable[Any]]


def _text(body: dict[str, Any], name: str, *, required: bool = True, default: str = "") -> str:
    value = body.get(name, default)
    if value is None and not required:
        return default
    if not isinstance(value, str) or (required and not value):
        raise MalformedEvent(f"'{name}' must be a non-empty string", field=name)
    return value


def _int(body: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if type(value) is not int:
        raise MalformedEvent(f"'{name}' must be an integer", field=name)
    return value


def _pubkeys(body: dict[str, Any], name: str, *, required: bool = False) -> list[str]:
    """A list of npubs or hex pubkeys, as hex."""
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise MalformedEvent(f"'{name}' must be a list of npub or hex pubkeys", field=name)
    return [pubkey_from_text(v) for v in value]


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise MalformedEvent(f"'{name}' must be true or false", field=name)
    return value


def course_dict(course: Course) -> dict[str, Any]:
    return {"coordinate": course.coordinate, "d": course.d, "title": course.title, "author": course.author,
            "description": course.description, "lessons": list(course.lessons), "event_id": course.event_id,
            "certification": course.certification_enabled, "validity_days": course.validity_days,
            "issuer": course.certificate_issuer, "private": course.private, "invitees": list(course.invitees)}


def lesson_dict(lesson: Lesson) -> dict[str, Any]:
    return {"coordinate": lesson.coordinate, "d": lesson.d, "title": lesson.title, "start": lesson.start,
            "end": lesson.end, "tzid": lesson.start_tzid, "duration_minutes": lesson.duration_minutes,
            "course": lesson.course, "instructor": lesson.instructor, "room": lesson.room, "location": lesson.location,
            "requires_rsvp": lesson.requires_rsvp, "waiting_room": lesson.waiting_room,
            "allow_recording": lesson.allow_recording, "e2ee_required": lesson.e2ee_required,
            "max_participants": lesson.max_participants, "completion_minutes": lesson.completion_minutes,
            "completion_percent": lesson.completion_percent, "event_id": lesson.event_id, "private": lesson.private,
            "invitees": list(lesson.invitees)}


async def _signed_by(ctx: ServiceContext) -> str:
    return await ctx.require_signer().get_public_key()


async def course_create(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    certification = body.get("certification")
    if certification is not None and not isinstance(certification, bool):
        raise MalformedEvent("'certification' must be true or false", field="certification")
    issuer = body.get("issuer") or None
    if issuer is not None:
        issuer = pubkey_from_text(str(issuer))
    course = await live.create_course(ctx, _text(body, "d"), _text(body, "title"),
                                      description=_text(body, "description", required=False),
                                      certification=certification, validity_days=_int(body, "validity_days", required=False),
                                      issuer=issuer, private=_flag(body, "private", False),
                                      invitees=_pubkeys(body, "invitees"))
    return {"course": course_dict(course), "signed_by": await _signed_by(ctx)}


async def course_list(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"courses": [course_dict(c) for c in await live.list_courses(ctx)]}


async def course_show(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    ref = _text(body, "course")
    courses = [c for c in await live.list_courses(ctx) if ref in (c.coordinate, c.d)]
    course = courses[0] if courses else await private_training.resolve_course(ctx, ref)
    return {"course": course_dict(course), "lessons": [lesson_dict(x) for x in await live.list_lessons(ctx, course.coordinate)]}


async def lesson_schedule(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    lesson = await live.schedule_lesson(
        ctx, _text(body, "course"), _text(body, "d"), _text(body, "title"), _int(body, "start") or 0,
        _int(body, "duration_minutes") or 0, tzid=body.get("tzid"), summary=_text(body, "summary", required=False),
        max_participants=_int(body, "max_participants", required=False),
        requires_rsvp=_flag(body, "requires_rsvp", False), waiting_room=_flag(body, "waiting_room", True),
        allow_recording=_flag(body, "allow_recording", False), e2ee_required=_flag(body, "e2ee_required", True),
        rsvp_until=_int(body, "rsvp_until", required=False), private=_flag(body, "private", False),
        invitees=_pubkeys(body, "invitees"))
    return {"lesson": lesson_dict(lesson), "signed_by": await _signed_by(ctx)}


async def lesson_reschedule(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    lesson = await live.reschedule_lesson(ctx, _text(body, "lesson"), _int(body, "start") or 0,
                                          duration_minutes=_int(body, "duration_minutes", required=False),
                                          tzid=body.get("tzid"))
    return {"lesson": lesson_dict(lesson), "signed_by": await _signed_by(ctx)}


async def lesson_cancel(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    deletion = await live.cancel_lesson(ctx, _text(body, "lesson"), reason=_text(body, "reason", required=False))
    return {"lesson": body["lesson"], "deletion": deletion, "signed_by": await _signed_by(ctx)}


async def lesson_list(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    course = body.get("course") or None
    if course is not None:
        course = (await private_training.resolve_course(ctx, str(course))).coordinate
    return {"lessons": [lesson_dict(x) for x in await live.list_lessons(ctx, course)]}


async def lesson_show(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    lesson = await live.resolve_lesson(ctx, _text(body, "lesson"))
    ev = await live.load_evidence(ctx, lesson)
    return {"lesson": lesson_dict(lesson), "state": session_state(ev, ctx.clock.now()).value}


async def lesson_status(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"view": await live.live_session_view(ctx, _text(body, "lesson"))}


async def session_create(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    lesson = await live.resolve_lesson(ctx, _text(body, "lesson"))
    me = await _signed_by(ctx)
    config = live.ConferenceConfig(
        name=_text(body, "name", required=False) or lesson.title, instructor=_text(body, "instructor", required=False) or me,
        max_participants=_int(body, "max_participants", required=False) or lesson.max_participants,
        waiting_room=_flag(body, "waiting_room", lesson.waiting_room),
        allow_recording=_flag(body, "allow_recording", lesson.allow_recording),
        e2ee_required=_flag(body, "e2ee_required", lesson.e2ee_required),
        service=body.get("service") or None)
    session = await live.create_live_session(ctx, lesson.coordinate, config)
    return {**session.to_dict(), "signed_by": me}


async def session_start(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    event = await live.start_live_session(ctx, _text(body, "lesson"))
    return {"lesson": body["lesson"], "meeting": event, "state": "live", "signed_by": await _signed_by(ctx)}


async def session_end(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    url = await live.end_live_session(ctx, _text(body, "lesson"))
    return {"lesson": body["lesson"], "recording_url": url, "signed_by": await _signed_by(ctx),
            "attendance": await live.attendance_table(ctx, body["lesson"])}


async def session_status(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    details = await live.get_conference_details(ctx, _text(body, "lesson"))
    lesson = await live.resolve_lesson(ctx, body["lesson"])
    ev = await live.load_evidence(ctx, lesson)
    return {"lesson": lesson.coordinate, "state": session_state(ev, ctx.clock.now()).value, "room_id": details.room_id,
            "is_active": details.is_active, "participant_count": details.participant_count,
            "start": lesson.start, "end": lesson.end, "tzid": lesson.start_tzid}


async def room_waiting(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"waiting": [asdict(s) | {"admission": s.admission.value} for s in await live.waiting(ctx, _text(body, "lesson"))]}


async def room_decide(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    decision = Decision(_text(body, "decision")) if body.get("decision") in ("admit", "deny") else None
    if decision is None:
        raise MalformedEvent("'decision' must be admit or deny", field="decision")
    event = await live.decide(ctx, _text(body, "lesson"), _text(body, "participant"), decision,
                              reason=_text(body, "reason", required=False))
    return {"decision": decision.value, "participant": body["participant"], "event": event,
            "signed_by": await _signed_by(ctx)}


async def attendance_show(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return await live.attendance_table(ctx, _text(body, "lesson"))


async def attendance_track(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return await live.track_live_attendance(ctx, _text(body, "lesson"), _text(body, "pubkey"),
                                            _int(body, "joined_at") or 0, _int(body, "left_at", required=False))


async def join(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    consent = body.get("consent")
    result = await live.join_session(ctx, _text(body, "lesson"), consent=consent if isinstance(consent, bool) else None,
                                     reconnect=_flag(body, "reconnect", False))
    return {**result.to_dict(), "signed_by": await _signed_by(ctx)}


async def join_request(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    raw = body.get("event")
    if not isinstance(raw, dict):
        raise MalformedEvent("'event' must be a signed 8312", field="event")
    event = verify_event(Event.from_dict(raw))
    return {"event": await live.submit_join_request(ctx, event, _text(body, "participant"))}


async def leave(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"lesson": body.get("lesson"), "event": await live.leave_session(ctx, _text(body, "lesson")),
            "signed_by": await _signed_by(ctx)}


async def course_invite(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    course = await private_training.resolve_course(ctx, _text(body, "course"))
    invited = await private_training.invite_to_course(ctx, course, _pubkeys(body, "invitees", required=True))
    return {**invited.to_dict(), "signed_by": await _signed_by(ctx)}


async def lesson_invite(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    lesson = await live.resolve_lesson(ctx, _text(body, "lesson"))
    invited = await private_training.invite_to_lesson(ctx, lesson, _pubkeys(body, "invitees", required=True))
    return {**invited.to_dict(), "signed_by": await _signed_by(ctx)}


async def presence(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return {"lesson": body.get("lesson"), "hand": _flag(body, "hand", False),
            "event": await live.announce_presence(ctx, _text(body, "lesson"), hand_raised=_flag(body, "hand", False)),
            "signed_by": await _signed_by(ctx)}


OPERATIONS: dict[str, Operation] = {
    "course/create": course_create, "course/list": course_list, "course/show": course_show,
    "course/invite": course_invite, "lesson/invite": lesson_invite,
    "lesson/schedule": lesson_schedule, "lesson/reschedule": lesson_reschedule, "lesson/cancel": lesson_cancel,
    "lesson/list": lesson_list, "lesson/show": lesson_show, "lesson/status": lesson_status,
    "session/create": session_create, "session/start": session_start, "session/end": session_end,
    "session/status": session_status, "room/waiting": room_waiting, "room/decide": room_decide,
    "attendance/show": attendance_show, "attendance/track": attendance_track,
    "join": join, "join-request": join_request, "leave": leave, "presence": presence,
}
SIGNING = frozenset({"course/create", "course/invite", "lesson/invite", "lesson/schedule", "lesson/reschedule", "lesson/cancel", "session/create",
                     "session/start", "session/end", "room/decide", "join", "join-request", "leave",
                     "presence"})
"""Operations that sign with the user's key."""
PRIVATE_READS = frozenset({"course/list", "course/show", "lesson/list", "lesson/show", "lesson/status"})
"""Operations that show private items: without a daemon, the CLI fetches and opens the user's
gift wraps and private calendar items first (``services.private_training.fetch_private``)."""


def routes(daemon: "Daemon") -> list[Route]:
    """``POST /live/<operation>`` for each operation, on the daemon's service context."""

    def bind(operation: Operation) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def handler(body: dict[str, Any]) -> Any:
            assert daemon.services is not None
            return await operation(daemon.services, body or {})

        return handler

    return [Route("POST", f"/live/{name}", bind(op)) for name, op in OPERATIONS.items()]
