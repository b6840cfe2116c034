"""What an outsider learns from a relay: the leak check behind ``nostr-training audit``.

An outsider holds no key of ours: they read every event a relay serves. For a private course
or lesson that must show nothing but envelopes (32678) and gift wraps: no title, description
or address of a private item, no learner of one named anywhere except the ``p`` of a gift wrap
(which is how a wrap reaches its recipient) or an event about public items only, and no
attendance or completion record at all, for any lesson. ``find_leaks`` is a pure function of (events, secrets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from ..event import Event
from ..kinds import ATTENDANCE_RECORD, COMPLETION_RECORD, DOOR_CHECK, GIFT_WRAP, GIFT_WRAP_EPHEMERAL

__all__ = ["Secrets", "Leak", "find_leaks"]

_NEVER_PUBLISHED = {
    ATTENDANCE_RECORD: "an attendance record",
    COMPLETION_RECORD: "a completion record",
    DOOR_CHECK: "a door check-in or check-out",
}
_WRAPS = (GIFT_WRAP, GIFT_WRAP_EPHEMERAL)
_SHORTEST_TEXT = 4  # shorter titles match too much ordinary text to mean anything


@dataclass(frozen=True)
class Secrets:
    """What must not appear: texts (titles, descriptions, addresses) and learner pubkeys."""

    texts: dict[str, str] = field(default_factory=dict)
    """text -> what it is (``title of 31923:...``)."""
    learners: frozenset[str] = frozenset()
    """Learners of private items: named only in the ``p`` of a gift wrap."""
    public_addresses: frozenset[str] = frozenset()
    """Public items the user knows: an event about them alone may name a learner (a public
    lesson's waiting-room decision, a public certificate's award)."""
    people: frozenset[str] | None = None
    """Whose events can leak: the user, the hosts and the learners of their private items. An
    event by anyone else (a note that happens to quote a title, another school's records) is
    not checked; None checks every author."""


@dataclass(frozen=True)
class Leak:
    event_id: str
    kind: int
    author: str
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"event": self.event_id, "kind": self.kind, "author": self.author, "why": self.why}


def _visible_text(event: Event) -> str:
    """Tags and content as an outsider reads them; a wrap's ``p`` and ciphertext say nothing."""
    if event.kind in _WRAPS:
        return json.dumps([t for t in event.tags if t and t[0] != "p"])
    return json.dumps([list(event.tags), event.content], ensure_ascii=False)


def find_leaks(events: Iterable[Event], secrets: Secrets) -> list[Leak]:
    """Every event that shows a secret, with why; empty when the relay shows nothing private."""
    texts = {t: what for t, what in secrets.texts.items() if len(t) >= _SHORTEST_TEXT}
    leaks = []
    for event in events:
        if secrets.people is not None and event.pubkey not in secrets.people and event.kind not in _WRAPS:
            continue
        if event.kind in _NEVER_PUBLISHED:
            leaks.append(Leak(event.id, event.kind, event.pubkey, f"{_NEVER_PUBLISHED[event.kind]} in the clear"))
            continue
        visible = _visible_text(event)
        named = sorted(p for p in secrets.learners if p in visible)
        about = event.tag_values("a")
        if named and not (about and all(a in secrets.public_addresses for a in about)):
            leaks.append(Leak(event.id, event.kind, event.pubkey, f"names learner {named[0][:16]}..."))
            continue
        found = next((what for text, what in texts.items() if text in visible), None)
        if found is not None:
            leaks.append(Leak(event.id, event.kind, event.pubkey, f"shows the {found}"))
    return leaks
