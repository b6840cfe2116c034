"""A learner's own signed records: the attendance proof they hold, and checking one offline.

Attendance (31930) and completion (31931) records are never published (docs/protocol.md
"Attendance record"): the host hands each learner their own in a record delivery (8317, in a
gift wrap). ``attendance_proof`` reads what the inbox indexed and returns the host-signed records
as a JSON list of events, the learner's proof; ``check_attendance_proof`` checks such a list with
no network and no index (signatures, strict parse, one learner, one lesson, one host), as
``cert verify`` checks a certificate bundle.

``refresh_inbox`` is what a command without a daemon does before reading: fetch the user's gift
wraps from their relays (configured and NIP-17 inbox relays) with the command's short-lived pool,
then open every wrap not opened yet (``services.private.open_inbox``). Inside a daemon the inbox
is opened as wraps arrive; the call then only opens what is already indexed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from .. import kinds
from ..errors import InvalidEvent, MalformedEvent, NotFound
from ..event import Event, parse_coordinate, verify_event
from ..filters import Filter
from ..kinds.attendance import AttendanceRecord, CompletionRecord
from ..nips.nip17 import parse_inbox_relays
from ..rules.rooms import session_hosts
from .context import ServiceContext
from .live import resolve_lesson
from .private import InboxReport, open_inbox

__all__ = ["AttendanceProof", "ProofCheck", "refresh_inbox", "attendance_proof", "check_attendance_proof", "OPERATIONS"]

#: Seconds a command without a daemon waits for relays to return the user's gift wraps.
FETCH_TIMEOUT = 5.0


async def _inbox_relays(ctx: ServiceContext, me: str) -> list[str]:
    urls = list(getattr(ctx.config, "relays", None) or ())
    lists = await ctx.store.query([Filter(kinds=frozenset({kinds.DM_RELAYS}), authors=frozenset({me}), limit=1)])
    for event in lists:
        urls += parse_inbox_relays(event)
    return list(dict.fromkeys(urls))


async def refresh_inbox(ctx: ServiceContext) -> InboxReport:
    """Fetch the user's gift wraps when running without a daemon, then open the inbox."""
    me = await ctx.require_signer().get_public_key()
    pool = ctx.outbox.pool
    if not ctx.live and pool is not None:
        relays = await _inbox_relays(ctx, me)
        if relays:
            wanted = [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})]
            now = ctx.clock.now()
            for event in await pool.fetch(wanted, relays, timeout=FETCH_TIMEOUT):
                await ctx.store.add(event, verified=True, now=now)
    return await open_inbox(ctx)


@dataclass(frozen=True)
class AttendanceProof:
    """The host-signed records of one learner at one lesson: the proof they show."""

    lesson: str
    attendance: Event
    completion: Event | None = None

    @property
    def events(self) -> list[Event]:
        return [self.attendance] + ([self.completion] if self.completion is not None else [])

    def to_json(self) -> str:
        """The proof file: a JSON list of the signed events, as a record delivery holds them."""
        return json.dumps([e.to_dict() for e in self.events], ensure_ascii=False, indent=2) + "\n"


def _newest_signed(events: Sequence[Event], kind: int, hosts: set[str], me: str, parse: Any) -> Event | None:
    for event in events:  # newest first
        if event.kind != kind or event.sig is None or event.pubkey not in hosts:
            continue
        try:
            record = parse(event)
        except MalformedEvent:
            continue
        if record.learner == me:
            return event
    return None


async def attendance_proof(ctx: ServiceContext, ref: str) -> AttendanceProof:
    """The user's own host-signed attendance record for lesson ``ref`` (and completion record
    when there is one), from the index; raises NotFound saying why when there is none."""
    await refresh_inbox(ctx)
    me = await ctx.require_signer().get_public_key()
    try:
        lesson = await resolve_lesson(ctx, ref)
        coord, d, hosts = lesson.coordinate, lesson.d, {lesson.author, *session_hosts(lesson)}
    except NotFound:
        if ":" not in ref:
            raise
        # A machine that never indexed the lesson (a new laptop): its coordinate names the host.
        kind, author, d = parse_coordinate(ref)
        if kind != kinds.LESSON:
            raise
        coord, hosts = ref, {author}
    wanted = Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD}),
                    tags={"a": frozenset({coord}), "p": frozenset({me})})
    events = await ctx.store.query([wanted], now=ctx.clock.now(), include_private=True)
    attendance = _newest_signed(events, kinds.ATTENDANCE_RECORD, hosts, me, kinds.parse_attendance_record)
    if attendance is None:
        raise NotFound(
            f"lesson {d}: no attendance record from its host for you yet (the host's daemon sends it "
            "privately once the session has ended; it needs your NIP-17 inbox relays, kind 10050)"
        )
    completion = _newest_signed(events, kinds.COMPLETION_RECORD, hosts, me, kinds.parse_completion_record)
    return AttendanceProof(coord, attendance, completion)


@dataclass(frozen=True)
class ProofCheck:
    """What ``check_attendance_proof`` found: ``valid`` and why not, and what the proof says."""

    valid: bool
    reason: str
    lesson: str | None = None
    learner: str | None = None
    host: str | None = None
    minutes: int | None = None
    met: bool | None = None
    complete: bool = False
    completed_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _verified(item: Any) -> Event:
    event = Event.from_dict(item)
    return verify_event(event)


def check_attendance_proof(text: str) -> ProofCheck:
    """Check a proof file offline: each event's id and signature, the strict parse of the 31930
    (exactly one) and of a 31931 if any, the same learner, lesson and host throughout."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        return ProofCheck(False, f"not JSON ({exc})")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return ProofCheck(False, "not a list of signed events")
    try:
        events = [_verified(item) for item in items]
    except (MalformedEvent, InvalidEvent) as exc:
        return ProofCheck(False, f"an event does not verify: {exc}")
    records: list[AttendanceRecord] = []
    completions: list[CompletionRecord] = []
    try:
        for event in events:
            if event.kind == kinds.ATTENDANCE_RECORD:
                records.append(kinds.parse_attendance_record(event))
            elif event.kind == kinds.COMPLETION_RECORD:
                completions.append(kinds.parse_completion_record(event))
            else:
                return ProofCheck(False, f"kind {event.kind} is not an attendance or completion record")
    except MalformedEvent as exc:
        return ProofCheck(False, f"malformed record: {exc}")
    if len(records) != 1:
        return ProofCheck(False, f"a proof holds exactly one attendance record, this one {len(records)}")
    record = records[0]
    known = {"lesson": record.lesson, "learner": record.learner, "host": record.author,
             "minutes": record.total_seconds // 60, "met": record.met}
    if len(completions) > 1:
        return ProofCheck(False, "more than one completion record", **known)
    completion = completions[0] if completions else None
    if completion is not None:
        if (completion.subject, completion.learner, completion.author) != (record.lesson, record.learner, record.author):
            return ProofCheck(False, "the completion record is about another lesson, learner or host", **known)
    if record.learner == record.author:
        return ProofCheck(False, "the record is signed by the learner it is about", **known)
    lesson_author = parse_coordinate(record.lesson)[1]
    if record.author != lesson_author:
        # Anyone can sign a record naming any lesson: offline, only the key in the lesson's own
        # address can vouch for who attended it.
        return ProofCheck(False, f"signed by {record.author[:16]}, not by the lesson's author {lesson_author[:16]}",
                          **known)
    return ProofCheck(True, "signed by the lesson's host", **known, complete=completion is not None,
                      completed_at=completion.completed_at if completion is not None else None)


# Operations: the same calls for the CLI without a daemon and for the control API ----------------


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"'{name}' must be text", field=name)
    return value


async def _op_proof(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    proof = await attendance_proof(ctx, _text(body, "lesson"))
    return {"lesson": proof.lesson, "proof": proof.to_json()}


async def _op_verify(ctx: ServiceContext, body: dict[str, Any]) -> Any:
    return check_attendance_proof(_text(body, "proof")).to_dict()


OPERATIONS = {"proof": _op_proof, "verify": _op_verify}
