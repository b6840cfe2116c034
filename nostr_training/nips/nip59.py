"""NIP-59 gift wrap: rumor (unsigned) -> seal (kind 13, author-signed) -> wrap (kind 1059).

Pure: ``now`` is always an argument and randomness comes from ``secrets``. The ``*_with_key``
functions work on raw secret keys; ``gift_wrap``, ``gift_wrap_many`` and ``unwrap`` do the same
through an async ``Signer`` so a remote signer can hold the author's or recipient's key.

Unwrapping checks every layer: the wrap's id and signature, its kind, the seal's kind,
signature and empty tags, that the rumor's author is the seal's signer (without that anyone
could impersonate anyone), and the rumor's id. Any signature on the rumor is dropped.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import CryptoError, DecryptionError, InvalidId, InvalidKey, InvalidSignature, MalformedEvent
from ..event import Event, EventTemplate, compute_id, sign_event, verify_event
from ..keys import Keys
from ..signer import LocalSigner
from . import SECP256K1_ORDER, nip44

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "KIND_SEAL",
    "KIND_GIFT_WRAP",
    "KIND_EPHEMERAL_GIFT_WRAP",
    "MAX_TIME_TWEAK",
    "Unwrapped",
    "make_rumor",
    "random_past",
    "seal_rumor",
    "wrap_seal",
    "gift_wrap_with_key",
    "unwrap_with_key",
    "gift_wrap",
    "gift_wrap_many",
    "unwrap",
]

KIND_SEAL = 13
KIND_GIFT_WRAP = 1059
KIND_EPHEMERAL_GIFT_WRAP = 21059
WRAP_KINDS = frozenset({KIND_GIFT_WRAP, KIND_EPHEMERAL_GIFT_WRAP})
MAX_TIME_TWEAK = 2 * 24 * 60 * 60
"""Seal and wrap timestamps are moved back by a uniform amount in [0, 2 days)."""

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """The three layers of a gift wrap; ``rumor.pubkey`` is the verified author."""

    rumor: Event
    seal: Event
    wrap: Event

    @property
    def author(self) -> str:
        return self.rumor.pubkey


def _require_pubkey(value: str, what: str) -> str:
    if not (isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)):
        raise InvalidKey(f"{what} must be a 64-hex public key, got {str(value)[:70]!r}")
    return value


def random_past(now: int) -> int:
    """``now`` minus a uniform random tweak in [0, 2 days): never in the future."""
    return max(0, now - secrets.randbelow(MAX_TIME_TWEAK))


def make_rumor(template: EventTemplate | Event, pubkey: str) -> Event:
    """An unsigned event with its id computed: what gets sealed."""
    _require_pubkey(pubkey, "rumor pubkey")
    if isinstance(template, Event):
        if template.pubkey != pubkey:
            raise MalformedEvent(
                f"rumor author {template.pubkey[:16]} is not the sealing key {pubkey[:16]}", field="pubkey"
            )
        template = template.template()
    event_id = compute_id(pubkey, template.created_at, template.kind, template.tags, template.content)
    return Event(event_id, pubkey, template.created_at, template.kind, template.tags, template.content, None)


def _seal_template(ciphertext: str, now: int) -> EventTemplate:
    return EventTemplate(KIND_SEAL, (), ciphertext, random_past(now))


def _wrap_tags(recipient_pubkey: str, relay_hint: str | None, expiration: int | None) -> tuple[tuple[str, ...], ...]:
    p = ("p", recipient_pubkey, relay_hint) if relay_hint else ("p", recipient_pubkey)
    if expiration is None:
        return (p,)
    if type(expiration) is not int or expiration < 0:
        raise MalformedEvent("must be a non-negative unix time", field="expiration")
    return (p, ("expiration", str(expiration)))


def seal_rumor(rumor: Event, author_secret: bytes, recipient_pubkey: str, *, now: int) -> Event:
    """Kind 13: the rumor encrypted to the recipient and signed by its author."""
    _require_pubkey(recipient_pubkey, "recipient")
    author = Keys(author_secret)
    if author.public_key != rumor.pubkey:
        raise MalformedEvent(f"rumor author {rumor.pubkey[:16]} is not the sealing key {author.public_key[:16]}", field="pubkey")
    conversation_key = nip44.get_conversation_key(author.secret, recipient_pubkey)
    content = nip44.encrypt(_rumor_json(rumor), conversation_key)
    return sign_event(_seal_template(content, now), author.secret)


def wrap_seal(
    seal: Event,
    recipient_pubkey: str,
    *,
    now: int,
    expiration: int | None = None,
    ephemeral: bool = False,
    relay_hint: str | None = None,
) -> Event:
    """Kind 1059 (or ephemeral 21059): the seal encrypted and signed by a fresh one-time key."""
    _require_pubkey(recipient_pubkey, "recipient")
    one_time = _one_time_secret()
    content = nip44.encrypt(seal.to_json(), nip44.get_conversation_key(one_time, recipient_pubkey))
    kind = KIND_EPHEMERAL_GIFT_WRAP if ephemeral else KIND_GIFT_WRAP
    template = EventTemplate(kind, _wrap_tags(recipient_pubkey, relay_hint, expiration), content, random_past(now))
    return sign_event(template, one_time)


def _one_time_secret() -> bytes:
    """A fresh secret key for one wrap; its pubkey is computed only once, by the signature."""
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return candidate


def _rumor_json(rumor: Event) -> str:
    if rumor.sig is not None:
        rumor = Event(rumor.id, rumor.pubkey, rumor.created_at, rumor.kind, rumor.tags, rumor.content, None)
    return rumor.to_json()


def gift_wrap_with_key(
    rumor_template: EventTemplate | Event,
    author_secret: bytes,
    recipient_pubkey: str,
    *,
    now: int,
    expiration: int | None = None,
    ephemeral: bool = False,
    relay_hint: str | None = None,
) -> Event:
    """Rumor, seal and wrap in one go, with the author's raw secret key."""
    author = Keys(author_secret)
    rumor = make_rumor(rumor_template, author.public_key)
    seal = seal_rumor(rumor, author.secret, recipient_pubkey, now=now)
    return wrap_seal(seal, recipient_pubkey, now=now, expiration=expiration, ephemeral=ephemeral, relay_hint=relay_hint)


# Unwrapping ------------------------------------------------------------------------------


def _check_wrap(wrap: Event) -> None:
    if wrap.kind not in WRAP_KINDS:
        raise MalformedEvent(f"a gift wrap has kind 1059 or 21059, not {wrap.kind}", field="kind", event_id=wrap.id)
    verify_event(wrap)


def _open_seal(wrap: Event, seal_json: str) -> Event:
    seal = Event.from_json(seal_json)
    if seal.kind != KIND_SEAL:
        raise MalformedEvent(f"gift wrap {wrap.id[:16]} holds kind {seal.kind}, not a kind 13 seal", field="kind", event_id=seal.id)
    if seal.tags:
        raise MalformedEvent("a seal's tags must be empty", field="tags", event_id=seal.id)
    verify_event(seal)
    return seal


def _open_rumor(seal: Event, rumor_json: str) -> Event:
    rumor = Event.from_json(rumor_json, rumor=True)
    if rumor.pubkey != seal.pubkey:
        raise InvalidSignature(
            f"seal {seal.id[:16]}: rumor claims author {rumor.pubkey[:16]} but the seal is signed by {seal.pubkey[:16]}"
        )
    if compute_id(rumor.pubkey, rumor.created_at, rumor.kind, rumor.tags, rumor.content) != rumor.id:
        raise InvalidId(f"rumor {rumor.id[:16]} in seal {seal.id[:16]}: id does not match its fields")
    return rumor


def _decrypt_error(layer: str, event: Event, exc: CryptoError) -> DecryptionError:
    return DecryptionError(f"{layer} {event.id[:16]}: cannot decrypt ({exc})")


def unwrap_with_key(wrap: Event, recipient_secret: bytes) -> Unwrapped:
    """Open a gift wrap with the recipient's raw secret key, checking every layer."""
    _check_wrap(wrap)
    try:
        seal_json = nip44.decrypt(wrap.content, nip44.get_conversation_key(recipient_secret, wrap.pubkey))
    except CryptoError as exc:
        raise _decrypt_error("gift wrap", wrap, exc) from exc
    seal = _open_seal(wrap, seal_json)
    try:
        rumor_json = nip44.decrypt(seal.content, nip44.get_conversation_key(recipient_secret, seal.pubkey))
    except CryptoError as exc:
        raise _decrypt_error("seal", seal, exc) from exc
    return Unwrapped(_open_rumor(seal, rumor_json), seal, wrap)


# Through a Signer -------------------------------------------------------------------------


async def gift_wrap(
    rumor_template: EventTemplate | Event,
    author: "Signer",
    recipient_pubkey: str,
    *,
    now: int,
    expiration: int | None = None,
    ephemeral: bool = False,
    relay_hint: str | None = None,
) -> Event:
    """Gift-wrap one rumor to one recipient; the author's key stays inside ``author``."""
    wraps = await gift_wrap_many(
        rumor_template,
        author,
        [recipient_pubkey],
        now=now,
        expiration=expiration,
        ephemeral=ephemeral,
        relay_hints={recipient_pubkey: relay_hint} if relay_hint else None,
    )
    return wraps[0]


async def gift_wrap_many(
    rumor_template: EventTemplate | Event,
    author: "Signer",
    recipients: Iterable[str],
    *,
    now: int,
    expiration: int | None = None,
    ephemeral: bool = False,
    relay_hints: dict[str, str] | None = None,
) -> list[Event]:
    """One wrap per recipient around the same rumor (same id), in recipient order.

    The rumor is built and serialised once; each seal is encrypted through the signer, whose
    conversation-key cache makes repeat recipients cost no ECDH.
    """
    recipient_list: Sequence[str] = [_require_pubkey(r, "recipient") for r in recipients]
    rumor = make_rumor(rumor_template, await author.get_public_key())
    rumor_json = _rumor_json(rumor)
    hints = relay_hints or {}
    out = []
    for recipient in recipient_list:
        ciphertext = await author.nip44_encrypt(recipient, rumor_json)
        seal = await author.sign_event(_seal_template(ciphertext, now))
        if not isinstance(author, LocalSigner):
            verify_event(seal)
        if seal.pubkey != rumor.pubkey:
            raise InvalidSignature(f"signer returned a seal by {seal.pubkey[:16]}, expected {rumor.pubkey[:16]}")
        out.append(
            wrap_seal(seal, recipient, now=now, expiration=expiration, ephemeral=ephemeral, relay_hint=hints.get(recipient))
        )
    return out


async def unwrap(wrap: Event, recipient: "Signer") -> Unwrapped:
    """Open a gift wrap addressed to ``recipient``, checking every layer (see module doc)."""
    _check_wrap(wrap)
    try:
        seal_json = await recipient.nip44_decrypt(wrap.pubkey, wrap.content)
    except CryptoError as exc:
        raise _decrypt_error("gift wrap", wrap, exc) from exc
    seal = _open_seal(wrap, seal_json)
    try:
        rumor_json = await recipient.nip44_decrypt(seal.pubkey, seal.content)
    except CryptoError as exc:
        raise _decrypt_error("seal", seal, exc) from exc
    return Unwrapped(_open_rumor(seal, rumor_json), seal, wrap)
