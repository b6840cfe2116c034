"""The host's side of live sessions, run by the daemon: the seed's lifecycle without a person.

Every few seconds of daemon time, for each lesson the user hosts, from the index (the lesson's
evidence) and the action log alone, so a restart repeats nothing:

- **auto-start**: the room (30312), planned meeting (30313) and lesson revision are published
  at ``room_lead`` before the start when the instructor has not created the room (once:
  ``live-room-auto``);
- **closing**: a session nobody started is marked missed, one nobody ended is ended, once
  (``live-closure``), as ``rules.rooms.closure_due`` says;
- **admission**: requests the policy admits (``decisions_due``) get the host's 8313 (once per
  request: ``live-admit``);
- **room keys** (rooms that announce ``e2ee``): the ``KeySchedule`` is replayed from its
  recorded batches (``room-key-batch``), caught up with the membership changes in the
  evidence, and each new batch recorded; each epoch gets 32 random bytes, kept in the action
  log only NIP-44-encrypted to the host's own key (``room-key``); each (epoch, participant) gets
  one gift-wrapped 8310 with ``expiration`` (``room-key-sent``); the room's ``epoch`` tag follows;
  the keys are retired when the session is over (``room-keys-retired``);
- **live refresh**: a live meeting is republished every ``LIVE_REFRESH`` seconds;
- **attendance**: once the session has ended, the host's 31930 per learner and 31931 per learner
  who met the rule (``services.live.finalise_attendance``).

It also keeps one subscription open for the events the lessons in the index need (rooms,
meetings, join requests, decisions, claims, presence, consent, records, deletions), so the
host's daemon hears learners and the learners' daemons hear the host.

A private lesson (``Lesson.private``) is run the same way from its private evidence, but
nothing about it is published in the clear: room, meeting and refreshes go out as envelopes
(``services.live.publish_private_session``), admissions as 1059 rumors to that learner, and
its coordinates never appear in the subscription's filters (they would tell a relay who hosts
what); its join requests, claims and consents arrive as gift wraps the inbox opens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import kinds
from ..errors import ConfigError, MalformedEvent
from ..event import Event
from ..filters import Filter
from ..kinds.calendar import Lesson
from ..kinds.rooms import MeetingStatus, Room, RoomStatus
from ..rules.lifecycle import AFTER_END, SessionAction, SessionState
from ..rules.room_keys import Change, KeySchedule, MembershipChange
from ..rules.rooms import (
    LivePolicy,
    SessionEvidence,
    attendance_records,
    closure_due,
    current_meeting,
    current_room,
    decisions_due,
    membership_changes,
    room_creation_due,
    session_state,
)
from ..services.context import ServiceContext
from ..services.live import ConferenceConfig, finalise_attendance, load_evidence, publish_private_session, room_events
from ..services.messages import send_private
from ..services.private import deliver_rumor
from ..store.base import ActionRecord
from .components import PeriodicComponent
from .config import DaemonConfig
from .follows import GIFT_WRAP_LOOKBACK

if TYPE_CHECKING:
    from .app import Daemon

DEFAULT_POLICY = LivePolicy()

__all__ = ["LiveSessions", "KEY_LIFETIME"]

#: Hashtags ``services.events`` gives an in-person or hybrid training event.
IN_PERSON_MARKS = frozenset({"in-person", "hybrid"})

log = logging.getLogger("nostr_training.live")

KEY_LIFETIME = 86400
"""A room key's wrap expires this long after the lesson's scheduled end (NIP-40)."""
LIVE_REFRESH = 900
"""A live meeting is republished this often, well within NIP-53's hour before it reads as ended."""
FOLLOW_AFTER_END = 7 * 86400
"""Session events of a lesson are followed until a week after its end (late records, recordings)."""
_SUB = "live-sessions"


def _lesson_end(event: Event) -> int:
    """The lesson's end from its tags without the strict parser (0 when unreadable: not followed)."""
    try:
        return kinds.parse_lesson(event).end
    except MalformedEvent:
        return 0


class LiveSessions(PeriodicComponent):
    """The host's daemon runs its sessions; any daemon follows the sessions of its lessons."""

    name = "live-sessions"

    def __init__(self, *, interval: float = 5.0, policy: LivePolicy = DEFAULT_POLICY, reconcile_interval: int = 60) -> None:
        super().__init__()
        self.interval = interval
        self.policy = policy
        self._lock = asyncio.Lock()
        self._subscribed: str | None = None
        self._reconciled = 0
        self._filters: list[Filter] = []
        self.reconcile_interval = reconcile_interval
        self.counters = {"rooms": 0, "closures": 0, "admits": 0, "epochs": 0, "keys_sent": 0, "records": 0}

    def status(self) -> dict[str, Any]:
        return {**super().status(), **self.counters}

    @property
    def ctx(self) -> ServiceContext:
        assert self.daemon is not None and self.daemon.services is not None
        return self.daemon.services

    async def stop(self) -> None:
        await super().stop()
        if self.daemon is not None and self.daemon.pool is not None and self._subscribed:
            await self.daemon.pool.unsubscribe(self._subscribed)
            self._subscribed = None

    async def tick(self, now: int) -> None:
        async with self._lock:
            await self._follow(now)
            me = self.daemon.me if self.daemon else None
            if me is None:
                return
            for lesson in await self._hosted(me, now):
                await self._session(lesson, me, now)

    async def run_once(self) -> None:
        """One tick now (tests and the control API use it; ticks never overlap)."""
        assert self.daemon is not None
        await self.tick(self.daemon.clock.now())

    # Subscription -------------------------------------------------------------------------

    async def _follow(self, now: int) -> None:
        """One REQ for every current lesson and its room in the index, replaced when that set
        changes; and every ``reconcile_interval`` a fetch of the same, so an event the live
        subscription missed (a reconnect, a relay that dropped it) still reaches the index."""
        daemon = self.daemon
        if daemon is None or daemon.pool is None or not daemon.config.relays:
            return
        store = daemon.store
        current = Filter(kinds=frozenset({kinds.LESSON}))
        lessons = {f"{kinds.LESSON}:{e.pubkey}:{e.d}" for e in await store.query([current], now=now)
                   if _lesson_end(e) + FOLLOW_AFTER_END > now}
        rooms = {f"{kinds.ROOM}:{e.pubkey}:{e.d}" for e in await store.query([Filter(kinds=frozenset({kinds.ROOM}))], now=now)}
        filters: list[Filter] = []
        if lessons:
            filters.append(Filter(kinds=frozenset({
                kinds.ROOM, kinds.MEETING, kinds.JOIN_REQUEST, kinds.RECORDING_CONSENT, kinds.WAITING_ROOM_DECISION,
                kinds.ATTENDANCE_CLAIM, kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD, kinds.DELETION,
                kinds.FILE_METADATA}), tags={"a": frozenset(lessons)}))
        if rooms:
            filters.append(Filter(kinds=frozenset({kinds.ROOM_PRESENCE, kinds.WAITING_ROOM_DECISION, kinds.MEETING}),
                                  tags={"a": frozenset(rooms)}))
        if daemon.me:
            filters.append(Filter(kinds=frozenset({kinds.WAITING_ROOM_DECISION}), tags={"p": frozenset({daemon.me})}))
        shape = json.dumps([f.to_dict() for f in filters], sort_keys=True)
        key = f"{_SUB}:{hashlib.sha256(shape.encode()).hexdigest()[:12]}"
        self._filters = filters
        if key == self._subscribed and now - self._reconciled >= self.reconcile_interval:
            await self.reconcile()
        if key == self._subscribed or not filters:
            return
        self._reconciled = now
        if self._subscribed:
            await daemon.pool.unsubscribe(self._subscribed)

        async def on_event(relay: str, event: Event) -> None:
            if daemon.follows is not None:  # batched with the follows' writes, one transaction at a time
                await daemon.follows.ingest(relay, key, event, replay=True)

        await daemon.pool.subscribe(key, filters, list(daemon.config.relays), on_event)
        self._subscribed = key

    async def reconcile(self) -> int:
        """Fetch what the live subscription asks for, and the gift wraps to the user of the last
        two days, and index it: a live subscription can miss an event (a reconnect, a dropped
        broadcast); this brings it in at the next reconcile. Returns how many were fetched."""
        daemon = self.daemon
        if daemon is None or daemon.pool is None or daemon.follows is None or not self._filters:
            return 0
        now = daemon.clock.now()
        self._reconciled = now
        filters = list(self._filters)
        if daemon.me:
            filters.append(Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({daemon.me})},
                                  since=max(0, now - GIFT_WRAP_LOOKBACK - 3600)))
        events = await daemon.pool.fetch(filters, list(daemon.config.relays), timeout=5)
        for event in events:
            await daemon.follows.ingest(daemon.config.relays[0], self._subscribed or _SUB, event, replay=True)
        await daemon.follows.commit()
        return len(events)

    async def _hosted(self, me: str, now: int) -> list[Lesson]:
        """The live lessons this daemon hosts: the user's 31923s, not the in-person or hybrid
        training events (``services.events``), which meet in a hall and get no automatic room."""
        events = await self.ctx.store.query([
            Filter(kinds=frozenset({kinds.LESSON}), authors=frozenset({me})),
        ], now=now, include_private=True)
        out = []
        for event in events:
            try:
                lesson = kinds.parse_lesson(event)
            except MalformedEvent:
                continue
            if lesson.author == me and not IN_PERSON_MARKS & set(lesson.hashtags):
                out.append(lesson)
        return out

    # One session ----------------------------------------------------------------------------

    async def _once(self, key: str) -> bool:
        return await self.ctx.store.get_action(key) is None

    async def _session(self, lesson: Lesson, me: str, now: int) -> None:
        coord = lesson.coordinate
        if not await self._once(f"live-done|{coord}"):
            return
        ctx = self.ctx
        ev = await load_evidence(ctx, lesson)
        if room_creation_due(ev, now, self.policy) and await self._once(f"live-room-auto|{coord}"):
            _, templates = room_events(ctx, lesson, ConferenceConfig.for_lesson(lesson), now)
            await self._submit(templates, lesson)
            await ctx.store.record_action(ActionRecord(f"live-room-auto|{coord}", "live-room-auto", now, subject=coord))
            self.counters["rooms"] += 1
            log.info("room created for %s (auto-start)", lesson.d)
            ev = await load_evidence(ctx, lesson)
        closure = closure_due(ev, now, self.policy)
        if closure is not None and await self._once(f"live-closure|{coord}"):
            await self._close(ev, closure.action, closure.ends, now)
            ev = await load_evidence(ctx, lesson)
        due_list = decisions_due(ev, now, self.policy)
        for due in due_list:
            template = kinds.build_waiting_room_decision(due.target, due.participant, due.decision, created_at=now,
                                                         reason=due.reason, request=due.request)
            if lesson.private:  # to that learner alone, in a durable wrap; the host keeps a copy
                await deliver_rumor(ctx, template, [due.participant], once=f"live-admit|{coord}|{due.request}")
            else:
                event = await ctx.require_signer().sign_event(template)
                key = f"live-admit|{coord}|{due.participant}|{due.request}"
                await ctx.outbox.submit(event, action=ActionRecord(key, "live-admit", now, subject=coord,
                                                                   pubkey=due.participant, event_id=event.id))
            self.counters["admits"] += 1
        if due_list:
            log.info("admitted %d by policy for %s", len(due_list), lesson.d)
        ev = await load_evidence(ctx, lesson)
        state = session_state(ev, now, self.policy)
        room = current_room(ev)
        meeting = current_meeting(ev)
        if state is SessionState.LIVE and meeting is not None and now - (meeting.created_at or 0) >= LIVE_REFRESH:
            # NIP-53 readers take a live meeting without updates for an hour as ended.
            await self._submit([kinds.build_meeting(meeting, created_at=now)], lesson)
        if room is not None and room.e2ee is not None:
            await self._keys(ev, room, me, state, now)
        if state in AFTER_END or state is SessionState.CANCELLED:
            if state in AFTER_END and state is not SessionState.MISSED:
                self.counters["records"] += len(await finalise_attendance(ctx, ev, now, self.policy))
            await ctx.store.record_action(ActionRecord(f"live-done|{coord}", "live-done", now, subject=coord,
                                                       detail=state.value))

    async def _submit(self, templates: list[Any], lesson: Lesson) -> list[str]:
        """Sign and queue the host's session events; a private lesson's go only as envelopes
        (``services.live.publish_private_session``). Returns the ids."""
        if lesson.private:
            return await publish_private_session(self.ctx, lesson, templates)
        signer, ids = self.ctx.require_signer(), []
        for template in templates:
            event = await signer.sign_event(template)
            await self.ctx.outbox.submit(event)
            ids.append(event.id)
        return ids

    async def _close(self, ev: SessionEvidence, action: SessionAction, ends: int, now: int) -> None:
        """Publish the closing ``closure_due`` asked for, once."""
        coord = ev.lesson.coordinate
        meeting, room = current_meeting(ev), current_room(ev)
        templates = []
        missed = action is SessionAction.MARK_MISSED
        if meeting is not None:
            attended = 0 if missed else len(attendance_records(ev, now, self.policy))  # a count, never who
            closed = replace(meeting, status=MeetingStatus.ENDED, ends=max(ends, meeting.starts), missed=missed,
                             total_participants=attended or meeting.total_participants)
            templates.append(kinds.build_meeting(closed, created_at=max(now, (meeting.created_at or 0) + 1)))
        if room is not None and room.status is not RoomStatus.CLOSED:
            templates.append(kinds.build_room(replace(room, status=RoomStatus.CLOSED),
                                              created_at=max(now, (room.created_at or 0) + 1)))
        await self._submit(templates, ev.lesson)
        await self.ctx.store.record_action(ActionRecord(f"live-closure|{coord}", "live-closure", now, subject=coord,
                                                        detail=action.value))
        self.counters["closures"] += 1
        log.info("session %s closed by the daemon: %s", ev.lesson.d, action.value)

    # Room keys ------------------------------------------------------------------------------

    async def _schedule(self, room: Room, me: str, now: int) -> KeySchedule:
        store = self.ctx.store
        opened = await store.get_action(f"room-key-open|{room.coordinate}")
        if opened is None:
            opened = ActionRecord(f"room-key-open|{room.coordinate}", "room-key-open", now, subject=room.coordinate)
            await store.record_action(opened)
        batches = []
        for record in await store.actions(action="room-key-batch", subject=room.coordinate):
            detail = json.loads(record.detail or "{}")
            changes = tuple(MembershipChange(pk, Change(change), at) for pk, change, at in detail["changes"])
            batches.append((int(detail["index"]), int(detail["at"]), changes))
        batches.sort()
        return KeySchedule.replay(me, opened.done_at, [(at, changes) for _, at, changes in batches])

    async def _epoch_key(self, room: str, epoch: int, me: str, now: int) -> bytes:
        """The epoch's 32 bytes: made once, kept only encrypted to the host's own key."""
        signer, store = self.ctx.require_signer(), self.ctx.store
        key = f"room-key|{room}|{epoch}"
        found = await store.get_action(key)
        if found is None:
            sealed = await signer.nip44_encrypt(me, base64.b64encode(secrets.token_bytes(32)).decode())
            await store.record_action(ActionRecord(key, "room-key", now, subject=room, detail=sealed))
            found = await store.get_action(key)
            assert found is not None
            self.counters["epochs"] += 1
        return base64.b64decode(await signer.nip44_decrypt(me, found.detail or ""))

    async def _keys(self, ev: SessionEvidence, room: Room, me: str, state: SessionState, now: int) -> None:
        store, coord = self.ctx.store, room.coordinate
        if state not in (SessionState.ROOM_CREATED, SessionState.LIVE):
            if state in AFTER_END or state is SessionState.CANCELLED:
                await store.record_action(ActionRecord(f"room-keys-retired|{ev.lesson.coordinate}", "room-keys-retired",
                                                       now, subject=ev.lesson.coordinate, pubkey=me))
            return
        schedule = await self._schedule(room, me, now)
        caught_up = schedule.catch_up(membership_changes(ev), now)
        if len(caught_up.batches) > len(schedule.batches):
            at, batch = caught_up.batches[-1]
            detail = json.dumps({"index": len(caught_up.batches), "at": at,
                                 "changes": [[c.pubkey, c.change.value, c.at] for c in batch]})
            await store.record_action(ActionRecord(f"room-key-batch|{coord}|{len(caught_up.batches)}", "room-key-batch",
                                                   now, subject=coord, detail=detail))
            schedule = caught_up
        current = schedule.current
        if current is None:
            return
        key = await self._epoch_key(coord, current.number, me, now)
        expires = max(ev.lesson.end, now) + KEY_LIFETIME
        for pubkey in sorted(current.recipients - {me}):
            action = ActionRecord(f"room-key-sent|{coord}|{current.number}|{pubkey}", "room-key-sent", now,
                                  subject=coord, pubkey=pubkey, detail=str(current.number))
            rumor = kinds.build_room_key(coord, key, current.number, created_at=now, expires_at=expires)
            delivery = await send_private(self.ctx, rumor, pubkey, action=action, expiration=expires)
            if delivery.sent:
                self.counters["keys_sent"] += 1
                log.info("room key epoch %d sent to %s", current.number, pubkey[:12])
        if room.key_epoch != current.number:
            update = kinds.build_room(replace(room, key_epoch=current.number),
                                      created_at=max(now, (room.created_at or 0) + 1))
            done = f"room-epoch|{coord}|{current.number}"
            if ev.lesson.private:
                if await self._once(done):
                    [rumor_id] = await publish_private_session(self.ctx, ev.lesson, [update])
                    await store.record_action(ActionRecord(done, "room-epoch", now, subject=coord, event_id=rumor_id))
                return
            event = await self.ctx.require_signer().sign_event(update)
            await self.ctx.outbox.submit(event, action=ActionRecord(done, "room-epoch", now, subject=coord,
                                                                    event_id=event.id))


def live_component(config: DaemonConfig) -> LiveSessions:
    """The component ``daemon run`` hosts (``[live] interval`` in config.toml, default 5 s)."""
    live = config.extra.get("live", {})
    interval = live.get("interval", 5.0) if isinstance(live, dict) else None
    if type(interval) not in (int, float) or not 1 <= interval <= 3600:
        raise ConfigError(f"config.toml [live] interval: {interval!r} is not a number of seconds in 1..3600")
    return LiveSessions(interval=float(interval))


def attach(daemon: "Daemon") -> LiveSessions | None:
    """The daemon's running LiveSessions component, if any (for the control API)."""
    return next((c for c in daemon.components if isinstance(c, LiveSessions)), None)
