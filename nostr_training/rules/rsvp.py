"""Who holds a seat at a lesson, who waits, and whether an RSVP is taken now.

One answer counts per learner: the latest RSVP (NIP-01 tie rule: newer ``created_at``, then the
lowest event id), whatever its ``d``, because other calendar clients pick their own. Seats go to
accepted learners in RSVP order up to ``max_participants``; the rest wait in the same order, so
when a seated learner declines, the first in line is promoted by the next computation. A learner
keeps their place while their answers stay accepted; it restarts when they accept again after
a tentative or declined answer (when the earlier answers are known; relays keep only the
latest). Tentative answers never take a seat: a seat promised to a "maybe" is a seat denied to
a "yes". The instructor never takes a learner's seat.

RSVPs close at the lesson's cut-off (``rsvp_until``) or its start: an answer that reached the
host at or after that moment (the later of its ``created_at`` and when the daemon first saw
it) does not count, and the learner's earlier answer stands.

A lesson revision is *material* when it moves the start, changes the duration, or replaces or
removes a room or join link already announced (a first room or link, added when the room is
created, is not a change to anyone's plans). A current accepted or tentative answer given to
a revision older than the latest material one needs re-confirmation: the RSVP's ``e`` tag names
the revision answered; without one (or naming a revision we never saw), the answer is judged by
its ``created_at`` against that revision's.

The seed says confirmed|tentative|declined and the events module going|maybe|not_going; both
map onto NIP-52's accepted|tentative|declined, which is what goes on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cmp_to_key
from typing import Callable, Iterable, Mapping, Sequence

from ..errors import MalformedEvent, RsvpRefused
from ..kinds.calendar import Lesson, Rsvp, RsvpStatus, rsvp_status
from .lifecycle import SessionState, rsvp_refusal

__all__ = [
    "rsvp_answer",
    "answered_at",
    "counted_rsvps",
    "answers_by_author",
    "latest_rsvps",
    "answered_since",
    "current_answer_since",
    "Roster",
    "roster",
    "promotions",
    "promotion_times",
    "Standing",
    "standing",
    "check_rsvp",
    "MATERIAL_FIELDS",
    "material_changes",
    "ordered_revisions",
    "material_revisions",
    "revision_sequence",
    "needs_reconfirmation",
    "reconfirmation_judge",
    "reconfirmations",
    "RosterRow",
    "roster_rows",
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


def answered_at(rsvp: Rsvp, first_seen: Mapping[str, int] | None = None) -> int:
    """When an answer reached us: its ``created_at``, never before the daemon first saw it.

    ``created_at`` is whatever the learner's client wrote, so a backdated answer, or one that
    reached the host late, is dated by its first sight (``first_seen`` maps event ids to it).
    """
    seen = first_seen.get(rsvp.event_id) if first_seen and rsvp.event_id is not None else None
    return rsvp.created_at if seen is None else max(rsvp.created_at, seen)


def _unique(rsvps: Iterable[Rsvp]) -> Iterable[Rsvp]:
    """Each answer once: by event id when signed (cheap), by value for unsigned drafts."""
    return {r.event_id or r: r for r in rsvps}.values()


def counted_rsvps(
    lesson: Lesson, rsvps: Iterable[Rsvp], first_seen: Mapping[str, int] | None = None
) -> list[Rsvp]:
    """The answers to ``lesson`` that count: those that reached us before RSVPs closed."""
    closes, coord = lesson.rsvp_closes_at, lesson.coordinate
    return [r for r in _unique(rsvps) if r.lesson == coord and answered_at(r, first_seen) < closes]


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
    for rsvp in _unique(rsvps):
        if rsvp.lesson == lesson:
            out.setdefault(rsvp.author, []).append(rsvp)
    for answers in out.values():
        if len(answers) > 1:
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
_YES, _MAYBE = RsvpStatus.ACCEPTED, RsvpStatus.TENTATIVE


def _seat_key(rsvp: Rsvp) -> tuple[int, str, str]:
    return (rsvp.created_at, rsvp.event_id or "~", rsvp.author)


def _learner_history(
    lesson: Lesson, rsvps: Iterable[Rsvp], first_seen: Mapping[str, int] | None
) -> dict[str, list[Rsvp]]:
    history = answers_by_author(counted_rsvps(lesson, rsvps, first_seen), lesson.coordinate)
    history.pop(lesson.instructor, None)
    return history


def roster(
    lesson: Lesson, rsvps: Iterable[Rsvp], *, first_seen: Mapping[str, int] | None = None
) -> Roster:
    """Seat accepted learners in RSVP order up to the lesson's capacity; the rest wait.

    Only answers that reached us before RSVPs closed count (see the module).
    """
    return _roster(lesson, _learner_history(lesson, rsvps, first_seen))


def current_answer_since(answers: list[Rsvp]) -> Rsvp:
    """The first answer of the trailing run of the current answer (oldest first): where a
    learner's place in line, or their claim to reminders, starts."""
    last = answers[-1]
    first = last
    for rsvp in reversed(answers):
        if rsvp.status is not last.status:
            break
        first = rsvp
    return first


def _roster(lesson: Lesson, history: Mapping[str, list[Rsvp]]) -> Roster:
    accepted_keys: list[tuple[int, str, str]] = []
    tentative_keys: list[tuple[int, str, str]] = []
    declined_keys: list[tuple[int, str, str]] = []
    for answers in history.values():
        since = current_answer_since(answers) if len(answers) > 1 else answers[0]
        status = since.status
        target = accepted_keys if status is _YES else tentative_keys if status is _MAYBE else declined_keys
        target.append(_seat_key(since))
    accepted, tentative, declined = (
        tuple(e[2] for e in sorted(keys)) for keys in (accepted_keys, tentative_keys, declined_keys)
    )
    seats = lesson.max_participants
    cut = len(accepted) if seats is None else seats
    return Roster(
        seats=seats,
        confirmed=accepted[:cut],
        waitlist=accepted[cut:],
        tentative=tentative,
        declined=declined,
    )


def promotions(before: Roster, after: Roster) -> tuple[str, ...]:
    """Learners who were waiting in ``before`` and hold a seat in ``after``."""
    waiting = set(before.waitlist)
    return tuple(p for p in after.confirmed if p in waiting)


def _accepted_runs(answers: list[Rsvp]) -> list[tuple[Rsvp, Rsvp]]:
    """Each ended run of accepted answers as (its first answer, the answer that ended it)."""
    runs = []
    first: Rsvp | None = None
    for rsvp in answers:
        if rsvp.status is RsvpStatus.ACCEPTED:
            first = first or rsvp
        elif first is not None:
            runs.append((first, rsvp))
            first = None
    return runs


def promotion_times(
    lesson: Lesson, rsvps: Iterable[Rsvp], *, first_seen: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Seated learners who waited for their seat, and when the seat came free.

    A seated learner at place ``p`` (0-based) was waiting when they answered if the ``p``
    learners now ahead of them plus the ``k`` who were ahead then and have left since filled
    every seat; they got the seat when the ``(p + k - seats + 1)``-th of those left. Only the
    last ``k`` places can have waited, so the cost is O(k^2) in the departures, not the class.
    """
    history = _learner_history(lesson, rsvps, first_seen)
    return _promotion_times(lesson, history, _roster(lesson, history).confirmed, first_seen)


def _promotion_times(
    lesson: Lesson,
    history: Mapping[str, list[Rsvp]],
    confirmed: Sequence[str],
    first_seen: Mapping[str, int] | None,
) -> dict[str, int]:
    seats = lesson.max_participants
    if seats is None:
        return {}
    ended = sorted(
        (_seat_key(first), end.created_at, answered_at(end, first_seen))
        for answers in history.values()
        if len(answers) > 1
        for first, end in _accepted_runs(answers)
    )
    if not ended:
        return {}
    out: dict[str, int] = {}
    for place in range(max(0, len(confirmed) - len(ended)), len(confirmed)):
        learner = confirmed[place]
        since = answered_since(history[learner], _ACCEPTED)
        key, started = _seat_key(since), since.created_at
        left = sorted((ended_at, told_at) for first, ended_at, told_at in ended if first < key and ended_at > started)
        freed = place + len(left) - seats
        if freed >= 0:
            out[learner] = left[freed][1]
    return out


@dataclass(frozen=True, slots=True)
class Standing:
    """Everything the lesson's counted answers say, computed once for a planner's tick."""

    history: Mapping[str, list[Rsvp]]
    """Each learner's counted answers, oldest first (the instructor left out)."""
    roster: Roster
    promoted: Mapping[str, int]
    """Seated learners who came off the waitlist, and when their seat came free."""


def standing(
    lesson: Lesson, rsvps: Iterable[Rsvp], *, first_seen: Mapping[str, int] | None = None
) -> Standing:
    """``roster`` and ``promotion_times`` in one pass over the answers."""
    history = _learner_history(lesson, rsvps, first_seen)
    seated = _roster(lesson, history)
    return Standing(history, seated, _promotion_times(lesson, history, seated.confirmed, first_seen))


def check_rsvp(lesson: Lesson, state: SessionState, now: int) -> None:
    """Raise ``RsvpRefused`` unless the lesson takes RSVPs now (see ``lifecycle.rsvp_refusal``)."""
    reason = rsvp_refusal(lesson, state, now)
    if reason is not None:
        raise RsvpRefused(reason)


# Revisions and re-confirmation -----------------------------------------------------------------

MATERIAL_FIELDS = ("start", "duration", "room", "location")


def material_changes(old: Lesson, new: Lesson) -> frozenset[str]:
    """Which of ``MATERIAL_FIELDS`` changed between two revisions of one lesson (see module)."""
    changed = set()
    if old.start != new.start:
        changed.add("start")
    if old.duration_seconds != new.duration_seconds:
        changed.add("duration")
    if old.room is not None and old.room != new.room:
        changed.add("room")
    if old.location is not None and old.location != new.location:
        changed.add("location")
    return frozenset(changed)


def _revision_compare(a: Lesson, b: Lesson) -> int:
    """Older first; within one second the NIP-01 winner (lowest id) last."""
    if (a.created_at or 0) != (b.created_at or 0):
        return -1 if (a.created_at or 0) < (b.created_at or 0) else 1
    left, right = a.event_id or "", b.event_id or ""
    return (left < right) - (left > right)


def ordered_revisions(revisions: Iterable[Lesson]) -> list[Lesson]:
    """Revisions of one lesson, oldest first, each event once; the last is the current one."""
    return sorted(set(revisions), key=cmp_to_key(_revision_compare))


def material_revisions(revisions: Iterable[Lesson]) -> tuple[Lesson, ...]:
    """The first revision and every later one that changed the lesson materially."""
    ordered = ordered_revisions(revisions)
    out = ordered[:1]
    for before, after in zip(ordered, ordered[1:], strict=False):
        if material_changes(before, after):
            out.append(after)
    return tuple(out)


def revision_sequence(revisions: Iterable[Lesson]) -> int:
    """How many material changes the lesson has had: its iCalendar SEQUENCE (0 when none)."""
    return max(0, len(material_revisions(revisions)) - 1)


def reconfirmation_judge(revisions: Iterable[Lesson]) -> Callable[[Rsvp], bool]:
    """``needs_reconfirmation`` with the revisions sorted once, for judging many answers."""
    ordered = ordered_revisions(revisions)
    material = material_revisions(ordered)
    if len(material) < 2:
        return lambda rsvp: False
    latest = material[-1]
    index = {r.event_id: i for i, r in enumerate(ordered) if r.event_id is not None}
    latest_index = index.get(latest.event_id, len(ordered) - 1) if latest.event_id is not None else len(ordered) - 1
    latest_at = latest.created_at or 0

    def judge(rsvp: Rsvp) -> bool:
        if rsvp.status is RsvpStatus.DECLINED:
            return False
        if rsvp.revision is not None and rsvp.revision in index:
            return index[rsvp.revision] < latest_index
        return rsvp.created_at < latest_at

    return judge


def needs_reconfirmation(rsvp: Rsvp, revisions: Iterable[Lesson]) -> bool:
    """Whether an accepted or tentative answer predates the latest material revision."""
    return reconfirmation_judge(revisions)(rsvp)


def reconfirmations(revisions: Sequence[Lesson], rsvps: Iterable[Rsvp]) -> tuple[str, ...]:
    """Learners whose current answer to the lesson needs re-confirmation, sorted."""
    ordered = ordered_revisions(revisions)
    if not ordered:
        return ()
    current = ordered[-1]
    latest = latest_rsvps(rsvps, current.coordinate)
    latest.pop(current.instructor, None)
    judge = reconfirmation_judge(ordered)
    return tuple(sorted(p for p, r in latest.items() if judge(r)))


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One learner in the instructor's ``rsvp list``: where they stand and why."""

    pubkey: str
    status: str
    """``confirmed``, ``waitlisted``, ``tentative`` or ``declined``."""
    answered_at: int
    waitlist_position: int | None = None
    needs_reconfirmation: bool = False
    promoted_at: int | None = None


def roster_rows(
    revisions: Sequence[Lesson],
    rsvps: Iterable[Rsvp],
    *,
    first_seen: Mapping[str, int] | None = None,
) -> tuple[RosterRow, ...]:
    """Every learner's standing on the current revision: seated, waiting, maybe, then declined."""
    ordered = ordered_revisions(revisions)
    lesson = ordered[-1]
    counted = standing(lesson, rsvps, first_seen=first_seen)
    seated, promoted, judge = counted.roster, counted.promoted, reconfirmation_judge(ordered)
    latest = {pubkey: answers[-1] for pubkey, answers in counted.history.items()}
    groups = (
        ("confirmed", seated.confirmed),
        ("waitlisted", seated.waitlist),
        ("tentative", seated.tentative),
        ("declined", seated.declined),
    )
    return tuple(
        RosterRow(
            pubkey=pubkey,
            status=status,
            answered_at=answered_at(latest[pubkey], first_seen),
            waitlist_position=seated.waitlist_position(pubkey),
            needs_reconfirmation=judge(latest[pubkey]),
            promoted_at=promoted.get(pubkey),
        )
        for status, members in groups
        for pubkey in members
    )
