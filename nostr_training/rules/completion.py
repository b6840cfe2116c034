"""When a live-session lesson counts as complete: by attending it, or by watching its recording.

Live: the seed's rule, total attendance >= 30 minutes OR >= 50 % of the scheduled duration,
which is ``required = min(minutes, percent of duration)``. The origin clients each coded
something else (one segment strictly over 30 minutes; 80 % on Android; no 50 % branch), so the
rule, its numbers and its inputs are stored in every result, and both numbers come from the
lesson. The denominator is the scheduled duration, as in the seed. With the OR, any session of
an hour or more is completed by its minutes branch (30 minutes of a 3-hour workshop).

Recording: unique seconds of the recording played (the union of played ranges, clipped to the
recording) >= 90 % of its duration. The furthest position is never used, so seeking to the end
is not watching.

A met result is never lowered by a later evaluation unless evidence was retracted (late or
missing evidence must not take a completion away; a retraction must).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

from ..errors import DomainError
from ..kinds.calendar import Lesson

__all__ = [
    "LiveCompletionRule",
    "LiveCompletion",
    "evaluate_live",
    "RecordingCompletion",
    "watched_seconds",
    "evaluate_recording",
]

_Result = TypeVar("_Result", "LiveCompletion", "RecordingCompletion")


@dataclass(frozen=True, slots=True)
class LiveCompletionRule:
    """``minimum_seconds`` OR ``minimum_percent`` of the scheduled duration; 0 disables a branch."""

    minimum_seconds: int = 1800
    minimum_percent: int = 50

    def __post_init__(self) -> None:
        if self.minimum_seconds < 0 or not 0 <= self.minimum_percent <= 100:
            raise DomainError(
                f"completion rule: minimum_seconds={self.minimum_seconds} "
                f"minimum_percent={self.minimum_percent} out of range"
            )
        if not self.minimum_seconds and not self.minimum_percent:
            raise DomainError("completion rule: needs minutes or a percent")

    @classmethod
    def for_lesson(cls, lesson: Lesson) -> LiveCompletionRule:
        return cls(lesson.completion_minutes * 60, lesson.completion_percent)

    def required_seconds(self, scheduled_seconds: int) -> int:
        """The attendance that meets the rule for a session of ``scheduled_seconds``."""
        if scheduled_seconds <= 0:
            raise DomainError(f"completion rule: scheduled duration {scheduled_seconds}s")
        options = []
        if self.minimum_seconds:
            options.append(self.minimum_seconds)
        if self.minimum_percent:
            options.append(-(-scheduled_seconds * self.minimum_percent // 100))
        return min(options)

    def describe(self, scheduled_seconds: int) -> str:
        parts = []
        if self.minimum_seconds:
            parts.append(f">={self.minimum_seconds}s")
        if self.minimum_percent:
            parts.append(f">={self.minimum_percent}% of {scheduled_seconds}s")
        return " OR ".join(parts)


@dataclass(frozen=True, slots=True)
class LiveCompletion:
    """A live completion judgement with the rule and inputs it was made from."""

    met: bool
    rule: str
    minimum_seconds: int
    minimum_percent: int
    scheduled_seconds: int
    required_seconds: int
    total_seconds: int


def evaluate_live(
    total_seconds: int,
    lesson: Lesson,
    *,
    rule: LiveCompletionRule | None = None,
    previous: LiveCompletion | None = None,
    evidence_retracted: bool = False,
) -> LiveCompletion:
    """Judge ``total_seconds`` of attendance against the lesson's rule (or ``rule``).

    When ``previous`` was met and no evidence was retracted, the result stays met: the fresh
    result if it is met with at least as much time, otherwise ``previous`` unchanged.
    """
    rule = rule or LiveCompletionRule.for_lesson(lesson)
    scheduled = lesson.duration_seconds
    required = rule.required_seconds(scheduled)
    fresh = LiveCompletion(
        met=total_seconds >= required,
        rule=rule.describe(scheduled),
        minimum_seconds=rule.minimum_seconds,
        minimum_percent=rule.minimum_percent,
        scheduled_seconds=scheduled,
        required_seconds=required,
        total_seconds=total_seconds,
    )
    return _never_lowered(fresh, previous, evidence_retracted, lambda r: r.total_seconds)


@dataclass(frozen=True, slots=True)
class RecordingCompletion:
    met: bool
    rule: str
    threshold_percent: int
    duration_seconds: float
    required_seconds: float
    watched_seconds: float


def watched_seconds(played: Iterable[tuple[float, float]], duration_seconds: float) -> float:
    """Unique seconds of the recording covered by ``played`` ranges (positions in the media)."""
    ranges = sorted(
        (max(0.0, float(s)), min(float(duration_seconds), float(e))) for s, e in played
    )
    total = 0.0
    reach = 0.0
    for start, end in ranges:
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def evaluate_recording(
    played: Iterable[tuple[float, float]],
    duration_seconds: float,
    *,
    threshold_percent: int = 90,
    previous: RecordingCompletion | None = None,
    evidence_retracted: bool = False,
) -> RecordingCompletion:
    """Judge played ranges of a recording; seeks are simply not ranges and count nothing."""
    if duration_seconds <= 0:
        raise DomainError(f"recording: duration {duration_seconds}s")
    if not 0 < threshold_percent <= 100:
        raise DomainError(f"recording rule: threshold {threshold_percent}% out of range")
    watched = watched_seconds(played, duration_seconds)
    required = duration_seconds * threshold_percent / 100
    fresh = RecordingCompletion(
        met=watched >= required,
        rule=f">={threshold_percent}% of {duration_seconds:g}s watched",
        threshold_percent=threshold_percent,
        duration_seconds=duration_seconds,
        required_seconds=required,
        watched_seconds=watched,
    )
    return _never_lowered(fresh, previous, evidence_retracted, lambda r: r.watched_seconds)


def _never_lowered(
    fresh: _Result, previous: _Result | None, retracted: bool, amount: Callable[[_Result], float]
) -> _Result:
    if retracted or previous is None or not previous.met:
        return fresh
    if fresh.met and amount(fresh) >= amount(previous):
        return fresh
    return previous
