"""The reminder scheduler: on the host's daemon, each reminder of the seed's table goes to each
learner once, as a NIP-17 DM, on the daemon's clock.

Every ``interval`` seconds, for each lesson the user hosts (authored by the daemon's key, or
cancelled by it), ``rules.reminders.plan_reminders`` is asked what is due from the index alone:
the lesson's revisions, every answer, the course's enrolled learners (``services.rsvp``), the
cancellation and the recording (an ``r`` recording tag or a 1063 naming the lesson). Each due
reminder is gift-wrapped and committed to the outbox together with its action-log key, so a
restart neither repeats nor forgets one; a reminder the plan reports missed (its moment passed
while the daemon was down) is logged as dropped, so ``rsvp list`` can say so and it is never
planned again. A learner without inbox relays gets nothing: the outbox records why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import kinds
from ..filters import Filter
from ..kinds.reminders import build_reminder
from ..rules.reminders import DueReminder, ReminderPolicy, plan_reminders
from ..services.messages import send_private
from ..services.rsvp import (
    REMINDER_ACTION,
    REMINDER_DROPPED_ACTION,
    UNKNOWN_SENDER,
    enrolled_learners,
    has_profile,
    lesson_evidence,
    parsed,
)
from ..store.base import ActionRecord
from .components import PeriodicComponent

if TYPE_CHECKING:
    from .app import Daemon

__all__ = ["ReminderScheduler"]

log = logging.getLogger("nostr_training.reminders")

#: Lessons that ended this long ago are not planned any more (recording notices last 7 days).
PLAN_HORIZON = 30 * 86400


class ReminderScheduler(PeriodicComponent):
    """Sends the reminders of every lesson the daemon's user hosts (see the module)."""

    name = "reminders"

    def __init__(self, *, interval: float = 60.0, policy: ReminderPolicy | None = None) -> None:
        super().__init__()
        self.interval = interval
        self.policy = policy or ReminderPolicy()
        self.sent = 0
        self.dropped = 0
        self.lessons = 0
        self.next_at: int | None = None
        self.profile: bool | None = None

    async def start(self, daemon: "Daemon") -> None:
        if daemon.me is not None:
            self.profile = await has_profile(daemon.store, daemon.me, now=daemon.clock.now())
            if not self.profile:
                log.warning(UNKNOWN_SENDER)
        await super().start(daemon)

    def status(self) -> dict[str, Any]:
        return {
            **super().status(), "lessons": self.lessons, "sent": self.sent, "dropped": self.dropped,
            "next_at": self.next_at, "profile": self.profile,
        }

    async def hosted_lessons(self, now: int) -> list[str]:
        """Coordinates of the lessons the user published or cancelled (private ones too), ending
        within the horizon."""
        assert self.daemon is not None and self.daemon.me is not None
        me = frozenset({self.daemon.me})
        store = self.daemon.store
        found: set[str] = set()
        # Private lessons and their private cancellations count the same (``include_private``).
        lessons = await store.query([Filter(kinds=frozenset({kinds.LESSON}), authors=me)], now=now, include_private=True)
        for lesson in parsed(kinds.parse_lesson, lessons):
            if lesson.end + PLAN_HORIZON >= now:
                found.add(lesson.coordinate)
        for deletion in await store.query([Filter(kinds=frozenset({kinds.DELETION}), authors=me)], now=now,
                                          include_private=True):
            found.update(a for a in deletion.tag_values("a") if a.startswith(f"{kinds.LESSON}:{self.daemon.me}:"))
        return sorted(found)

    async def tick(self, now: int) -> None:
        daemon = self.daemon
        if daemon is None or daemon.me is None or daemon.services is None:
            return
        store = daemon.store
        upcoming: list[int] = []
        lessons = 0
        for coord in await self.hosted_lessons(now):
            evidence = await lesson_evidence(store, coord, now=now)
            if evidence is None or evidence.lesson.end + PLAN_HORIZON < now:
                continue
            lessons += 1
            sent = {r.key for r in await store.actions(subject=coord)}
            plan = plan_reminders(
                evidence.revisions, evidence.rsvps, now, sent=sent,
                enrolled=await enrolled_learners(store, evidence.lesson, now=now),
                first_seen=evidence.first_seen, state=evidence.state, cancelled_at=evidence.cancelled_at,
                recording_available_at=evidence.recording_available_at, policy=self.policy,
            )
            for reminder in plan.missed:
                await self._drop(reminder, now)
            for reminder in plan.due:
                await self._send(reminder, evidence.lesson, now)
            if plan.next_at is not None:
                upcoming.append(plan.next_at)
        self.lessons = lessons
        self.next_at = min(upcoming, default=None)

    async def _send(self, reminder: DueReminder, lesson: kinds.Lesson, now: int) -> None:
        assert self.daemon is not None and self.daemon.services is not None
        rumor = build_reminder(reminder.kind, lesson, reminder.pubkey, created_at=now, expires_at=reminder.expires_at)
        action = ActionRecord(
            reminder.key, REMINDER_ACTION, now, subject=reminder.lesson, pubkey=reminder.pubkey, detail=reminder.kind.value
        )
        delivery = await send_private(self.daemon.services, rumor, reminder.pubkey, action=action,
                                      expiration=reminder.expires_at)
        if delivery.sent:
            self.sent += 1
            log.info("reminder queued", extra={"reminder": reminder.kind.value, "lesson": reminder.lesson,
                                               "learner": reminder.pubkey[:16], "unreachable": delivery.unreachable or ""})

    async def _drop(self, reminder: DueReminder, now: int) -> None:
        assert self.daemon is not None
        detail = f"{reminder.kind.value} its moment passed at {reminder.deadline} while the daemon was not running"
        record = ActionRecord(reminder.key, REMINDER_DROPPED_ACTION, now, subject=reminder.lesson,
                              pubkey=reminder.pubkey, detail=detail)
        if await self.daemon.store.record_action(record):
            self.dropped += 1
            log.info("reminder dropped", extra={"reminder": reminder.kind.value, "lesson": reminder.lesson,
                                                "learner": reminder.pubkey[:16]})
