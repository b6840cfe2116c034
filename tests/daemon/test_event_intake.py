"""The local endpoint's intake: EVENT messages parsed and verified in a worker process, in order,
with the same verdicts as on the event loop, and on the loop again if the worker dies."""

from __future__ import annotations

import asyncio
import json
import logging

from polling import eventually

from nostr_training.daemon.intake import EventIntake, check_messages, event_of
from nostr_training.daemon.local_relay import GroupCommitter
from nostr_training.keys import Keys

from daemon_fakes import signed


def messages(author: Keys, n: int, *, forged_every: int = 0) -> tuple[list[str], list[tuple[str, bool]]]:
    """``n`` EVENT messages and what each should get: (its id, verifies?)."""
    out, expected = [], []
    for i in range(n):
        event = signed(author, 1, content=f"note {i}", created_at=1_800_000_000 + i)
        data = event.to_dict()
        forged = bool(forged_every) and i % forged_every == forged_every - 1
        if forged:
            data["content"] = "changed"
        out.append(json.dumps(["EVENT", data]))
        expected.append((event.id, not forged))
    return out, expected


async def checked(intake: EventIntake, batch: list[str]) -> list:
    verdicts: list = []
    done = asyncio.Event()
    for message in batch:
        def on_verdict(verdict, verdicts=verdicts):
            verdicts.append(verdict)
            if len(verdicts) == len(batch):
                done.set()
        intake.check(message, on_verdict)
    await asyncio.wait_for(done.wait(), 30)
    return verdicts


def assert_verdicts(verdicts: list, expected: list[tuple[str, bool]]) -> None:
    assert len(verdicts) == len(expected)
    for verdict, (event_id, valid) in zip(verdicts, expected, strict=True):
        assert verdict is not None and verdict[0] is valid
        if valid:
            assert event_of(verdict[1]).id == event_id
        else:
            assert verdict[1][0] == event_id and "does not match" in verdict[1][1]


def test_a_verdict_is_the_fields_the_reason_or_none(alice):
    event = signed(alice, 1, content="hi", created_at=1_800_000_000)
    forged = dict(event.to_dict(), content="changed")
    bad_id = dict(event.to_dict(), id="ZZ")
    got = check_messages([
        json.dumps(["EVENT", event.to_dict()]),
        json.dumps(["EVENT", forged]),
        json.dumps(["EVENT", bad_id]),
        "not json",
        json.dumps(["EVENT", event.to_dict(), "extra"]),
        json.dumps(["EVENT", "not an object"]),
    ])
    assert got[0] == (True, (event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, event.sig))
    assert event_of(got[0][1]) == event
    assert got[1][0] is False and got[1][1][0] == event.id and "id does not match" in got[1][1][1]
    assert got[2][0] is False and got[2][1][0] == "" and "id" in got[2][1][1]
    assert got[3:] == [None, None, None]


async def started(intake: EventIntake, author: Keys) -> None:
    """A first burst starts the worker (checked on the loop meanwhile); wait until it is ready."""
    batch, expected = messages(author, intake.inline_below)
    assert_verdicts(await checked(intake, batch), expected)
    assert intake.in_worker == 0, "checked on the loop while the worker starts"
    await eventually(lambda: intake.ready)


async def test_a_burst_is_checked_in_the_worker_in_order(alice):
    intake = EventIntake(inline_below=4)
    try:
        await started(intake, alice)
        batch, expected = messages(alice, 300, forged_every=7)
        assert_verdicts(await checked(intake, batch), expected)
        assert intake.in_worker == 300
        small, small_expected = messages(alice, 2)
        assert_verdicts(await checked(intake, small), small_expected)
        assert intake.in_worker == 302, "once ready, the worker checks small batches too"
    finally:
        process = intake._process
        await intake.stop()
    assert process is not None and not process.is_alive(), "stop ends the worker"


async def test_small_batches_are_checked_on_the_loop_without_a_worker(alice):
    intake = EventIntake(inline_below=8)
    batch, expected = messages(alice, 3, forged_every=2)
    assert_verdicts(await checked(intake, batch), expected)
    assert intake.in_worker == 0 and intake._process is None
    await intake.stop()


async def test_a_dead_worker_leaves_the_checking_to_the_loop(alice, caplog):
    intake = EventIntake(inline_below=1)
    try:
        await started(intake, alice)
        batch, expected = messages(alice, 20)
        assert_verdicts(await checked(intake, batch), expected)
        assert intake.in_worker == 20
        process = intake._process
        assert process is not None
        process.kill()
        await eventually(lambda: not process.is_alive())
        with caplog.at_level(logging.WARNING, logger="nostr_training.intake"):
            batch, expected = messages(alice, 40, forged_every=3)
            assert_verdicts(await checked(intake, batch), expected)
        assert intake.in_worker == 20, "checked on the loop"
        assert "checker process stopped" in caplog.text
    finally:
        await intake.stop()


async def test_a_failing_callback_costs_only_its_own_event(alice, caplog):
    """The intake and the group commit answer every other EVENT of the batch (a callback that
    raises is a bug of ours, logged)."""
    intake = EventIntake()
    got: list[int] = []

    def answer(i):
        def on_verdict(verdict):
            if i == 1:
                raise RuntimeError("a bug in one session's callback")
            got.append(i)
        return on_verdict

    batch, _ = messages(alice, 3)
    for i, message in enumerate(batch):
        intake.check(message, answer(i))
    await eventually(lambda: len(got) == 2)
    assert got == [0, 2] and "verdict callback failed" in caplog.text
    await intake.stop()

    async def submit_many(events):
        return list(events)

    committer = GroupCommitter(submit_many)
    committed: list[int] = []

    def on_result(i):
        def record(result):
            if i == 1:
                raise RuntimeError("a bug in one session's callback")
            committed.append(i)
        return record

    for i in range(3):
        committer.submit(i, on_result(i))
    await eventually(lambda: len(committed) == 2)
    committer.submit(3, on_result(3))
    await eventually(lambda: committed == [0, 2, 3])  # the committer lives on
    await committer.stop()
