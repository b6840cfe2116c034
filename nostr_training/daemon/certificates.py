"""The issuer's and host's training bookkeeping, every few minutes of daemon time:

1. door checks (8316) the user signed (kept privately, each handed to its learner) become attendance records (31930) and, when the lesson's
   rule is met, lesson completion records (31931), once the lesson has ended: never published,
   each learner is handed their own in a record delivery (8317);
2. learners' RSVPs to the user's events become enrolments (``services.events``);
3. for every course whose certificate issuer is the user, a learner whose trusted completion
   records cover the required lessons is awarded the certificate (``issue_certificate``), once:
   the award and its action-log entry commit together, so a restart issues nothing again;
4. a holder of one of the user's certificates is sent one NIP-17 DM ``notice_days`` before it
   expires (action key per award).

Everything once-only is in the store's action log; nothing is remembered in memory.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from ..errors import CertificateRefused, MalformedEvent, NotFound
from ..filters import Filter
from ..kinds import ATTENDANCE_RECORD, COURSE, DOOR_CHECK, LESSON, parse_course, parse_door_check, parse_training_link
from ..kinds.attendance import (
    AttendanceRecord,
    CompletionBasis,
    CompletionRecord,
    build_attendance_record,
    build_completion_record,
)
from ..nips.nip19 import npub_encode
from ..rules.certification import DAY, CertificateStatus, certificate_status, current_certificate
from ..rules.events import event_attendance
from ..services.certificates import completed_lessons, issue_certificate, load_certificate_records
from ..services.events import sync_event_rsvp_to_training
from ..services.messages import send_dm
from ..services.private import deliver_records
from ..store.base import ActionRecord
from .components import PeriodicComponent

__all__ = ["TrainingRecords", "DEFAULT_NOTICE_DAYS"]

log = logging.getLogger("nostr_training.certificates")

DEFAULT_NOTICE_DAYS = 30


class TrainingRecords(PeriodicComponent):
    """Attendance and completion from door checks, enrolments from event RSVPs, certificates
    when a course is complete, and expiry notices, for the daemon's user."""

    name = "certificates"
    interval = 300.0

    def __init__(self, *, notice_days: int = DEFAULT_NOTICE_DAYS) -> None:
        super().__init__()
        self.notice_days = notice_days
        self.issued = 0
        self.records = 0
        self.enrolments = 0
        self.notices = 0
        self._last_run: int | None = None

    def status(self) -> dict[str, Any]:
        return {
            **super().status(), "issued": self.issued, "attendance_records": self.records,
            "enrolments": self.enrolments, "expiry_notices": self.notices,
        }

    async def tick(self, now: int) -> None:
        daemon = self.daemon
        if daemon is None or daemon.signer is None or daemon.me is None:
            return
        if now == self._last_run:
            return  # the loop catching up after a clock jump: one scan per moment is enough
        self._last_run = now
        await self._door_records(now)
        await self._event_rsvps(now)
        await self._issue(now)
        await self._expiry_notices(now)

    # 1. Door checks -> attendance and completion records ------------------------------------

    async def _door_records(self, now: int) -> None:
        assert self.daemon is not None
        ctx, me = self.daemon.services, self.daemon.me
        checks = []
        door = [Filter(kinds=frozenset({DOOR_CHECK}), authors=frozenset({me}))]
        for event in await ctx.store.query(door, now=now, include_private=True):  # kept, never published
            try:
                checks.append(parse_door_check(event))
            except MalformedEvent:
                continue
        for lesson_coord in sorted({c.lesson for c in checks}):
            lesson = await ctx.store.lesson(lesson_coord, now=now)
            if lesson is None or now < lesson.end or me not in (lesson.author, lesson.instructor):
                continue
            mine = [c for c in checks if c.lesson == lesson_coord]
            for learner, found in event_attendance(lesson, mine).items():
                evidence = sorted(c.event_id for c in mine if c.learner == learner and c.event_id)
                digest = hashlib.sha256("|".join(evidence).encode()).hexdigest()[:16]
                judged = found.completion
                record = AttendanceRecord(
                    author=me, lesson=lesson_coord, learner=learner, total_seconds=found.attendance.total_seconds,
                    join_count=found.attendance.join_count, intervals=found.attendance.intervals, rule=judged.rule,
                    met=judged.met, created_at=now, required_seconds=judged.required_seconds,
                    evidence=tuple(evidence), minimum_seconds=judged.minimum_seconds,
                    minimum_percent=judged.minimum_percent, scheduled_seconds=judged.scheduled_seconds,
                )
                key = f"door-attendance|{lesson_coord}|{learner}|{digest}"
                completion_key = f"lesson-completion|{lesson_coord}|{learner}"
                signer = ctx.require_signer()
                records = []
                if await ctx.store.get_action(key) is None:
                    records.append(await signer.sign_event(build_attendance_record(record, created_at=now)))
                if judged.met and await ctx.store.get_action(completion_key) is None:
                    completed_at = found.attendance.last_left_at or lesson.end
                    completion = CompletionRecord(
                        author=me, subject=lesson_coord, learner=learner, completed_at=completed_at,
                        basis=CompletionBasis.ATTENDANCE, created_at=now, evidence=tuple(evidence),
                    )
                    records.append(await signer.sign_event(build_completion_record(completion, created_at=now)))
                if not records:
                    continue
                # Never published: the learner gets their own records in a record delivery.
                once = key if records[0].kind == ATTENDANCE_RECORD else completion_key
                await deliver_records(ctx, records, subject=lesson_coord, recipient=learner, once=once)
                for extra in records[1:]:
                    await ctx.store.record_action(
                        ActionRecord(completion_key, "lesson-completion", now, subject=lesson_coord, pubkey=learner,
                                     event_id=extra.id)
                    )
                if records[0].kind == ATTENDANCE_RECORD:
                    self.records += 1

    # 2. Learners' event RSVPs -> enrolments ---------------------------------------------------

    async def _event_rsvps(self, now: int) -> None:
        assert self.daemon is not None
        ctx, me = self.daemon.services, self.daemon.me
        for event in await ctx.store.query([Filter(kinds=frozenset({LESSON}), authors=frozenset({me}))], now=now):
            try:
                link = parse_training_link(event)
            except MalformedEvent:
                continue
            if link.course is None and link.lesson is None:
                continue
            for rsvp_event in await ctx.store.rsvps_of_lesson(link.event, now=now):
                if rsvp_event.pubkey == me:
                    continue
                status = rsvp_event.tag_value("status")
                if status is None:
                    continue
                try:
                    change = await sync_event_rsvp_to_training(ctx, link.event, rsvp_event.pubkey, status, rsvp=rsvp_event)
                except (MalformedEvent, NotFound):
                    continue
                self.enrolments += change.recorded

    # 3. Complete courses -> certificates ------------------------------------------------------

    async def _issue(self, now: int) -> None:
        assert self.daemon is not None
        ctx, me = self.daemon.services, self.daemon.me
        for event in await ctx.store.query([Filter(kinds=frozenset({COURSE}))], now=now, include_private=True):
            try:
                course = parse_course(event)
            except MalformedEvent:
                continue
            if course.certificate_issuer != me or not course.certification_enabled:
                continue
            for learner in sorted(await completed_lessons(ctx.store, course, None, now)):
                try:
                    issued = await issue_certificate(ctx, course, learner)
                except CertificateRefused:
                    continue
                if issued.issued:
                    self.issued += 1
                    log.info("certificate issued", extra={"course": course.coordinate, "learner": learner, "code": issued.code})

    # 4. Expiry notices ------------------------------------------------------------------------

    async def _expiry_notices(self, now: int) -> None:
        assert self.daemon is not None
        ctx, me = self.daemon.services, self.daemon.me
        records = await load_certificate_records(ctx.store, now)
        groups: dict[tuple[str, str], list[Any]] = {}
        for cert in records.certificates():
            course = records.courses.get(cert.course)
            if course is not None and course.certificate_issuer == me:
                groups.setdefault((cert.holder, cert.course), []).append(cert)
        for (holder, course_coord), certs in groups.items():
            current = current_certificate(certs, now)
            if current is None or current.expires_at is None or current.event_id is None:
                continue
            if certificate_status(current, now, self.notice_days) is not CertificateStatus.EXPIRING:
                continue
            key = f"certificate-expiry-notice|{current.event_id}"
            if await ctx.store.get_action(key) is not None:
                continue
            title = records.courses[course_coord].title
            days = (current.expires_at - now) // DAY
            text = (
                f"Your certificate for {title} ({current.code}) expires in {days} days. "
                "Complete the course again to renew it."
            )
            action = ActionRecord(key, "certificate-expiry-notice", now, subject=course_coord, pubkey=holder, detail=current.code)
            delivery = await send_dm(ctx, holder, text, action=action)
            if delivery.sent:
                self.notices += 1
                log.info("expiry notice", extra={"holder": npub_encode(holder), "course": course_coord})

