"""In-person and hybrid events: a NIP-52 event linked to a course or lesson, and door check-ins.

An event is any NIP-52 calendar event (31922 or 31923, ours or another client's). Linking it to
training adds ``a`` tags: the course (31924) and, when the event delivers one lesson, that
lesson (31923). A 31923 that names a course and no other lesson is itself the lesson.

At the door the host (the lesson's author or instructor) signs one 8316 per check-in or
check-out, naming the learner in ``p``. ``at`` is when it happened and may precede
``created_at`` (a check-out typed in after the fact), never follow it. The learner signs
nothing: a door check is the host's testimony, as the host's attendance record is, so it counts
as evidence with no learner claim beside it. It is signed at the door with no network and
delivered later through the outbox, so ``at`` and the signature do not depend on the relay.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..event import Event, EventTemplate
from . import COURSE as COURSE_KIND
from . import DATE_EVENT as DATE_EVENT_KIND
from . import DOOR_CHECK as DOOR_CHECK_KIND
from . import LESSON as LESSON_KIND
from . import _wire
from ._wire import Reader

__all__ = [
    "DoorAction",
    "DoorCheck",
    "TrainingLink",
    "build_door_check",
    "parse_door_check",
    "build_event_link",
    "parse_training_link",
]

DOOR_CHECK_ALT = "Door check-in or check-out at a training event, signed by its host"
_CALENDAR_KINDS = (DATE_EVENT_KIND, LESSON_KIND)


class DoorAction(enum.Enum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"


@dataclass(frozen=True, slots=True)
class DoorCheck:
    """The host saw ``learner`` come in (or leave) the event ``lesson`` at ``at``."""

    author: str
    lesson: str
    learner: str
    action: DoorAction
    at: int
    created_at: int
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class TrainingLink:
    """What a calendar event delivers: a course, and the lesson it stands for (if one)."""

    event: str
    author: str
    course: str | None
    lesson: str | None
    location: str | None = None


def build_door_check(
    lesson: str, learner: str, action: DoorAction | str, *, at: int, created_at: int
) -> EventTemplate:
    """An 8316 for the host to sign; ``at`` may be earlier than ``created_at``, not later."""
    _wire.check_coordinate("a", lesson, (LESSON_KIND,))
    _wire.check_pubkey("p", learner)
    try:
        act = DoorAction(action)
    except ValueError:
        raise _wire.malformed("action", f"must be check_in|check_out, got {action!r}") from None
    _wire.check_int("at", at)
    if at > created_at:
        raise _wire.malformed("at", f"{at} is after the event's created_at {created_at}")
    tags: list[tuple[str, ...]] = [
        ("a", lesson),
        ("p", learner),
        ("action", act.value),
        ("at", str(at)),
        _wire.alt(DOOR_CHECK_ALT),
    ]
    return EventTemplate(DOOR_CHECK_KIND, tuple(tags), "", created_at)


def parse_door_check(event: Event) -> DoorCheck:
    r = Reader(event, DOOR_CHECK_KIND)
    lesson = r.one_coordinate((LESSON_KIND,))
    learners = r.all("p")
    if len(learners) != 1:
        if not learners:
            r.required("p")
        raise r.fail("p", f"a door check names exactly one learner, got {len(learners)}")
    learner = r.pubkey("p", learners[0])
    if learner == event.pubkey:
        raise r.fail("p", "the host cannot check themselves in")
    action = DoorAction(r.choice("action", r.required("action"), [a.value for a in DoorAction]))
    at = r.required_int("at")
    if at > event.created_at:
        raise r.fail("at", f"{at} is after the event's created_at {event.created_at}")
    return DoorCheck(
        author=event.pubkey,
        lesson=lesson,
        learner=learner,
        action=action,
        at=at,
        created_at=event.created_at,
        event_id=event.id,
    )


def build_event_link(
    event: Event, *, course: str | None = None, lesson: str | None = None, created_at: int
) -> EventTemplate:
    """The author's calendar event again, now linked: old course/lesson links replaced.

    Only the event's author can publish the result (it replaces the event's address).
    """
    if event.kind not in _CALENDAR_KINDS:
        raise _wire.malformed("kind", f"only a NIP-52 event (31922/31923) is linked, got {event.kind}")
    if course is None and lesson is None:
        raise _wire.malformed("a", "link to a course, a lesson or both")
    if course is not None:
        _wire.check_coordinate("a", course, (COURSE_KIND,))
    if lesson is not None:
        _wire.check_coordinate("a", lesson, (LESSON_KIND,))
        if lesson == event.address:
            raise _wire.malformed("a", "an event does not link to itself")

    def is_link(tag: tuple[str, ...]) -> bool:
        if tag[0] != "a" or len(tag) < 2:
            return False
        return tag[1].startswith((f"{COURSE_KIND}:", f"{LESSON_KIND}:"))

    tags = [tag for tag in event.tags if not is_link(tag)]
    tags += [("a", value) for value in (course, lesson) if value is not None]
    return EventTemplate(event.kind, tuple(tags), event.content, created_at)


def parse_training_link(event: Event) -> TrainingLink:
    """What ``event`` is linked to; a 31923 naming only a course is that course's lesson."""
    r = Reader(event, _CALENDAR_KINDS)
    r.d()
    own = event.address or ""
    course = next(iter(r.coordinates((COURSE_KIND,))), None)
    lessons = [c for c in r.coordinates((LESSON_KIND,)) if c != own]
    if len(lessons) > 1:
        raise r.fail("a", f"an event delivers at most one lesson, got {len(lessons)}")
    lesson = lessons[0] if lessons else None
    if lesson is None and course is not None and event.kind == LESSON_KIND:
        lesson = own
    return TrainingLink(
        event=own,
        author=event.pubkey,
        course=course,
        lesson=lesson,
        location=r.optional("location") or None,
    )
