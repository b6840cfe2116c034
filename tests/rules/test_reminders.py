"""Which reminders are due to whom: moments, meaningful windows, late RSVPs, reschedules, once each."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.kinds.reminders import ReminderKind as K
from nostr_training.rules.lifecycle import SessionState
from nostr_training.rules.reminders import ReminderPolicy, next_reminder_at, plan_reminders, reminder_action_key, reminders_due

from .factories import ALICE, BOB, CAROL, DAVE, DAY, ERIN, HOST, HOUR, START, lesson, rsvp

MIN = 60
ANNOUNCED = START - 7 * DAY
EARLY = START - 5 * DAY
REV1 = "1" * 64
REV2 = "2" * 64
SESSION = lesson(60, created_at=ANNOUNCED, event_id=REV1)


def due(rsvps, now, sent=(), revisions=SESSION, **kw):
    return [(r.kind, r.pubkey, r.due_at) for r in reminders_due(revisions, rsvps, set(sent), now, **kw)]


def run_daemon(revisions, rsvps, start_at, *, until=START + 10 * DAY, down=(), wake=(), **kw):
    """A scheduler on a simulated clock: wakes at each next moment, when evidence arrives and at
    ``wake`` times, sends what is due and logs its key; while down (intervals [a, b)) it sleeps
    until b. Evidence is whatever was published by then. Returns (kind, who, sent at)."""
    arrivals = {r.created_at or 0 for r in revisions} | {r.created_at for r in rsvps} | set(wake)
    sent: set[str] = set()
    log = []
    now = start_at
    while now is not None and now <= until:
        for a, b in down:
            if a <= now < b:
                now = b
        known_revisions = [r for r in revisions if (r.created_at or 0) <= now]
        known_rsvps = [r for r in rsvps if r.created_at <= now]
        plan = plan_reminders(known_revisions, known_rsvps, now, sent=sent, **kw)
        for reminder in plan.due:
            assert reminder.key not in sent
            sent.add(reminder.key)
            log.append((reminder.kind, reminder.pubkey, now))
        upcoming = [t for t in (plan.next_at, *arrivals) if t is not None and t > now]
        now = min(upcoming, default=None)
    return log


def test_a_simulated_day_confirmed_tentative_and_declined_get_exactly_the_table():
    ready = START + 3 * HOUR
    answers = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "tentative", EARLY + 60), rsvp(CAROL, "declined", EARLY + 120)]
    log = run_daemon(
        [SESSION], answers, ANNOUNCED, enrolled={ALICE, BOB, CAROL, HOST}, recording_available_at=ready, wake=(ready,)
    )
    assert log == [
        (K.SCHEDULED, ALICE, ANNOUNCED),
        (K.SCHEDULED, BOB, ANNOUNCED),
        (K.SCHEDULED, CAROL, ANNOUNCED),
        (K.DAY_BEFORE, ALICE, START - DAY),
        (K.DAY_BEFORE, BOB, START - DAY),
        (K.HOUR_BEFORE, ALICE, START - HOUR),
        (K.HOUR_BEFORE, BOB, START - HOUR),
        (K.STARTING, ALICE, START),
        (K.STARTING, BOB, START),
        (K.RECORDING_READY, ALICE, ready),
        (K.RECORDING_READY, BOB, ready),
    ]


def test_scheduled_goes_to_enrolled_learners_only_while_rsvps_are_open():
    cut = replace(SESSION, rsvp_until=START - 2 * DAY)
    assert due([], ANNOUNCED, revisions=cut, enrolled={ALICE}) == [(K.SCHEDULED, ALICE, ANNOUNCED)]
    plan = plan_reminders(cut, [], START - 2 * DAY, enrolled={ALICE})
    assert plan.due == () and [(r.kind, r.pubkey) for r in plan.missed] == [(K.SCHEDULED, ALICE)]
    assert due([rsvp(ALICE, "accepted", EARLY)], EARLY) == []


def test_a_late_rsvp_never_gets_a_reminder_whose_moment_has_passed():
    late = START - 2 * HOUR
    log = run_daemon([SESSION], [rsvp(BOB, "accepted", late)], late)
    assert log == [(K.HOUR_BEFORE, BOB, START - HOUR), (K.STARTING, BOB, START)]
    plan = plan_reminders(SESSION, [rsvp(BOB, "accepted", late)], late)
    assert plan.due == () and plan.missed == () and plan.next_at == START - HOUR


BACKDATED = "e" * 64


@pytest.mark.parametrize(
    "name, created_at, seen_at, expected",
    [
        ("backdated RSVP seen 2 h before the start: no 24 h reminder",
         EARLY, START - 2 * HOUR, [K.HOUR_BEFORE, K.STARTING]),
        ("honest RSVP that reached the host late: no 24 h reminder",
         START - 25 * HOUR, START - 2 * HOUR, [K.HOUR_BEFORE, K.STARTING]),
        ("RSVP seen as soon as written: every reminder",
         EARLY, EARLY, [K.DAY_BEFORE, K.HOUR_BEFORE, K.STARTING]),
        ("first sight before created_at does not move it earlier",
         START - 2 * HOUR, EARLY, [K.HOUR_BEFORE, K.STARTING]),
    ],
)
def test_a_late_rsvp_is_judged_by_when_the_daemon_first_saw_it(name, created_at, seen_at, expected):
    rsvps = [rsvp(BOB, "accepted", created_at, event_id=BACKDATED)]
    log = run_daemon([SESSION], rsvps, max(created_at, seen_at), first_seen={BACKDATED: seen_at})
    assert [kind for kind, _, _ in log] == expected


@pytest.mark.parametrize(
    "name, back_at, sent_late, missed",
    [
        ("back 23 h before: the 24 h reminder goes late", START - 23 * HOUR, [K.DAY_BEFORE], []),
        ("back 11 h before: 'tomorrow' is no longer meaningful", START - 11 * HOUR, [], [K.DAY_BEFORE]),
        ("back 45 min before: the 1 h reminder goes late", START - 45 * MIN, [K.HOUR_BEFORE], [K.DAY_BEFORE]),
        ("back 20 min before: 'in 1 hour' is wrong, dropped", START - 20 * MIN, [], [K.DAY_BEFORE, K.HOUR_BEFORE]),
        ("back 10 min after the start: only 'starting' still helps", START + 10 * MIN, [K.STARTING],
         [K.DAY_BEFORE, K.HOUR_BEFORE]),
        ("back after the scheduled end: nothing", START + 2 * HOUR, [], [K.DAY_BEFORE, K.HOUR_BEFORE, K.STARTING]),
    ],
)
def test_downtime_sends_what_is_still_meaningful_and_drops_the_rest(name, back_at, sent_late, missed):
    answers = [rsvp(ALICE, "accepted", EARLY)]
    plan = plan_reminders(SESSION, answers, back_at)
    assert [r.kind for r in plan.due] == sent_late
    assert [r.kind for r in plan.missed] == missed
    log = run_daemon([SESSION], answers, EARLY, down=[(START - 2 * DAY, back_at)])
    assert [kind for kind, _, at in log if at == back_at] == sent_late
    assert not {kind for kind, _, _ in log} & set(missed)


def test_a_restart_in_the_middle_repeats_nothing_and_misses_nothing():
    answers = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "tentative", EARLY)]
    sent: set[str] = set()
    first_run = plan_reminders(SESSION, answers, START - DAY + 5 * MIN, sent=sent)
    sent |= {r.key for r in first_run.due}
    # the daemon is killed and restarts from its action log (``sent``) a few minutes later
    again = plan_reminders(SESSION, answers, START - DAY + 9 * MIN, sent=sent)
    assert again.due == () and again.next_at == START - HOUR
    later = plan_reminders(SESSION, answers, START - 50 * MIN, sent=sent)
    assert [(r.kind, r.pubkey) for r in later.due] == [(K.HOUR_BEFORE, ALICE), (K.HOUR_BEFORE, BOB)]


def test_the_starting_reminder_is_not_sent_once_the_session_is_over():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    sent = {reminder_action_key(SESSION.coordinate, ALICE, k, START) for k in (K.DAY_BEFORE, K.HOUR_BEFORE)}
    assert due(answers, START + 60, sent, state=SessionState.LIVE) == [(K.STARTING, ALICE, START)]
    assert due(answers, START + 60, sent, state=SessionState.ENDED) == []


def test_recording_ready_goes_when_it_exists_and_not_a_week_later():
    answers = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "tentative", EARLY)]
    ready = START + 3 * HOUR
    sent = {r.key for r in plan_reminders(SESSION, answers, START + 1).due}
    sent |= {r.key for r in plan_reminders(SESSION, answers, START - HOUR).due}
    assert due(answers, ready - 1, sent, recording_available_at=ready) == []
    got = reminders_due(SESSION, answers, sent, ready, recording_available_at=ready)
    assert [(r.kind, r.pubkey) for r in got] == [(K.RECORDING_READY, ALICE), (K.RECORDING_READY, BOB)]
    assert all(r.expires_at == ready + 7 * DAY for r in got)
    assert due(answers, ready + 7 * DAY, sent, recording_available_at=ready) == []


def test_every_reminder_expires_after_the_session():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    plan = plan_reminders(SESSION, answers, START + 1, enrolled={ALICE})
    assert plan.due and all(r.expires_at == SESSION.end + DAY for r in plan.due + plan.missed)


# Reschedules and re-confirmation ------------------------------------------------------------


MOVED = START + 2 * DAY
RESCHEDULED = replace(SESSION, start=MOVED, end=MOVED + HOUR, created_at=START - 3 * DAY, event_id=REV2)


def test_a_reschedule_moves_the_pending_reminders_and_tells_the_learners():
    answers = [
        replace(rsvp(ALICE, "accepted", EARLY), revision=REV1),
        replace(rsvp(BOB, "accepted", START - 2 * DAY), revision=REV2),
    ]
    log = run_daemon([SESSION, RESCHEDULED], answers, EARLY, wake=(RESCHEDULED.created_at, START - 2 * DAY))
    assert log == [
        (K.CHANGED, ALICE, START - 3 * DAY),
        (K.DAY_BEFORE, ALICE, MOVED - DAY),
        (K.DAY_BEFORE, BOB, MOVED - DAY),
        (K.HOUR_BEFORE, ALICE, MOVED - HOUR),
        (K.HOUR_BEFORE, BOB, MOVED - HOUR),
        (K.STARTING, ALICE, MOVED),
        (K.STARTING, BOB, MOVED),
    ]


def test_a_reschedule_after_the_old_24h_reminder_sends_the_new_one_too():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    late_move = replace(RESCHEDULED, created_at=START - 20 * HOUR)
    log = run_daemon([SESSION, late_move], answers, EARLY, wake=(late_move.created_at,))
    assert log == [
        (K.DAY_BEFORE, ALICE, START - DAY),
        (K.CHANGED, ALICE, START - 20 * HOUR),
        (K.DAY_BEFORE, ALICE, MOVED - DAY),
        (K.HOUR_BEFORE, ALICE, MOVED - HOUR),
        (K.STARTING, ALICE, MOVED),
    ]


def test_a_move_seen_too_late_for_the_new_24h_moment_does_not_send_it_from_the_past():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    sooner = replace(SESSION, start=START - DAY, end=START - DAY + HOUR, created_at=START - 30 * HOUR, event_id=REV2)
    plan = plan_reminders([SESSION, sooner], answers, START - 30 * HOUR)
    assert [(r.kind, r.due_at) for r in plan.due] == [(K.CHANGED, START - 30 * HOUR)]
    assert plan.missed == () and plan.next_at == START - DAY - HOUR


def test_a_non_material_edit_changes_no_key_and_tells_nobody():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    retitled = replace(SESSION, title="Renamed", location="https://meet.example/first-link", created_at=EARLY + 1, event_id=REV2)
    before = plan_reminders(SESSION, answers, START - DAY)
    after = plan_reminders([SESSION, retitled], answers, START - DAY)
    assert [r.key for r in before.due] == [r.key for r in after.due]
    assert K.CHANGED not in {r.kind for r in after.due}


def test_action_keys_name_lesson_learner_kind_and_occasion():
    key = reminder_action_key(SESSION.coordinate, ALICE, K.DAY_BEFORE, START)
    assert key == f"reminder:24h:{START}:{ALICE}:{SESSION.coordinate}"
    plan = plan_reminders([SESSION, RESCHEDULED], [rsvp(ALICE, "accepted", EARLY)], MOVED - DAY, enrolled={ALICE})
    keys = {r.kind: r.key for r in plan.due + plan.missed}
    assert keys[K.DAY_BEFORE] == reminder_action_key(SESSION.coordinate, ALICE, K.DAY_BEFORE, MOVED)
    assert keys[K.SCHEDULED] == reminder_action_key(SESSION.coordinate, ALICE, K.SCHEDULED, "once")
    assert keys[K.CHANGED] == reminder_action_key(SESSION.coordinate, ALICE, K.CHANGED, REV2)


# Waitlist and cancellation ---------------------------------------------------------------------


def test_a_decline_promotes_the_first_in_line_who_is_told_and_reminded_from_then_on():
    capped = replace(SESSION, max_participants=1)
    answers = [
        rsvp(ALICE, "accepted", EARLY, of=capped),
        rsvp(BOB, "accepted", EARLY + 1, of=capped),
        rsvp(CAROL, "accepted", EARLY + 2, of=capped),
        rsvp(DAVE, "declined", EARLY + 3, of=capped),
        rsvp(ALICE, "declined", START - 3 * HOUR, of=capped),
    ]
    log = run_daemon([capped], answers, EARLY, wake=(START - 3 * HOUR,))
    assert log == [
        (K.DAY_BEFORE, ALICE, START - DAY),
        (K.PROMOTED, BOB, START - 3 * HOUR),
        (K.HOUR_BEFORE, BOB, START - HOUR),
        (K.STARTING, BOB, START),
    ]


def test_a_cancelled_session_sends_only_the_cancellation_to_everyone_who_said_yes_or_maybe():
    capped = replace(SESSION, max_participants=1)
    answers = [
        rsvp(ALICE, "accepted", EARLY, of=capped),
        rsvp(BOB, "accepted", EARLY + 1, of=capped),
        rsvp(CAROL, "tentative", EARLY + 2, of=capped),
        rsvp(DAVE, "declined", EARLY + 3, of=capped),
    ]
    cancelled = START - 2 * DAY
    got = due(answers, cancelled + 5, revisions=capped, cancelled_at=cancelled, enrolled={ERIN})
    assert got == [(K.CANCELLED, ALICE, cancelled), (K.CANCELLED, BOB, cancelled), (K.CANCELLED, CAROL, cancelled)]
    assert due(answers, START - HOUR, revisions=capped, state=SessionState.CANCELLED) == []
    assert next_reminder_at(capped, answers, set(), EARLY, state=SessionState.CANCELLED) is None


def test_an_answer_after_the_cut_off_gets_no_seat_and_no_reminder():
    cut = replace(SESSION, rsvp_until=START - DAY)
    answers = [rsvp(ALICE, "accepted", EARLY), rsvp(BOB, "accepted", START - 2 * HOUR)]
    assert {p for _, p, _ in due(answers, START - HOUR, revisions=cut)} == {ALICE}


def test_offsets_are_a_policy():
    policy = ReminderPolicy(day_before=2 * DAY, day_before_until=DAY, hour_before=2 * HOUR)
    got = due([rsvp(ALICE, "accepted", EARLY)], START - 2 * DAY, policy=policy)
    assert got == [(K.DAY_BEFORE, ALICE, START - 2 * DAY)]


def test_no_lesson_no_plan():
    assert plan_reminders([], [], START).due == ()


# Properties ------------------------------------------------------------------------------------

LEARNERS = (ALICE, BOB, CAROL, DAVE, ERIN)
answer_lists = st.lists(
    st.tuples(st.sampled_from(LEARNERS), st.sampled_from(["accepted", "tentative", "declined"]),
              st.integers(min_value=-6 * DAY, max_value=-1)),
    max_size=12,
)
tick_lists = st.lists(st.integers(min_value=-7 * DAY, max_value=9 * DAY), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(answer_lists, tick_lists, st.sampled_from([None, 1, 2]), st.booleans())
def test_any_ticks_send_each_reminder_at_most_once_inside_its_window_and_account_for_the_rest(
    raw, ticks, seats, recorded
):
    target = replace(SESSION, max_participants=seats)
    answers = [rsvp(who, status, START + offset, of=target, event_id=f"{i:064x}") for i, (who, status, offset) in enumerate(raw)]
    ready = START + 2 * HOUR if recorded else None
    sent: dict[str, int] = {}
    for now in sorted(START + t for t in ticks):
        known = [r for r in answers if r.created_at <= now]
        for r in plan_reminders(target, known, now, sent=sent, enrolled=LEARNERS, recording_available_at=ready).due:
            assert r.key not in sent and r.due_at <= now < r.deadline
            assert r.kind is K.SCHEDULED or r.due_at >= min(a.created_at for a in known if a.author == r.pubkey)
            sent[r.key] = now
    end = START + 10 * DAY
    final = plan_reminders(target, answers, end, sent=sent, enrolled=LEARNERS, recording_available_at=ready)
    assert final.due == () and final.next_at is None
    assert not {r.key for r in final.missed} & set(sent)


@settings(max_examples=150, deadline=None)
@given(answer_lists, st.sampled_from([None, 1, 2]))
def test_a_scheduler_that_never_sleeps_through_a_moment_misses_nothing(raw, seats):
    target = replace(SESSION, max_participants=seats)
    answers = [rsvp(who, status, START + offset, of=target, event_id=f"{i:064x}") for i, (who, status, offset) in enumerate(raw)]
    wake = sorted({a.created_at for a in answers})
    sent: set[str] = set()
    now: int | None = ANNOUNCED
    while now is not None:
        known = [r for r in answers if r.created_at <= now]
        plan = plan_reminders(target, known, now, sent=sent, enrolled=LEARNERS)
        assert plan.missed == ()
        for r in plan.due:
            assert r.due_at == now or r.kind is K.PROMOTED
            sent.add(r.key)
        now = min([t for t in (plan.next_at, *wake) if t is not None and t > now], default=None)


def test_a_backdated_revision_counts_from_when_the_daemon_first_saw_it():
    answers = [rsvp(ALICE, "accepted", EARLY)]
    backdated = replace(RESCHEDULED, created_at=EARLY + 1)
    seen = START + 2 * HOUR  # seen only after the old start; the new start is 2 days out
    plan = plan_reminders([SESSION, backdated], answers, seen, first_seen={REV2: seen})
    assert [(r.kind, r.due_at) for r in plan.due] == [(K.CHANGED, seen)]
    assert plan.next_at == MOVED - DAY
    unseen = plan_reminders([SESSION, backdated], answers, seen)
    assert [(r.kind, r.due_at) for r in unseen.due] == [(K.CHANGED, EARLY + 1)]
