"""Room key epochs: one committer, monotonic epochs, and who receives which key."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import DomainError
from nostr_training.rules.room_keys import Change, KeyDelivery, KeySchedule, MembershipChange

from .factories import ALICE, BOB, CAROL, DAVE, HOST, START

A, R, LV, RM = Change.ADMIT, Change.RETURN, Change.LEAVE, Change.REMOVE


def c(who, change, at):
    return MembershipChange(who, change, START + at)


def step(schedule, at, *changes):
    return schedule.apply(changes, START + at)


def recipients(schedule):
    return [(e.number, sorted(e.recipients)) for e in schedule.epochs]


def test_the_seed_flow_admit_leave_return_remove():
    s = KeySchedule.open(HOST, START - 900)
    s = step(s, 0, c(ALICE, A, 0), c(BOB, A, 0))
    assert s.current.number == 1 and s.current.recipients == {HOST, ALICE, BOB}
    s = step(s, 600, c(ALICE, LV, 600))
    assert s.current.number == 2 and s.current.recipients == {HOST, BOB}, "a leave rekeys to those who remain"
    s = step(s, 900, c(ALICE, R, 900))
    assert s.current.number == 3 and s.current.recipients == {HOST, ALICE, BOB}, "a returning holder rekeys"
    s = step(s, 1200, c(BOB, RM, 1200))
    assert s.current.number == 4 and s.current.recipients == {HOST, ALICE}
    s = step(s, 1300, c(BOB, R, 1300))
    assert s.current.number == 4 and BOB not in s.members, "a removed participant cannot come back alone"
    s = step(s, 1400, c(BOB, A, 1400))
    assert s.current.number == 5 and BOB in s.current.recipients, "the host re-admitted them"


def test_a_newcomer_gets_the_current_epoch_without_a_rekey():
    s = step(KeySchedule.open(HOST, START), 0, c(ALICE, A, 0))
    s = step(s, 60, c(BOB, A, 60))
    assert [e.number for e in s.epochs] == [1]
    assert s.due({KeyDelivery(1, HOST), KeyDelivery(1, ALICE)}) == (KeyDelivery(1, BOB),)


def test_rekey_on_join_when_asked():
    s = step(KeySchedule.open(HOST, START, rekey_on_join=True), 0, c(ALICE, A, 0))
    assert s.current.number == 2 and s.current.recipients == {HOST, ALICE}


def test_a_batch_makes_at_most_one_epoch():
    s = step(KeySchedule.open(HOST, START), 0, c(ALICE, A, 0), c(BOB, A, 0), c(CAROL, A, 0))
    s = step(s, 60, c(ALICE, LV, 50), c(BOB, LV, 55))
    assert [e.number for e in s.epochs] == [1, 2] and s.current.recipients == {HOST, CAROL}


def test_admitted_and_gone_in_one_batch_never_held_the_key():
    s = step(KeySchedule.open(HOST, START), 0, c(ALICE, A, 0), c(ALICE, LV, 1))
    assert s.current.number == 1 and s.current.recipients == {HOST}


def test_changes_about_the_host_are_ignored():
    s = step(KeySchedule.open(HOST, START), 0, c(HOST, RM, 0), c(HOST, LV, 0))
    assert s.members == {HOST} and s.current.number == 1


def test_late_evidence_never_rewrites_an_issued_epoch():
    s = step(KeySchedule.open(HOST, START), 100, c(ALICE, A, 100), c(BOB, A, 100))
    s = step(s, 200, c(ALICE, LV, 200))
    before = s.epochs
    s = step(s, 300, c(BOB, LV, 10))
    assert s.epochs[:2] == before and s.epochs[2].started_at == START + 300, "applied at the tick, not back-dated"


def test_catch_up_applies_only_unseen_changes_and_replay_rebuilds():
    changes = [c(ALICE, A, 0), c(BOB, A, 0)]
    s = KeySchedule.open(HOST, START).catch_up(changes, START)
    again = s.catch_up(changes, START + 60)
    assert again == s
    s = s.catch_up([*changes, c(ALICE, LV, 100)], START + 120)
    rebuilt = KeySchedule.replay(HOST, START, s.batches)
    assert rebuilt.epochs == s.epochs and rebuilt.members == s.members


def test_due_rekey_close_and_epoch_at():
    s = step(KeySchedule.open(HOST, START), 0, c(ALICE, A, 0), c(BOB, A, 0))
    s = step(s, 600, c(BOB, LV, 600))
    assert s.rekey_due(None) and s.rekey_due(1) and not s.rekey_due(2)
    assert s.due(set()) == (KeyDelivery(2, ALICE), KeyDelivery(2, HOST))
    assert s.due({KeyDelivery(2, HOST)}) == (KeyDelivery(2, ALICE),)
    assert s.epoch_at(START + 599).number == 1 and s.epoch_at(START + 600).number == 2
    assert s.epoch_at(START - 1) is None
    assert s.holds_current_key(ALICE) and not s.holds_current_key(BOB)
    assert s.recipients(1) == {HOST, ALICE, BOB}
    with pytest.raises(DomainError, match="no epoch 9"):
        s.recipients(9)
    closed = s.close(START + 3600)
    assert closed.current is None and closed.due(set()) == () and not closed.rekey_due(1)
    assert closed.epoch_at(START + 3600) is None and closed.epoch_at(START + 3599).number == 2
    assert step(closed, 4000, c(CAROL, A, 4000)) == closed, "nothing changes after the keys are retired"


PEOPLE = [ALICE, BOB, CAROL, DAVE]
_change = st.tuples(st.sampled_from(PEOPLE), st.sampled_from(list(Change)), st.integers(0, 5))
_batches = st.lists(st.lists(_change, max_size=4), max_size=12)


@settings(max_examples=300, deadline=None)
@given(batches=_batches, rekey_on_join=st.booleans())
def test_epoch_properties(batches, rekey_on_join):
    s = KeySchedule.open(HOST, START, rekey_on_join=rekey_on_join)
    barred_since: dict[str, int] = {}
    seen: set[MembershipChange] = set()
    tick = 0
    for batch in batches:
        tick += 10
        changes = [MembershipChange(pk, ch, START + tick - back) for pk, ch, back in batch]
        before = s
        s = s.apply(changes, START + tick)
        numbers = [e.number for e in s.epochs]
        assert numbers == list(range(1, len(numbers) + 1)), "integers from 1, +1 per rekey, never reused"
        assert len(s.epochs) - len(before.epochs) in (0, 1)
        assert s.epochs[: len(before.epochs) - 1] == before.epochs[:-1], "issued epochs never change"
        assert all(a.started_at <= b.started_at for a, b in itertools.pairwise(s.epochs))
        assert HOST in s.members and s.members <= s.current.recipients
        assert s.members - {HOST} <= s.admitted
        # who ends the batch removed (their last say in it is REMOVE) is barred from now on
        fresh = set(changes) - seen
        seen |= fresh
        last_say: dict[str, Change] = {}
        for item in sorted(fresh, key=lambda m: (m.at, list(Change).index(m.change), m.pubkey)):
            if item.change in (Change.ADMIT, Change.REMOVE):
                last_say[item.pubkey] = item.change
        for pk, say in last_say.items():
            if say is Change.REMOVE:
                barred_since[pk] = len(s.epochs)
            else:
                barred_since.pop(pk, None)
        for pk, since in barred_since.items():
            assert pk not in s.members
            for epoch in s.epochs[since:]:
                assert pk not in epoch.recipients, "a removed participant is in no later epoch"
            assert pk not in s.current.recipients, "nor in the current one after their removal"
    assert KeySchedule.replay(HOST, START, s.batches, rekey_on_join=rekey_on_join).epochs == s.epochs
