"""Certificates on NIP-58: a 30009 badge definition per course certificate, a kind-8 award each.

Validity lives in ordinary tags (``valid_from``, ``valid_until``), never NIP-40 ``expiration``:
relays delete expired events, and a certificate's proof must outlive its validity. Revocation is
a NIP-09 deletion of the award plus a durable issuer-signed 8314 record, since deletions are
only requests and copies persist.

A learner shows ("accepts") a certificate by adding its definition/award pair to their NIP-58
profile badges (10008, consecutive ``a``/``e`` tags); the legacy 30008 ``d=profile_badges``
form is read too.

A private award (delivered by gift wrap, never published) is revoked with a hash-only marker:
an 8314 carrying only ``x`` = sha256(award id), so the revocation stays checkable by anyone who
holds the award without naming the holder, the course or the definition.

Verification codes are 16 symbols of Crockford base32 (no I, L, O, U), 80 bits drawn at random,
shown as ``XXXX-XXXX-XXXX-XXXX``. Random rather than derived: a code derived from public fields
(course, learner, date) could be computed by anyone and would link private certificates.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ..errors import MalformedEvent
from ..event import Event, EventTemplate, coordinate, parse_coordinate
from . import BADGE_AWARD as BADGE_AWARD_KIND
from . import BADGE_DEFINITION as BADGE_DEFINITION_KIND
from . import CERTIFICATE_REVOCATION as CERTIFICATE_REVOCATION_KIND
from . import COURSE as COURSE_KIND
from . import PROFILE_BADGES as PROFILE_BADGES_KIND
from . import _wire
from ._wire import Reader
from .deletion import build_deletion

__all__ = [
    "CertificateDefinition",
    "CertificateAward",
    "CertificateRevocation",
    "RevocationMarker",
    "CODE_ALPHABET",
    "CODE_BITS",
    "verification_code",
    "new_verification_code",
    "normalize_code",
    "build_certificate_definition",
    "parse_certificate_definition",
    "build_certificate_award",
    "parse_certificate_award",
    "build_certificate_revocation",
    "parse_certificate_revocation",
    "award_hash",
    "build_revocation_marker",
    "parse_revocation_marker",
    "parse_revocation",
    "build_award_deletion",
    "ProfileBadges",
    "parse_profile_badges",
    "build_profile_badge_acceptance",
]


REVOCATION_ALT = "Certificate revocation by its issuer"
MARKER_ALT = "Certificate revocation by its issuer (award named by hash)"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_SYMBOLS = 16
CODE_BITS = CODE_SYMBOLS * 5
_CODE_BYTES = CODE_BITS // 8
_CODE_READ = {c: c for c in CODE_ALPHABET} | {"O": "0", "I": "1", "L": "1"}


@dataclass(frozen=True, slots=True)
class CertificateDefinition:
    """A 30009 badge definition: one per course certificate, signed by the issuer."""

    author: str
    d: str
    name: str
    description: str = ""
    image: str | None = None
    course: str | None = None
    event_id: str | None = None
    created_at: int | None = None

    @property
    def coordinate(self) -> str:
        return coordinate(BADGE_DEFINITION_KIND, self.author, self.d)


@dataclass(frozen=True, slots=True)
class CertificateAward:
    """A kind-8 award of a certificate to one learner, valid from ``valid_from`` until ``valid_until``."""

    author: str
    definition: str
    learner: str
    valid_from: int
    code: str
    created_at: int
    valid_until: int | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateRevocation:
    """The issuer's durable statement that an award no longer holds (kind 8314)."""

    author: str
    definition: str
    award: str
    learner: str
    created_at: int
    reason: str = ""
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class RevocationMarker:
    """A hash-only 8314: the issuer revokes the award whose id hashes to ``award_hash``."""

    author: str
    award_hash: str
    created_at: int
    reason: str = ""
    event_id: str | None = None

    def names(self, award_id: str) -> bool:
        return award_hash(award_id) == self.award_hash


# Verification codes ---------------------------------------------------------------------------


def verification_code(entropy: bytes) -> str:
    """Encode 10 bytes (80 bits) as ``XXXX-XXXX-XXXX-XXXX`` in Crockford base32."""
    if len(entropy) != _CODE_BYTES:
        raise _wire.malformed("code", f"needs exactly {_CODE_BYTES} bytes of entropy, got {len(entropy)}")
    number = int.from_bytes(entropy, "big")
    symbols = [CODE_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(CODE_SYMBOLS))]
    return "-".join("".join(symbols[i : i + 4]) for i in range(0, CODE_SYMBOLS, 4))


def new_verification_code() -> str:
    return verification_code(secrets.token_bytes(_CODE_BYTES))


def normalize_code(text: str) -> str:
    """The canonical form of a code as a person typed it: case, dashes, spaces, O/I/L forgiven."""
    cleaned = "".join(ch for ch in str(text).upper() if ch not in "- ")
    try:
        symbols = "".join(_CODE_READ[ch] for ch in cleaned)
    except KeyError as exc:
        raise _wire.malformed("code", f"{exc.args[0]!r} is not a verification code symbol") from None
    if len(symbols) != CODE_SYMBOLS:
        raise _wire.malformed("code", f"must have {CODE_SYMBOLS} symbols, got {len(symbols)}")
    return "-".join(symbols[i : i + 4] for i in range(0, CODE_SYMBOLS, 4))


# Definition 30009 -----------------------------------------------------------------------------


def build_certificate_definition(definition: CertificateDefinition, *, created_at: int) -> EventTemplate:
    _wire.check_d(definition.d)
    _wire.check_text("name", definition.name)
    tags: list[tuple[str, ...]] = [("d", definition.d), ("name", definition.name)]
    if definition.description:
        tags.append(("description", definition.description))
    if definition.image:
        tags.append(("image", definition.image))
    if definition.course is not None:
        tags.append(("a", _wire.check_coordinate("a", definition.course, (COURSE_KIND,))))
    return EventTemplate(BADGE_DEFINITION_KIND, tuple(tags), "", created_at)


def parse_certificate_definition(event: Event) -> CertificateDefinition:
    r = Reader(event, BADGE_DEFINITION_KIND)
    return CertificateDefinition(
        author=event.pubkey,
        d=r.d(),
        name=r.required("name"),
        description=r.optional("description") or "",
        image=r.optional("image") or None,
        course=next(iter(r.coordinates((COURSE_KIND,))), None),
        event_id=event.id,
        created_at=event.created_at,
    )


# Award 8 --------------------------------------------------------------------------------------


def build_certificate_award(
    definition: str,
    learner: str,
    *,
    valid_from: int,
    code: str,
    created_at: int,
    valid_until: int | None = None,
) -> EventTemplate:
    """A kind-8 award; the signer must be the definition's author, or verifiers will refuse it."""
    _wire.check_coordinate("a", definition, (BADGE_DEFINITION_KIND,))
    tags: list[tuple[str, ...]] = [
        ("a", definition),
        ("p", _wire.check_pubkey("p", learner)),
        ("valid_from", _wire.check_int("valid_from", valid_from)),
    ]
    if valid_until is not None:
        _wire.check_int("valid_until", valid_until)
        if valid_until <= valid_from:
            raise _wire.malformed("valid_until", f"{valid_until} is not after valid_from {valid_from}")
        tags.append(("valid_until", str(valid_until)))
    tags.append(("code", normalize_code(code)))
    return EventTemplate(BADGE_AWARD_KIND, tuple(tags), "", created_at)


def parse_certificate_award(event: Event) -> CertificateAward:
    """Read a kind-8 certificate award: one definition, issued by its author, one learner, a code."""
    r = Reader(event, BADGE_AWARD_KIND)
    refs = r.all("a")
    if len(refs) != 1:
        if not refs:
            r.required("a")
        raise r.fail("a", f"an award names exactly one definition, got {len(refs)}")
    definition = r.coordinate("a", refs[0], (BADGE_DEFINITION_KIND,))
    if parse_coordinate(definition)[1] != event.pubkey:
        raise r.fail("a", "award author is not the definition's author")
    learners = r.all("p")
    if len(learners) != 1:
        if not learners:
            r.required("p")
        raise r.fail("p", f"a certificate award names exactly one learner, got {len(learners)}")
    if r.optional("expiration") is not None:
        raise r.fail("expiration", "a certificate must not carry NIP-40 expiration; use valid_until")
    valid_from = r.required_int("valid_from")
    valid_until = r.optional_int("valid_until")
    if valid_until is not None and valid_until <= valid_from:
        raise r.fail("valid_until", f"{valid_until} is not after valid_from {valid_from}")
    code = r.required("code")
    try:
        canonical = normalize_code(code)
    except MalformedEvent as exc:
        raise r.fail("code", f"not a verification code: {code[:40]!r}") from exc
    if canonical != code:
        raise r.fail("code", f"not in canonical form XXXX-XXXX-XXXX-XXXX: {code[:40]!r}")
    return CertificateAward(
        author=event.pubkey,
        definition=definition,
        learner=r.pubkey("p", learners[0]),
        valid_from=valid_from,
        code=code,
        created_at=event.created_at,
        valid_until=valid_until,
        event_id=event.id,
    )


# Revocation 8314 and deletion -----------------------------------------------------------------


def build_certificate_revocation(
    award: CertificateAward, *, created_at: int, reason: str = ""
) -> EventTemplate:
    """The durable 8314 record; publish it with ``build_award_deletion`` for the same award."""
    if award.event_id is None:
        raise _wire.malformed("e", "the award to revoke has no event id")
    tags: list[tuple[str, ...]] = [
        ("a", award.definition),
        ("e", _wire.check_event_id("e", award.event_id)),
        ("p", _wire.check_pubkey("p", award.learner)),
        _wire.alt(REVOCATION_ALT),
    ]
    return EventTemplate(
        CERTIFICATE_REVOCATION_KIND, tuple(tags), _wire.check_text("content", reason, allow_empty=True), created_at
    )


def parse_certificate_revocation(event: Event) -> CertificateRevocation:
    r = Reader(event, CERTIFICATE_REVOCATION_KIND)
    definition = r.one_coordinate((BADGE_DEFINITION_KIND,))
    if parse_coordinate(definition)[1] != event.pubkey:
        raise r.fail("a", "revocation author is not the certificate's issuer")
    return CertificateRevocation(
        author=event.pubkey,
        definition=definition,
        award=r.event_id("e", r.required("e")),
        learner=r.pubkey("p", r.required("p")),
        created_at=event.created_at,
        reason=event.content,
        event_id=event.id,
    )


def award_hash(award_id: str) -> str:
    """sha256 hex of the award id's 32 bytes: what a hash-only marker names."""
    _wire.check_event_id("e", award_id)
    return hashlib.sha256(bytes.fromhex(award_id)).hexdigest()


def build_revocation_marker(award_id: str, *, created_at: int) -> EventTemplate:
    """The 8314 for a private award: ``x`` = sha256(award id) and nothing about holder or course.

    It carries no reason either (empty content): the issuer's reason ("failed practical") says
    something about someone; it stays in the issuer's own action log."""
    tags: list[tuple[str, ...]] = [("x", award_hash(award_id)), _wire.alt(MARKER_ALT)]
    return EventTemplate(CERTIFICATE_REVOCATION_KIND, tuple(tags), "", created_at)


def parse_revocation_marker(event: Event) -> RevocationMarker:
    r = Reader(event, CERTIFICATE_REVOCATION_KIND)
    for name in ("a", "e", "p"):
        if r.optional(name) is not None:
            raise r.fail(name, "a hash-only revocation marker names nothing but x")
    value = r.required("x")
    if not _wire.is_hex(value, 64):
        raise r.fail("x", f"must be a 64-character lowercase sha256 hex, got {value[:70]!r}")
    return RevocationMarker(
        author=event.pubkey, award_hash=value, created_at=event.created_at, reason=event.content, event_id=event.id
    )


def parse_revocation(event: Event) -> CertificateRevocation | RevocationMarker:
    """Either form of 8314: the public one (``a``/``e``/``p``) or the hash-only marker (``x``)."""
    if event.tag_value("e") is None and event.tag_value("x") is not None:
        return parse_revocation_marker(event)
    return parse_certificate_revocation(event)


def build_award_deletion(award_id: str, *, created_at: int, reason: str = "") -> EventTemplate:
    """NIP-09 deletion request for a kind-8 award (``e`` + ``k``), signed by the issuer."""
    return build_deletion(events=((award_id, BADGE_AWARD_KIND),), created_at=created_at, reason=reason)


# Profile badges 10008 (the learner accepts a certificate) ---------------------------------------

_LEGACY_PROFILE_BADGES = (30008, "profile_badges")


@dataclass(frozen=True, slots=True)
class ProfileBadges:
    """The badges a learner shows, in order: (definition coordinate, award id) pairs."""

    author: str
    pairs: tuple[tuple[str, str], ...]
    created_at: int
    event_id: str | None = None


def parse_profile_badges(event: Event) -> ProfileBadges:
    """Read a 10008 (or the legacy 30008 ``d=profile_badges``); unpaired tags are ignored (NIP-58)."""
    if (event.kind, event.d) != _LEGACY_PROFILE_BADGES:
        Reader(event, PROFILE_BADGES_KIND)
    pairs = []
    tags = [t for t in event.tags if len(t) > 1]
    for first, second in zip(tags, tags[1:], strict=False):
        if first[0] == "a" and second[0] == "e" and first[1].startswith(f"{BADGE_DEFINITION_KIND}:"):
            if _wire.is_hex(second[1], 64) and (first[1], second[1]) not in pairs:
                pairs.append((first[1], second[1]))
    return ProfileBadges(event.pubkey, tuple(pairs), event.created_at, event.id)


def build_profile_badge_acceptance(
    award: CertificateAward, *, created_at: int, current: Event | None = None
) -> EventTemplate:
    """The learner's 10008 with this certificate added last; other badges and tags are kept.

    ``current`` is the learner's present 10008 (or legacy 30008), if any; accepting twice
    changes nothing but ``created_at``.
    """
    if award.event_id is None:
        raise _wire.malformed("e", "the award to show has no event id")
    _wire.check_event_id("e", award.event_id)
    tags: list[tuple[str, ...]] = []
    content = ""
    if current is not None:
        shown = parse_profile_badges(current)
        legacy = current.kind != PROFILE_BADGES_KIND
        tags = [t for t in current.tags if not (legacy and t and t[0] == "d")]
        content = current.content
        if (award.definition, award.event_id) in shown.pairs:
            return EventTemplate(PROFILE_BADGES_KIND, tuple(tags), content, created_at)
    tags += [("a", award.definition), ("e", award.event_id)]
    return EventTemplate(PROFILE_BADGES_KIND, tuple(tags), content, created_at)
