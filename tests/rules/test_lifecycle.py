"""Session lifecycle transitions and the useLiveSession flags derived from them."""

from __future__ import annotations

import itertools

import pytest

from nostr_training.errors import IllegalTransition
from nostr_training.rules.lifecycle import SessionAction as A
from nostr_training.rules.lifecycle import SessionState as S
from nostr_training.rules.lifecycle import derive_flags, rsvp_refusal, transition

from .factories import START, lesson

LEGAL = {
    (S.SCHEDULED, A.CREATE_ROOM): S.ROOM_CREATED,
    (S.SCHEDULED, A.CANCEL): S.CANCELLED,
    (S.ROOM_CREATED, A.START): S.LIVE,
    (S.ROOM_CREATED, A.CANCEL): S.CANCELLED,
    (S.SCHEDULED, A.MARK_MISSED): S.MISSED,
    (S.ROOM_CREATED, A.MARK_MISSED): S.MISSED,
    (S.LIVE, A.END): S.ENDED,
    (S.ENDED, A.PUBLISH_RECORDING): S.RECORDING_AVAILABLE,
    (S.ENDED, A.CLOSE_WITHOUT_RECORDING): S.ENDED_WITHOUT_RECORDING,
}


@pytest.mark.parametrize(
    "actions, final",
    [
        ([A.CREATE_ROOM, A.START, A.END, A.PUBLISH_RECORDING], S.RECORDING_AVAILABLE),
        ([A.CREATE_ROOM, A.START, A.END, A.CLOSE_WITHOUT_RECORDING], S.ENDED_WITHOUT_RECORDING),
        ([A.CREATE_ROOM, A.START, A.END], S.ENDED),
        ([A.CANCEL], S.CANCELLED),
        ([A.CREATE_ROOM, A.CANCEL], S.CANCELLED),
        ([A.MARK_MISSED], S.MISSED),
        ([A.CREATE_ROOM, A.MARK_MISSED], S.MISSED),
    ],
)
def test_lifecycle_paths(actions, final):
    state = S.SCHEDULED
    for action in actions:
        state = transition(state, action)
    assert state is final


@pytest.mark.parametrize(
    "state, action", [p for p in itertools.product(S, A) if p not in LEGAL]
)
def test_every_other_step_is_illegal(state, action):
    with pytest.raises(IllegalTransition, match=action.value):
        transition(state, action)


@pytest.mark.parametrize("pair", list(LEGAL))
def test_every_legal_step_goes_where_the_seed_says(pair):
    assert transition(*pair) is LEGAL[pair]


def test_recording_cannot_be_published_for_a_lesson_that_forbids_it():
    with pytest.raises(IllegalTransition, match="does not allow recording"):
        transition(S.ENDED, A.PUBLISH_RECORDING, recording_allowed=False)
    assert (
        transition(S.ENDED, A.CLOSE_WITHOUT_RECORDING, recording_allowed=False)
        is S.ENDED_WITHOUT_RECORDING
    )


def test_live_session_cannot_be_cancelled_or_restarted():
    with pytest.raises(IllegalTransition):
        transition(S.LIVE, A.CANCEL)
    with pytest.raises(IllegalTransition):
        transition(S.ENDED, A.START)


# state, seconds from start, expected flags
FLAG_CASES = [
    ("scheduled, a day ahead", S.SCHEDULED, -86400,
     dict(is_scheduled=True, is_live=False, is_ended=False, has_recording=False,
          time_until_start=86400, can_rsvp=True)),
    ("room created, a minute ahead", S.ROOM_CREATED, -60,
     dict(is_scheduled=True, is_live=False, time_until_start=60, can_rsvp=True)),
    ("instructor late: start passed, not live", S.ROOM_CREATED, 300,
     dict(is_scheduled=True, is_live=False, is_ended=False, time_until_start=0, can_rsvp=False)),
    ("started early", S.LIVE, -120,
     dict(is_scheduled=False, is_live=True, time_until_start=None, can_rsvp=False)),
    ("overran the scheduled end", S.LIVE, 2 * 3600,
     dict(is_live=True, is_ended=False)),
    ("ended early", S.ENDED, 1200,
     dict(is_live=False, is_ended=True, has_recording=False, time_until_start=None)),
    ("recording available", S.RECORDING_AVAILABLE, 7200,
     dict(is_ended=True, has_recording=True)),
    ("ended without recording", S.ENDED_WITHOUT_RECORDING, 7200,
     dict(is_ended=True, has_recording=False)),
    ("missed: nobody went live", S.MISSED, 2 * 3600,
     dict(is_scheduled=False, is_live=False, is_ended=True, has_recording=False,
          time_until_start=None, can_rsvp=False)),
    ("cancelled", S.CANCELLED, -3600,
     dict(is_scheduled=False, is_ended=False, is_cancelled=True, time_until_start=None,
          can_rsvp=False)),
]


@pytest.mark.parametrize(
    "name, state, offset, expected", FLAG_CASES, ids=[c[0] for c in FLAG_CASES]
)
def test_flags_follow_the_recorded_state(name, state, offset, expected):
    view = derive_flags(lesson(60), state, START + offset)
    assert view.state is state
    for flag, value in expected.items():
        assert getattr(view, flag) == value, flag


def test_no_rsvp_for_a_lesson_that_does_not_ask_for_it():
    view = derive_flags(lesson(60, requires_rsvp=False), S.SCHEDULED, START - 3600)
    assert view.is_scheduled and not view.can_rsvp


@pytest.mark.parametrize(
    "changes, state, offset, reason",
    [
        ({}, S.SCHEDULED, -1, None),
        ({"max_participants": 1}, S.SCHEDULED, -1, None),
        ({}, S.SCHEDULED, 0, "session started at"),
        ({}, S.LIVE, -60, "session is live"),
        ({}, S.CANCELLED, -60, "session is cancelled"),
        ({"requires_rsvp": False}, S.SCHEDULED, -60, "does not take RSVPs"),
    ],
)
def test_rsvp_refusal_reasons(changes, state, offset, reason):
    got = rsvp_refusal(lesson(60, **changes), state, START + offset)
    if reason is None:
        assert got is None
    else:
        assert reason in got and "lesson-1" in got
