"""A small school for service tests: an issuer who hosts a two-lesson course, learners, and
helpers that put signed events in a store the way a daemon's index would hold them."""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.daemon_fakes import FakePool

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.daemon.outbox import Outbox
from nostr_training.event import Event, EventTemplate, coordinate, sign_event
from nostr_training.keys import Keys
from nostr_training.services.context import ServiceContext
from nostr_training.signer import LocalSigner
from nostr_training.store.memory import MemoryStore

R = "wss://relay.example"
T = 1_800_000_000
DAY = 86400


def lesson_of(host: Keys, d: str, course: str, start: int, minutes: int = 60) -> kinds.Lesson:
    return kinds.Lesson(author=host.public_key, d=d, title=f"Lesson {d}", start=start, end=start + minutes * 60,
                        instructor=host.public_key, course=course, location="Hall B")


@dataclass
class School:
    issuer: Keys
    learners: list[Keys]
    course: kinds.Course
    lessons: list[kinds.Lesson]
    events: list[Event] = field(default_factory=list)

    @property
    def lesson_coords(self) -> list[str]:
        return [lesson.coordinate for lesson in self.lessons]

    def completion(self, learner: Keys, lesson: kinds.Lesson, *, by: Keys | None = None, at: int = T) -> Event:
        record = kinds.CompletionRecord(author="", subject=lesson.coordinate, learner=learner.public_key,
                                        completed_at=at, basis=kinds.CompletionBasis.ATTENDANCE, created_at=at)
        return sign_event(kinds.build_completion_record(record, created_at=at), (by or self.issuer).secret)


def school(*, validity_days: int | None = 365, learners: int = 3, issuer: Keys | None = None) -> School:
    issuer = issuer or Keys.generate()
    course_coord = coordinate(kinds.COURSE, issuer.public_key, "first-aid")
    lessons = [lesson_of(issuer, f"fa-{n}", course_coord, T - 10 * DAY + n * DAY) for n in range(2)]
    course = kinds.Course(issuer.public_key, "first-aid", "First aid", "Bandages and calm.",
                          lessons=tuple(lesson.coordinate for lesson in lessons), certification_enabled=True,
                          validity_days=validity_days)
    world = School(issuer, [Keys.generate() for _ in range(learners)], course, lessons)
    world.events.append(sign_event(kinds.build_course(course, created_at=T - 20 * DAY), issuer.secret))
    for lesson in lessons:
        world.events.append(sign_event(kinds.build_lesson(lesson, created_at=T - 20 * DAY), issuer.secret))
    return world


async def context(keys: Keys | None, clock: ManualClock, store: MemoryStore | None = None) -> ServiceContext:
    store = store or await MemoryStore.open()
    outbox = Outbox(store, FakePool(), clock=clock, default_relays=[R])
    return ServiceContext(config=None, store=store, outbox=outbox, clock=clock,  # type: ignore[arg-type]
                          signer=LocalSigner(keys) if keys else None)


def signed(keys: Keys, template: EventTemplate) -> Event:
    return sign_event(template, keys.secret)
