"""The certificate bundle: one JSON file that lets anyone verify a certificate with no network.

It carries the signed award, its definition, the course the definition names and every
revocation the exporter knew of, as the events themselves (NIP-01 JSON). Nothing outside the
events is trusted: ``code`` and ``exported_at`` are conveniences for people reading the file,
and a verifier refuses a bundle whose ``code`` differs from the award's. ``format`` and
``version`` let a future reader refuse what it does not understand instead of misreading it::

    {"format": "nostr-training/certificate", "version": 1, "code": "XXXX-XXXX-XXXX-XXXX",
     "exported_at": 1800000000, "award": {...}, "definition": {...}, "course": {...},
     "revocations": [{...}]}

Parsing checks the shape (a supported version, events of the right kinds); authenticity and the
issuer chain are ``rules.verification``'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import MalformedEvent, NotFound
from ..event import Event, supersedes
from . import BADGE_AWARD as BADGE_AWARD_KIND
from . import BADGE_DEFINITION as BADGE_DEFINITION_KIND
from . import CERTIFICATE_REVOCATION as CERTIFICATE_REVOCATION_KIND
from . import COURSE as COURSE_KIND
from . import _wire
from .certificates import award_hash

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "CertificateBundle",
    "build_certificate_bundle",
    "collect_certificate_bundle",
    "bundle_to_dict",
    "bundle_to_json",
    "parse_certificate_bundle",
]

BUNDLE_FORMAT = "nostr-training/certificate"
BUNDLE_VERSION = 1
_ROLES = (("award", BADGE_AWARD_KIND), ("definition", BADGE_DEFINITION_KIND), ("course", COURSE_KIND))


@dataclass(frozen=True, slots=True)
class CertificateBundle:
    award: Event
    definition: Event
    course: Event
    revocations: tuple[Event, ...] = ()
    code: str = ""
    exported_at: int = 0

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.award, self.definition, self.course, *self.revocations)


def _fail(field: str, message: str) -> MalformedEvent:
    return _wire.malformed(f"bundle.{field}", message)


def build_certificate_bundle(
    award: Event,
    definition: Event,
    course: Event,
    revocations: Iterable[Event] = (),
    *,
    exported_at: int,
) -> CertificateBundle:
    """Bundle the events of one certificate; refuses events that do not belong together."""
    for (role, kind), event in zip(_ROLES, (award, definition, course), strict=True):
        if event.kind != kind:
            raise _fail(role, f"must be kind {kind}, got {event.kind}")
    revoked = tuple(revocations)
    for event in revoked:
        if event.kind != CERTIFICATE_REVOCATION_KIND:
            raise _fail("revocations", f"must be kind {CERTIFICATE_REVOCATION_KIND}, got {event.kind}")
    if award.tag_value("a") != definition.address:
        raise _fail("definition", f"is {definition.address}, but the award names {award.tag_value('a')}")
    course_refs = [v for v in definition.tag_values("a") if v.startswith(f"{COURSE_KIND}:")]
    if course.address not in course_refs:
        raise _fail("course", f"is {course.address}, which the definition does not name")
    _wire.check_int("exported_at", exported_at)
    return CertificateBundle(award, definition, course, revoked, award.tag_value("code") or "", exported_at)


def _newest(events: Iterable[Event], address: str | None) -> Event | None:
    found = None
    for event in events:
        if address is not None and event.address == address and (found is None or supersedes(event, found)):
            found = event
    return found


def collect_certificate_bundle(award: Event, events: Iterable[Event], *, exported_at: int) -> CertificateBundle:
    """The bundle for ``award`` from a pile of events (the local index): the newest definition
    and course it names, and every revocation by the award's author naming it or its hash.

    Raises ``NotFound`` naming what the pile lacks.
    """
    pool = list(events)
    definition = _newest((e for e in pool if e.kind == BADGE_DEFINITION_KIND), award.tag_value("a"))
    if definition is None:
        raise NotFound(f"certificate {award.id[:16]}: its definition {award.tag_value('a')} is not here")
    course_refs = [v for v in definition.tag_values("a") if v.startswith(f"{COURSE_KIND}:")]
    course = _newest((e for e in pool if e.kind == COURSE_KIND), course_refs[0] if course_refs else None)
    if course is None:
        raise NotFound(f"certificate {award.id[:16]}: the course {course_refs[:1] or 'it names'} is not here")
    hashed = award_hash(award.id)
    revocations = [
        e
        for e in pool
        if e.kind == CERTIFICATE_REVOCATION_KIND
        and e.pubkey == award.pubkey
        and (e.tag_value("e") == award.id or (e.tag_value("e") is None and e.tag_value("x") == hashed))
    ]
    revocations.sort(key=lambda e: (e.created_at, e.id))
    return build_certificate_bundle(award, definition, course, revocations, exported_at=exported_at)


def bundle_to_dict(bundle: CertificateBundle) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "code": bundle.code,
        "exported_at": bundle.exported_at,
        "award": bundle.award.to_dict(),
        "definition": bundle.definition.to_dict(),
        "course": bundle.course.to_dict(),
        "revocations": [event.to_dict() for event in bundle.revocations],
    }


def bundle_to_json(bundle: CertificateBundle) -> str:
    """The file's text: indented UTF-8 JSON, so a person can read the holder and the dates."""
    return json.dumps(bundle_to_dict(bundle), indent=2, ensure_ascii=False) + "\n"


def _event(data: Any, field: str, kind: int) -> Event:
    try:
        event = Event.from_dict(data)
    except MalformedEvent as exc:
        raise _fail(field, str(exc)) from None
    if event.kind != kind:
        raise _fail(field, f"must be kind {kind}, got {event.kind}")
    return event


def parse_certificate_bundle(data: str | bytes | Mapping[str, Any]) -> CertificateBundle:
    """Read a bundle file's text (or its decoded JSON); every error names the bundle field."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _fail("json", f"not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise _fail("json", "a bundle must be a JSON object")
    if data.get("format") != BUNDLE_FORMAT:
        raise _fail("format", f"must be {BUNDLE_FORMAT!r}, got {data.get('format')!r}")
    version = data.get("version")
    if type(version) is not int:
        raise _fail("version", f"must be an integer, got {version!r}")
    if version != BUNDLE_VERSION:
        raise _fail("version", f"{version} is not supported (this program reads version {BUNDLE_VERSION})")
    events = {role: _event(data.get(role), role, kind) for role, kind in _ROLES}
    raw_revocations = data.get("revocations", [])
    if not isinstance(raw_revocations, list):
        raise _fail("revocations", "must be a list of events")
    revocations = tuple(
        _event(item, f"revocations[{i}]", CERTIFICATE_REVOCATION_KIND) for i, item in enumerate(raw_revocations)
    )
    code = data.get("code", "")
    if not isinstance(code, str):
        raise _fail("code", f"must be a string, got {type(code).__name__}")
    exported_at = data.get("exported_at", 0)
    if type(exported_at) is not int or exported_at < 0:
        raise _fail("exported_at", f"must be unix seconds, got {exported_at!r}")
    return CertificateBundle(
        events["award"], events["definition"], events["course"], revocations, code, exported_at
    )
