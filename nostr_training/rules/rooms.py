"""Live sessions from their events: state, closing, admission, join links, consent, attendance.

Every answer is a pure function of a lesson's evidence (``SessionEvidence``: the events the
daemon holds for it) and ``now``. The origin decided these things inside one client: a room was
"active" only for a client inside it, the waiting room was an in-memory queue nothing consulted,
key exchange failures fell back to clear media, and attendance was recorded for whoever held the
device. Here every participant derives the same answers from the same signed events:

- **State** (``session_state``): from the host's room (30312), meeting (30313: planned, live,
  ended, ended and missed), recording (1063) and cancellation (NIP-09). A session that never went
  live reads as missed once its window and a grace have passed; a live one with no update for an
  hour past its window reads as ended (NIP-53). ``closure_due`` tells the host's daemon what to
  publish, once: the first time it is due, and never again once the meeting says ended.
- **Auto-start** (``room_creation_due``): the host's daemon creates the room ``room_lead`` before
  the start when the instructor has not.
- **Admission** (``admission``, ``decisions_due``): only the host's 8313 counts; the latest per
  participant stands, so a denied participant stays out until the host admits them again, and a
  deny after an admit removes them. A join request is the participant's own: one signed by anyone
  else is refused. Policy: where an RSVP is required, a learner whose RSVP holds a seat is
  admitted automatically; an open lesson (no RSVP, no waiting room, no E2EE) admits anyone within
  capacity; everyone else waits for the instructor.
- **Join links** (``join_access``): where E2EE is required, no key (or an old epoch) means no
  link, never a clear-media fallback.
- **Recording consent** (``consent_in_force``, ``recording_subjects``): the participant's latest
  8311 decides; without consent in force nobody claims a recording of them.
- **Attendance** (``attendance_evidence``, ``attendance_so_far``): join requests, learner claims
  (8315), presence (10312), host-observed joins/leaves and the host's decisions become inputs of
  ``rules.attendance``; waiting-room time is cut wherever admission applies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Iterable, NamedTuple, TypeVar

from ..errors import AdmissionRequired, DomainError, IllegalTransition, JoinRefused, RoomKeyRequired
from ..kinds.attendance import AttendanceAction, AttendanceClaim, AttendanceRecord, CompletionBasis, CompletionRecord
from ..kinds.calendar import Lesson, Rsvp, RsvpStatus
from ..kinds.deletion import Deletion
from ..kinds.recordings import Recording
from ..kinds.rooms import (
    Decision,
    JoinRequest,
    Meeting,
    MeetingStatus,
    Presence,
    RecordingConsent,
    Room,
    RoomKey,
    WaitingRoomDecision,
)
from .attendance import (
    Admitted,
    Attendance,
    AttendancePolicy,
    Evidence,
    Heartbeat,
    Join,
    Leave,
    SessionWindow,
    compute_attendance,
)
from .completion import LiveCompletion, evaluate_live
from .lifecycle import AFTER_END, BEFORE_START, SessionAction, SessionState, derive_flags
from .room_keys import Change, MembershipChange
from .rsvp import Roster, latest_rsvps, roster

__all__ = [
    "LivePolicy",
    "SessionEvidence",
    "session_hosts",
    "require_host",
    "current_room",
    "current_meeting",
    "is_cancelled",
    "session_state",
    "ended_at",
    "Closure",
    "closure_due",
    "auto_start_at",
    "room_creation_due",
    "next_moment",
    "PRESENCE_INTERVAL",
    "presence_due",
    "admission_required",
    "Admission",
    "AdmissionStatus",
    "DueDecision",
    "check_join_request",
    "check_decision",
    "admission",
    "waiting_room",
    "decisions_due",
    "membership_changes",
    "JoinAccess",
    "join_access",
    "check_room_key",
    "consent_in_force",
    "recording_subjects",
    "ConferenceDetails",
    "conference_details",
    "attendance_evidence",
    "session_window",
    "attendance_so_far",
    "live_completions",
    "completed_at",
    "attendance_records",
    "completion_records",
    "LearnerView",
    "learner_view",
]

LEARNER_CONNECTION = "learner"
"""The connection id under which a learner's own signed joins and leaves are paired."""


@dataclass(frozen=True, slots=True)
class LivePolicy:
    room_lead: int = 900
    """Auto-start: the host's daemon creates the room this long before the start."""
    closure_grace: int = 900
    """A session nobody started or ended is judged this long after its window (or last activity)."""
    stale_live: int = 3600
    """NIP-53: a live meeting with no update for this long, past its window, reads as ended."""
    recording_wait: int = 7 * 86400
    """An ended session whose recording has not appeared by then reads as ended without one."""
    attendance: AttendancePolicy = field(default_factory=AttendancePolicy)


@dataclass(frozen=True, slots=True)
class SessionEvidence:
    """What the daemon holds for one lesson, parsed; anything not about it is ignored."""

    lesson: Lesson
    rooms: tuple[Room, ...] = ()
    meetings: tuple[Meeting, ...] = ()
    recordings: tuple[Recording, ...] = ()
    deletions: tuple[Deletion, ...] = ()
    rsvps: tuple[Rsvp, ...] = ()
    join_requests: tuple[JoinRequest, ...] = ()
    decisions: tuple[WaitingRoomDecision, ...] = ()
    presences: tuple[Presence, ...] = ()
    claims: tuple[AttendanceClaim, ...] = ()
    observed: tuple[Join | Leave, ...] = ()
    """Joins and leaves the host's daemon saw itself (the SFU adapter), with connection ids."""
    consents: tuple[RecordingConsent, ...] = ()


_T = TypeVar("_T", Room, Meeting)


def _latest(items: Iterable[_T]) -> _T | None:
    """NIP-01: the newest ``created_at`` wins; within one second, the lowest event id."""
    return min(items, key=lambda x: (-(x.created_at or 0), x.event_id or ""), default=None)


def session_hosts(lesson: Lesson) -> frozenset[str]:
    """Who hosts: the lesson's author and its instructor (usually one key)."""
    return frozenset({lesson.author, lesson.instructor})


def require_host(lesson: Lesson, pubkey: str) -> None:
    """Raise ``DomainError`` unless ``pubkey`` hosts the lesson (start, end, admit, deny)."""
    if pubkey not in session_hosts(lesson):
        raise DomainError(f"lesson {lesson.d}: {pubkey[:16]} does not host this session")


def _rooms(ev: SessionEvidence) -> list[Room]:
    hosts, coord = session_hosts(ev.lesson), ev.lesson.coordinate
    return [r for r in ev.rooms if r.author in hosts and (r.lesson == coord or r.coordinate == ev.lesson.room)]


def _room_coordinates(ev: SessionEvidence) -> frozenset[str]:
    return frozenset(r.coordinate for r in _rooms(ev)) | (
        frozenset({ev.lesson.room}) if ev.lesson.room else frozenset()
    )


def current_room(ev: SessionEvidence) -> Room | None:
    """The host's latest room for the lesson."""
    return _latest(_rooms(ev))


def current_meeting(ev: SessionEvidence) -> Meeting | None:
    """The host's latest meeting for the lesson: its live state as published."""
    hosts, coord, rooms = session_hosts(ev.lesson), ev.lesson.coordinate, _room_coordinates(ev)
    return _latest(
        m
        for m in ev.meetings
        if m.author in hosts and (m.lesson == coord or (m.lesson is None and m.room in rooms))
    )


def is_cancelled(ev: SessionEvidence) -> bool:
    """A NIP-09 deletion of the lesson by its author, not older than the lesson version held."""
    lesson = ev.lesson
    for deletion in ev.deletions:
        if deletion.author != lesson.author:
            continue
        if lesson.event_id is not None and lesson.event_id in deletion.event_ids:
            return True
        if lesson.coordinate in deletion.addresses and deletion.created_at >= (lesson.created_at or 0):
            return True
    return False


def _recording_url(ev: SessionEvidence) -> str | None:
    """The recording, when the lesson allows one: a host-signed 1063 or the lesson's ``r``."""
    lesson = ev.lesson
    if not lesson.allow_recording:
        return None
    hosts = session_hosts(lesson)
    found = [r for r in ev.recordings if r.author in hosts and r.lesson == lesson.coordinate]
    if found:
        return min(found, key=lambda r: (-r.created_at, r.event_id or "")).url
    return lesson.recording_url


def ended_at(ev: SessionEvidence) -> int | None:
    """When the published meeting says the session ended (``ends``, else the update's time)."""
    meeting = current_meeting(ev)
    if meeting is None or meeting.status is not MeetingStatus.ENDED:
        return None
    return meeting.ends if meeting.ends is not None else meeting.created_at


def _stale(meeting: Meeting, lesson: Lesson, now: int, policy: LivePolicy) -> bool:
    return now >= lesson.end and now - (meeting.created_at or 0) >= policy.stale_live


def session_state(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> SessionState:
    """The lifecycle state the events show at ``now`` (see the module docstring)."""
    lesson = ev.lesson
    meeting = current_meeting(ev)
    status = meeting.status if meeting is not None else None
    if status is MeetingStatus.ENDED and meeting is not None and meeting.missed:
        return SessionState.MISSED
    if status is MeetingStatus.LIVE and meeting is not None and not _stale(meeting, lesson, now, policy):
        return SessionState.LIVE
    if status in (MeetingStatus.ENDED, MeetingStatus.LIVE) and meeting is not None:
        if _recording_url(ev) is not None:
            return SessionState.RECORDING_AVAILABLE
        end = ended_at(ev) or meeting.created_at or lesson.end
        if not lesson.allow_recording or now >= end + policy.recording_wait:
            return SessionState.ENDED_WITHOUT_RECORDING
        return SessionState.ENDED
    if is_cancelled(ev):
        return SessionState.CANCELLED
    if now >= lesson.end + policy.closure_grace:
        return SessionState.MISSED
    if meeting is not None or current_room(ev) is not None:
        return SessionState.ROOM_CREATED
    return SessionState.SCHEDULED


@dataclass(frozen=True, slots=True)
class Closure:
    """What the host's daemon publishes, once, for a session nobody closed.

    ``action`` is ``MARK_MISSED`` (never went live: the meeting goes ``ended`` with ``missed``)
    or ``END`` (went live, nobody ended it: ``ended`` with ``ends``). ``meeting`` is the one to
    republish (None when no meeting was ever published: the daemon publishes a closed room and
    an ended meeting, or only records the miss).
    """

    action: SessionAction
    ends: int
    meeting: Meeting | None
    room: Room | None


def _last_activity(ev: SessionEvidence) -> int | None:
    """The latest sign of anyone let in: presence, claims, joins and leaves the host observed.

    Where admission applies only the hosts and admitted participants count, so a stranger's
    presence cannot keep a session open.
    """
    rooms, coord = _room_coordinates(ev), ev.lesson.coordinate
    if admission_required(ev.lesson):
        statuses = _statuses(ev)
        allowed = session_hosts(ev.lesson) | {pk for pk, s in statuses.items() if s.admission is Admission.ADMITTED}
    else:
        allowed = None
    moments = [p.created_at for p in ev.presences if p.room in rooms and (allowed is None or p.author in allowed)]
    moments += [c.created_at for c in ev.claims if c.lesson == coord and (allowed is None or c.author in allowed)]
    moments += [o.at for o in ev.observed]
    return max(moments, default=None)


def _closure_moment(ev: SessionEvidence, policy: LivePolicy) -> tuple[SessionAction, int, int] | None:
    """(action, due at, ends) for a session not yet closed on the wire, else None."""
    lesson = ev.lesson
    meeting = current_meeting(ev)
    if meeting is not None and meeting.status is MeetingStatus.ENDED:
        return None
    if meeting is not None and meeting.status is MeetingStatus.LIVE:
        last = max(lesson.end, _last_activity(ev) or lesson.end)
        return SessionAction.END, last + policy.closure_grace, last
    if is_cancelled(ev):
        return None
    due = lesson.end + policy.closure_grace
    return SessionAction.MARK_MISSED, due, due


def closure_due(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> Closure | None:
    """The closing the host's daemon owes at ``now``, or None (not yet, or already published).

    A live session is ended once its window and everyone's last activity are ``closure_grace``
    behind, so a session that overran while people were still in it is not cut.
    """
    found = _closure_moment(ev, policy)
    if found is None or now < found[1]:
        return None
    action, _, ends = found
    return Closure(action, ends, current_meeting(ev), current_room(ev))


def auto_start_at(lesson: Lesson, policy: LivePolicy = LivePolicy()) -> int:
    """When the host's daemon creates the room if the instructor has not."""
    return lesson.start - policy.room_lead


def room_creation_due(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> bool:
    """No room yet, not cancelled, and the auto-start time has come while the window is open."""
    return (
        session_state(ev, now, policy) is SessionState.SCHEDULED
        and auto_start_at(ev.lesson, policy) <= now < ev.lesson.end
    )


def next_moment(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> int | None:
    """The next moment after ``now`` at which auto-start or a closing becomes due, for the scheduler."""
    moments = []
    state = session_state(ev, now, policy)
    if state is SessionState.SCHEDULED:
        moments.append(auto_start_at(ev.lesson, policy))
    closing = _closure_moment(ev, policy)
    if closing is not None:
        moments.append(closing[1])
    future = [m for m in moments if m > now]
    return min(future, default=None)


# Admission ------------------------------------------------------------------------------------


def admission_required(lesson: Lesson) -> bool:
    """Whether participants need the host's admit: waiting room, E2EE or RSVPs in play."""
    return lesson.waiting_room or lesson.e2ee_required or lesson.requires_rsvp


class Admission(enum.Enum):
    NOT_REQUESTED = "not_requested"
    WAITING = "waiting"
    ADMITTED = "admitted"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class AdmissionStatus:
    """Where one participant stands; ``auto_admit`` says the policy admits them without the instructor."""

    pubkey: str
    admission: Admission
    reason: str
    requested_at: int | None = None
    request: str | None = None
    decided_at: int | None = None
    auto_admit: bool = False


@dataclass(frozen=True, slots=True)
class DueDecision:
    """An 8313 the host's daemon must sign now (automatic admission)."""

    participant: str
    decision: Decision
    target: str
    request: str | None
    reason: str


def check_join_request(request: JoinRequest, participant: str, lesson: Lesson | None = None) -> None:
    """Refuse a join request not signed by ``participant`` (or not for ``lesson``)."""
    if request.author != participant:
        raise DomainError(
            f"join request: signed by {request.author[:16]}, not by the participant {participant[:16]}"
        )
    if lesson is not None and request.lesson != lesson.coordinate:
        raise DomainError(f"join request: for {request.lesson}, not for lesson {lesson.d}")


def check_decision(ev: SessionEvidence, author: str, participant: str, now: int, policy: LivePolicy = LivePolicy()) -> None:
    """Refuse an admit/deny the host may not sign now: not the host, the host themself, or too late."""
    require_host(ev.lesson, author)
    if participant in session_hosts(ev.lesson):
        raise DomainError(f"lesson {ev.lesson.d}: the host is never admitted or denied")
    state = session_state(ev, now, policy)
    if state not in BEFORE_START and state is not SessionState.LIVE:
        raise IllegalTransition(f"admit/deny: not allowed while the session is {state.value}")


def _valid_requests(ev: SessionEvidence) -> dict[str, list[JoinRequest]]:
    """Join requests for this lesson by their own author, oldest first; the host never asks."""
    hosts, coord = session_hosts(ev.lesson), ev.lesson.coordinate
    out: dict[str, list[JoinRequest]] = {}
    for request in set(ev.join_requests):
        if request.lesson == coord and request.author not in hosts:
            out.setdefault(request.author, []).append(request)
    for requests in out.values():
        requests.sort(key=lambda r: (r.created_at, r.event_id or ""))
    return out


def _decision_targets(ev: SessionEvidence) -> frozenset[str]:
    meetings = frozenset(m.coordinate for m in ev.meetings)
    return frozenset({ev.lesson.coordinate}) | _room_coordinates(ev) | meetings


def _host_decisions(ev: SessionEvidence) -> dict[str, list[WaitingRoomDecision]]:
    """The host's decisions about each participant, oldest first (NIP-01 order within a second)."""
    hosts, targets = session_hosts(ev.lesson), _decision_targets(ev)
    out: dict[str, list[WaitingRoomDecision]] = {}
    for decision in set(ev.decisions):
        if decision.author in hosts and decision.target in targets and decision.participant not in hosts:
            out.setdefault(decision.participant, []).append(decision)
    for decisions in out.values():
        decisions.sort(key=lambda d: d.event_id or "", reverse=True)
        decisions.sort(key=lambda d: d.created_at)
    return out


def _policy(ev: SessionEvidence, seats: Roster | None, pubkey: str, admitted_count: int) -> tuple[bool, str]:
    """(admit automatically?, why) for an undecided request; ``seats`` is the roster when RSVPs count."""
    lesson = ev.lesson
    if seats is not None:
        if pubkey in seats.confirmed:
            return True, "RSVP confirmed with a seat"
        position = seats.waitlist_position(pubkey)
        if position is not None:
            return False, f"on the waitlist (position {position}); the instructor decides"
        answer = latest_rsvps(ev.rsvps, lesson.coordinate).get(pubkey)
        said = f"RSVP {answer.status.value}" if answer is not None else "no RSVP"
        return False, f"{said}; the instructor decides"
    if not lesson.waiting_room and not lesson.e2ee_required:
        if lesson.max_participants is None or admitted_count < lesson.max_participants:
            return True, "open session with room"
        return False, f"the room is full ({lesson.max_participants}); the instructor decides"
    return False, "the instructor admits each participant"


def _statuses(ev: SessionEvidence) -> dict[str, AdmissionStatus]:
    requests = _valid_requests(ev)
    decisions = _host_decisions(ev)
    out: dict[str, AdmissionStatus] = {}
    admitted = 0
    for pubkey, history in decisions.items():
        last = history[-1]
        first_request = requests.get(pubkey, [None])[0]
        out[pubkey] = AdmissionStatus(
            pubkey,
            Admission.ADMITTED if last.decision is Decision.ADMIT else Admission.DENIED,
            f"the host {'admitted' if last.decision is Decision.ADMIT else 'denied'} them",
            requested_at=first_request.created_at if first_request else None,
            request=first_request.event_id if first_request else None,
            decided_at=last.created_at,
        )
        admitted += last.decision is Decision.ADMIT
    waiting = sorted(
        ((history[0], pubkey) for pubkey, history in requests.items() if pubkey not in out),
        key=lambda item: (item[0].created_at, item[0].event_id or "", item[1]),
    )
    seats = roster(ev.lesson, ev.rsvps) if ev.lesson.requires_rsvp and waiting else None
    for first, pubkey in waiting:
        auto, reason = _policy(ev, seats, pubkey, admitted)
        admitted += auto
        out[pubkey] = AdmissionStatus(
            pubkey, Admission.WAITING, reason, first.created_at, first.event_id, auto_admit=auto
        )
    return out


def admission(ev: SessionEvidence, pubkey: str) -> AdmissionStatus:
    """Where ``pubkey`` stands; the hosts are always in, an open lesson needs no admission."""
    if pubkey in session_hosts(ev.lesson):
        return AdmissionStatus(pubkey, Admission.ADMITTED, "hosts the session")
    status = _statuses(ev).get(pubkey)
    if status is not None:
        return status
    if not admission_required(ev.lesson):
        return AdmissionStatus(pubkey, Admission.ADMITTED, "open session: no admission needed")
    return AdmissionStatus(pubkey, Admission.NOT_REQUESTED, "has not asked to join")


def waiting_room(ev: SessionEvidence) -> tuple[AdmissionStatus, ...]:
    """Everyone waiting for a decision, in request order (``room waiting``)."""
    waiting = [s for s in _statuses(ev).values() if s.admission is Admission.WAITING]
    return tuple(sorted(waiting, key=lambda s: (s.requested_at or 0, s.request or "", s.pubkey)))


def decisions_due(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> tuple[DueDecision, ...]:
    """Automatic admissions to sign now: only while the room is open (created or live).

    Once the 8313 is in the evidence the participant is no longer waiting, so each is due once.
    """
    if session_state(ev, now, policy) not in (SessionState.ROOM_CREATED, SessionState.LIVE):
        return ()
    room = current_room(ev)
    target = room.coordinate if room is not None else ev.lesson.coordinate
    return tuple(
        DueDecision(s.pubkey, Decision.ADMIT, target, s.request, s.reason)
        for s in waiting_room(ev)
        if s.auto_admit
    )


def membership_changes(ev: SessionEvidence) -> tuple[MembershipChange, ...]:
    """Key-schedule changes from the evidence: host admits and denies, the learner's own leaves
    and returns (an 8315 join, or a new join request, after an admit)."""
    changes: set[MembershipChange] = set()
    for pubkey, history in _host_decisions(ev).items():
        for decision in history:
            change = Change.ADMIT if decision.decision is Decision.ADMIT else Change.REMOVE
            changes.add(MembershipChange(pubkey, change, decision.created_at))
    coord, hosts = ev.lesson.coordinate, session_hosts(ev.lesson)
    for claim in ev.claims:
        if claim.lesson == coord and claim.author not in hosts:
            change = Change.RETURN if claim.action is AttendanceAction.JOIN else Change.LEAVE
            changes.add(MembershipChange(claim.author, change, claim.created_at))
    for pubkey, requests in _valid_requests(ev).items():
        changes.update(MembershipChange(pubkey, Change.RETURN, r.created_at) for r in requests[1:])
    return tuple(sorted(changes, key=lambda c: (c.at, c.change.value, c.pubkey)))


# Join links and E2EE --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinAccess:
    """The join link for one participant now, or None with the reason.

    ``refusal`` is the error ``require`` raises when there is no link: ``AdmissionRequired``
    (not admitted, or denied), ``RoomKeyRequired`` (E2EE without the current key, or a room that
    does not encrypt) or ``JoinRefused`` (no open room now), as the SFU adapter raises them.
    """

    url: str | None
    reason: str
    room: str | None = None
    epoch: int | None = None
    refusal: type[JoinRefused] | None = None

    def require(self) -> str:
        """The link, or raise ``refusal`` with the reason (what the join command shows)."""
        if self.url is None:
            raise (self.refusal or JoinRefused)(f"{self.room or 'no room'}: {self.reason}")
        return self.url


def join_access(
    ev: SessionEvidence,
    pubkey: str,
    now: int,
    *,
    key_epoch: int | None = None,
    policy: LivePolicy = LivePolicy(),
) -> JoinAccess:
    """Whether ``pubkey`` gets the join link; ``key_epoch`` is the newest room key they hold.

    The link opens when the session is live, or from ``early_join_grace`` before the start
    once the room exists. Where E2EE is required there is no link without the room's current
    key, nor for a room that does not announce E2EE: never a fall-back to clear media.
    """
    lesson = ev.lesson
    state = session_state(ev, now, policy)
    room = current_room(ev)
    coord = room.coordinate if room is not None else None
    opens = lesson.start - policy.attendance.early_join_grace
    if state is not SessionState.LIVE and not (state is SessionState.ROOM_CREATED and now >= opens):
        return JoinAccess(None, f"session is {state.value}", coord, refusal=JoinRefused)
    url = (room.service if room is not None else None) or lesson.location
    if url is None:
        return JoinAccess(None, "no room to join yet", coord, refusal=JoinRefused)
    standing = admission(ev, pubkey)
    if standing.admission is Admission.DENIED:
        return JoinAccess(None, "the host denied entry", coord, refusal=AdmissionRequired)
    if admission_required(lesson) and standing.admission is not Admission.ADMITTED:
        return JoinAccess(None, f"not admitted: {standing.reason}", coord, refusal=AdmissionRequired)
    if not lesson.e2ee_required:
        return JoinAccess(url, "ok", coord, key_epoch)
    if room is None or room.e2ee is None:
        return JoinAccess(
            None, "E2EE is required but the room does not encrypt media end to end", coord, refusal=RoomKeyRequired
        )
    if key_epoch is None:
        return JoinAccess(None, "E2EE is required and no room key has reached you yet", coord, refusal=RoomKeyRequired)
    if room.key_epoch is not None and key_epoch < room.key_epoch:
        return JoinAccess(
            None, f"room key epoch {key_epoch} is retired; the room is at {room.key_epoch}", coord, refusal=RoomKeyRequired
        )
    return JoinAccess(url, "ok", coord, key_epoch)


def check_room_key(ev: SessionEvidence, key: RoomKey, *, newest_held: int | None = None) -> None:
    """Refuse an unwrapped 8310 that a participant must not use.

    Only the host issues keys (one committer), for this lesson's room, and an epoch older than
    the newest one held (or than the room announces) is never taken back into use.
    """
    if key.author not in session_hosts(ev.lesson):
        raise DomainError(f"room key: issued by {key.author[:16]}, who does not host lesson {ev.lesson.d}")
    if key.room not in _room_coordinates(ev) | frozenset(m.coordinate for m in ev.meetings):
        raise DomainError(f"room key: for {key.room}, not for the room of lesson {ev.lesson.d}")
    room = current_room(ev)
    floor = max(e for e in (newest_held, room.key_epoch if room else None, 0) if e is not None)
    if key.epoch < floor:
        raise DomainError(f"room key: epoch {key.epoch} is older than epoch {floor}")


# Recording consent ----------------------------------------------------------------------------


def consent_in_force(ev: SessionEvidence, pubkey: str, at: int) -> bool:
    """The participant's own latest 8311 at ``at`` says given (the host consents by recording)."""
    lesson = ev.lesson
    if not lesson.allow_recording:
        return False
    if pubkey in session_hosts(lesson):
        return True
    own = [
        c
        for c in ev.consents
        if c.author == pubkey and c.lesson == lesson.coordinate and c.created_at <= at
    ]
    latest = min(own, key=lambda c: (-c.created_at, c.event_id or ""), default=None)
    return latest is not None and latest.given


def recording_subjects(ev: SessionEvidence, participants: Iterable[str], now: int) -> tuple[str, ...]:
    """The participants a recording may name at ``now``: those whose consent is in force."""
    return tuple(sorted(p for p in set(participants) if consent_in_force(ev, p, now)))


# Conference details ---------------------------------------------------------------------------


class ConferenceDetails(NamedTuple):
    """The seed's ``getConferenceDetails``: the same for every participant (public evidence only)."""

    room_id: str | None
    is_active: bool
    participant_count: int


def _present(ev: SessionEvidence, now: int, policy: LivePolicy) -> frozenset[str]:
    """Pubkeys with a fresh presence in the room, counting only those admitted where needed."""
    rooms, fresh = _room_coordinates(ev), policy.attendance.heartbeat_grace
    present = {p.author for p in ev.presences if p.room in rooms and 0 <= now - p.created_at <= fresh}
    if admission_required(ev.lesson):
        statuses, hosts = _statuses(ev), session_hosts(ev.lesson)
        present = {
            pk
            for pk in present
            if pk in hosts or (pk in statuses and statuses[pk].admission is Admission.ADMITTED)
        }
    return frozenset(present)


def conference_details(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> ConferenceDetails:
    """Room, whether live, and how many are in it: fresh presences, else the host's snapshot."""
    room = current_room(ev)
    room_id = room.coordinate if room is not None else ev.lesson.room
    if session_state(ev, now, policy) is not SessionState.LIVE:
        return ConferenceDetails(room_id, False, 0)
    rooms = _room_coordinates(ev)
    if any(p.room in rooms for p in ev.presences):
        return ConferenceDetails(room_id, True, len(_present(ev, now, policy)))
    meeting = current_meeting(ev)
    if meeting is not None and meeting.current_participants is not None:
        return ConferenceDetails(room_id, True, meeting.current_participants)
    return ConferenceDetails(room_id, True, len(_joined(ev)))


def _joined(ev: SessionEvidence) -> frozenset[str]:
    """Participants whose latest public sign is a join (an 8312 request or an 8315 join claim)
    rather than an 8315 leave, let in where the lesson needs it: the count every participant
    can read when nobody publishes presence."""
    coord = ev.lesson.coordinate
    latest: dict[str, tuple[int, bool]] = {}
    for request in ev.join_requests:
        if request.lesson == coord:
            latest[request.author] = max(latest.get(request.author, (0, True)), (request.created_at, True))
    for claim in ev.claims:
        if claim.lesson == coord:
            joined = claim.action is AttendanceAction.JOIN
            previous = latest.get(claim.author, (-1, True))
            if claim.created_at >= previous[0]:
                latest[claim.author] = (claim.created_at, joined)
    inside = {pk for pk, (_, joined) in latest.items() if joined} - session_hosts(ev.lesson)
    if admission_required(ev.lesson):
        statuses = _statuses(ev)
        inside = {pk for pk in inside if pk in statuses and statuses[pk].admission is Admission.ADMITTED}
    return frozenset(inside)


PRESENCE_INTERVAL = 60
"""A learner in a live session re-announces presence (10312) this often: within NIP-53's 30-120 s
and well inside the host's ``heartbeat_grace`` (180 s), so one lost beat does not read as gone."""


def presence_due(ev: SessionEvidence, learner: str, now: int, *, interval: int = PRESENCE_INTERVAL,
                 policy: LivePolicy = LivePolicy()) -> bool:
    """Whether ``learner``'s daemon announces presence now: the session is live, the learner's
    latest sign is a join (asked or came back, not left), they are let in where the lesson needs
    it, and their newest presence in the current room is ``interval`` old or more (or none).
    Presence is evidence only: attendance still comes from joins and leaves."""
    if learner in session_hosts(ev.lesson) or session_state(ev, now, policy) is not SessionState.LIVE:
        return False
    room = current_room(ev)
    if room is None or learner not in _joined(ev):
        return False
    beats = [p.created_at for p in ev.presences if p.author == learner and p.room == room.coordinate]
    return not beats or now - max(beats) >= interval


# Attendance -----------------------------------------------------------------------------------


def attendance_evidence(ev: SessionEvidence, policy: LivePolicy = LivePolicy()) -> tuple[Evidence, ...]:
    """Inputs for ``rules.attendance.compute_attendance`` from the session's events.

    - The host's admits become ``Admitted``; a deny closes every connection of that participant,
      and their joins while denied (until the host admits them again) are dropped.
    - Host-observed joins and leaves are used as given. For a participant the host observed,
      their own requests and claims are not joins (one source, so joins are not counted twice).
    - Otherwise the participant's join requests and 8315 claims are joins and leaves on one
      connection; a join while the previous one is still alive (within ``heartbeat_grace`` of
      the unbroken run of heartbeats that followed it) is the same join, not a reconnect. A
      request made while waiting counts from the host's admit, when they enter the room.
    - Presence (10312) in the lesson's room is a heartbeat.
    """
    lesson = ev.lesson
    coord, rooms = lesson.coordinate, _room_coordinates(ev)
    grace = policy.attendance.heartbeat_grace
    out: list[Evidence] = []
    beats: dict[str, list[int]] = {}
    for presence in ev.presences:
        if presence.room in rooms:
            beats.setdefault(presence.author, []).append(presence.created_at)
            out.append(Heartbeat(presence.author, presence.created_at))
    decisions = _host_decisions(ev)

    def barred(pubkey: str, at: int) -> bool:
        """Denied at ``at``: a join then is not attendance (the deny stands until an admit)."""
        answer = None
        for decision in decisions.get(pubkey, ()):
            if decision.created_at > at:
                break
            answer = decision.decision
        return answer is Decision.DENY

    observed = {o.pubkey for o in ev.observed if isinstance(o, Join)}
    connections: dict[str, set[str]] = {}
    for item in ev.observed:
        if isinstance(item, Join) and barred(item.pubkey, item.at):
            continue
        out.append(item)
        connections.setdefault(item.pubkey, set()).add(item.connection)
    own: dict[str, list[tuple[int, int, str]]] = {}
    for claim in ev.claims:
        if claim.lesson == coord:
            mark = 0 if claim.action is AttendanceAction.JOIN else 1
            own.setdefault(claim.author, []).append((claim.created_at, mark, "claim"))
    gated = admission_required(lesson)

    def entered(pubkey: str, at: int) -> int | None:
        """When a request made at ``at`` puts its author in the room: at once if admitted then,
        else at the host's next admit (the wait is not in the room, so no heartbeats are owed
        for it); None when they left before being let in."""
        if not gated:
            return at
        history = decisions.get(pubkey, ())
        before = [d for d in history if d.created_at <= at]
        if before and before[-1].decision is Decision.ADMIT:
            return at
        later = next((d.created_at for d in history if d.created_at > at and d.decision is Decision.ADMIT), at)
        gave_up = any(mark == 1 and at <= when < later for when, mark, _ in own.get(pubkey, ()))
        return None if gave_up else later

    for pubkey, requests in _valid_requests(ev).items():
        moments = (entered(pubkey, q.created_at) for q in requests)
        own.setdefault(pubkey, []).extend((m, 0, "request") for m in moments if m is not None)
    for pubkey, marks in own.items():
        if pubkey in observed:
            continue
        connections.setdefault(pubkey, set()).add(LEARNER_CONNECTION)
        pulses = sorted(beats.get(pubkey, ()))
        opened: int | None = None
        for at, mark, source in sorted(set(marks)):
            if mark == 1:
                if opened is not None:
                    out.append(Leave(pubkey, at, LEARNER_CONNECTION, source))
                opened = None
                continue
            if barred(pubkey, at):
                continue
            if opened is not None and at - _alive_until(opened, pulses, grace) <= grace:
                continue
            out.append(Join(pubkey, at, LEARNER_CONNECTION, source))
            opened = at
    for pubkey, history in decisions.items():
        for decision in history:
            if decision.decision is Decision.ADMIT:
                out.append(Admitted(pubkey, decision.created_at))
            else:
                out.extend(Leave(pubkey, decision.created_at, c, "removed") for c in sorted(connections.get(pubkey, ())))
    return tuple(out)


def _alive_until(opened: int, pulses: list[int], grace: int) -> int:
    """The last heartbeat of the unbroken run after ``opened`` (as ``rules.attendance`` reads it)."""
    last = opened
    for pulse in pulses:
        if pulse < opened:
            continue
        if pulse - last > grace:
            break
        last = pulse
    return last


def session_window(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> SessionWindow | None:
    """The window attendance is counted in so far: to ``now`` while live, to the end once ended."""
    state = session_state(ev, now, policy)
    start = ev.lesson.start
    meeting = current_meeting(ev)
    if meeting is not None and meeting.starts and meeting.starts < start:
        start = meeting.starts  # the host went live early: the session runs from then
    if state is SessionState.LIVE:
        return SessionWindow(start, now)  # so far: nothing after now is counted, even before the start
    if state in AFTER_END and state is not SessionState.MISSED:
        end = ended_at(ev)
        if end is None:
            end = meeting.created_at if meeting is not None and meeting.created_at else ev.lesson.end
        return SessionWindow(start, max(start, end))
    return None


def attendance_so_far(
    ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy(), *, only: str | None = None
) -> dict[str, Attendance]:
    """Each participant's attendance at ``now`` (final once the session has ended); ``only``
    limits the work to one pubkey."""
    window = session_window(ev, now, policy)
    if window is None:
        return {}
    if only is not None:
        ev = replace(
            ev,
            join_requests=tuple(q for q in ev.join_requests if q.author == only),
            decisions=tuple(d for d in ev.decisions if d.participant == only),
            presences=tuple(p for p in ev.presences if p.author == only),
            claims=tuple(c for c in ev.claims if c.author == only),
            observed=tuple(o for o in ev.observed if o.pubkey == only),
        )
    return compute_attendance(
        attendance_evidence(ev, policy),
        window,
        policy.attendance,
        waiting_room=admission_required(ev.lesson),
    )


def live_completions(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> dict[str, LiveCompletion]:
    """Each learner's completion judgement (the hosts excluded), from their attendance so far."""
    hosts = session_hosts(ev.lesson)
    return {
        pubkey: evaluate_live(att.total_seconds, ev.lesson)
        for pubkey, att in attendance_so_far(ev, now, policy).items()
        if pubkey not in hosts
    }


def completed_at(attendance: Attendance, required_seconds: int) -> int | None:
    """The moment the learner's attended time reached ``required_seconds``, or None if it did not."""
    reached = 0
    for start, end in attendance.intervals:
        if reached + (end - start) >= required_seconds:
            return start + (required_seconds - reached)
        reached += end - start
    return None


def _evidence_ids(ev: SessionEvidence) -> dict[str, tuple[str, ...]]:
    """Per learner, the signed events their record rests on: requests, claims, the host's decisions."""
    ids: dict[str, set[str | None]] = {}
    for pubkey, requests in _valid_requests(ev).items():
        ids.setdefault(pubkey, set()).update(q.event_id for q in requests)
    for c in ev.claims:
        if c.lesson == ev.lesson.coordinate:
            ids.setdefault(c.author, set()).add(c.event_id)
    for pubkey, decisions in _host_decisions(ev).items():
        ids.setdefault(pubkey, set()).update(d.event_id for d in decisions)
    return {pk: tuple(sorted(i for i in found if i is not None)) for pk, found in ids.items()}


def attendance_records(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> tuple[AttendanceRecord, ...]:
    """The host's 31930 values for every learner with attendance, the rule and its inputs inside."""
    lesson, hosts = ev.lesson, session_hosts(ev.lesson)
    evidence = _evidence_ids(ev)
    out = []
    for pubkey, att in sorted(attendance_so_far(ev, now, policy).items()):
        if pubkey in hosts:
            continue
        judged = evaluate_live(att.total_seconds, lesson)
        out.append(
            AttendanceRecord(
                author=lesson.author,
                lesson=lesson.coordinate,
                learner=pubkey,
                total_seconds=att.total_seconds,
                join_count=att.join_count,
                intervals=att.intervals,
                rule=judged.rule,
                met=judged.met,
                created_at=now,
                required_seconds=judged.required_seconds,
                evidence=evidence.get(pubkey, ()),
                minimum_seconds=judged.minimum_seconds,
                minimum_percent=judged.minimum_percent,
                scheduled_seconds=judged.scheduled_seconds,
            )
        )
    return tuple(out)


def completion_records(ev: SessionEvidence, now: int, policy: LivePolicy = LivePolicy()) -> tuple[CompletionRecord, ...]:
    """A 31931 value for each learner who met the rule, completed when their time reached it.

    ``evidence`` is left for the daemon to fill with the id of the signed attendance record.
    """
    out = []
    for record in attendance_records(ev, now, policy):
        if not record.met or record.required_seconds is None:
            continue
        att = Attendance(record.learner, record.total_seconds, record.intervals, record.join_count, 0)
        moment = completed_at(att, record.required_seconds)
        out.append(
            CompletionRecord(
                author=record.author,
                subject=record.lesson,
                learner=record.learner,
                completed_at=moment if moment is not None else now,
                basis=CompletionBasis.ATTENDANCE,
                created_at=now,
            )
        )
    return tuple(out)


# The learner's view ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LearnerView:
    """The seed's ``useLiveSession`` for one learner at one moment."""

    lesson: str
    state: SessionState
    is_scheduled: bool
    is_live: bool
    is_ended: bool
    is_cancelled: bool
    is_missed: bool
    has_recording: bool
    time_until_start: int | None
    rsvp_status: RsvpStatus | None
    can_rsvp: bool
    waitlist_position: int | None
    admission: Admission
    is_attending: bool
    attendance_seconds: int
    join_count: int
    recording_url: str | None
    join: JoinAccess
    participant_count: int
    room: str | None


def learner_view(
    ev: SessionEvidence,
    learner: str,
    now: int,
    *,
    key_epoch: int | None = None,
    policy: LivePolicy = LivePolicy(),
) -> LearnerView:
    """Everything the learner's page shows, from the evidence their daemon holds."""
    lesson = ev.lesson
    state = session_state(ev, now, policy)
    flags = derive_flags(lesson, state, now)
    answer = latest_rsvps(ev.rsvps, lesson.coordinate).get(learner)
    position = roster(lesson, ev.rsvps).waitlist_position(learner) if lesson.requires_rsvp else None
    attendance = attendance_so_far(ev, now, policy, only=learner).get(learner)
    details = conference_details(ev, now, policy)
    attending = state is SessionState.LIVE and (
        learner in _present(ev, now, policy)
        or (attendance is not None and attendance.last_left_at == max(lesson.start, now))
    )
    return LearnerView(
        lesson=lesson.coordinate,
        state=state,
        is_scheduled=flags.is_scheduled,
        is_live=flags.is_live,
        is_ended=flags.is_ended,
        is_cancelled=flags.is_cancelled,
        is_missed=state is SessionState.MISSED,
        has_recording=flags.has_recording,
        time_until_start=flags.time_until_start,
        rsvp_status=answer.status if answer is not None else None,
        can_rsvp=flags.can_rsvp,
        waitlist_position=position,
        admission=admission(ev, learner).admission,
        is_attending=attending,
        attendance_seconds=attendance.total_seconds if attendance is not None else 0,
        join_count=attendance.join_count if attendance is not None else 0,
        recording_url=_recording_url(ev) if state is SessionState.RECORDING_AVAILABLE else None,
        join=join_access(ev, learner, now, key_epoch=key_epoch, policy=policy),
        participant_count=details.participant_count,
        room=details.room_id,
    )
