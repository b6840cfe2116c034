"""Live sessions as services: the seed's ``TrainingCallingIntegration`` and ``useLiveSession``.

Everything here reads the lesson's evidence from the index (``load_evidence``: the events the
daemon holds for it, plus the joins and leaves the host's daemon observed itself, kept in the
action log) and asks the pure rules of ``rules.rooms`` what is allowed; a refusal raises before
anything is signed, so bad input changes nothing. Who signs what, and when, is in
docs/protocol.md "Live session flows".

- Instructor: ``create_course``, ``schedule_lesson``, ``reschedule_lesson``, ``cancel_lesson``,
  ``create_live_session`` (room 30312 + planned meeting 30313 + the lesson with its room and
  join location; no call starts), ``start_live_session``, ``end_live_session`` (the meeting
  ends, the room closes, attendance 31930 and completion 31931 are signed and delivered to each
  learner privately, never published, the room keys are retired), ``decide`` (8313), ``track_live_attendance`` (an observation of
  the media server, stored in the action log as ``live-observed``).
- Learner: ``request_join`` (a signed 8312, published: the lesson's host reads it from the
  relays), ``join_session``, ``leave_session`` (8315), ``announce_presence`` (10312),
  ``room_keys`` (the 8310 rumors unwrapped from the gift wraps addressed to the user),
  ``live_session_view``.
- Both: ``get_conference_details``, ``attendance_table``.

A private lesson (``Lesson.private``) publishes nothing about its session in the clear: the
host's room, meetings and lesson revisions go out only as envelopes under the view key of its
course or of the lesson (``view_key_item``); the learner's join request, claims and presence
reach the hosts as ephemeral gift wraps (21059), their recording consent as a durable one
(1059); the host's decisions go to that learner as 1059 rumors. Evidence is read from private
events and published ones alike, so the rules see the same session either way.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from .. import kinds
from ..errors import DomainError, MalformedEvent, NostrTrainingError, NotFound, PrivacyRefused
from ..event import Event, EventTemplate, coordinate, parse_coordinate
from ..filters import Filter
from ..kinds.attendance import AttendanceAction, AttendanceRecord, CompletionRecord
from ..kinds.calendar import Course, Lesson
from ..kinds.rooms import Decision, Meeting, MeetingStatus, Room, RoomKey, RoomStatus
from ..nips.nip59 import make_rumor, unwrap
from ..rules.attendance import Join, Leave
from ..rules.lifecycle import AFTER_END, SessionAction, SessionState, transition
from ..rules.rooms import (
    Admission,
    AdmissionStatus,
    ConferenceDetails,
    LivePolicy,
    SessionEvidence,
    admission,
    attendance_records,
    attendance_so_far,
    check_decision,
    check_join_request,
    check_room_key,
    completion_records,
    conference_details,
    current_meeting,
    current_room,
    learner_view,
    require_host,
    session_hosts,
    session_state,
    waiting_room,
)
from ..store.base import ActionRecord
from . import private_training
from .context import ServiceContext
from .private import deliver_rumor, publish_private_item
from .publish import PublishReport, after_current, publish_events

DEFAULT_POLICY = LivePolicy()

__all__ = [
    "ConferenceConfig",
    "LiveSession",
    "JoinResult",
    "OBSERVED_ACTION",
    "E2EE_SCHEME",
    "resolve_lesson",
    "load_evidence",
    "room_events",
    "create_course",
    "list_courses",
    "schedule_lesson",
    "reschedule_lesson",
    "cancel_lesson",
    "list_lessons",
    "create_live_session",
    "start_live_session",
    "end_live_session",
    "finalise_attendance",
    "track_live_attendance",
    "get_conference_details",
    "decide",
    "waiting",
    "request_join",
    "join_session",
    "leave_session",
    "announce_presence",
    "view_key_item",
    "publish_private_session",
    "room_keys",
    "live_session_view",
    "attendance_table",
]

OBSERVED_ACTION = "live-observed"
"""Action-log entries holding the joins and leaves the host's daemon observed (the media server)."""
E2EE_SCHEME = "livekit-gcm"
"""The media E2EE scheme the rooms announce (30312 ``e2ee``); keys are 32-byte AES-256-GCM."""
DEFAULT_SERVICE = "https://meet.jit.si"
"""Where rooms are held unless config.toml's ``[live] service`` says otherwise."""

_BY_LESSON = frozenset({
    kinds.ROOM, kinds.MEETING, kinds.JOIN_REQUEST, kinds.RECORDING_CONSENT, kinds.WAITING_ROOM_DECISION,
    kinds.ATTENDANCE_CLAIM, kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD, kinds.DELETION, kinds.FILE_METADATA,
})
_BY_ROOM = frozenset({kinds.ROOM_PRESENCE, kinds.WAITING_ROOM_DECISION, kinds.MEETING})


@dataclass(frozen=True)
class ConferenceConfig:
    """The seed's ``TrainingConferenceConfig``; ``instructor`` must be the signer."""

    name: str
    instructor: str
    max_participants: int | None = None
    waiting_room: bool = True
    allow_recording: bool = False
    e2ee_required: bool = True
    service: str | None = None
    """Base URL of the conference service (default: config.toml ``[live] service``)."""

    @classmethod
    def for_lesson(cls, lesson: Lesson) -> ConferenceConfig:
        """The configuration a lesson already states (what the daemon's auto-start uses)."""
        return cls(lesson.title, lesson.instructor, lesson.max_participants, lesson.waiting_room,
                   lesson.allow_recording, lesson.e2ee_required)


@dataclass(frozen=True)
class LiveSession:
    """What ``create_live_session`` published: the seed's ``{conferenceRoomId, joinUrl}``."""

    room_id: str
    join_url: str
    lesson: str
    reports: tuple[PublishReport, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"room_id": self.room_id, "join_url": self.join_url, "lesson": self.lesson,
                "published": [r.to_dict() for r in self.reports]}


@dataclass(frozen=True)
class JoinResult:
    """A learner's join: the link and the current room key, or why not (nothing in clear)."""

    lesson: str
    url: str | None
    reason: str
    epoch: int | None
    room_key: bytes | None = field(default=None, repr=False)
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.lesson, "url": self.url, "reason": self.reason, "epoch": self.epoch,
            "room_key": base64.b64encode(self.room_key).decode() if self.room_key else None,
            "published": list(self.published),
        }


# Reading ------------------------------------------------------------------------------------


async def _me(ctx: ServiceContext) -> str:
    return await ctx.require_signer().get_public_key()


async def resolve_lesson(ctx: ServiceContext, ref: str) -> Lesson:
    """A lesson by coordinate (``31923:<pubkey>:<d>``), by the local name of one of the user's
    private lessons, or by its ``d`` when only one has it."""
    now = ctx.clock.now()
    if ":" in ref:
        try:
            kind, _, _ = parse_coordinate(ref)
        except MalformedEvent as exc:
            raise NotFound(f"lesson {ref!r}: {exc}") from None
        lesson = await ctx.store.lesson(ref, now=now) if kind == kinds.LESSON else None
        if lesson is None:
            raise NotFound(f"lesson {ref}: not in the index (follow its course, or wait for the relays)")
        return lesson
    name = await private_training.named(ctx, kinds.LESSON, ref)
    if name is not None:  # the local name of one of the user's private lessons
        return await resolve_lesson(ctx, name)
    found = await ctx.store.query([Filter(kinds=frozenset({kinds.LESSON}), tags={"d": frozenset({ref})})], now=now,
                                  include_private=True)
    if not found:
        raise NotFound(f"lesson {ref!r}: no lesson with that id in the index")
    if len({e.pubkey for e in found}) > 1:
        raise DomainError(f"lesson {ref!r}: several authors use that id; give the 31923:<pubkey>:<d> coordinate")
    return kinds.parse_lesson(found[0])


def _parsed(events: Sequence[Event], kind: int, parser: Any) -> tuple[Any, ...]:
    out = []
    for event in events:
        if event.kind == kind:
            try:
                out.append(parser(event))
            except MalformedEvent:
                continue
    return tuple(out)


async def _observed(ctx: ServiceContext, lesson: str) -> tuple[Join | Leave, ...]:
    out: list[Join | Leave] = []
    for record in await ctx.store.actions(action=OBSERVED_ACTION, subject=lesson):
        detail = json.loads(record.detail or "{}")
        cls = Join if detail.get("event") == "join" else Leave
        out.append(cls(record.pubkey or "", int(detail["at"]), str(detail.get("connection", "")), "observed"))
    return tuple(sorted(out, key=lambda o: (o.at, isinstance(o, Join))))


async def _sfu_evidence(ctx: ServiceContext, lesson: Lesson) -> list[Join | Leave]:
    """The SFU's verified webhook joins and leaves for the lesson's room (``services.media``):
    evidence beside the host's own observations and the learners' claims, never the only record."""
    from .media import webhook_evidence

    return await webhook_evidence(ctx, lesson)


async def load_evidence(ctx: ServiceContext, lesson: Lesson) -> SessionEvidence:
    """The lesson's ``SessionEvidence`` from the index and the action log: published events and
    private ones alike (a private lesson's room and meeting opened from their envelopes, join
    requests, claims and decisions opened from gift wraps), the host's observations and the SFU's
    webhooks. The rules keep only what the lesson's hosts signed where it matters, so a
    stranger's room or decision changes nothing. ``services.media`` reads the same evidence."""
    now, coord = ctx.clock.now(), lesson.coordinate
    events = await ctx.store.query([Filter(kinds=_BY_LESSON, tags={"a": frozenset({coord})})], now=now,
                                   include_private=True)
    rooms = {r.coordinate for r in _parsed(events, kinds.ROOM, kinds.parse_room)}
    if lesson.room:
        rooms.add(lesson.room)
    if rooms:
        events += await ctx.store.query([Filter(kinds=_BY_ROOM, tags={"a": frozenset(rooms)})], now=now,
                                        include_private=True)
    meetings = {m.coordinate for m in _parsed(events, kinds.MEETING, kinds.parse_meeting)}
    if meetings:  # a decision may name one of the lesson's meetings
        events += await ctx.store.query([Filter(kinds=frozenset({kinds.WAITING_ROOM_DECISION}),
                                                tags={"a": frozenset(meetings)})], now=now, include_private=True)
    unique = list({e.id: e for e in events}.values())
    return SessionEvidence(
        lesson=lesson,
        rooms=_parsed(unique, kinds.ROOM, kinds.parse_room),
        meetings=_parsed(unique, kinds.MEETING, kinds.parse_meeting),
        recordings=_parsed(unique, kinds.FILE_METADATA, kinds.parse_recording),
        deletions=_parsed(unique, kinds.DELETION, kinds.parse_deletion),
        rsvps=tuple(await ctx.store.rsvps(coord, now=now)),
        join_requests=_parsed(unique, kinds.JOIN_REQUEST, kinds.parse_join_request),
        decisions=_parsed(unique, kinds.WAITING_ROOM_DECISION, kinds.parse_waiting_room_decision),
        presences=_parsed(unique, kinds.ROOM_PRESENCE, kinds.parse_presence),
        claims=_parsed(unique, kinds.ATTENDANCE_CLAIM, kinds.parse_attendance_claim),
        observed=await _observed(ctx, coord) + tuple(await _sfu_evidence(ctx, lesson)),
        consents=_parsed(unique, kinds.RECORDING_CONSENT, kinds.parse_recording_consent),
    )


async def _publish(ctx: ServiceContext, templates: Sequence[EventTemplate]) -> tuple[PublishReport, ...]:
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    templates = [await after_current(ctx, me, t) for t in templates]
    events = [await signer.sign_event(t) for t in templates]
    reports = await publish_events(ctx, events, check_lessons=False, wait=ctx.config.publish_timeout)
    for report in reports:
        if not report.accepted:
            raise DomainError(f"not published: {report.error}")
    return tuple(reports)


# Private lessons --------------------------------------------------------------------------------


async def view_key_item(ctx: ServiceContext, lesson: Lesson) -> str:
    """Whose view key opens a private lesson's room, meeting and revisions: the same item as for
    its scheduling (``private_training.view_key_item``: its course), so invitees hold it even on
    a machine that has not indexed the course."""
    return private_training.view_key_item(lesson)


async def _publish_session(ctx: ServiceContext, lesson: Lesson,
                           templates: Sequence[EventTemplate]) -> tuple[tuple[str, ...], tuple[PublishReport, ...]]:
    """Publish the host's room, meeting or lesson revisions: signed in the clear for a public
    lesson; for a private one, each kept privately and sent only as an envelope under the view
    key of ``view_key_item`` (``services.private.publish_private_item``), which the invitees'
    daemons open. Returns the ids (of the signed events, or of the private items) and the
    publish reports (none for a private lesson: envelopes go through the outbox)."""
    if not lesson.private:
        reports = await _publish(ctx, templates)
        return tuple(r.id for r in reports), reports
    return tuple(await publish_private_session(ctx, lesson, templates)), ()


async def publish_private_session(ctx: ServiceContext, lesson: Lesson, templates: Sequence[EventTemplate]) -> list[str]:
    """A private lesson's room, meeting or lesson revisions (``lesson.private``), each kept
    privately and sent as an envelope the invitees open; each dated after the version held, so
    the envelope replaces the last one on the relays too. Returns the private items' ids."""
    me, key_of = await _me(ctx), await view_key_item(ctx, lesson)
    ids = []
    for template in templates:
        template = await after_current(ctx, me, template, private=True)
        ids.append((await publish_private_item(ctx, template, key_of=key_of)).id)
    return ids


async def _to_hosts(ctx: ServiceContext, lesson: Lesson, template: EventTemplate, *, ephemeral: bool) -> str:
    """A learner's event about a lesson: signed and published for a public lesson; for a private
    one an unsigned rumor gift-wrapped to the hosts alone (21059 when ``ephemeral``: join
    requests, claims, presence; 1059 otherwise: recording consent), the learner keeping a copy."""
    if not lesson.private:
        return (await _publish(ctx, [template]))[0].id
    me = await _me(ctx)
    rumor, _ = await deliver_rumor(ctx, template, sorted(session_hosts(lesson) - {me}), ephemeral=ephemeral)
    return rumor.id


async def _resend_request(ctx: ServiceContext, lesson: Lesson, ev: SessionEvidence, me: str) -> str | None:
    """A private lesson's join request travels in an ephemeral wrap, which a host whose daemon
    was offline never sees: while no decision answers it, each ``join`` sends the same request
    (same id, so the host counts it once) again."""
    if admission(ev, me).admission is not Admission.WAITING:
        return None
    own = [q for q in ev.join_requests if q.author == me and q.lesson == lesson.coordinate]
    newest = max(own, key=lambda q: q.created_at)
    kept = await ctx.store.get(newest.event_id) if newest.event_id else None
    if kept is None:
        return None
    await deliver_rumor(ctx, kept.template(), sorted(session_hosts(lesson) - {me}), ephemeral=True, keep=False)
    return kept.id


# Courses and lessons ------------------------------------------------------------------------


async def create_course(
    ctx: ServiceContext,
    d: str,
    title: str,
    *,
    description: str = "",
    certification: bool | None = None,
    validity_days: int | None = None,
    issuer: str | None = None,
    private: bool = False,
    invitees: Sequence[str] = (),
) -> Course:
    """Publish a course (31924) signed by the user; an existing one keeps its lessons and, unless
    given again, its certification settings (whether completing it earns a certificate, how long
    one stays valid, and the issuer key: the user's own when none is named).

    ``private``: the course gets a random ``d`` (``d`` stays its local name) and is published only
    as an envelope; ``invitees`` get its view key. A private course stays private; a public one
    was published already and cannot become private."""
    me = await _me(ctx)
    own = await private_training.named(ctx, kinds.COURSE, d)
    existing = await ctx.store.course(own or coordinate(kinds.COURSE, me, d), now=ctx.clock.now())
    if private and existing is not None and not existing.private:
        raise DomainError(f"course {d} is public already (it was published): create the private course under another name")
    private = private or bool(existing and existing.private)
    if invitees and not private:
        raise DomainError("only a private course has invitees: add --private")
    course = Course(
        author=me, d=existing.d if existing else (private_training.random_d() if private else d), title=title,
        description=description,
        lessons=existing.lessons if existing else (), modules=existing.modules if existing else (),
        certification_enabled=certification if certification is not None else bool(existing and existing.certification_enabled),
        validity_days=validity_days if validity_days is not None else (existing.validity_days if existing else None),
        required_lessons=existing.required_lessons if existing else (),
        certificate=existing.certificate if existing else None,
        issuer=issuer if issuer is not None else (existing.issuer if existing else None),
        private=private, invitees=existing.invitees if existing else (),
    )
    if private:
        await private_training.remember_name(ctx, course.coordinate, d)
        [rumor] = await private_training.publish_private(
            ctx, [kinds.build_course(course, created_at=ctx.clock.now())], key_of=course.coordinate)
        course = replace(course, event_id=rumor.id, created_at=rumor.created_at)
        if invitees:
            await private_training.invite_to_course(ctx, course, invitees)
            course = await ctx.store.course(course.coordinate, now=ctx.clock.now()) or course
        await private_training.deliver_now(ctx)
        return course
    reports = await _publish(ctx, [kinds.build_course(course, created_at=ctx.clock.now())])
    return replace(course, event_id=reports[0].id, created_at=ctx.clock.now())


async def list_courses(ctx: ServiceContext) -> list[Course]:
    """The courses in the index, private ones the user hosts or was invited to included."""
    events = await ctx.store.query([Filter(kinds=frozenset({kinds.COURSE}))], now=ctx.clock.now(), include_private=True)
    newest: dict[str, Course] = {}
    for course in _parsed(events, kinds.COURSE, kinds.parse_course):  # newest first: a private copy of an address wins once
        newest.setdefault(course.coordinate, course)
    return sorted(newest.values(), key=lambda c: c.title)


async def schedule_lesson(
    ctx: ServiceContext,
    course: str,
    d: str,
    title: str,
    start: int,
    duration_minutes: int,
    *,
    tzid: str | None = None,
    summary: str = "",
    max_participants: int | None = None,
    requires_rsvp: bool = False,
    waiting_room: bool = True,
    allow_recording: bool = False,
    e2ee_required: bool = True,
    rsvp_until: int | None = None,
    private: bool = False,
    invitees: Sequence[str] = (),
) -> Lesson:
    """Publish a lesson (31923, ``D`` tags from ``kinds.build_lesson``) and add it to the course;
    ``rsvp_until`` is the instructor's RSVP cut-off (default: the start).

    A lesson of a private course is private (whatever ``private`` says): random ``d`` (``d`` is its
    local name), published only as an envelope under the course's view key, with the course's
    revision; ``invitees`` get that key. A private lesson in a public course is refused."""
    me, now = await _me(ctx), ctx.clock.now()
    found = await private_training.resolve_course(ctx, course)
    if found.author != me:
        raise DomainError(f"course {found.d}: signed by {found.author[:16]}, not by you; only its author adds lessons")
    if duration_minutes < 1:
        raise DomainError("a lesson lasts at least one minute")
    if private and not found.private:
        raise DomainError(f"course {found.d} is public: its list of lessons would name a private lesson; "
                          "schedule it in a private course ('course create NAME TITLE --private')")
    private = found.private
    if invitees and not private:
        raise DomainError("only a private lesson has invitees: schedule it in a private course")
    name = d
    kept: tuple[str, ...] = ()
    if private:  # the same local name again revises that lesson (its invitees stay); a new one gets a random d
        known = await private_training.named(ctx, kinds.LESSON, name)
        previous = await ctx.store.lesson(known, now=now) if known else None
        d = parse_coordinate(known)[2] if known else private_training.random_d()
        kept = previous.invitees if previous is not None else ()
    lesson = Lesson(author=me, d=d, title=title, start=start, end=start + duration_minutes * 60, instructor=me,
                    summary=summary, start_tzid=tzid, course=found.coordinate, max_participants=max_participants,
                    requires_rsvp=requires_rsvp, waiting_room=waiting_room, allow_recording=allow_recording,
                    e2ee_required=e2ee_required, rsvp_until=rsvp_until, private=private, invitees=kept)
    templates = [kinds.build_lesson(lesson, created_at=now)]
    if lesson.coordinate not in found.lessons:
        templates.append(kinds.build_course(replace(found, lessons=(*found.lessons, lesson.coordinate)), created_at=now))
    if private:
        await private_training.remember_name(ctx, lesson.coordinate, name)
        rumors = await private_training.publish_private(ctx, templates, key_of=found.coordinate)
        lesson = replace(lesson, event_id=rumors[0].id, created_at=rumors[0].created_at)
        if invitees:
            await private_training.invite_to_lesson(ctx, lesson, invitees)
            lesson = await ctx.store.lesson(lesson.coordinate, now=now) or lesson
        await private_training.deliver_now(ctx)
        return lesson
    reports = await _publish(ctx, templates)
    return replace(lesson, event_id=reports[0].id, created_at=now)


async def _own_lesson(ctx: ServiceContext, ref: str) -> tuple[Lesson, str]:
    lesson, me = await resolve_lesson(ctx, ref), await _me(ctx)
    require_host(lesson, me)
    if lesson.author != me:
        raise DomainError(f"lesson {lesson.d}: only its author {lesson.author[:16]} can change it")
    return lesson, me


async def reschedule_lesson(ctx: ServiceContext, ref: str, start: int, *, duration_minutes: int | None = None,
                            tzid: str | None = None) -> Lesson:
    """Republish the lesson with a new time; refused once the session has started or ended.
    A private lesson's revision is its envelope again: its invitees see it without a new
    invitation."""
    lesson, _ = await _own_lesson(ctx, ref)
    state = session_state(await load_evidence(ctx, lesson), ctx.clock.now())
    if state not in (SessionState.SCHEDULED, SessionState.ROOM_CREATED):
        raise DomainError(f"lesson {lesson.d}: cannot reschedule a session that is {state.value}")
    length = duration_minutes * 60 if duration_minutes is not None else lesson.duration_seconds
    if length < 60:
        raise DomainError("a lesson lasts at least one minute")
    moved = replace(lesson, start=start, end=start + length, start_tzid=tzid or lesson.start_tzid,
                    rsvp_until=None if lesson.rsvp_until is None else min(lesson.rsvp_until, start))
    if lesson.private:
        [rumor] = await private_training.publish_private(
            ctx, [kinds.build_lesson(moved, created_at=ctx.clock.now())], key_of=private_training.view_key_item(lesson))
        await private_training.deliver_now(ctx)
        return replace(moved, event_id=rumor.id, created_at=rumor.created_at)
    reports = await _publish(ctx, [kinds.build_lesson(moved, created_at=ctx.clock.now())])
    return replace(moved, event_id=reports[0].id, created_at=ctx.clock.now())


async def cancel_lesson(ctx: ServiceContext, ref: str, *, reason: str = "") -> str:
    """NIP-09 deletion of the lesson (its address and the version held); before it goes live.
    A private lesson's deletion is never published: it is gift-wrapped to its people."""
    lesson, _ = await _own_lesson(ctx, ref)
    if lesson.private and lesson.coordinate in await private_training.private_cancellations(ctx, [lesson]):
        raise DomainError(f"lesson {lesson.d}: cancelled already")
    state = session_state(await load_evidence(ctx, lesson), ctx.clock.now())
    transition(state, SessionAction.CANCEL)
    if lesson.private:
        deletion = await private_training.cancel_private_lesson(ctx, lesson, reason=reason)
        await private_training.deliver_now(ctx)
        return deletion
    events = [(lesson.event_id, kinds.LESSON)] if lesson.event_id else []
    template = kinds.build_deletion(events=events, addresses=[lesson.coordinate], created_at=ctx.clock.now(),
                                    reason=reason or "cancelled")
    reports = await _publish(ctx, [template])
    return reports[0].id


async def list_lessons(ctx: ServiceContext, course: str | None = None) -> list[Lesson]:
    """The lessons in the index (of ``course``), soonest first: private ones the user hosts or
    was invited to included, privately cancelled ones left out as deleted public ones are."""
    now = ctx.clock.now()
    if course:
        found = await ctx.store.lessons(course, now=now)
    else:
        events = await ctx.store.query([Filter(kinds=frozenset({kinds.LESSON}))], now=now, include_private=True)
        found = list(_parsed(events, kinds.LESSON, kinds.parse_lesson))
    newest: dict[str, Lesson] = {}
    for lesson in sorted(found, key=lambda x: -(x.created_at or 0)):
        newest.setdefault(lesson.coordinate, lesson)
    cancelled = await private_training.private_cancellations(ctx, newest.values())
    return sorted((x for c, x in newest.items() if c not in cancelled), key=lambda x: x.start)


# The host's session ---------------------------------------------------------------------------


def _service(ctx: ServiceContext, config: ConferenceConfig) -> str:
    base = config.service or (ctx.config.extra.get("live", {}) or {}).get("service") or DEFAULT_SERVICE
    return str(base).rstrip("/")


def room_events(ctx: ServiceContext, lesson: Lesson, config: ConferenceConfig, now: int) -> tuple[Room, list[EventTemplate]]:
    """The room (30312), its planned meeting (30313) and the lesson revision pointing at both."""
    room_d = f"{lesson.d}-room"
    url = f"{_service(ctx, config)}/nt-{room_d}"
    room = Room(author=lesson.author, d=room_d, name=config.name, status=RoomStatus.PRIVATE if (
        config.waiting_room or config.e2ee_required) else RoomStatus.OPEN, service=url, hosts=(lesson.instructor,),
        lesson=lesson.coordinate, e2ee=E2EE_SCHEME if config.e2ee_required else None,
        key_epoch=1 if config.e2ee_required else None)
    meeting = Meeting(author=lesson.author, d=f"{lesson.d}-meeting", room=room.coordinate, title=lesson.title,
                      starts=lesson.start, status=MeetingStatus.PLANNED, lesson=lesson.coordinate)
    revised = replace(lesson, room=room.coordinate, location=url, max_participants=config.max_participants,
                      waiting_room=config.waiting_room, allow_recording=config.allow_recording,
                      e2ee_required=config.e2ee_required)
    return room, [kinds.build_room(room, created_at=now), kinds.build_meeting(meeting, created_at=now),
                  kinds.build_lesson(revised, created_at=now)]


async def create_live_session(ctx: ServiceContext, ref: str, config: ConferenceConfig) -> LiveSession:
    """The seed's ``createLiveSession``: publish the room, the planned meeting and the lesson's
    room and join location. Creating a room starts no call."""
    lesson, me = await _own_lesson(ctx, ref)
    if config.instructor != me:
        raise DomainError(f"conference config: instructor {config.instructor[:16]} is not the signer {me[:16]}")
    if config.instructor != lesson.instructor:
        raise DomainError(f"lesson {lesson.d}: its instructor is {lesson.instructor[:16]}, not {config.instructor[:16]}")
    state = session_state(await load_evidence(ctx, lesson), ctx.clock.now())
    transition(state, SessionAction.CREATE_ROOM)
    room, templates = room_events(ctx, lesson, config, ctx.clock.now())
    _, reports = await _publish_session(ctx, lesson, templates)
    return LiveSession(room.coordinate, room.service, lesson.coordinate, reports)


async def _host_session(ctx: ServiceContext, ref: str) -> tuple[SessionEvidence, str]:
    lesson = await resolve_lesson(ctx, ref)
    me = await _me(ctx)
    require_host(lesson, me)
    return await load_evidence(ctx, lesson), me


async def start_live_session(ctx: ServiceContext, ref: str) -> str:
    """The seed's ``startLiveSession``: the meeting goes ``live`` (only from ``room_created``)."""
    ev, _ = await _host_session(ctx, ref)
    now = ctx.clock.now()
    transition(session_state(ev, now), SessionAction.START)
    meeting = current_meeting(ev)
    room = current_room(ev)
    if meeting is None or room is None:
        raise DomainError(f"lesson {ev.lesson.d}: no room; create it first ('session create')")
    live = replace(meeting, status=MeetingStatus.LIVE, starts=min(meeting.starts, now), ends=None, missed=False)
    ids, _ = await _publish_session(ctx, ev.lesson, [kinds.build_meeting(live, created_at=now)])
    return ids[0]


async def end_live_session(ctx: ServiceContext, ref: str) -> str | None:
    """The seed's ``endLiveSession``: the meeting ends (with ``total_participants``), the room
    closes, each learner is handed their own attendance and completion records privately, the
    keys are retired; returns the recording URL if any."""
    ev, me = await _host_session(ctx, ref)
    now = ctx.clock.now()
    meeting, room = current_meeting(ev), current_room(ev)
    # A live meeting nobody refreshed for an hour reads as ended to others (NIP-53), but its
    # host may still end it properly: the published status is what the host ends.
    live_on_wire = meeting is not None and meeting.status is MeetingStatus.LIVE
    transition(SessionState.LIVE if live_on_wire else session_state(ev, now), SessionAction.END)
    assert meeting is not None
    # A public aggregate only: how many learners attended, never who (their records go to each
    # of them privately).
    attended = len(attendance_records(ev, now))
    ended = replace(meeting, status=MeetingStatus.ENDED, ends=max(now, meeting.starts),
                    total_participants=attended or meeting.total_participants)
    templates = [kinds.build_meeting(ended, created_at=now)]
    if room is not None:
        templates.append(kinds.build_room(replace(room, status=RoomStatus.CLOSED), created_at=now))
    await _publish_session(ctx, ev.lesson, templates)
    ev = await load_evidence(ctx, ev.lesson)
    await finalise_attendance(ctx, ev, now)
    await ctx.store.record_action(ActionRecord(f"room-keys-retired|{ev.lesson.coordinate}", "room-keys-retired", now,
                                               subject=ev.lesson.coordinate, pubkey=me))
    return learner_view(ev, me, now).recording_url


async def finalise_attendance(ctx: ServiceContext, ev: SessionEvidence, now: int,
                              policy: LivePolicy = DEFAULT_POLICY) -> list[str]:
    """Sign the host's 31930 per learner and 31931 per learner who met the rule, and hand each
    learner their own in a record delivery (8317), once each (action log), the 31931 citing the
    31930's id. Nothing is published: the host keeps the records in its own index (docs/protocol.md
    "Attendance record"). Returns the ids of the records signed now."""
    from .private import deliver_records

    signer, coord = ctx.require_signer(), ev.lesson.coordinate
    signed: list[str] = []
    completions = {c.learner: c for c in completion_records(ev, now, policy)}
    for record in attendance_records(ev, now, policy):
        learner = record.learner
        attendance_key, completion_key = f"attendance|{coord}|{learner}", f"completion|{coord}|{learner}"
        done = await ctx.store.get_action(attendance_key)
        completion = completions.get(learner)
        events: list[Event] = []
        if done is None:
            events.append(await signer.sign_event(kinds.build_attendance_record(record, created_at=now)))
            attendance_id = events[0].id
        else:
            attendance_id = await _kept_record_id(ctx, coord, learner)
        if completion is not None and await ctx.store.get_action(completion_key) is None:
            cited = replace(completion, evidence=(attendance_id,) if attendance_id else ())
            events.append(await signer.sign_event(kinds.build_completion_record(cited, created_at=now)))
        if not events:
            continue
        once = attendance_key if done is None else completion_key
        await deliver_records(ctx, events, subject=coord, recipient=learner, once=once)
        if done is None and len(events) == 2:
            await ctx.store.record_action(ActionRecord(completion_key, "completion", now, subject=coord,
                                                       pubkey=learner, event_id=events[1].id))
        signed += [e.id for e in events]
    return signed


async def _kept_record_id(ctx: ServiceContext, lesson: str, learner: str) -> str:
    """The id of the host's own attendance record for ``learner`` (kept privately), or ""."""
    me = await _me(ctx)
    found = await ctx.store.query([Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD}), authors=frozenset({me}),
                                          tags={"a": frozenset({lesson}), "p": frozenset({learner})}, limit=1)],
                                  include_private=True)
    return found[0].id if found else ""


async def track_live_attendance(ctx: ServiceContext, ref: str, pubkey: str, joined_at: int,
                                left_at: int | None = None) -> dict[str, Any]:
    """The seed's ``trackLiveAttendance``: the host's daemon records what it observed for THAT
    pubkey (the media server's join/leave), in the action log, once per (lesson, pubkey, moment)."""
    ev, me = await _host_session(ctx, ref)
    if len(pubkey) != 64 or any(c not in "0123456789abcdef" for c in pubkey):
        raise MalformedEvent(f"attendance: {pubkey[:20]!r} is not a hex pubkey", field="pubkey")
    if pubkey in session_hosts(ev.lesson):
        raise DomainError("attendance: the host's own time is not tracked")
    if left_at is not None and left_at < joined_at:
        raise DomainError(f"attendance: left at {left_at}, before joining at {joined_at}")
    now, coord, connection = ctx.clock.now(), ev.lesson.coordinate, f"observed-{joined_at}"
    if joined_at > now or (left_at is not None and left_at > now):
        raise DomainError("attendance: a join or leave in the future cannot have been observed")
    entries = [("join", joined_at)] + ([("leave", left_at)] if left_at is not None else [])
    for name, at in entries:
        detail = json.dumps({"event": name, "at": at, "connection": connection})
        await ctx.store.record_action(ActionRecord(f"observed|{coord}|{pubkey}|{joined_at}|{name}", OBSERVED_ACTION,
                                                   now, subject=coord, pubkey=pubkey, detail=detail))
    return {"lesson": coord, "pubkey": pubkey, "joined_at": joined_at, "left_at": left_at, "recorded_by": me}


async def get_conference_details(ctx: ServiceContext, ref: str) -> ConferenceDetails:
    """The seed's ``getConferenceDetails``: the same answer for every participant."""
    return conference_details(await load_evidence(ctx, await resolve_lesson(ctx, ref)), ctx.clock.now())


async def decide(ctx: ServiceContext, ref: str, participant: str, decision: Decision | str, *,
                 reason: str = "") -> str:
    """The instructor admits or denies ``participant`` (8313 to the room)."""
    ev, me = await _host_session(ctx, ref)
    now = ctx.clock.now()
    check_decision(ev, me, participant, now)
    room = current_room(ev)
    target = room.coordinate if room is not None else ev.lesson.coordinate
    requests = [q for q in ev.join_requests if q.author == participant and q.lesson == ev.lesson.coordinate]
    request = max(requests, key=lambda q: q.created_at).event_id if requests else None
    template = kinds.build_waiting_room_decision(target, participant, Decision(decision), created_at=now,
                                                 reason=reason, request=request)
    if ev.lesson.private:  # to that learner alone, durable: their daemon may be offline now
        return (await deliver_rumor(ctx, template, [participant]))[0].id
    return (await _publish(ctx, [template]))[0].id


async def waiting(ctx: ServiceContext, ref: str) -> tuple[AdmissionStatus, ...]:
    ev, _ = await _host_session(ctx, ref)
    return waiting_room(ev)


# The learner's side ---------------------------------------------------------------------------


async def request_join(ctx: ServiceContext, ref: str, *, participant: str | None = None, note: str = "") -> str:
    """A signed 8312 for the user; asking for anyone else is refused before signing."""
    lesson, me = await resolve_lesson(ctx, ref), await _me(ctx)
    ev = await load_evidence(ctx, lesson)
    room = current_room(ev)
    template = kinds.build_join_request(lesson.coordinate, lesson.instructor, created_at=ctx.clock.now(),
                                        room=room.coordinate if room is not None else None, note=note)
    request = kinds.parse_join_request(make_rumor(template, me))
    check_join_request(request, participant or me, lesson)
    return await _to_hosts(ctx, lesson, template, ephemeral=True)


async def submit_join_request(ctx: ServiceContext, event: Event, participant: str) -> str:
    """A join request signed elsewhere (a web page), for ``participant``: refused unless its
    signer is that participant. For a private lesson it is never published: when the signer is
    the daemon's own user it goes to the hosts as the same event unsigned in an ephemeral gift
    wrap (21059, sealed by the daemon's key, as ``join`` sends it); a wrap for anyone else would
    need their key to seal it, so that is refused."""
    request = kinds.parse_join_request(event)
    lesson = await resolve_lesson(ctx, request.lesson)
    check_join_request(request, participant, lesson)
    if lesson.private:
        if event.pubkey != await _me(ctx):
            raise PrivacyRefused(
                f"lesson {lesson.d} is private: a join request reaches its host only gift-wrapped and sealed by the "
                "learner's own key; join from the learner's own daemon (its web page or 'join')"
            )
        return await _to_hosts(ctx, lesson, event.template(), ephemeral=True)
    reports = await publish_events(ctx, [event], check_lessons=False, wait=ctx.config.publish_timeout)
    if not reports[0].accepted:
        raise DomainError(f"not published: {reports[0].error}")
    return event.id


async def room_keys(ctx: ServiceContext, lesson: Lesson, ev: SessionEvidence | None = None) -> list[RoomKey]:
    """The room keys addressed to the user for this lesson's room, newest epoch first; a key
    from anyone but the host, for another room, or older than the room announces is dropped."""
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    ev = ev or await load_evidence(ctx, lesson)
    wraps = await ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})],
                                  now=ctx.clock.now())
    found: dict[int, RoomKey] = {}
    for wrap in wraps:
        try:
            rumor = (await unwrap(wrap, signer)).rumor
            if rumor.kind != kinds.ROOM_KEY:
                continue
            key = kinds.parse_room_key(rumor)
            check_room_key(ev, key)
        except NostrTrainingError:
            continue
        found.setdefault(key.epoch, key)
    return [found[e] for e in sorted(found, reverse=True)]


async def _claim(ctx: ServiceContext, lesson: Lesson, action: AttendanceAction, room: str | None) -> str:
    template = kinds.build_attendance_claim(lesson.coordinate, action, created_at=ctx.clock.now(), room=room)
    return await _to_hosts(ctx, lesson, template, ephemeral=True)


async def join_session(ctx: ServiceContext, ref: str, *, consent: bool | None = None, reconnect: bool = False) -> JoinResult:
    """The learner joins: asks the host (8312) the first time, says "joined" (8315) when coming
    back after a leave or reconnecting after a drop (``reconnect``), gives recording consent
    (8311) when asked to; returns the link and the current key once admitted (no new event when
    they are simply asking again for the link)."""
    lesson, me = await resolve_lesson(ctx, ref), await _me(ctx)
    ev = await load_evidence(ctx, lesson)
    now = ctx.clock.now()
    state = session_state(ev, now)
    if state in AFTER_END or state is SessionState.CANCELLED:
        raise DomainError(f"lesson {lesson.d}: session is {state.value}")
    if me in session_hosts(lesson):
        raise DomainError(f"lesson {lesson.d}: you host it; use 'session start'")
    room = current_room(ev)
    published: list[str] = []
    own = [q for q in ev.join_requests if q.author == me]
    claims = sorted((c for c in ev.claims if c.author == me), key=lambda c: c.created_at)
    if not own:
        published.append(await request_join(ctx, ref))
    else:
        if lesson.private and (resent := await _resend_request(ctx, lesson, ev, me)) is not None:
            published.append(resent)
        if reconnect or (claims and claims[-1].action is AttendanceAction.LEAVE):
            published.append(await _claim(ctx, lesson, AttendanceAction.JOIN, room.coordinate if room else None))
    if consent is not None and lesson.allow_recording:
        published.append(await _to_hosts(ctx, lesson, kinds.build_recording_consent(
            lesson.coordinate, lesson.instructor, consent, created_at=now), ephemeral=False))
    ev = await load_evidence(ctx, lesson)
    keys = await room_keys(ctx, lesson, ev)
    view = learner_view(ev, me, now, key_epoch=keys[0].epoch if keys else None)
    key = keys[0].key if keys and view.join.url is not None and lesson.e2ee_required else None
    return JoinResult(lesson.coordinate, view.join.url, view.join.reason, view.join.epoch, key, tuple(published))


async def leave_session(ctx: ServiceContext, ref: str) -> str:
    """The learner leaves the session (8315 leave): the host's daemon rekeys for those who stay."""
    lesson, me = await resolve_lesson(ctx, ref), await _me(ctx)
    ev = await load_evidence(ctx, lesson)
    if not any(q.author == me for q in ev.join_requests):
        raise DomainError(f"lesson {lesson.d}: you have not joined it")
    room = current_room(ev)
    return await _claim(ctx, lesson, AttendanceAction.LEAVE, room.coordinate if room else None)


async def announce_presence(ctx: ServiceContext, ref: str, *, hand_raised: bool = False) -> str:
    """The learner says they are in the lesson's room (10312, NIP-53 presence): published for a
    public lesson; for a private one an ephemeral gift wrap to the hosts, so no relay learns
    who sits in the room."""
    lesson = await resolve_lesson(ctx, ref)
    room = current_room(await load_evidence(ctx, lesson))
    if room is None:
        raise DomainError(f"lesson {lesson.d}: no room yet")
    template = kinds.build_presence(room.coordinate, created_at=ctx.clock.now(), hand_raised=hand_raised)
    return await _to_hosts(ctx, lesson, template, ephemeral=True)


def _record_dict(record: AttendanceRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"total_seconds": record.total_seconds, "join_count": record.join_count, "met": record.met,
            "rule": record.rule, "required_seconds": record.required_seconds, "intervals": [list(i) for i in record.intervals],
            "event_id": record.event_id, "created_at": record.created_at}


async def _published_records(ctx: ServiceContext, ev: SessionEvidence) -> tuple[dict[str, AttendanceRecord], dict[str, CompletionRecord]]:
    now, hosts, coord = ctx.clock.now(), session_hosts(ev.lesson), ev.lesson.coordinate
    events = await ctx.store.query([Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD}),
                                           tags={"a": frozenset({coord})})], now=now, include_private=True)
    records = {r.learner: r for r in _parsed(events, kinds.ATTENDANCE_RECORD, kinds.parse_attendance_record)
               if r.author in hosts}
    completions = {c.learner: c for c in _parsed(events, kinds.COMPLETION_RECORD, kinds.parse_completion_record)
                   if c.author in hosts}
    return records, completions


async def live_session_view(ctx: ServiceContext, ref: str, pubkey: str | None = None) -> dict[str, Any]:
    """The seed's ``useLiveSession`` for the user (or ``pubkey``): flags, countdown, RSVP,
    admission, join link (never without the current key where E2EE is required), attendance so
    far, the host's record and completion (delivered privately), the recording."""
    lesson = await resolve_lesson(ctx, ref)
    me = pubkey or await _me(ctx)
    if pubkey is None:  # the host's record reaches the learner in a record delivery: open it
        from .private import open_inbox

        await open_inbox(ctx)
    ev = await load_evidence(ctx, lesson)
    now = ctx.clock.now()
    keys = await room_keys(ctx, lesson, ev) if pubkey is None else []
    view = learner_view(ev, me, now, key_epoch=keys[0].epoch if keys else None)
    records, completions = await _published_records(ctx, ev)
    completion = completions.get(me)
    return {
        "lesson": lesson.coordinate, "title": lesson.title, "pubkey": me, "start": lesson.start, "end": lesson.end,
        "tzid": lesson.start_tzid, "state": view.state.value, "is_scheduled": view.is_scheduled, "is_live": view.is_live,
        "is_ended": view.is_ended, "is_cancelled": view.is_cancelled, "is_missed": view.is_missed,
        "has_recording": view.has_recording, "time_until_start": view.time_until_start,
        "rsvp_status": view.rsvp_status.value if view.rsvp_status else None, "can_rsvp": view.can_rsvp,
        "waitlist_position": view.waitlist_position, "admission": view.admission.value,
        "is_attending": view.is_attending, "attendance_seconds": view.attendance_seconds,
        "join_count": view.join_count, "recording_url": view.recording_url,
        "join_url": view.join.url, "join_reason": view.join.reason, "key_epoch": keys[0].epoch if keys else None,
        "participant_count": view.participant_count, "room": view.room,
        "record": _record_dict(records.get(me)),
        "completed": completion is not None, "completed_at": completion.completed_at if completion else None,
    }


async def attendance_table(ctx: ServiceContext, ref: str) -> dict[str, Any]:
    """Per learner: the host's signed record where there is one (kept privately, never published;
    ``published`` in a row keeps its old name), else the attendance so far."""
    lesson = await resolve_lesson(ctx, ref)
    ev = await load_evidence(ctx, lesson)
    now = ctx.clock.now()
    records, completions = await _published_records(ctx, ev)
    rows = []
    hosts = session_hosts(lesson)
    so_far = {pk: a for pk, a in attendance_so_far(ev, now).items() if pk not in hosts}
    for pk in sorted(set(records) | set(so_far)):
        record = records.get(pk)
        att = so_far.get(pk)
        rows.append({
            "pubkey": pk, "published": record is not None,
            "total_seconds": record.total_seconds if record else (att.total_seconds if att else 0),
            "join_count": record.join_count if record else (att.join_count if att else 0),
            "met": record.met if record else None, "rule": record.rule if record else None,
            "completed": pk in completions,
        })
    return {"lesson": lesson.coordinate, "state": session_state(ev, now).value, "rows": rows}
