"""Shared pieces of the media service tests: lessons, decisions, an [sfu] config and contexts."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from contextlib import asynccontextmanager
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from nostr_training import kinds
from nostr_training.clock import Clock
from nostr_training.daemon.config import DaemonConfig, load_config
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.keys import Keys
from nostr_training.services.context import offline_context
from nostr_training.signer import LocalSigner

API_KEY = "APImediaTest"
SECRET = "media-secret-" + "k" * 40
SECRET_ENV = "NT_TEST_LIVEKIT_SECRET"
SFU_TABLE = {"provider": "livekit", "url": "wss://sfu.example.org", "api_key": API_KEY, "api_secret_env": SECRET_ENV}


def lesson_of(host: Keys, start: int, *, d: str = "lesson-1", minutes: int = 60, **changes) -> kinds.Lesson:
    lesson = kinds.Lesson(
        author=host.public_key, d=d, title="Ownership", start=start, end=start + minutes * 60,
        instructor=host.public_key, room=f"30312:{host.public_key}:room-{d}",
    )
    return dataclasses.replace(lesson, **changes)


def signed_lesson(host: Keys, lesson: kinds.Lesson, created_at: int) -> Event:
    return sign_event(kinds.build_lesson(lesson, created_at=created_at), host.secret)


def decision(host: Keys, target: str, learner: str, answer: str, created_at: int) -> Event:
    return sign_event(kinds.build_waiting_room_decision(target, learner, answer, created_at=created_at), host.secret)


def inbox_list(keys: Keys, relay: str, created_at: int) -> Event:
    """A 10050 so gift wraps to ``keys`` have somewhere to go."""
    return sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", relay),), "", created_at), keys.secret)


def config_for(data_dir: Path, *, relays: tuple[str, ...] = (), sfu: bool = True) -> DaemonConfig:
    config = load_config(data_dir).with_overrides(relays=list(relays), port=0)
    return dataclasses.replace(config, extra={"sfu": dict(SFU_TABLE)} if sfu else {})


@asynccontextmanager
async def context(config: DaemonConfig, keys: Keys, clock: Clock, *, connect: bool = False):
    async with offline_context(config, LocalSigner(keys), connect=connect, clock=clock) as ctx:
        yield ctx


def webhook(name: str, event_id: str, at: int, room: str, identity: str = "", sid: str = "") -> WebhookEvent:
    event = WebhookEvent(event=name, id=event_id, created_at=at, room=Room(name=room, sid="RM_1"))
    if identity:
        event.participant.CopyFrom(ParticipantInfo(identity=identity, sid=sid or f"PA_{identity[:4]}"))
    return event


def sign_webhook(event: WebhookEvent, *, secret: str = SECRET, ttl=None) -> tuple[str, str]:
    """(body, Authorization) as LiveKit's server sends them: the token's sha256 claim is the body's."""
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = AccessToken(API_KEY, secret).with_sha256(digest)
    if ttl is not None:
        token = token.with_ttl(ttl)
    return body, token.to_jwt()
