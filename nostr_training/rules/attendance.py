"""How long each learner attended a live session, from join/leave claims and presence heartbeats.

The origin clients judged one join->leave segment at a time, so a learner whose connection
dropped after 29 minutes got nothing, and every extra device added time. Here each learner's
evidence becomes intervals that are clipped to the session, stripped of waiting-room time and
unioned, so reconnects add up and parallel devices count once. The answer depends only on the
set of evidence: order and duplicates do not change it.

The steps, per learner:

1. Joins and leaves are paired per connection (a device or SFU participant id). A join and a
   leave of one connection in the same second change nothing (an open connection stays open,
   a closed one stays closed); a leave with nothing open is ignored. A second join while open
   is a missed leave (a reconnect the SFU reported without the drop): the open interval closes
   as a dangling join would (step 2, with the rejoin as its end) and a new one opens at the
   rejoin, so the drop is judged the same on one connection id as on two.
2. A join still open at the end closes at the last heartbeat of the unbroken run of heartbeats
   that follows it (consecutive heartbeats at most ``heartbeat_grace`` apart) plus
   ``heartbeat_grace``; when the learner sent no heartbeat since the join it closes at the
   session end. Heartbeats before the join say nothing about it.
3. Intervals are clipped to [start - ``early_join_grace``, end]. With a waiting room, time
   before the learner's first admission is cut as well (a learner never admitted gets 0);
   admission is per learner, so rejoining later does not queue again.
4. The clipped intervals are unioned. ``reconnections`` counts the returns after an absence
   (union segments - 1). Gaps shorter than ``reconnect_grace`` are then bridged and counted as
   attended; ``total_seconds`` is the length of the bridged union.

Heartbeats alone never create attendance: NIP-53 presence is replaceable and says "here now",
not since when. Adding a joined-and-left connection never lowers anyone's total; a leave or a
heartbeat can, by closing a join that was open.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from ..kinds.calendar import Lesson

__all__ = [
    "Join",
    "Leave",
    "Heartbeat",
    "Admitted",
    "Evidence",
    "AttendancePolicy",
    "SessionWindow",
    "Attendance",
    "compute_attendance",
    "union",
    "bridge",
]

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Join:
    """``pubkey`` connected at ``at`` on ``connection``; ``source`` says who reported it."""

    pubkey: str
    at: int
    connection: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Leave:
    pubkey: str
    at: int
    connection: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A presence beat (NIP-53 kind 10312 as logged by the daemon)."""

    pubkey: str
    at: int


@dataclass(frozen=True, slots=True)
class Admitted:
    """The host let ``pubkey`` out of the waiting room at ``at``."""

    pubkey: str
    at: int


Evidence = Join | Leave | Heartbeat | Admitted


@dataclass(frozen=True, slots=True)
class AttendancePolicy:
    early_join_grace: int = 300
    reconnect_grace: int = 120
    heartbeat_grace: int = 180
    """About two heartbeat intervals: NIP-53 presence is re-published every 30-120 s."""


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """When the session ran: ``start`` .. ``end`` (exclusive), unix seconds."""

    start: int
    end: int

    @classmethod
    def for_lesson(cls, lesson: Lesson, ended_at: int | None = None) -> SessionWindow:
        """The scheduled start to the actual end when known, else the scheduled end."""
        return cls(lesson.start, lesson.end if ended_at is None else ended_at)


@dataclass(frozen=True, slots=True)
class Attendance:
    pubkey: str
    total_seconds: int
    intervals: tuple[Interval, ...]
    join_count: int
    reconnections: int

    @property
    def first_joined_at(self) -> int | None:
        return self.intervals[0][0] if self.intervals else None

    @property
    def last_left_at(self) -> int | None:
        return self.intervals[-1][1] if self.intervals else None


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping cover of ``intervals``; touching intervals merge, empty ones drop."""
    out: list[list[int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def bridge(segments: list[Interval], grace: int) -> list[Interval]:
    """Join sorted disjoint segments whose gap is shorter than ``grace``."""
    out: list[list[int]] = []
    for start, end in segments:
        if out and start - out[-1][1] < grace:
            out[-1][1] = end
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def compute_attendance(
    evidence: Iterable[Evidence],
    window: SessionWindow,
    policy: AttendancePolicy = AttendancePolicy(),
    *,
    waiting_room: bool = False,
) -> dict[str, Attendance]:
    """Attendance for every pubkey with at least one join in ``evidence``."""
    joins: dict[str, dict[str, dict[int, set[type]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(set))
    )
    heartbeats: dict[str, set[int]] = defaultdict(set)
    admitted: dict[str, int] = {}
    for item in evidence:
        if isinstance(item, (Join, Leave)):
            joins[item.pubkey][item.connection][item.at].add(type(item))
        elif isinstance(item, Heartbeat):
            heartbeats[item.pubkey].add(item.at)
        elif isinstance(item, Admitted):
            admitted[item.pubkey] = min(item.at, admitted.get(item.pubkey, item.at))
        else:
            raise TypeError(f"evidence: unexpected {type(item).__name__}")

    out: dict[str, Attendance] = {}
    for pubkey, connections in joins.items():
        join_count = sum(
            Join in marks for moments in connections.values() for marks in moments.values()
        )
        if not join_count:
            continue
        beats = sorted(heartbeats.get(pubkey, ()))
        raw = [
            interval
            for moments in connections.values()
            for interval in _pair(moments, beats, window.end, policy.heartbeat_grace)
        ]
        lo = window.start - policy.early_join_grace
        if waiting_room:
            lo = max(lo, admitted.get(pubkey, window.end))
        clipped = [(max(s, lo), min(e, window.end)) for s, e in raw]
        segments = union(clipped)
        bridged = bridge(segments, policy.reconnect_grace)
        out[pubkey] = Attendance(
            pubkey=pubkey,
            total_seconds=sum(e - s for s, e in bridged),
            intervals=tuple(bridged),
            join_count=join_count,
            reconnections=max(0, len(segments) - 1),
        )
    return out


def _pair(
    moments: dict[int, set[type]], beats: list[int], session_end: int, heartbeat_grace: int
) -> list[Interval]:
    """One connection's join/leave marks, in time order, as intervals (see the module steps)."""
    intervals: list[Interval] = []
    opened: int | None = None
    for at in sorted(moments):
        marks = moments[at]
        if opened is None:
            if Join in marks and Leave not in marks:
                opened = at
        elif Leave in marks and Join not in marks:
            intervals.append((opened, at))
            opened = None
        elif Join in marks and Leave not in marks:
            intervals.append((opened, _dangling_end(opened, beats, at, heartbeat_grace)))
            opened = at
    if opened is not None:
        intervals.append((opened, _dangling_end(opened, beats, session_end, heartbeat_grace)))
    return intervals


def _dangling_end(opened: int, beats: list[int], end: int, grace: int) -> int:
    """Where a join with no leave stops counting, at the latest ``end`` (session end or rejoin)."""
    end = max(opened, end)
    since = [beat for beat in beats if beat >= opened]
    if not since:
        return end
    last = opened
    for beat in since:
        if beat - last > grace:
            break
        last = beat
    return min(last + grace, end)
