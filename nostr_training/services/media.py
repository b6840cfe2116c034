"""The SFU side of a live lesson: join tokens for admitted participants, the E2EE key an SFU
client takes, and the SFU's webhooks kept as attendance evidence.

Who may join is read from the index, never from the SFU, by the live-session rules
(``rules.rooms.admission``): the lesson's host always; where the lesson needs admission
(waiting room, E2EE or RSVPs) a learner once the host has signed an 8313 ``admit`` for them (for
the lesson, its room or one of its meetings; the newest decision wins, so a later ``deny`` takes
the admission back); in an open lesson anyone the host has not denied. Where
the lesson requires E2EE no token is minted for anyone without the room key: the caller passes
the key the participant holds (``room_key``): for the host, the key the live-session service
keeps; for a learner on their own daemon, ``held_room_key`` finds the 8310 rumor they received.

The join window comes from the schedule: from ten minutes before the start to half an hour
after the end. A daemon without ``[sfu]`` in config.toml still answers, with no token and a
message saying so: scheduling, room keys and presence-based attendance work without an SFU.

Webhooks: each verified event goes into the action log (key ``sfu-webhook|<event id>``, the
event as JSON in ``detail``), which makes a re-delivered or replayed event a no-op and keeps the
evidence across restarts. ``webhook_evidence`` rebuilds a ``WebhookLedger`` from the log, so the
joins and leaves it gives depend on the set of events, never on their arrival order. It is
evidence beside presence heartbeats and the host's own records, never the only record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .. import kinds
from ..errors import ConfigError, MalformedEvent, NostrTrainingError, NotFound
from ..event import Event, coordinate
from ..filters import Filter
from ..kinds import Lesson, RoomKey
from ..nips.nip59 import unwrap
from ..rules.attendance import Join, Leave
from ..rules.rooms import Admission, SessionEvidence, admission, admission_required, session_hosts
from ..sfu.base import E2eeKey, Role, SfuAdapter, SfuEvent, SfuEventType, e2ee_shared_key, permit_join
from ..sfu.config import SfuConfig, load_sfu_config
from ..sfu.livekit import LiveKitAdapter, WebhookLedger
from ..store.base import ActionRecord
from .context import ServiceContext
from .rsvp import lesson_coordinate

__all__ = [
    "JOIN_EARLY_SECONDS",
    "JOIN_LATE_SECONDS",
    "NO_SFU_MESSAGE",
    "WEBHOOK_ACTION",
    "JoinTicket",
    "admitted",
    "decision_targets",
    "e2ee_key",
    "held_room_key",
    "is_admitted",
    "join_token",
    "lesson_coordinate",
    "load_lesson",
    "record_webhook",
    "sfu_adapter",
    "session_evidence",
    "sfu_config",
    "sfu_room_name",
    "sfu_status",
    "webhook_events",
    "webhook_evidence",
]

JOIN_EARLY_SECONDS = 10 * 60
"""A token opens the room this long before the lesson starts."""
JOIN_LATE_SECONDS = 30 * 60
"""... and stops letting people in this long after it ends."""
WEBHOOK_ACTION = "sfu_webhook"
NO_SFU_MESSAGE = (
    "no SFU is configured ([sfu] in config.toml): the room works for scheduling, keys and "
    "presence-based attendance, but there is no media token to hand out"
)


async def load_lesson(ctx: ServiceContext, lesson: str) -> Lesson:
    """The lesson's newest revision in the index, or ``NotFound``."""
    coord = lesson_coordinate(lesson)
    found = await ctx.store.lesson(coord, now=ctx.clock.now())
    if found is None:
        raise NotFound(f"lesson {coord} is not in the index (follow its course, or publish it first)")
    return found


def sfu_room_name(lesson: Lesson) -> str:
    """The SFU's room for a lesson: its 30312 room's coordinate, else the lesson's own."""
    return lesson.room or lesson.coordinate


def sfu_config(ctx: ServiceContext) -> SfuConfig | None:
    """The ``[sfu]`` settings of this data dir (secret read), or None without an SFU."""
    return load_sfu_config(ctx.config.extra)


def sfu_adapter(config: SfuConfig) -> SfuAdapter:
    """The adapter for ``config.provider`` (LiveKit is the one there is)."""
    return LiveKitAdapter(config)


def sfu_status(ctx: ServiceContext) -> dict[str, Any]:
    """What ``daemon status`` shows about the SFU: configured or not, never the secret."""
    try:
        config = sfu_config(ctx)
    except ConfigError as exc:  # a broken [sfu] is shown in status, not raised
        return {"configured": False, "error": str(exc)}
    if config is None:
        return {"configured": False, "message": NO_SFU_MESSAGE}
    return {
        "configured": True, "provider": config.provider, "url": config.url, "api_key": config.api_key,
        "secret_from": config.secret_source,
    }


# Admission ------------------------------------------------------------------------------------


def _hosts(lesson: Lesson) -> frozenset[str]:
    return session_hosts(lesson)


async def decision_targets(ctx: ServiceContext, lesson: Lesson) -> set[str]:
    """What a host's 8313 about this lesson may name: the lesson, its room, its meetings."""
    targets = {lesson.coordinate}
    if lesson.room:
        targets.add(lesson.room)
    meetings = await ctx.store.query(
        [Filter(kinds=frozenset({kinds.MEETING}), authors=_hosts(lesson), tags={"a": frozenset(targets)})],
        now=ctx.clock.now(), include_private=True,
    )
    targets.update(coordinate(kinds.MEETING, e.pubkey, e.tag_value("d") or "") for e in meetings)
    return targets


async def session_evidence(ctx: ServiceContext, lesson: str | Lesson) -> SessionEvidence:
    """What admission and attendance read, for ``rules.rooms``: the same evidence as
    ``services.live.load_evidence`` (one reader for both: the host's rooms, meetings, decisions
    and recordings, RSVPs, join requests and claims, published or private, the host's own
    observations and the SFU's webhook joins and leaves)."""
    from .live import load_evidence  # live reads this module's webhook evidence

    found = lesson if isinstance(lesson, Lesson) else await load_lesson(ctx, lesson)
    return await load_evidence(ctx, found)


def is_admitted(ev: SessionEvidence, pubkey: str) -> bool:
    """The rule ``rules.rooms.join_access`` applies: never after a deny; where the lesson needs
    admission (waiting room, E2EE, RSVPs) only with the host's admit; the hosts always."""
    standing = admission(ev, pubkey)
    if standing.admission is Admission.DENIED:
        return False
    return standing.admission is Admission.ADMITTED or not admission_required(ev.lesson)


async def admitted(ctx: ServiceContext, lesson: Lesson, pubkey: str) -> bool:
    """Whether the host has let ``pubkey`` in, read from the index (``is_admitted``)."""
    return is_admitted(await session_evidence(ctx, lesson), pubkey)


async def held_room_key(ctx: ServiceContext, lesson: Lesson) -> RoomKey | None:
    """The newest room key (8310) this user received from the lesson's host for its room.

    Looks at unwrapped rumors kept in the store first, then opens the gift wraps addressed to
    the user; a key whose seal is not the host's is ignored (anyone can wrap to anyone).
    """
    if not lesson.room:
        return None
    signer = ctx.require_signer()
    me = await signer.get_public_key()
    now = ctx.clock.now()
    found: list[RoomKey] = []
    rumors = await ctx.store.query([Filter(kinds=frozenset({kinds.ROOM_KEY}))], now=now, include_private=True)
    candidates: list[Event] = list(rumors)
    wraps = await ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})], now=now)
    for wrap in wraps:
        try:
            opened = await unwrap(wrap, signer)
        except NostrTrainingError:  # a wrap we cannot open (not for us, damaged) holds no key for us
            continue
        if opened.rumor.kind == kinds.ROOM_KEY:
            candidates.append(opened.rumor)
    for rumor in candidates:
        if rumor.sig is not None or rumor.pubkey not in _hosts(lesson):
            continue
        try:
            key = kinds.parse_room_key(rumor)
        except MalformedEvent:
            continue
        if key.room == lesson.room and (key.expires_at is None or key.expires_at > now):
            found.append(key)
    return max(found, key=lambda k: (k.epoch, k.created_at)) if found else None


# Tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinTicket:
    """What a participant needs to join a lesson's room; ``token`` is None without an SFU."""

    lesson: str
    room: str
    pubkey: str
    role: str
    can_publish: bool
    not_before: int
    expires: int
    e2ee: bool
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def join_token(
    ctx: ServiceContext,
    lesson: str | Lesson,
    pubkey: str,
    *,
    room_key: bytes | None = None,
    promoted: bool = False,
) -> JoinTicket:
    """A join token for ``pubkey``, minted by the host's daemon from its ``[sfu]`` settings.

    Refused (``AdmissionRequired``) for a learner the host has not admitted and, where the lesson
    requires E2EE, (``RoomKeyRequired``) for anyone whose ``room_key`` is not given. The admission
    and key rules apply with or without an SFU configured.
    """
    found = lesson if isinstance(lesson, Lesson) else await load_lesson(ctx, lesson)
    role = Role.HOST if pubkey in _hosts(found) else Role.LEARNER
    permit = permit_join(
        room=sfu_room_name(found),
        pubkey=pubkey,
        role=role,
        not_before=found.start - JOIN_EARLY_SECONDS,
        expires=found.end + JOIN_LATE_SECONDS,
        admitted=await admitted(ctx, found, pubkey),
        e2ee_required=found.e2ee_required,
        room_key=room_key,
        promoted=promoted,
    )
    ticket = JoinTicket(
        lesson=found.coordinate, room=permit.room, pubkey=pubkey, role=permit.role.value,
        can_publish=permit.can_publish, not_before=permit.not_before, expires=permit.expires, e2ee=permit.e2ee,
    )
    config = sfu_config(ctx)
    if config is None:
        return replace(ticket, message=NO_SFU_MESSAGE)
    adapter = sfu_adapter(config)
    return replace(ticket, url=config.url, token=adapter.join_token(permit))


def e2ee_key(ctx: ServiceContext, room_key: bytes, epoch: int) -> E2eeKey:
    """The passphrase and key slot the SFU client's shared-key provider takes for one epoch."""
    config = sfu_config(ctx)
    if config is None:
        return e2ee_shared_key(room_key, epoch)
    return sfu_adapter(config).e2ee_key(room_key, epoch)


# Webhooks -------------------------------------------------------------------------------------


def _webhook_key(event_id: str) -> str:
    return f"sfu-webhook|{event_id}"


async def record_webhook(ctx: ServiceContext, event: SfuEvent) -> bool:
    """Keep one verified webhook in the action log; False when its id was already kept."""
    detail = {
        "id": event.id, "type": event.type.value, "room": event.room, "at": event.at, "identity": event.identity,
        "connection": event.connection, "name": event.name, "egress_id": event.egress_id,
    }
    return await ctx.store.record_action(
        ActionRecord(
            key=_webhook_key(event.id), action=WEBHOOK_ACTION, done_at=ctx.clock.now(), subject=event.room,
            pubkey=event.identity or None, detail=json.dumps(detail, separators=(",", ":")),
        )
    )


def _event_from_detail(detail: str) -> SfuEvent | None:
    try:
        data = json.loads(detail)
        return SfuEvent(
            id=str(data["id"]), type=SfuEventType(data["type"]), room=str(data["room"]), at=int(data["at"]),
            identity=str(data.get("identity", "")), connection=str(data.get("connection", "")),
            name=str(data.get("name", "")), egress_id=str(data.get("egress_id", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


async def _ledger(ctx: ServiceContext, lesson: str | Lesson) -> WebhookLedger:
    found = lesson if isinstance(lesson, Lesson) else await load_lesson(ctx, lesson)
    ledger = WebhookLedger(sfu_room_name(found))
    for record in await ctx.store.actions(action=WEBHOOK_ACTION, subject=ledger.room):
        event = _event_from_detail(record.detail or "")
        if event is not None:
            ledger.record(event)
    return ledger


async def webhook_events(ctx: ServiceContext, lesson: str | Lesson) -> list[SfuEvent]:
    """The lesson room's kept webhooks, each once, by ``createdAt``."""
    return (await _ledger(ctx, lesson)).events()


async def webhook_evidence(ctx: ServiceContext, lesson: str | Lesson) -> list[Join | Leave]:
    """Joins and leaves the SFU reported for the lesson's room: evidence for ``rules.attendance``."""
    return (await _ledger(ctx, lesson)).evidence()
