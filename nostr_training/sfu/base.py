"""What any SFU adapter gives the live-session services: join tokens, E2EE keys, typed events.

The media runs on an existing SFU (LiveKit today, Jitsi could follow); ours is only to let in
whom the room's rules admit, to hand the SFU client our room key in the form it takes, and to
read the SFU's webhooks as attendance evidence. The rules live here, as pure functions, so every
adapter enforces the same ones:

- ``permit_join`` is the only way to a ``JoinPermit``: no permit for a learner the waiting room
  has not admitted, and none for anyone without a room key where E2EE is required (the earlier
  implementation fell back to clear media when its key exchange failed; we refuse instead).
- ``e2ee_shared_key`` turns a room key epoch into the passphrase an SFU's shared-key provider
  takes. LiveKit (and Jitsi) stretch string passphrases with PBKDF2, which adds nothing to a
  random key but loses nothing either when the string carries the key's full 256 bits.
- ``recording_plan`` says who records: E2EE excludes server-side recording (the SFU only sees
  ciphertext), so with both set the recording is the host's own, made where the key is.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import AdmissionRequired, InvalidKey, JoinRefused, RecordingRefused, RoomKeyRequired

__all__ = [
    "KEY_RING_SIZE",
    "E2eeKey",
    "JoinPermit",
    "RecordingPlan",
    "Role",
    "SfuAdapter",
    "SfuEvent",
    "SfuEventType",
    "check_server_recording",
    "e2ee_shared_key",
    "is_pubkey",
    "permit_join",
    "recording_plan",
]

KEY_RING_SIZE = 16
"""Key slots an SFU client keeps for rotation (LiveKit's keyring); epoch N uses slot N mod 16."""

_HEX = frozenset("0123456789abcdef")
_PASSPHRASE_INFO = b"nostr-training sfu e2ee shared key v1"


def is_pubkey(value: str | None) -> bool:
    """A 64-hex lowercase x-only public key: the only identity a join token is minted for."""
    return value is not None and len(value) == 64 and _HEX.issuperset(value)


class Role(enum.Enum):
    HOST = "host"
    LEARNER = "learner"


@dataclass(frozen=True, slots=True)
class JoinPermit:
    """Who may join which room, with what rights, when: what an adapter turns into a token.

    Make it with ``permit_join``, which applies the admission and E2EE rules.
    """

    room: str
    pubkey: str
    role: Role
    can_publish: bool
    not_before: int
    expires: int
    e2ee: bool


def permit_join(
    *,
    room: str,
    pubkey: str,
    role: Role,
    not_before: int,
    expires: int,
    admitted: bool,
    e2ee_required: bool,
    room_key: bytes | None,
    promoted: bool = False,
) -> JoinPermit:
    """The join permit for ``pubkey``, or the reason there is none.

    The host needs no admission (the room is theirs); a learner needs the waiting room's
    admission. Where E2EE is required everyone needs the current room key. Learners are
    subscribe-only unless the host ``promoted`` them.
    """
    if not room:
        raise JoinRefused("no room to join")
    if not is_pubkey(pubkey):
        raise InvalidKey(f"a join token's identity is a 64-hex pubkey, not {pubkey[:80]!r}")
    if expires <= not_before:
        raise JoinRefused(f"room {room!r}: the join window {not_before}..{expires} is empty")
    if role is Role.LEARNER and not admitted:
        raise AdmissionRequired(f"{pubkey[:16]} has not been admitted to room {room!r}")
    if e2ee_required and not room_key:
        raise RoomKeyRequired(f"room {room!r} requires E2EE and {pubkey[:16]} holds no room key")
    return JoinPermit(
        room=room,
        pubkey=pubkey,
        role=role,
        can_publish=role is Role.HOST or promoted,
        not_before=not_before,
        expires=expires,
        e2ee=e2ee_required,
    )


@dataclass(frozen=True, slots=True)
class E2eeKey:
    """What an SFU client's shared-key provider takes: ``setKey(passphrase, key_index)``."""

    passphrase: str = field(repr=False)
    key_index: int
    epoch: int


def e2ee_shared_key(room_key: bytes, epoch: int) -> E2eeKey:
    """The passphrase (256 bits, base64url) and key slot for one room key epoch.

    The passphrase is an HMAC of the room key, not the key itself, so a client that leaks what
    it typed into the SFU SDK leaks nothing else the room key protects (recording keys).
    """
    if len(room_key) != 32:
        raise InvalidKey(f"a room key is 32 bytes, got {len(room_key)}")
    if type(epoch) is not int or epoch < 0:
        raise InvalidKey(f"a room key epoch is a non-negative integer, got {epoch!r}")
    digest = hmac.new(room_key, _PASSPHRASE_INFO + b"|" + str(epoch).encode(), hashlib.sha256).digest()
    passphrase = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return E2eeKey(passphrase=passphrase, key_index=epoch % KEY_RING_SIZE, epoch=epoch)


class SfuEventType(enum.Enum):
    """What happened, in SFU-neutral words; ``OTHER`` keeps the rest without guessing."""

    ROOM_STARTED = "room_started"
    ROOM_FINISHED = "room_finished"
    JOINED = "joined"
    LEFT = "left"
    CONNECTION_ABORTED = "connection_aborted"
    EGRESS_STARTED = "egress_started"
    EGRESS_UPDATED = "egress_updated"
    EGRESS_ENDED = "egress_ended"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class SfuEvent:
    """One verified SFU webhook.

    ``id`` is the SFU's unique event id (duplicates share it); ``at`` its creation time in unix
    seconds; ``identity`` the participant's identity (our tokens make it the pubkey) and
    ``connection`` the SFU's id for that one connection, both empty when the event is not about
    a participant. ``name`` is the SFU's own event name.
    """

    id: str
    type: SfuEventType
    room: str
    at: int
    identity: str = ""
    connection: str = ""
    name: str = ""
    egress_id: str = ""


@runtime_checkable
class SfuAdapter(Protocol):
    """One SFU behind the live-session services."""

    name: str

    def join_token(self, permit: JoinPermit) -> str:
        """A token the SFU enforces: identity, room, rights and the join window of ``permit``."""

    def e2ee_key(self, room_key: bytes, epoch: int) -> E2eeKey:
        """The shared key this SFU's client takes for one room key epoch."""

    def parse_webhook(self, body: bytes | str, authorization: str | None) -> SfuEvent:
        """A verified event from one webhook request, or ``WebhookRefused``."""


class RecordingPlan(enum.Enum):
    NONE = "none"
    """Recording not allowed: nobody records."""
    SERVER = "server"
    """The SFU records (LiveKit egress): it sees clear media."""
    HOST_LOCAL = "host-local"
    """E2EE: the host records where the key is and uploads the file encrypted."""


def recording_plan(*, allow_recording: bool, e2ee_required: bool) -> RecordingPlan:
    """Who records a session with these settings."""
    if not allow_recording:
        return RecordingPlan.NONE
    return RecordingPlan.HOST_LOCAL if e2ee_required else RecordingPlan.SERVER


def check_server_recording(*, allow_recording: bool, e2ee_required: bool) -> None:
    """Refuse asking the SFU to record when the settings exclude it, saying what to do instead."""
    if not allow_recording:
        raise RecordingRefused("this session does not allow recording")
    if e2ee_required:
        raise RecordingRefused(
            "the session is end-to-end encrypted, so the SFU sees only ciphertext and cannot record it: "
            "the host records locally and publishes the file encrypted"
        )
