"""Who holds a seat at a lesson, who waits, and whether an RSVP is taken now.

One answer counts per learner: the latest RSVP (NIP-01 tie rule: newer ``created_at``, then the
lowest event id), whatever its ``d``, because other calendar clients pick their own. Seats go to
accepted learners in RSVP order up to ``max_participants``; the rest wait in the same order, so
when a seated learner declines, the first in line is promoted by the next computation. A learner
keeps their place while their answers stay accepted; it restarts when they accept again after
a tentative or declined answer (when the earlier answers are known; relays keep only the
latest). Tentative answers never take a seat: a seat promised to a "maybe" is a seat denied to
a "yes". The instructor never takes a learner's seat.

The seed says confirmed|tentative|declined and the events module going|maybe|not_going; both
map onto NIP-52's accepted|tentative|declined, which is what goes on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cmp_to_key
from typing import Iterable

from ..errors import MalformedEvent, RsvpRefused
from ..kinds.calendar import Lesson, Rsvp, RsvpStatus, rsvp_status
from .lifecycle import SessionState, rsvp_refusal

__all__ = [
    "rsvp_answer",
    "answers_by_author",
    "latest_rsvps",
    "answered_since",
    "Roster",
    "roster",
    "promotions",
    "check_rsvp",
]

_EVENTS_MODULE: dict[str, RsvpStatus] = {
    "going": RsvpStatus.ACCEPTED,
    "maybe": RsvpStatus.TENTATIVE,
    "not_going": RsvpStatus.DECLINED,
    "attending": RsvpStatus.ACCEPTED,
    "not_attending": RsvpStatus.DECLINED,
}


def rsvp_answer(word: RsvpStatus | str) -> RsvpStatus:
    """Read an answer in any vocabulary: NIP-52, the seed's, or the events module's.

    ``attending``/``not_attending`` are the origin integration's spelling of the events words.
    """
    if isinstance(word, RsvpStatus):
        return word
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    if key in _EVENTS_MODULE:
        return _EVENTS_MODULE[key]
    try:
        return rsvp_status(key)
    except MalformedEvent:
        raise MalformedEvent(
            f"unknown RSVP answer {word!r} (accepted|tentative|declined, "
            "confirmed, going|maybe|not_going)",
            field="status",
        ) from None


def _compare(a: Rsvp, b: Rsvp) -> int:
    """Older first; within one second the NIP-01 winner (lowest id) last, unsigned drafts first."""
    if a.created_at != b.created_at:
        return -1 if a.created_at < b.created_at else 1
    if a.event_id != b.event_id:
        if a.event_id is None or b.event_id is None:
            return -1 if a.event_id is None else 1
        return 1 if a.event_id < b.event_id else -1
    left, right = (a.status.value, repr(a)), (b.status.value, repr(b))
    return (left > right) - (left < right)


_order = cmp_to_key(_compare)


def answers_by_author(rsvps: Iterable[Rsvp], lesson: str) -> dict[str, list[Rsvp]]:
    """Each author's answers to ``lesson``, oldest first, the NIP-01 winner last."""
    out: dict[str, list[Rsvp]] = {}
    for rsvp in set(rsvps):
        if rsvp.lesson == lesson:
            out.setdefault(rsvp.author, []).append(rsvp)
    for answers in out.values():
        answers.sort(key=_order)
    return out


def latest_rsvps(rsvps: Iterable[Rsvp], lesson: str) -> dict[str, Rsvp]:
    """The answer that counts, per author, among the RSVPs to the lesson coordinate ``lesson``."""
    return {author: answers[-1] for author, answers in answers_by_author(rsvps, lesson).items()}


def answered_since(answers: list[Rsvp], statuses: frozenset[RsvpStatus]) -> Rsvp:
    """The first answer of the trailing run of ``answers`` (oldest first) in ``statuses``."""
    first = answers[-1]
    for rsvp in reversed(answers):
        if rsvp.status not in statuses:
            break
        first = rsvp
    return first


@dataclass(frozen=True, slots=True)
class Roster:
    """Pubkeys in RSVP order: seated, waiting, tentative; and who declined."""

    seats: int | None
    confirmed: tuple[str, ...]
    waitlist: tuple[str, ...]
    tentative: tuple[str, ...]
    declined: tuple[str, ...]

    def waitlist_position(self, pubkey: str) -> int | None:
        """1-based place in the waitlist, or None when not waiting."""
        return self.waitlist.index(pubkey) + 1 if pubkey in self.waitlist else None

    @property
    def seats_left(self) -> int | None:
        return None if self.seats is None else max(0, self.seats - len(self.confirmed))


_ACCEPTED = frozenset({RsvpStatus.ACCEPTED})


def roster(lesson: Lesson, rsvps: Iterable[Rsvp]) -> Roster:
    """Seat accepted learners in RSVP order up to the lesson's capacity; the rest wait."""
    history = answers_by_author(rsvps, lesson.coordinate)
    history.pop(lesson.instructor, None)
    by_status: dict[RsvpStatus, list[tuple[int, str, str]]] = {s: [] for s in RsvpStatus}
    for author, answers in history.items():
        status = answers[-1].status
        since = answered_since(answers, frozenset({status}))
        by_status[status].append((since.created_at, since.event_id or "~", author))
    ordered = {s: tuple(e[2] for e in sorted(entries)) for s, entries in by_status.items()}
    accepted = ordered[RsvpStatus.ACCEPTED]
    seats = lesson.max_participants
    cut = len(accepted) if seats is None else seats
    return Roster(
        seats=seats,
        confirmed=accepted[:cut],
        waitlist=accepted[cut:],
        tentative=ordered[RsvpStatus.TENTATIVE],
        declined=ordered[RsvpStatus.DECLINED],
    )


def promotions(before: Roster, after: Roster) -> tuple[str, ...]:
    """Learners who were waiting in ``before`` and hold a seat in ``after``."""
    waiting = set(before.waitlist)
    return tuple(p for p in after.confirmed if p in waiting)


def check_rsvp(lesson: Lesson, state: SessionState, now: int) -> None:
    """Raise ``RsvpRefused`` unless the lesson takes RSVPs now (see ``lifecycle.rsvp_refusal``)."""
    reason = rsvp_refusal(lesson, state, now)
    if reason is not None:
        raise RsvpRefused(reason)
