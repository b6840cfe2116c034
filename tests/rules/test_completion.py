"""Live completion (>= 30 min OR >= 50 %) and recording completion (90 % unique seconds)."""

from __future__ import annotations

import pytest

from nostr_training.errors import DomainError
from nostr_training.rules.attendance import AttendancePolicy, Join, Leave, SessionWindow, compute_attendance
from nostr_training.rules.completion import LiveCompletionRule, evaluate_live, evaluate_recording, watched_seconds

from .factories import ALICE, START, lesson

LIVE_CASES = [
    # name, session minutes, attended seconds, met
    ("60-minute session: 30 minutes meets the rule", 60, 1800, True),
    ("60-minute session: 29:59 does not", 60, 1799, False),
    ("3-hour session under the OR: 30 minutes meets it", 180, 1800, True),
    ("3-hour session: 29:59 does not", 180, 1799, False),
    ("40-minute session: 20 minutes is 50 %", 40, 1200, True),
    ("40-minute session: 19:59 does not", 40, 1199, False),
    ("90-minute session: the 30-minute branch is the easier one", 90, 1800, True),
    ("21-minute session: half rounds up to 630 s", 21, 630, True),
    ("21-minute session: 629 s does not", 21, 629, False),
    ("exactly 30 minutes is enough (origin required strictly more)", 120, 1800, True),
    ("50 % is enough (origin Android wanted 80 %)", 50, 1500, True),
    ("nothing attended", 60, 0, False),
]


@pytest.mark.parametrize("name, minutes, attended, met", LIVE_CASES, ids=[c[0] for c in LIVE_CASES])
def test_live_completion_table(name, minutes, attended, met):
    result = evaluate_live(attended, lesson(minutes))
    assert result.met is met
    assert result.total_seconds == attended
    assert result.scheduled_seconds == minutes * 60


def test_rule_and_inputs_are_stored_with_the_result():
    result = evaluate_live(2000, lesson(180))
    assert result.rule == ">=1800s OR >=50% of 10800s"
    assert (result.minimum_seconds, result.minimum_percent) == (1800, 50)
    assert result.required_seconds == 1800
    forty = evaluate_live(0, lesson(40))
    assert forty.required_seconds == 1200


@pytest.mark.parametrize(
    "minutes_rule, percent_rule, session, attended, met, rule_text",
    [
        (45, 50, 120, 2699, False, ">=2700s OR >=50% of 7200s"),
        (45, 50, 120, 2700, True, ">=2700s OR >=50% of 7200s"),
        (0, 80, 60, 2879, False, ">=80% of 3600s"),
        (0, 80, 60, 2880, True, ">=80% of 3600s"),
        (30, 0, 180, 1800, True, ">=1800s"),
        (30, 0, 40, 1200, False, ">=1800s"),
    ],
)
def test_both_numbers_are_configurable_per_lesson(
    minutes_rule, percent_rule, session, attended, met, rule_text
):
    lesson_ = lesson(session, completion_minutes=minutes_rule, completion_percent=percent_rule)
    result = evaluate_live(attended, lesson_)
    assert (result.met, result.rule) == (met, rule_text)


def test_explicit_rule_overrides_the_lesson():
    result = evaluate_live(900, lesson(60), rule=LiveCompletionRule(900, 0))
    assert result.met and result.rule == ">=900s"


@pytest.mark.parametrize("seconds, percent", [(0, 0), (-1, 50), (1800, 101), (1800, -5)])
def test_unusable_rules_are_refused(seconds, percent):
    with pytest.raises(DomainError, match="completion rule"):
        LiveCompletionRule(seconds, percent)


def test_a_reconnect_must_not_zero_the_learner_end_to_end():
    """29 minutes, a drop, 10 minutes away, 1 more minute: 30 minutes attended, met."""
    evidence = [
        Join(ALICE, START, "laptop"),
        Leave(ALICE, START + 1740, "laptop"),
        Join(ALICE, START + 2340, "laptop"),
        Leave(ALICE, START + 2400, "laptop"),
    ]
    window = SessionWindow(START, START + 3600)
    attendance = compute_attendance(evidence, window, AttendancePolicy())
    assert attendance[ALICE].total_seconds == 1800
    assert evaluate_live(attendance[ALICE].total_seconds, lesson(60)).met


def test_met_is_never_lowered_by_re_evaluation():
    first = evaluate_live(1900, lesson(60))
    later = evaluate_live(1000, lesson(60), previous=first)
    assert later == first


def test_retracted_evidence_may_lower_a_met_result():
    first = evaluate_live(1900, lesson(60))
    retracted = evaluate_live(1000, lesson(60), previous=first, evidence_retracted=True)
    assert not retracted.met and retracted.total_seconds == 1000


def test_re_evaluation_may_raise_the_total():
    first = evaluate_live(1900, lesson(60))
    later = evaluate_live(2500, lesson(60), previous=first)
    assert later.met and later.total_seconds == 2500


def test_an_unmet_previous_result_does_not_stick():
    first = evaluate_live(100, lesson(60))
    later = evaluate_live(2500, lesson(60), previous=first)
    assert later.met


# Recordings ---------------------------------------------------------------------------------

RECORDING_CASES = [
    # name, played ranges, duration, watched, met
    ("watched it all", [(0, 3600)], 3600, 3600, True),
    ("exactly 90 %", [(0, 3240)], 3600, 3240, True),
    ("just under 90 %", [(0, 3239)], 3600, 3239, False),
    ("seeking is not watching: start, then jump to the end",
     [(0, 60), (3540, 3600)], 3600, 120, False),
    ("a rewatched part counts once", [(0, 1800), (0, 1800), (900, 1800)], 3600, 1800, False),
    ("overlapping ranges are unioned", [(0, 2000), (1500, 3300)], 3600, 3300, True),
    ("ranges beyond the recording are clipped", [(-50, 100), (3500, 9000)], 3600, 200, False),
    ("out of order ranges", [(1800, 3600), (0, 1800)], 3600, 3600, True),
    ("backwards range counts nothing", [(3600, 0)], 3600, 0, False),
    ("fractional positions from a player", [(0, 0.5), (0.25, 1.75)], 2, 1.75, False),
]


@pytest.mark.parametrize(
    "name, played, duration, watched, met", RECORDING_CASES, ids=[c[0] for c in RECORDING_CASES]
)
def test_recording_completion_table(name, played, duration, watched, met):
    assert watched_seconds(played, duration) == pytest.approx(watched)
    result = evaluate_recording(played, duration)
    assert result.met is met
    assert result.watched_seconds == pytest.approx(watched)
    assert result.rule == f">=90% of {duration:g}s watched"


def test_recording_threshold_is_configurable():
    assert evaluate_recording([(0, 80)], 100, threshold_percent=80).met
    assert not evaluate_recording([(0, 79)], 100, threshold_percent=80).met


def test_recording_completion_is_never_lowered():
    first = evaluate_recording([(0, 3600)], 3600)
    assert evaluate_recording([(0, 100)], 3600, previous=first) == first
    assert not evaluate_recording([(0, 100)], 3600, previous=first, evidence_retracted=True).met


@pytest.mark.parametrize("duration, threshold", [(0, 90), (3600, 0), (3600, 101)])
def test_unusable_recording_rules_are_refused(duration, threshold):
    with pytest.raises(DomainError):
        evaluate_recording([(0, 10)], duration, threshold_percent=threshold)
