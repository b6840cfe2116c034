"""Which reminders are due to whom: moments, deadlines, late RSVPs, once each."""

from __future__ import annotations

import pytest

from nostr_training.kinds.reminders import ReminderKind as K
from nostr_training.rules.lifecycle import SessionState
from nostr_training.rules.reminders import ReminderPolicy, next_reminder_at, reminders_due

from .factories import ALICE, BOB, CAROL, DAVE, DAY, HOUR, START, lesson, rsvp

SESSION = lesson(60)
EARLY = START - 5 * DAY


def due(rsvps, now, sent=(), **kw):
    found = reminders_due(SESSION, rsvps, set(sent), now, **kw)
    return [(r.kind, r.pubkey, r.due_at) for r in found]


def run_daemon(rsvps, start_at, **kw):
    """Jump from moment to moment as a scheduler would, sending what is due: (kind, who, at)."""
    sent: set = set()
    log = []
    now = start_at
    while now is not None:
        for r in reminders_due(SESSION, rsvps, sent, now, **kw):
            sent.add((r.kind, r.pubkey))
            log.append((r.kind, r.pubkey, now))
        now = next_reminder_at(SESSION, rsvps, sent, now, **kw)
    return log


def test_an_early_rsvp_gets_every_reminder_once_at_its_moment():
    ready = START + 2 * HOUR
    log = run_daemon([rsvp(ALICE, "accepted", EARLY)], EARLY, recording_available_at=ready)
    assert log == [
        (K.SCHEDULED, ALICE, EARLY),
        (K.DAY_BEFORE, ALICE, START - DAY),
        (K.HOUR_BEFORE, ALICE, START - HOUR),
        (K.STARTING, ALICE, START),
        (K.RECORDING_READY, ALICE, ready),
    ]


def test_a_late_rsvp_never_gets_a_reminder_whose_moment_has_passed():
    late = START - 2 * HOUR
    log = run_daemon([rsvp(BOB, "accepted", late)], late)
    assert [kind for kind, _, _ in log] == [K.SCHEDULED, K.HOUR_BEFORE, K.STARTING]
    assert due([rsvp(BOB, "accepted", late)], START - DAY + 60) == []


BACKDATED = "e" * 64


@pytest.mark.parametrize(
    "name, created_at, seen_at, expected",
    [
        ("backdated RSVP seen 2 h before the start: no 24 h reminder",
         EARLY, START - 2 * HOUR, [K.SCHEDULED, K.HOUR_BEFORE, K.STARTING]),
        ("honest RSVP that reached the host late: no 24 h reminder",
         START - 25 * HOUR, START - 2 * HOUR, [K.SCHEDULED, K.HOUR_BEFORE, K.STARTING]),
        ("RSVP seen as soon as written: every reminder",
         EARLY, EARLY, [K.SCHEDULED, K.DAY_BEFORE, K.HOUR_BEFORE, K.STARTING]),
        ("first sight before created_at does not move it earlier",
         START - 2 * HOUR, EARLY, [K.SCHEDULED, K.HOUR_BEFORE, K.STARTING]),
    ],
)
def test_a_late_rsvp_is_judged_by_when_the_daemon_first_saw_it(
    name, created_at, seen_at, expected
):
    rsvps = [rsvp(BOB, "accepted", created_at, event_id=BACKDATED)]
    seen = {BACKDATED: seen_at}
    log = run_daemon(rsvps, min(created_at, seen_at), first_seen=seen)
    assert [kind for kind, _, _ in log] == expected
    assert log[0] == (K.SCHEDULED, BOB, max(created_at, seen_at))


def test_backdated_rsvp_gets_no_24h_reminder_when_the_daemon_catches_up():
    rsvps = [rsvp(BOB, "accepted", EARLY, event_id=BACKDATED)]
    now = START - 2 * HOUR
    assert (K.DAY_BEFORE, BOB, START - DAY) in due(rsvps, now)
    assert due(rsvps, now, first_seen={BACKDATED: now}) == [(K.SCHEDULED, BOB, now)]
    sent = {(K.SCHEDULED, BOB)}
    assert next_reminder_at(SESSION, rsvps, sent, now, first_seen={BACKDATED: now}) == START - HOUR


def test_rsvp_at_the_exact_moment_still_gets_that_reminder():
    at = START - HOUR
    assert (K.HOUR_BEFORE, ALICE, at) in due([rsvp(ALICE, "accepted", at)], at)


@pytest.mark.parametrize(
    "name, now, expected",
    [
        ("daemon back 30 min before start: 24 h superseded, 1 h and confirmation go",
         START - 30 * 60, [K.SCHEDULED, K.HOUR_BEFORE]),
        ("daemon back 10 min after start: only 'starting' is still useful",
         START + 10 * 60, [K.STARTING]),
        ("daemon back after the scheduled end: nothing", START + 2 * HOUR, []),
        ("daemon back 23 h before start: confirmation and 24 h", START - 23 * HOUR,
         [K.SCHEDULED, K.DAY_BEFORE]),
    ],
)
def test_stale_reminders_are_skipped_not_sent(name, now, expected):
    assert [k for k, _, _ in due([rsvp(ALICE, "accepted", EARLY)], now)] == expected


def test_each_reminder_goes_once():
    rsvps = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "accepted", EARLY)]
    now = START - DAY
    sent = {(K.SCHEDULED, ALICE), (K.SCHEDULED, BOB), (K.DAY_BEFORE, ALICE)}
    assert due(rsvps, now, sent) == [(K.DAY_BEFORE, BOB, START - DAY)]


def test_only_seated_accepted_and_tentative_learners_are_reminded():
    capped = lesson(60, max_participants=1)
    rsvps = [
        rsvp(ALICE, "accepted", EARLY, of=capped),
        rsvp(BOB, "accepted", EARLY + 1, of=capped),
        rsvp(CAROL, "tentative", EARLY + 2, of=capped),
        rsvp(DAVE, "declined", EARLY + 3, of=capped),
    ]
    got = reminders_due(capped, rsvps, set(), START - HOUR)
    assert {r.pubkey for r in got} == {ALICE, CAROL}


def test_a_promoted_learner_gets_the_reminders_still_ahead():
    capped = lesson(60, max_participants=1)
    rsvps = [rsvp(ALICE, "accepted", EARLY, of=capped), rsvp(BOB, "accepted", EARLY + 1, of=capped)]
    rsvps.append(rsvp(ALICE, "declined", START - 3 * HOUR, of=capped))
    got = reminders_due(capped, rsvps, set(), START - HOUR)
    assert [(r.kind, r.pubkey) for r in got] == [(K.SCHEDULED, BOB), (K.HOUR_BEFORE, BOB)]


def test_no_reminders_for_a_cancelled_session():
    rsvps = [rsvp(ALICE, "accepted", EARLY)]
    assert due(rsvps, START - HOUR, state=SessionState.CANCELLED) == []
    assert next_reminder_at(SESSION, rsvps, set(), EARLY, state=SessionState.CANCELLED) is None


def test_no_starting_reminder_once_the_session_is_over():
    rsvps = [rsvp(ALICE, "accepted", EARLY)]
    sent = {(K.SCHEDULED, ALICE)}
    assert due(rsvps, START + 60, sent, state=SessionState.LIVE) == [(K.STARTING, ALICE, START)]
    assert due(rsvps, START + 60, sent, state=SessionState.ENDED) == []


def test_recording_ready_goes_when_it_exists_and_not_a_week_later():
    rsvps = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "tentative", EARLY)]
    before = (K.SCHEDULED, K.DAY_BEFORE, K.HOUR_BEFORE, K.STARTING)
    sent = {(k, p) for k in before for p in (ALICE, BOB)}
    ready = START + 3 * HOUR
    assert due(rsvps, ready - 1, sent, recording_available_at=ready) == []
    assert due(rsvps, ready, sent, recording_available_at=ready) == [
        (K.RECORDING_READY, ALICE, ready),
        (K.RECORDING_READY, BOB, ready),
    ]
    assert due(rsvps, ready + 7 * DAY, sent, recording_available_at=ready) == []
    assert due(rsvps, ready, sent) == []


def test_offsets_are_a_policy():
    policy = ReminderPolicy(day_before=2 * DAY, hour_before=2 * HOUR)
    sent = {(K.SCHEDULED, ALICE)}
    got = due([rsvp(ALICE, "accepted", EARLY)], START - 2 * DAY, sent, policy=policy)
    assert got == [(K.DAY_BEFORE, ALICE, START - 2 * DAY)]


def test_next_reminder_time_for_the_scheduler():
    rsvps = [rsvp(ALICE, "accepted", EARLY)]
    assert next_reminder_at(SESSION, rsvps, {(K.SCHEDULED, ALICE)}, EARLY) == START - DAY
    everything = {(k, ALICE) for k in K}
    assert next_reminder_at(SESSION, rsvps, everything, EARLY) is None
    assert next_reminder_at(SESSION, [], set(), EARLY) is None
