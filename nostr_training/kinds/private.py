"""Private training: what is never published in the clear, and the envelopes it travels in.

A private course or lesson (and its room, meeting and certificate definition) carries
``["visibility", "private"]``. It is kept as a private event in its author's index and
published only as a **private calendar item** (kind 32678, Formstr Calendar's kind): the item's
tags, encrypted with NIP-44 under a per-course or per-lesson **view key** (a secret key; the
conversation key of that key with its own public key), under an opaque ``d``. The view key
reaches each invited learner in a gift-wrapped **invitation** (a kind-14 rumor, readable as a
DM by any NIP-17 client, with ``a`` = the item's 32678 coordinate and ``viewKey`` = the key as
nsec, as Formstr Calendar writes it). A learner's daemon decrypts every item the host publishes
under a key it holds and indexes the inner event privately.

Signed records a learner keeps as proof (their attendance record, a private certificate's
definition and award) travel in a **record delivery** (kind 8317, a rumor: its content is a JSON
list of signed events) gift-wrapped to that learner alone.

``publication_refusal`` is the rule the outbox applies to everything before it leaves the
machine: nothing marked private, nothing that points (``a``) at a private address.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import CryptoError, DecryptionError, EncodingError, InvalidEvent, MalformedEvent
from ..event import Event, EventTemplate, compute_id, coordinate, parse_coordinate, verify_event
from ..keys import Keys
from ..nips import nip19, nip44
from . import ATTENDANCE_RECORD, COMPLETION_RECORD, DIRECT_MESSAGE, DOOR_CHECK, PRIVATE_CALENDAR_ITEM, RECORD_DELIVERY, _wire

__all__ = [
    "PRIVATE_CALENDAR_ITEM",
    "RECORD_DELIVERY",
    "VISIBILITY",
    "PRIVATE",
    "ENVELOPED_KINDS",
    "NEVER_PUBLISHED_KINDS",
    "Invitation",
    "RecordDelivery",
    "mark_private",
    "is_marked_private",
    "new_view_key",
    "envelope_d",
    "envelope_coordinate",
    "build_envelope",
    "open_envelope",
    "build_invitation",
    "parse_invitation",
    "is_invitation",
    "build_record_delivery",
    "parse_record_delivery",
    "publication_refusal",
]

VISIBILITY = "visibility"
PRIVATE = "private"
VIEW_KEY_TAG = "viewKey"
_KIND_TAG = "k"
_CONTENT_TAG = "description"
ENVELOPE_ALT = "Private calendar event (encrypted)"

#: The addressable kinds a private course or lesson publishes only inside an envelope.
ENVELOPED_KINDS = frozenset({31923, 31924, 30312, 30313, 30009})

#: Kinds never published in the clear, for any lesson: the attendance record (31930), the
#: completion record (31931) and the door check-in/out (8316) name a learner and what they
#: attended; the host keeps them and hands each learner their own in a record delivery (8317).
NEVER_PUBLISHED_KINDS = frozenset({ATTENDANCE_RECORD, COMPLETION_RECORD, DOOR_CHECK})


def mark_private(template: EventTemplate) -> EventTemplate:
    """The same template with ``["visibility", "private"]`` (once)."""
    if is_marked_private(template):
        return template
    return EventTemplate(template.kind, (*template.tags, (VISIBILITY, PRIVATE)), template.content, template.created_at)


def is_marked_private(event: Event | EventTemplate) -> bool:
    return any(len(t) > 1 and t[0] == VISIBILITY and t[1] == PRIVATE for t in event.tags)


# View keys and envelopes ----------------------------------------------------------------------


def new_view_key() -> bytes:
    """A fresh view key: a secp256k1 secret, so it can be written as an nsec like Formstr does."""
    return Keys.generate().secret


def _self_key(view_key: bytes) -> bytes:
    return nip44.get_conversation_key(view_key, Keys(view_key).public_key)


def envelope_d(view_key: bytes, inner_coordinate: str) -> str:
    """The envelope's ``d``: opaque to outsiders, computable by whoever holds the view key."""
    digest = hashlib.sha256(view_key + b"|" + inner_coordinate.encode("utf-8"))
    return digest.hexdigest()[:32]


def envelope_coordinate(author: str, view_key: bytes, inner_coordinate: str) -> str:
    return coordinate(PRIVATE_CALENDAR_ITEM, author, envelope_d(view_key, inner_coordinate))


def build_envelope(inner: EventTemplate, author: str, view_key: bytes, *, created_at: int) -> EventTemplate:
    """Kind 32678 holding ``inner`` (an addressable event of ours, marked private).

    The payload is a tag list, as Formstr Calendar reads it: the inner tags, then
    ``["k", <inner kind>]`` and ``["description", <inner content>]``. Only ``d`` is public.
    """
    if inner.kind not in ENVELOPED_KINDS:
        raise _wire.malformed("kind", f"kind {inner.kind} is not sent in a private calendar item")
    if not is_marked_private(inner):
        raise _wire.malformed(VISIBILITY, "the inner event is not marked private")
    d = next((t[1] for t in inner.tags if len(t) > 1 and t[0] == "d"), None)
    if d is None:
        raise _wire.malformed("d", "the inner event has no d tag")
    payload = [list(t) for t in inner.tags] + [[_KIND_TAG, str(inner.kind)], [_CONTENT_TAG, inner.content]]
    content = nip44.encrypt(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), _self_key(view_key))
    outer_d = envelope_d(view_key, coordinate(inner.kind, author, d))
    return EventTemplate(PRIVATE_CALENDAR_ITEM, (("d", outer_d), _wire.alt(ENVELOPE_ALT)), content, created_at)


def open_envelope(envelope: Event, view_key: bytes) -> Event:
    """The inner event of a 32678, as an unsigned event by the envelope's author.

    Its created_at is the envelope's, so every holder of the key computes the same id. Raises
    DecryptionError when the key does not open it, MalformedEvent when what it holds is not one
    of our private items under the ``d`` this key gives it.
    """
    r = _wire.Reader(envelope, PRIVATE_CALENDAR_ITEM)
    outer_d = r.d()
    try:
        plaintext = nip44.decrypt(envelope.content, _self_key(view_key))
    except CryptoError as exc:
        raise DecryptionError(f"private item {envelope.id[:16]}: this view key does not open it ({exc})") from exc
    try:
        payload = json.loads(plaintext)
    except ValueError as exc:
        raise r.fail("content", f"not a JSON tag list ({exc})") from exc
    if (
        not isinstance(payload, list)
        or len(payload) < 2
        or not all(isinstance(t, list) and t and all(isinstance(v, str) for v in t) for t in payload)
    ):
        raise r.fail("content", "not a list of string tags")
    kind_tag, content_tag = payload[-2], payload[-1]
    if kind_tag[0] != _KIND_TAG or len(kind_tag) != 2 or content_tag[0] != _CONTENT_TAG or len(content_tag) != 2:
        raise r.fail("content", "the last two tags must be k and description")
    try:
        kind = int(kind_tag[1])
    except ValueError:
        raise r.fail("k", f"not a kind: {kind_tag[1][:20]!r}") from None
    if kind not in ENVELOPED_KINDS:
        raise r.fail("k", f"kind {kind} is not a private calendar item of ours")
    tags = tuple(tuple(t) for t in payload[:-2])
    inner_d = next((t[1] for t in tags if len(t) > 1 and t[0] == "d"), None)
    if inner_d is None or envelope_d(view_key, coordinate(kind, envelope.pubkey, inner_d)) != outer_d:
        raise r.fail("d", "the inner address does not match the envelope's d")
    if not any(len(t) > 1 and t[0] == VISIBILITY and t[1] == PRIVATE for t in tags):
        raise r.fail(VISIBILITY, "the inner event is not marked private")
    content = content_tag[1]
    event_id = compute_id(envelope.pubkey, envelope.created_at, kind, tags, content)
    return Event(event_id, envelope.pubkey, envelope.created_at, kind, tags, content, None)


# Invitations ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitation:
    """A host's invitation: the 32678 item to read and the key that opens it."""

    author: str
    item: str
    """Coordinate of the 32678 private calendar item (the course or lesson)."""
    view_key: bytes
    invitee: str
    relay: str | None = None


def build_invitation(
    item: str, view_key: bytes, invitee: str, text: str, *, relay: str | None = None, created_at: int
) -> EventTemplate:
    """A kind-14 rumor to ``invitee``: ``text`` for DM clients, the item and its key in tags."""
    _wire.check_coordinate("a", item, (PRIVATE_CALENDAR_ITEM,))
    _wire.check_pubkey("p", invitee)
    a = ("a", item, relay) if relay else ("a", item)
    tags = (("p", invitee), a, (VIEW_KEY_TAG, nip19.nsec_encode(view_key)))
    return EventTemplate(DIRECT_MESSAGE, tags, _wire.check_text("content", text), created_at)


def is_invitation(rumor: Event) -> bool:
    return rumor.kind == DIRECT_MESSAGE and rumor.tag_value(VIEW_KEY_TAG) is not None


def parse_invitation(rumor: Event) -> Invitation:
    """Read an unwrapped invitation (its author was checked against the seal by the unwrap)."""
    r = _wire.Reader(rumor, DIRECT_MESSAGE)
    item = r.required("a")
    r.coordinate("a", item, (PRIVATE_CALENDAR_ITEM,))
    if parse_coordinate(item)[1] != rumor.pubkey:
        raise r.fail("a", "the invitation's author did not publish the item it names")
    invitee = r.pubkey("p", r.required("p"))
    try:
        decoded = nip19.decode(r.required(VIEW_KEY_TAG))
    except EncodingError as exc:
        raise r.fail(VIEW_KEY_TAG, f"not an nsec ({exc})") from None
    if decoded.hrp != "nsec" or not isinstance(decoded.data, bytes):
        raise r.fail(VIEW_KEY_TAG, "not an nsec")
    a_tag = next(t for t in rumor.tags if t[0] == "a")
    relay = a_tag[2] if len(a_tag) > 2 and a_tag[2] else None
    return Invitation(rumor.pubkey, item, decoded.data, invitee, relay)


# Signed records delivered privately -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDelivery:
    """Signed events handed to one learner: each verifies on its own, offline."""

    author: str
    subject: str
    """The coordinate the records are about (a lesson, a course)."""
    events: tuple[Event, ...]


def build_record_delivery(events: Sequence[Event], *, subject: str, created_at: int) -> EventTemplate:
    """A kind-8317 rumor: the signed ``events`` as a JSON list, ``a`` = what they are about."""
    if not events:
        raise _wire.malformed("content", "a record delivery holds at least one signed event")
    for event in events:
        if event.sig is None:
            raise _wire.malformed("content", f"event {event.id[:16]} is not signed")
    parse_coordinate(subject)
    tags: list[tuple[str, ...]] = [("a", subject)]
    tags += [(_KIND_TAG, str(k)) for k in sorted({e.kind for e in events})]
    tags.append(_wire.alt("Signed training records for their holder"))
    content = json.dumps([e.to_dict() for e in events], ensure_ascii=False, separators=(",", ":"))
    return EventTemplate(RECORD_DELIVERY, tuple(tags), content, created_at)


def parse_record_delivery(rumor: Event) -> RecordDelivery:
    """Read an unwrapped 8317; every event in it must verify (id and signature)."""
    if rumor.sig is not None:
        raise MalformedEvent("a record delivery travels only as a rumor in a gift wrap", field="sig", event_id=rumor.id)
    r = _wire.Reader(rumor, RECORD_DELIVERY)
    subject = r.required("a")
    try:
        items = json.loads(rumor.content)
    except ValueError as exc:
        raise r.fail("content", f"not JSON ({exc})") from None
    if not isinstance(items, list) or not items:
        raise r.fail("content", "not a non-empty list of events")
    events = []
    for item in items:
        try:
            events.append(verify_event(Event.from_dict(item)))
        except (MalformedEvent, InvalidEvent) as exc:
            raise r.fail("content", f"holds an event that does not verify ({exc})") from None
    return RecordDelivery(rumor.pubkey, subject, tuple(events))


# The rule the outbox applies -------------------------------------------------------------------


def publication_refusal(event: Event, private_addresses: Iterable[str] | frozenset[str]) -> str | None:
    """Why ``event`` must not be published in the clear, or None.

    ``private_addresses``: the coordinates of the private items the user's index holds.
    """
    if event.kind in NEVER_PUBLISHED_KINDS:
        return (f"kind {event.kind} names a learner's attendance: the host keeps it and sends it to that learner "
                "in a record delivery (docs/protocol.md)")
    if is_marked_private(event):
        return f"kind {event.kind} is marked private: it travels only encrypted (docs/protocol.md, Private training)"
    addresses = private_addresses if isinstance(private_addresses, (set, frozenset)) else frozenset(private_addresses)
    if not addresses:
        return None
    if event.address is not None and event.address in addresses:
        return f"{event.address[:80]} is a private item: it travels only encrypted"
    for value in event.tag_values("a"):
        if value in addresses:
            return f"it names the private item {value[:80]}: it goes to the host or the learner in a gift wrap"
    return None
