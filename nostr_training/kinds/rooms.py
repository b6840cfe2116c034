"""Conference rooms on NIP-53 (30312 room, 30313 meeting, 10312 presence) and our room kinds.

Public events carry public metadata only: the E2EE scheme name and the current key epoch, never
key material. Keys travel as a kind-8310 rumor, only ever inside a NIP-59 gift wrap to one
admitted participant. Waiting-room answers are kind-8313 events signed by the host.

A learner asks to enter with a kind-8312 join request and states their recording consent with a
kind-8311 event, both signed by the learner. Either is published for a public lesson or, for a
private one, sent as the rumor of an ephemeral gift wrap (21059) to the host: the parsers take a
signed event or an unwrapped rumor, whose author the NIP-59 unwrap has checked against the seal.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from dataclasses import dataclass, field

from ..event import Event, EventTemplate, coordinate
from . import JOIN_REQUEST as JOIN_REQUEST_KIND
from . import LESSON as LESSON_KIND
from . import LIVE_EVENT as LIVE_EVENT_KIND
from . import MEETING as MEETING_KIND
from . import RECORDING_CONSENT as RECORDING_CONSENT_KIND
from . import ROOM as ROOM_KIND
from . import ROOM_KEY as ROOM_KEY_KIND
from . import ROOM_PRESENCE as PRESENCE_KIND
from . import WAITING_ROOM_DECISION as WAITING_ROOM_DECISION_KIND
from . import _wire
from ._wire import Reader

__all__ = [
    "RoomStatus",
    "MeetingStatus",
    "Decision",
    "Room",
    "Meeting",
    "Presence",
    "RoomKey",
    "WaitingRoomDecision",
    "ConsentAnswer",
    "JoinRequest",
    "RecordingConsent",
    "ROOM_KEY_ALT",
    "JOIN_REQUEST_ALT",
    "CONSENT_ALT",
    "build_room",
    "parse_room",
    "build_meeting",
    "parse_meeting",
    "build_presence",
    "parse_presence",
    "build_room_key",
    "parse_room_key",
    "build_waiting_room_decision",
    "parse_waiting_room_decision",
    "build_join_request",
    "parse_join_request",
    "build_recording_consent",
    "parse_recording_consent",
]


ROOM_KEY_ALT = "Conference room key (only ever inside a gift wrap)"
DECISION_ALT = "Waiting-room decision for a live training session"
JOIN_REQUEST_ALT = "Request to join a live training session"
CONSENT_ALT = "Recording consent for a live training session"
_ALG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_KEY_BYTES = {"aes-256-gcm": 32, "aes-128-gcm": 16}
_KEY_MIN, _KEY_MAX = 16, 64


class RoomStatus(enum.Enum):
    OPEN = "open"
    PRIVATE = "private"
    CLOSED = "closed"


class MeetingStatus(enum.Enum):
    PLANNED = "planned"
    LIVE = "live"
    ENDED = "ended"


class Decision(enum.Enum):
    ADMIT = "admit"
    DENY = "deny"


class ConsentAnswer(enum.Enum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Room:
    """A 30312 interactive room: where a lesson's conference happens."""

    author: str
    d: str
    name: str
    status: RoomStatus
    service: str
    hosts: tuple[str, ...]
    lesson: str | None = None
    summary: str = ""
    endpoint: str | None = None
    relays: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    e2ee: str | None = None
    """Public name of the media E2EE scheme; None when media is not end-to-end encrypted."""
    key_epoch: int | None = None
    hashtags: tuple[str, ...] = ()
    event_id: str | None = None
    created_at: int | None = None

    @property
    def coordinate(self) -> str:
        return coordinate(ROOM_KIND, self.author, self.d)


@dataclass(frozen=True, slots=True)
class Meeting:
    """A 30313 conference event inside a room: one sitting of a lesson, planned, live or ended."""

    author: str
    d: str
    room: str
    title: str
    starts: int
    status: MeetingStatus
    lesson: str | None = None
    ends: int | None = None
    summary: str = ""
    current_participants: int | None = None
    total_participants: int | None = None
    participants: tuple[str, ...] = ()
    event_id: str | None = None
    created_at: int | None = None
    missed: bool = False
    """Ended without ever going live: the host's daemon closed it after its window."""

    @property
    def coordinate(self) -> str:
        return coordinate(MEETING_KIND, self.author, self.d)


@dataclass(frozen=True, slots=True)
class Presence:
    """A 10312 "I am in this room now"; replaceable, so one room per pubkey at a time."""

    author: str
    room: str
    created_at: int
    hand_raised: bool = False
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoomKey:
    """One epoch's media key for a room, read from an unsigned 8310 rumor."""

    author: str
    room: str
    epoch: int
    key: bytes = field(repr=False)
    alg: str
    created_at: int
    expires_at: int | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class WaitingRoomDecision:
    """The host's admit/deny for one participant of a room or lesson (kind 8313)."""

    author: str
    target: str
    participant: str
    decision: Decision
    created_at: int
    reason: str = ""
    request: str | None = None
    event_id: str | None = None


# Room 30312 -----------------------------------------------------------------------------------


def build_room(room: Room, *, created_at: int) -> EventTemplate:
    """A 30312 with hosts as ``p`` role Host and an ``a`` back to the lesson; no key material."""
    _wire.check_d(room.d)
    _wire.check_text("room", room.name)
    _wire.check_text("service", room.service)
    if not room.hosts:
        raise _wire.malformed("p", "needs at least one host")
    tags: list[tuple[str, ...]] = [
        ("d", room.d),
        ("room", room.name),
        ("status", RoomStatus(room.status).value),
        ("service", room.service),
    ]
    if room.summary:
        tags.append(("summary", room.summary))
    if room.endpoint:
        tags.append(("endpoint", room.endpoint))
    tags += [("p", _wire.check_pubkey("p", pk), "", "Host") for pk in room.hosts]
    tags += [("p", _wire.check_pubkey("p", pk), "", "Moderator") for pk in room.moderators]
    if room.relays:
        tags.append(("relays", *room.relays))
    if room.lesson is not None:
        tags.append(("a", _wire.check_coordinate("lesson", room.lesson, (LESSON_KIND,))))
    if room.e2ee is not None:
        tags.append(("e2ee", _wire.check_text("e2ee", room.e2ee)))
    if room.key_epoch is not None:
        tags.append(("epoch", _wire.check_int("epoch", room.key_epoch)))
    tags += [("t", t) for t in room.hashtags]
    return EventTemplate(ROOM_KIND, tuple(tags), "", created_at)


def _roles(r: Reader, roles: frozenset[str]) -> tuple[str, ...]:
    return tuple(
        r.pubkey("p", tag[1]) for tag in r.tags("p") if len(tag) > 3 and tag[3].strip().lower() in roles
    )


def parse_room(event: Event) -> Room:
    r = Reader(event, ROOM_KIND)
    d = r.d()
    name = r.required("room")
    status = RoomStatus(r.choice("status", r.required("status"), [s.value for s in RoomStatus]))
    service = r.required("service")
    hosts = _roles(r, frozenset({"host", "owner"}))
    if not hosts:
        raise r.fail("p", "no p tag with role Host")
    relays = next((tag[1:] for tag in r.tags("relays")), ())
    return Room(
        author=event.pubkey,
        d=d,
        name=name,
        status=status,
        service=service,
        hosts=hosts,
        lesson=next(iter(r.coordinates((LESSON_KIND,))), None),
        summary=r.optional("summary") or "",
        endpoint=r.optional("endpoint") or None,
        relays=tuple(relays),
        moderators=_roles(r, frozenset({"moderator"})),
        e2ee=r.optional("e2ee") or None,
        key_epoch=r.optional_int("epoch"),
        hashtags=tuple(r.all("t")),
        event_id=event.id,
        created_at=event.created_at,
    )


# Meeting 30313 --------------------------------------------------------------------------------


def build_meeting(meeting: Meeting, *, created_at: int) -> EventTemplate:
    """A 30313 with ``a`` to its room (first) and to the lesson, status and counts."""
    _wire.check_d(meeting.d)
    _wire.check_text("title", meeting.title)
    _wire.check_int("starts", meeting.starts)
    tags: list[tuple[str, ...]] = [
        ("d", meeting.d),
        ("a", _wire.check_coordinate("room", meeting.room, (ROOM_KIND,))),
        ("title", meeting.title),
        ("starts", str(meeting.starts)),
        ("status", MeetingStatus(meeting.status).value),
    ]
    if meeting.lesson is not None:
        tags.append(("a", _wire.check_coordinate("lesson", meeting.lesson, (LESSON_KIND,))))
    if meeting.ends is not None:
        _wire.check_int("ends", meeting.ends)
        if meeting.ends < meeting.starts:
            raise _wire.malformed("ends", f"{meeting.ends} is before starts {meeting.starts}")
        tags.append(("ends", str(meeting.ends)))
    if meeting.summary:
        tags.append(("summary", meeting.summary))
    if meeting.current_participants is not None:
        tags.append(("current_participants", _wire.check_int("current_participants", meeting.current_participants)))
    if meeting.total_participants is not None:
        tags.append(("total_participants", _wire.check_int("total_participants", meeting.total_participants)))
    tags += [("p", _wire.check_pubkey("p", pk), "", "Participant") for pk in meeting.participants]
    if meeting.missed:
        if MeetingStatus(meeting.status) is not MeetingStatus.ENDED:
            raise _wire.malformed("missed", "only an ended meeting can be missed")
        tags.append(("missed", "true"))
    return EventTemplate(MEETING_KIND, tuple(tags), "", created_at)


def parse_meeting(event: Event) -> Meeting:
    r = Reader(event, MEETING_KIND)
    d = r.d()
    room = r.one_coordinate((ROOM_KIND,))
    title = r.required("title")
    starts = r.required_int("starts")
    status = MeetingStatus(r.choice("status", r.required("status"), [s.value for s in MeetingStatus]))
    ends = r.optional_int("ends")
    if ends is not None and ends < starts:
        raise r.fail("ends", f"{ends} is before starts {starts}")
    missed = r.boolean("missed", False)
    if missed and status is not MeetingStatus.ENDED:
        raise r.fail("missed", f"a {status.value} meeting cannot be missed; only an ended one")
    return Meeting(
        author=event.pubkey,
        d=d,
        room=room,
        title=title,
        starts=starts,
        status=status,
        lesson=next(iter(r.coordinates((LESSON_KIND,))), None),
        ends=ends,
        summary=r.optional("summary") or "",
        current_participants=r.optional_int("current_participants"),
        total_participants=r.optional_int("total_participants"),
        participants=tuple(r.pubkey("p", pk) for pk in r.all("p")),
        event_id=event.id,
        created_at=event.created_at,
        missed=missed,
    )


# Presence 10312 -------------------------------------------------------------------------------


def build_presence(room: str, *, created_at: int, hand_raised: bool = False, relay: str = "") -> EventTemplate:
    tags: list[tuple[str, ...]] = [("a", _wire.check_coordinate("a", room, (ROOM_KIND,)), relay, "root")]
    if hand_raised:
        tags.append(("hand", "1"))
    return EventTemplate(PRESENCE_KIND, tuple(tags), "", created_at)


def parse_presence(event: Event) -> Presence:
    r = Reader(event, PRESENCE_KIND)
    room = r.one_coordinate((ROOM_KIND,))
    hand = r.optional("hand")
    if hand is not None:
        r.choice("hand", hand, ("0", "1"))
    return Presence(
        author=event.pubkey, room=room, created_at=event.created_at, hand_raised=hand == "1", event_id=event.id
    )


# Room key 8310 (rumor only) -------------------------------------------------------------------


def _key_problem(alg: str, key: bytes) -> str | None:
    """Why ``key`` cannot be a room key for ``alg``, or None when it can."""
    if not _ALG.fullmatch(alg):
        return f"alg must be a lowercase scheme name, got {alg!r}"
    wanted = _KEY_BYTES.get(alg)
    if wanted is not None and len(key) != wanted:
        return f"{alg} needs a {wanted}-byte key, got {len(key)}"
    if not _KEY_MIN <= len(key) <= _KEY_MAX:
        return f"key must be {_KEY_MIN}..{_KEY_MAX} bytes, got {len(key)}"
    return None


def build_room_key(
    room: str,
    key: bytes,
    epoch: int,
    *,
    created_at: int,
    expires_at: int | None = None,
    alg: str = "aes-256-gcm",
) -> EventTemplate:
    """The 8310 rumor for one participant; seal and gift-wrap it, never sign and publish it."""
    _wire.check_coordinate("a", room, (ROOM_KIND, MEETING_KIND, LIVE_EVENT_KIND))
    problem = _key_problem(alg, bytes(key))
    if problem:
        raise _wire.malformed("content", problem)
    content = json.dumps(
        {"alg": alg, "key": base64.b64encode(bytes(key)).decode("ascii"), "epoch": epoch},
        separators=(",", ":"),
    )
    tags: list[tuple[str, ...]] = [("a", room), ("epoch", _wire.check_int("epoch", epoch))]
    if expires_at is not None:
        tags.append(("expiration", _wire.check_int("expiration", expires_at)))
    tags.append(_wire.alt(ROOM_KEY_ALT))
    return EventTemplate(ROOM_KEY_KIND, tuple(tags), content, created_at)


def parse_room_key(event: Event) -> RoomKey:
    """Read an unwrapped 8310 rumor; a signed 8310 is refused since it may have been published."""
    r = Reader(event, ROOM_KEY_KIND)
    if event.sig is not None:
        raise r.fail("sig", "a room key must be an unsigned rumor from a gift wrap, not a signed event")
    room = r.one_coordinate((ROOM_KIND, MEETING_KIND, LIVE_EVENT_KIND))
    epoch = r.required_int("epoch")
    try:
        body = json.loads(event.content)
    except ValueError:
        raise r.fail("content", "must be a JSON object {alg, key, epoch}") from None
    if not isinstance(body, dict):
        raise r.fail("content", "must be a JSON object {alg, key, epoch}")
    alg, key_text, content_epoch = body.get("alg"), body.get("key"), body.get("epoch")
    if not isinstance(alg, str) or not isinstance(key_text, str):
        raise r.fail("content", "alg and key must be strings")
    if type(content_epoch) is not int or content_epoch != epoch:
        raise r.fail("epoch", f"content epoch {content_epoch!r} differs from the epoch tag {epoch}")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise r.fail("content", "key is not standard base64") from None
    problem = _key_problem(alg, key)
    if problem:
        raise r.fail("content", problem)
    return RoomKey(
        author=event.pubkey,
        room=room,
        epoch=epoch,
        key=key,
        alg=alg,
        created_at=event.created_at,
        expires_at=r.optional_int("expiration"),
        event_id=event.id,
    )


# Waiting-room decision 8313 -------------------------------------------------------------------

_DECISION_TARGETS = (ROOM_KIND, MEETING_KIND, LESSON_KIND)


def build_waiting_room_decision(
    target: str,
    participant: str,
    decision: Decision | str,
    *,
    created_at: int,
    reason: str = "",
    request: str | None = None,
) -> EventTemplate:
    """The host's admit/deny; ``target`` is the room, meeting or lesson coordinate."""
    try:
        answer = Decision(decision)
    except ValueError:
        raise _wire.malformed("decision", f"must be admit|deny, got {decision!r}") from None
    tags: list[tuple[str, ...]] = [
        ("a", _wire.check_coordinate("a", target, _DECISION_TARGETS)),
        ("p", _wire.check_pubkey("p", participant)),
        ("decision", answer.value),
    ]
    if request is not None:
        tags.append(("e", _wire.check_event_id("e", request)))
    tags.append(_wire.alt(DECISION_ALT))
    return EventTemplate(WAITING_ROOM_DECISION_KIND, tuple(tags), _wire.check_text("content", reason, allow_empty=True), created_at)


def parse_waiting_room_decision(event: Event) -> WaitingRoomDecision:
    r = Reader(event, WAITING_ROOM_DECISION_KIND)
    target = r.one_coordinate(_DECISION_TARGETS)
    participant = r.pubkey("p", r.required("p"))
    decision = Decision(r.choice("decision", r.required("decision"), [d.value for d in Decision]))
    request = r.optional("e")
    if request is not None:
        r.event_id("e", request)
    return WaitingRoomDecision(
        author=event.pubkey,
        target=target,
        participant=participant,
        decision=decision,
        created_at=event.created_at,
        reason=event.content,
        request=request,
        event_id=event.id,
    )


# Join request 8312 ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A participant asks the host to let them into a lesson's room; the author is the participant."""

    author: str
    lesson: str
    host: str
    created_at: int
    room: str | None = None
    note: str = ""
    event_id: str | None = None


def build_join_request(
    lesson: str, host: str, *, created_at: int, room: str | None = None, note: str = ""
) -> EventTemplate:
    """The learner's 8312: sign and publish it, or use it as the rumor of a 21059 to ``host``."""
    tags: list[tuple[str, ...]] = [
        ("a", _wire.check_coordinate("a", lesson, (LESSON_KIND,))),
        ("p", _wire.check_pubkey("p", host)),
    ]
    if room is not None:
        tags.append(("a", _wire.check_coordinate("a", room, (ROOM_KIND,))))
    tags.append(_wire.alt(JOIN_REQUEST_ALT))
    return EventTemplate(JOIN_REQUEST_KIND, tuple(tags), _wire.check_text("content", note, allow_empty=True), created_at)


def parse_join_request(event: Event) -> JoinRequest:
    """Read a signed 8312 or an unwrapped rumor (its author was checked against the seal)."""
    r = Reader(event, JOIN_REQUEST_KIND)
    lesson = r.one_coordinate((LESSON_KIND,))
    host = r.pubkey("p", r.required("p"))
    return JoinRequest(
        author=event.pubkey,
        lesson=lesson,
        host=host,
        created_at=event.created_at,
        room=next(iter(r.coordinates((ROOM_KIND,))), None),
        note=event.content,
        event_id=event.id,
    )


# Recording consent 8311 -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingConsent:
    """A participant gives or withdraws consent to be recorded at one lesson; the latest counts."""

    author: str
    lesson: str
    host: str
    answer: ConsentAnswer
    created_at: int
    note: str = ""
    event_id: str | None = None

    @property
    def given(self) -> bool:
        return self.answer is ConsentAnswer.GIVEN


def build_recording_consent(
    lesson: str, host: str, answer: ConsentAnswer | str | bool, *, created_at: int, note: str = ""
) -> EventTemplate:
    """The participant's 8311; ``answer`` is given|withdrawn (True/False read as given/withdrawn)."""
    if isinstance(answer, bool):
        answer = ConsentAnswer.GIVEN if answer else ConsentAnswer.WITHDRAWN
    try:
        consent = ConsentAnswer(answer)
    except ValueError:
        raise _wire.malformed("consent", f"must be given|withdrawn, got {answer!r}") from None
    tags: list[tuple[str, ...]] = [
        ("a", _wire.check_coordinate("a", lesson, (LESSON_KIND,))),
        ("p", _wire.check_pubkey("p", host)),
        ("consent", consent.value),
        _wire.alt(CONSENT_ALT),
    ]
    return EventTemplate(RECORDING_CONSENT_KIND, tuple(tags), _wire.check_text("content", note, allow_empty=True), created_at)


def parse_recording_consent(event: Event) -> RecordingConsent:
    """Read a signed 8311 or an unwrapped rumor (its author was checked against the seal)."""
    r = Reader(event, RECORDING_CONSENT_KIND)
    lesson = r.one_coordinate((LESSON_KIND,))
    host = r.pubkey("p", r.required("p"))
    answer = ConsentAnswer(r.choice("consent", r.required("consent"), [c.value for c in ConsentAnswer]))
    return RecordingConsent(
        author=event.pubkey,
        lesson=lesson,
        host=host,
        answer=answer,
        created_at=event.created_at,
        note=event.content,
        event_id=event.id,
    )
