"""NIP-09 deletion requests (kind 5): ``e`` for event ids, ``a`` for addresses, a ``k`` per kind.

Relays honour a deletion only for events by the same author, and an ``a`` deletion covers every
version of the address up to the deletion's ``created_at``; delete a lesson by ``a`` plus ``e``
for its current version so that older copies do not resurface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..event import Event, EventTemplate
from . import DELETION as DELETION_KIND
from . import _wire
from ._wire import Reader

__all__ = ["Deletion", "build_deletion", "parse_deletion"]



@dataclass(frozen=True, slots=True)
class Deletion:
    author: str
    event_ids: tuple[str, ...]
    addresses: tuple[str, ...]
    kinds: tuple[int, ...]
    created_at: int
    reason: str = ""
    event_id: str | None = None


def build_deletion(
    *,
    events: Iterable[tuple[str, int]] = (),
    addresses: Iterable[str] = (),
    created_at: int,
    reason: str = "",
) -> EventTemplate:
    """Delete ``events`` (``(id, kind)`` pairs) and ``addresses`` (``kind:pubkey:d``)."""
    tags: list[tuple[str, ...]] = []
    kinds: list[int] = []
    for event_id, kind in events:
        tags.append(("e", _wire.check_event_id("e", event_id)))
        _wire.check_int("k", kind, maximum=65535)
        if kind not in kinds:
            kinds.append(kind)
    for address in addresses:
        kind = _wire.coordinate_kind("a", address)
        tags.append(("a", address))
        if kind not in kinds:
            kinds.append(kind)
    if not tags:
        raise _wire.malformed("e", "a deletion needs at least one e or a target")
    tags += [("k", str(kind)) for kind in kinds]
    return EventTemplate(DELETION_KIND, tuple(tags), _wire.check_text("content", reason, allow_empty=True), created_at)


def parse_deletion(event: Event) -> Deletion:
    r = Reader(event, DELETION_KIND)
    event_ids = tuple(r.event_id("e", v) for v in r.all("e"))
    addresses = tuple(r.coordinate("a", v, None) for v in r.all("a"))
    if not event_ids and not addresses:
        raise r.fail("e", "a deletion needs at least one e or a target")
    return Deletion(
        author=event.pubkey,
        event_ids=event_ids,
        addresses=addresses,
        kinds=tuple(r.integer("k", v, maximum=65535) for v in r.all("k")),
        created_at=event.created_at,
        reason=event.content,
        event_id=event.id,
    )
