"""LiveKit behind the ``SfuAdapter`` interface: access tokens, E2EE keys, verified webhooks.

Tokens carry the claims ``livekit-api``'s ``AccessToken`` writes (``sub`` = identity = the
participant's pubkey, ``iss`` = API key, ``video`` grants, ``nbf``, ``exp``), but are encoded
here with PyJWT because ``AccessToken`` always sets ``nbf`` to the wall clock: a token handed out
before a lesson must not open the room before the join window does. LiveKit checks ``nbf``/``exp``
at the initial connect only, so the window bounds joining, not staying.

Webhooks are verified with ``livekit-api``'s own ``WebhookReceiver`` (the JWT in the
``Authorization`` header, signed with the API secret, carries the body's sha256). A verified
webhook is still only evidence: LiveKit delivers late, twice, out of order or not at all
(livekit/livekit#2399, #4227), so ``WebhookLedger`` de-duplicates by id, orders by ``createdAt``
and yields ``rules.attendance`` joins and leaves that sit beside presence heartbeats and the
host's own records, never in place of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import jwt
from livekit.api.access_token import Claims, TokenVerifier, VideoGrants
from livekit.api.webhook import WebhookReceiver
from livekit.protocol.webhook import WebhookEvent

from ..errors import WebhookRefused
from ..rules.attendance import Join, Leave
from .base import E2eeKey, JoinPermit, Role, SfuEvent, SfuEventType, e2ee_shared_key, is_pubkey
from .config import SfuConfig

__all__ = ["EVENT_TYPES", "SOURCE", "LiveKitAdapter", "WebhookLedger", "video_grants"]

SOURCE = "livekit"
"""The ``source`` written on attendance evidence that came from LiveKit webhooks."""

EVENT_TYPES: dict[str, SfuEventType] = {
    "room_started": SfuEventType.ROOM_STARTED,
    "room_finished": SfuEventType.ROOM_FINISHED,
    "participant_joined": SfuEventType.JOINED,
    "participant_left": SfuEventType.LEFT,
    "participant_connection_aborted": SfuEventType.CONNECTION_ABORTED,
    "egress_started": SfuEventType.EGRESS_STARTED,
    "egress_updated": SfuEventType.EGRESS_UPDATED,
    "egress_ended": SfuEventType.EGRESS_ENDED,
}
_PARTICIPANT_TYPES = {SfuEventType.JOINED, SfuEventType.LEFT, SfuEventType.CONNECTION_ABORTED}
_MAX_BODY = 1 << 20


def video_grants(permit: JoinPermit) -> VideoGrants:
    """LiveKit rights for ``permit``: the host publishes and moderates; learners only listen."""
    return VideoGrants(
        room_join=True,
        room=permit.room,
        room_admin=True if permit.role is Role.HOST else None,
        can_publish=permit.can_publish,
        can_subscribe=True,
        can_publish_data=permit.can_publish,
        can_update_own_metadata=False,
    )


class LiveKitAdapter:
    """Mints join tokens and reads webhooks for one LiveKit project (URL, API key, secret)."""

    name = "livekit"

    def __init__(self, config: SfuConfig):
        self.url = config.url
        self._api_key = config.api_key
        self._secret = config.api_secret
        self._receiver = WebhookReceiver(TokenVerifier(config.api_key, config.api_secret.reveal()))

    def __repr__(self) -> str:
        return f"LiveKitAdapter(url={self.url!r}, api_key={self._api_key!r})"

    def join_token(self, permit: JoinPermit) -> str:
        """An HS256 JWT with AccessToken's claim names and ``nbf``/``exp`` from the permit."""
        claims = Claims(video=video_grants(permit)).asdict()
        claims.update(
            {"sub": permit.pubkey, "iss": self._api_key, "nbf": permit.not_before, "exp": permit.expires}
        )
        return jwt.encode(claims, self._secret.reveal(), algorithm="HS256")

    def e2ee_key(self, room_key: bytes, epoch: int) -> E2eeKey:
        """For ``ExternalE2EEKeyProvider.setKey(passphrase)`` with ``keyIndex`` = epoch mod 16."""
        return e2ee_shared_key(room_key, epoch)

    def parse_webhook(self, body: bytes | str, authorization: str | None) -> SfuEvent:
        """Verify one webhook request (signature, body hash, token times) and type its event."""
        if not authorization:
            raise WebhookRefused("livekit webhook: no Authorization header")
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if len(body) > _MAX_BODY:
            raise WebhookRefused(f"livekit webhook: body of {len(body)} bytes is too large")
        try:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
            raw = self._receiver.receive(text, token)
        except Exception as exc:  # noqa: BLE001 (the receiver raises bare Exception, PyJWT and protobuf errors)
            raise WebhookRefused(f"livekit webhook refused: {type(exc).__name__}: {exc}") from None
        return _to_event(raw)


def _to_event(raw: WebhookEvent) -> SfuEvent:
    name, event_id, created_at = raw.event, raw.id, raw.created_at
    if not event_id:
        raise WebhookRefused(f"livekit webhook {name!r}: no event id")
    if created_at <= 0:
        raise WebhookRefused(f"livekit webhook {event_id}: no createdAt")
    kind = EVENT_TYPES.get(name, SfuEventType.OTHER)
    room = raw.room.name if raw.HasField("room") else ""
    egress_id = ""
    if raw.HasField("egress_info"):
        egress_id = raw.egress_info.egress_id
        room = room or raw.egress_info.room_name
    identity = connection = ""
    if raw.HasField("participant"):
        identity, connection = raw.participant.identity, raw.participant.sid
    if kind in _PARTICIPANT_TYPES and not (identity and room):
        raise WebhookRefused(f"livekit webhook {event_id}: {name} without a participant identity or room")
    return SfuEvent(
        id=event_id,
        type=kind,
        room=room,
        at=int(created_at),
        identity=identity,
        connection=connection,
        name=name,
        egress_id=egress_id,
    )


@dataclass
class WebhookLedger:
    """The verified webhooks of one room, each once, in ``createdAt`` order.

    ``record`` answers whether the event was new: a replayed or re-delivered webhook (same id)
    changes nothing. Events for other rooms are not taken. ``evidence`` is a pure function of
    the set recorded, so arrival order never changes attendance.
    """

    room: str
    _events: dict[str, SfuEvent] = field(default_factory=dict, repr=False)

    def record(self, event: SfuEvent) -> bool:
        """Take ``event``; False when it was already recorded or belongs to another room."""
        if event.room != self.room or event.id in self._events:
            return False
        self._events[event.id] = event
        return True

    def record_all(self, events: Iterable[SfuEvent]) -> int:
        """Take many; the number that were new."""
        return sum(self.record(event) for event in events)

    def __len__(self) -> int:
        return len(self._events)

    def events(self) -> list[SfuEvent]:
        """Recorded events by ``createdAt``, ties broken by id so the order is stable."""
        return sorted(self._events.values(), key=lambda e: (e.at, e.id))

    def evidence(self) -> list[Join | Leave]:
        """Joins and leaves for participants whose identity is a pubkey, one per connection event.

        An aborted connection is a leave (the participant was never or no longer in the room).
        Identities that are not pubkeys (egress, agents) are not learners and give nothing.
        """
        out: list[Join | Leave] = []
        for event in self.events():
            if not is_pubkey(event.identity):
                continue
            if event.type is SfuEventType.JOINED:
                out.append(Join(event.identity, event.at, connection=event.connection, source=SOURCE))
            elif event.type in (SfuEventType.LEFT, SfuEventType.CONNECTION_ABORTED):
                out.append(Leave(event.identity, event.at, connection=event.connection, source=SOURCE))
        return out

    def started_at(self) -> int | None:
        """When LiveKit says the room started, if it said so."""
        return next((e.at for e in self.events() if e.type is SfuEventType.ROOM_STARTED), None)

    def finished_at(self) -> int | None:
        """When LiveKit says the room finished, if it said so."""
        return next((e.at for e in reversed(self.events()) if e.type is SfuEventType.ROOM_FINISHED), None)
