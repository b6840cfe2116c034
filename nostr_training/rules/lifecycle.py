"""The live-session lifecycle, and the flags a learner's view derives from it.

Decides which step may follow which (scheduled -> room created -> live -> ended -> recording
available, or ended without recording; cancelled before it goes live; missed when nobody
started it within its window, judged once by the host's daemon) and raises
``IllegalTransition`` otherwise, so an "end" that never started or a second recording cannot be
recorded. The seed's ``useLiveSession`` flags came from the clock alone (live = inside
[start, start + duration)); here they come from the recorded state, so a session the
instructor has not started is not shown as live, and one that overran is not shown as ended.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import IllegalTransition
from ..kinds.calendar import Lesson

__all__ = [
    "SessionState",
    "SessionAction",
    "BEFORE_START",
    "AFTER_END",
    "transition",
    "LiveSessionView",
    "derive_flags",
    "rsvp_refusal",
]


class SessionState(enum.Enum):
    SCHEDULED = "scheduled"
    ROOM_CREATED = "room_created"
    LIVE = "live"
    ENDED = "ended"
    RECORDING_AVAILABLE = "recording_available"
    ENDED_WITHOUT_RECORDING = "ended_without_recording"
    CANCELLED = "cancelled"
    MISSED = "missed"
    """Never went live: its window and a grace passed (see ``rules.rooms.closure_due``)."""


class SessionAction(enum.Enum):
    CREATE_ROOM = "create_room"
    START = "start"
    END = "end"
    PUBLISH_RECORDING = "publish_recording"
    CLOSE_WITHOUT_RECORDING = "close_without_recording"
    CANCEL = "cancel"
    MARK_MISSED = "mark_missed"


_S, _A = SessionState, SessionAction

_NEXT: dict[tuple[SessionState, SessionAction], SessionState] = {
    (_S.SCHEDULED, _A.CREATE_ROOM): _S.ROOM_CREATED,
    (_S.SCHEDULED, _A.CANCEL): _S.CANCELLED,
    (_S.ROOM_CREATED, _A.START): _S.LIVE,
    (_S.ROOM_CREATED, _A.CANCEL): _S.CANCELLED,
    (_S.SCHEDULED, _A.MARK_MISSED): _S.MISSED,
    (_S.ROOM_CREATED, _A.MARK_MISSED): _S.MISSED,
    (_S.LIVE, _A.END): _S.ENDED,
    (_S.ENDED, _A.PUBLISH_RECORDING): _S.RECORDING_AVAILABLE,
    (_S.ENDED, _A.CLOSE_WITHOUT_RECORDING): _S.ENDED_WITHOUT_RECORDING,
}

BEFORE_START = frozenset({_S.SCHEDULED, _S.ROOM_CREATED})
AFTER_END = frozenset({_S.ENDED, _S.RECORDING_AVAILABLE, _S.ENDED_WITHOUT_RECORDING, _S.MISSED})
"""The session is over, whether it was held or missed."""


def transition(
    state: SessionState, action: SessionAction, *, recording_allowed: bool = True
) -> SessionState:
    """The state after ``action``; raises ``IllegalTransition`` for any step not in the table.

    A lesson that does not allow recording can only be closed without one.
    """
    if action is _A.PUBLISH_RECORDING and not recording_allowed:
        raise IllegalTransition("publish_recording: this lesson does not allow recording")
    try:
        return _NEXT[(state, action)]
    except KeyError:
        raise IllegalTransition(
            f"{action.value}: not allowed while the session is {state.value}"
        ) from None


def rsvp_refusal(lesson: Lesson, state: SessionState, now: int) -> str | None:
    """Why an RSVP is not accepted now, or None when it is.

    As in the seed, RSVPs are taken only for lessons that ask for them, and only before the
    session starts: while it is scheduled (room created or not) and the start time has not come,
    nor the instructor's cut-off (``rsvp_until``).
    A full lesson still takes RSVPs; they go on the waitlist (see ``rules.rsvp``).
    """
    if not lesson.requires_rsvp:
        return f"lesson {lesson.d}: does not take RSVPs"
    if state not in BEFORE_START:
        return f"lesson {lesson.d}: session is {state.value}"
    if now >= lesson.start:
        return f"lesson {lesson.d}: session started at {lesson.start}"
    if now >= lesson.rsvp_closes_at:
        return f"lesson {lesson.d}: RSVPs closed at {lesson.rsvp_closes_at}"
    return None


@dataclass(frozen=True, slots=True)
class LiveSessionView:
    """The seed's ``useLiveSession`` status flags at one moment."""

    state: SessionState
    is_scheduled: bool
    is_live: bool
    is_ended: bool
    is_cancelled: bool
    has_recording: bool
    time_until_start: int | None
    can_rsvp: bool


def derive_flags(lesson: Lesson, state: SessionState, now: int) -> LiveSessionView:
    """Status flags for ``lesson`` in ``state`` at ``now``.

    ``time_until_start`` counts down to the scheduled start while the session has not started
    (0 when the start time has passed but the instructor has not gone live) and is None once it
    is live, over or cancelled.
    """
    before = state in BEFORE_START
    return LiveSessionView(
        state=state,
        is_scheduled=before,
        is_live=state is _S.LIVE,
        is_ended=state in AFTER_END,
        is_cancelled=state is _S.CANCELLED,
        has_recording=state is _S.RECORDING_AVAILABLE,
        time_until_start=max(0, lesson.start - now) if before else None,
        can_rsvp=rsvp_refusal(lesson, state, now) is None,
    )
