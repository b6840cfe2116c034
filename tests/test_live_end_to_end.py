"""Issue 11's "Done when": a live lesson end to end, from the CLI and three daemons (instructor,
two learners) on one ManualClock, over a real relay on loopback (rust-nostr's relay).

The story, as close to the issue as two learners allow: both ask to join; the instructor admits
Ada and denies Bo; only Ada can unwrap a room key; the session goes live; the instructor changes
their mind and admits Bo 5 minutes in (so two admitted learners can be compared); Ada drops and
reconnects at 10 minutes (a second join, no new epoch), then leaves at 15 (a new epoch reaches
the host and Bo only): admitted before the start, she is counted from the early-join grace (5
minutes before it), so she stayed 20 minutes; Bo leaves at 40 (35 minutes in the room); the
session ends at 60.
Attendance is recorded by the host with the union rule: Ada 20 minutes and 2 joins, not
complete; Bo 35 minutes, complete. The records are never published (issue 15): the relay holds
no 31930/31931 and the ended meeting only ``total_participants``; each learner's ``lesson status``
shows their own numbers, and each prints their own proof, which verifies offline. Bo's
certificate, issued privately, reaches Bo alone and verifies from his export in an empty data
dir; nothing about it is on the relay, and its revocation is a marker naming nobody.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from polling import eventually
from test_cli_services import cli_in_thread

from nostr_training import kinds
from nostr_training.clock import ManualClock, SystemClock
from nostr_training.daemon.app import Daemon, make_pool
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.live import LiveSessions
from nostr_training.errors import DecryptionError, DomainError, NotFound
from nostr_training.event import sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.nips.nip59 import unwrap
from nostr_training.rules.rooms import current_room
from nostr_training.services import live
from nostr_training.services.relay_lists import plan_relays, set_relays
from nostr_training.signer import LocalSigner

from relay_servers import start_rust_relay

pytestmark = pytest.mark.relay

MIN = 60




class Person:
    def __init__(self, home, keys: Keys):
        self.home, self.keys, self.daemon, self.live = home, keys, None, None

    @property
    def pubkey(self) -> str:
        return self.keys.public_key

    async def start(self, relay: str, clock: ManualClock, courses: tuple[str, ...] = ()) -> None:
        config = replace(load_config(self.home).with_overrides(relays=[relay], port=0), follow_courses=courses)
        self.live = LiveSessions(interval=3600)
        self.daemon = Daemon(config, signer=LocalSigner(self.keys), clock=clock, components=(self.live,))
        await self.daemon.start()

    @property
    def ctx(self):
        return self.daemon.services

    async def cli(self, *args: str):
        return await cli_in_thread(*args, "--data-dir", str(self.home))

    async def cli_json(self, *args: str):
        result = await self.cli(*args, "--json")
        assert result.code == 0, result.output
        return json.loads(result.stdout)

    async def epochs(self, lesson) -> list[int]:
        await self.live.reconcile()
        return [k.epoch for k in await live.room_keys(self.ctx, lesson)]


@pytest.fixture
def relay(tmp_path):
    """rust-nostr's relay, without its default 60 EVENTs a minute per connection: the outbox
    retries a rate-limited event on the daemon's clock, which only the test moves."""
    process = start_rust_relay(tmp_path / "relay", notes_per_minute=100_000)
    yield process
    process.stop()


@pytest.fixture
async def people(tmp_path, relay, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "correct horse")
    monkeypatch.setenv("TZ", "America/New_York")
    out = []
    for name in ("host", "ada", "bo"):
        home = tmp_path / name
        home.mkdir()
        keys = Keys.generate()
        save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
        out.append(Person(home, keys))
    yield out
    for person in out:
        if person.daemon is not None:
            await person.daemon.stop()


async def test_a_live_lesson_end_to_end(people, relay):
    host, ada, bo = people
    clock = ManualClock(int(time.time()) - 4 * 3600)
    url = relay.url
    await host.start(url, clock)

    # The instructor schedules a 60-minute lesson from the CLI, in Berlin time.
    course = (await host.cli_json("course", "create", "safety", "Jail support"))["course"]["coordinate"]
    start = clock.now() + 30 * MIN
    berlin = datetime.fromtimestamp(start, timezone.utc).astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")
    start = start - start % 60
    scheduled = await host.cli_json("lesson", "schedule", course, "role-play", "Role play", "--start", berlin,
                                    "--tz", "Europe/Berlin", "--minutes", "60")
    lesson_ref = scheduled["lesson"]["coordinate"]
    assert scheduled["lesson"]["start"] == start and scheduled["lesson"]["tzid"] == "Europe/Berlin"
    table = await host.cli("lesson", "list")
    assert "Role play" in table.stdout and "EST" in table.stdout and "(Europe/Berlin" in table.stdout
    assert "signed with npub1" in (await host.cli("course", "create", "safety", "Jail support")).stderr
    lesson = await live.resolve_lesson(host.ctx, lesson_ref)
    assert [t for t in kinds.build_lesson(lesson, created_at=0).tags if t[0] == "D"]

    # Both learners follow the course and see the lesson; they publish their DM inboxes (10050).
    for learner in (ada, bo):
        await learner.start(url, clock, courses=(course,))
        await set_relays(learner.ctx, plan_relays([url], inbox=[url]), wait=5)
    for learner in (ada, bo):
        await eventually(lambda learner=learner: learner.ctx.store.lesson(lesson_ref))
        listed = await learner.cli_json("lesson", "list")
        assert [x["coordinate"] for x in listed["lessons"]] == [lesson_ref]

    # 15 minutes before the start the host's daemon creates the room (auto-start).
    await clock.advance(start - 15 * MIN - clock.now())
    await host.live.run_once()
    assert (await host.cli_json("lesson", "show", lesson_ref))["state"] == "room_created"
    for learner in (ada, bo):
        await learner.live.run_once()  # follows the lesson's session events
        await eventually(lambda learner=learner: learner.cli_json("session", "status", lesson_ref))
        await eventually(lambda learner=learner: _state(learner, lesson_ref, "room_created"))

    # Both ask to join (signed 8312); neither has a link yet.
    await clock.advance(5 * MIN)
    for learner in (ada, bo):
        answer = await learner.cli_json("join", lesson_ref)
        assert answer["url"] is None and len(answer["published"]) == 1
        assert (await learner.cli_json("lesson", "status", lesson_ref))["join_reason"] == "session is room_created"
    await host.live.run_once()
    waiting = await eventually(lambda: _waiting(host, lesson_ref, 2))
    assert {w["pubkey"] for w in waiting} == {ada.pubkey, bo.pubkey}

    # Bad input changes nothing: a join request for someone else, by the service and by the API.
    with pytest.raises(DomainError, match="not by the participant"):
        await live.request_join(ada.ctx, lesson_ref, participant=bo.pubkey)
    forged = sign_event(kinds.build_join_request(lesson_ref, host.pubkey, created_at=clock.now()), bo.keys.secret)
    with pytest.raises(DomainError, match="not by the participant"):
        await live.submit_join_request(host.ctx, forged, ada.pubkey)
    assert await host.ctx.store.get(forged.id) is None

    # Waiting room: Ada admitted, Bo denied (from the CLI); keys go to Ada only.
    await clock.advance(MIN)
    admitted = await host.cli("room", "admit", lesson_ref, ada.pubkey)
    assert admitted.code == 0 and "signed with npub1" in admitted.stderr
    assert (await host.cli("room", "deny", lesson_ref, bo.pubkey)).code == 0
    await host.live.run_once()
    assert await eventually(lambda: ada.epochs(lesson)) == [1]
    assert await bo.epochs(lesson) == []
    wraps_to_ada = await host.ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({ada.pubkey})})])
    assert wraps_to_ada
    with pytest.raises(DecryptionError):
        await unwrap(wraps_to_ada[0], LocalSigner(bo.keys))
    assert (await unwrap(wraps_to_ada[0], LocalSigner(ada.keys))).rumor.kind == kinds.ROOM_KEY

    # A learner cannot start the session; nothing is published for it.
    refused = await ada.cli("session", "start", lesson_ref)
    assert refused.code == 1 and "does not host" in refused.stderr
    assert not await ada.ctx.store.query([Filter(kinds=frozenset({kinds.MEETING}), authors=frozenset({ada.pubkey}))])

    # The session goes live; Ada gets the link with the key, Bo still none.
    await clock.advance(start - clock.now())
    assert (await host.cli("session", "start", lesson_ref)).code == 0
    await eventually(lambda: _state(ada, lesson_ref, "live"))
    joined = await ada.cli_json("join", lesson_ref)
    assert joined["url"] and joined["epoch"] == 1 and joined["room_key"] and joined["published"] == []
    bo_view = await bo.cli_json("lesson", "status", lesson_ref)
    assert bo_view["join_url"] is None and bo_view["admission"] == "denied"

    # 5 minutes in, the instructor admits Bo after all: Bo receives epoch 1, no rekey.
    await clock.advance(5 * MIN)
    assert (await host.cli("room", "admit", lesson_ref, bo.pubkey)).code == 0
    await host.live.run_once()
    assert await eventually(lambda: bo.epochs(lesson)) == [1]

    # 10 minutes in, Ada drops and reconnects: a second join, the same epoch.
    await clock.advance(5 * MIN)
    again = await ada.cli_json("join", lesson_ref, "--reconnect")
    assert len(again["published"]) == 1 and again["epoch"] == 1
    await eventually(lambda: _claims(host, lesson_ref, ada.pubkey, 1))
    await host.live.run_once()
    assert await _sent(host, 2) == set()

    # 15 minutes in, Ada leaves (20 minutes counted: admitted before the start, she is counted
    # from the early-join grace, 5 minutes before it): epoch 2 reaches the remaining Bo only.
    await clock.advance(5 * MIN)
    assert (await ada.cli("leave", lesson_ref)).code == 0
    await eventually(lambda: _claims(host, lesson_ref, ada.pubkey, 2))
    await host.live.run_once()
    assert await _sent(host, 2) == {bo.pubkey}
    await eventually(lambda: _epochs_reach(bo, lesson, 2))
    await eventually(lambda: _room_epoch(bo, lesson, 2))
    assert await bo.epochs(lesson) == [2]  # epoch 1 is retired once the room says 2
    await eventually(lambda: _room_epoch(ada, lesson, 2))
    assert await ada.epochs(lesson) == []
    assert (await ada.cli_json("lesson", "status", lesson_ref))["join_url"] is None

    # 40 minutes in, Bo leaves; at 60 the instructor ends the session from the CLI.
    await clock.advance(25 * MIN)
    assert (await bo.cli("leave", lesson_ref)).code == 0
    await eventually(lambda: _claims(host, lesson_ref, bo.pubkey, 1))
    await host.live.run_once()
    await clock.advance(20 * MIN)
    ended = await host.cli_json("session", "end", lesson_ref)
    rows = {r["pubkey"]: r for r in ended["attendance"]["rows"]}
    assert rows[ada.pubkey]["total_seconds"] == 20 * MIN and rows[ada.pubkey]["join_count"] == 2
    assert rows[ada.pubkey]["met"] is False and rows[ada.pubkey]["completed"] is False
    assert rows[bo.pubkey]["total_seconds"] == 35 * MIN and rows[bo.pubkey]["met"] is True
    assert rows[bo.pubkey]["completed"] is True and all(r["published"] for r in rows.values())
    csv_out = (await host.cli("attendance", "export", lesson_ref, "--csv")).stdout
    assert f"{bo.pubkey},2100,1,True,True,True" in csv_out

    # The daemon's tick after the end repeats nothing.
    before = len(await host.ctx.store.actions())
    await host.live.run_once()
    await host.live.run_once()
    assert len([a for a in await host.ctx.store.actions() if a.action in ("attendance", "completion")]) == 3
    assert len(await host.ctx.store.actions()) <= before + 1  # live-done, once

    # Each learner's status shows their own numbers, from the host's record delivered privately.
    await eventually(lambda: _delivered(host, 2))
    ada_view = await eventually(lambda: _with_record(ada, lesson_ref))
    bo_view = await eventually(lambda: _with_record(bo, lesson_ref))
    assert ada_view["record"]["total_seconds"] == 20 * MIN and ada_view["record"]["join_count"] == 2
    assert ada_view["completed"] is False and ada_view["state"] == "ended_without_recording"
    assert bo_view["record"]["total_seconds"] == 35 * MIN and bo_view["completed"] is True
    text = (await bo.cli("lesson", "status", lesson_ref)).stdout
    assert "35m00s" in text and "completed     True" in text

    # The relay, read by anyone: no attendance or completion record; the ended meeting counts
    # the learners who attended and names none of them.
    records = Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD}))
    assert await _outsider_reads(url, records) == []
    [ended_meeting] = await _outsider_reads(url, Filter(kinds=frozenset({kinds.MEETING}), authors=frozenset({host.pubkey})))
    assert ended_meeting.tag_value("status") == "ended" and ended_meeting.tag_value("total_participants") == "2"
    assert ada.pubkey not in ended_meeting.to_json() and bo.pubkey not in ended_meeting.to_json()

    # Each learner prints their own proof; it verifies offline, and shows their own numbers.
    for learner, minutes, complete in ((ada, 20, "no"), (bo, 35, "yes")):
        proof = await learner.cli("attendance", "proof", lesson_ref)
        assert proof.code == 0, proof.output
        path = learner.home / "proof.json"
        path.write_text(proof.stdout)
        checked = await cli_in_thread("attendance", "verify", str(path))
        assert checked.code == 0 and f"minutes   {minutes}" in checked.stdout, checked.output
        assert f"complete  {complete}" in checked.stdout
        assert {e["tags"][2][1] for e in json.loads(proof.stdout)} == {learner.pubkey}

    # On a machine with only her key and her relay (no daemon, an empty index), Ada still gets
    # her proof: the command fetches her gift wraps with a short-lived pool and opens them.
    laptop = ada.home.parent / "ada-laptop"
    laptop.mkdir()
    save_key_file(laptop / "key.ncryptsec", ada.keys, "correct horse", log_n=4)
    write_config(load_config(laptop).with_overrides(relays=[url]))
    fresh = await cli_in_thread("attendance", "proof", lesson_ref, "--data-dir", str(laptop))
    assert fresh.code == 0, fresh.output
    assert json.loads(fresh.stdout) == json.loads((await ada.cli("attendance", "proof", lesson_ref)).stdout)

    # Bo's certificate, issued privately: it reaches Bo alone, who exports it and has it verified
    # in an empty data dir; the relay holds nothing about it.
    assert (await host.cli("course", "create", "safety", "Jail support", "--certification")).code == 0
    issued = await host.cli_json("cert", "issue", course, bo.pubkey, "--private")
    assert issued["issued"] and issued["private"], issued
    code = issued["code"]
    listed = await eventually(lambda: _certificates(bo, code))
    assert listed[0]["holder"] == bo.pubkey and listed[0]["status"] == "valid"
    bundle = bo.home / "certificate.json"
    assert (await bo.cli("cert", "export", code, "-o", str(bundle))).code == 0
    empty = bo.home.parent / "verifier"
    empty.mkdir()
    verified = await cli_in_thread("cert", "verify", str(bundle), "--data-dir", str(empty), "--json")
    assert verified.code == 0 and json.loads(verified.stdout)["status"] == "valid", verified.output
    certificate_kinds = frozenset({kinds.BADGE_AWARD, kinds.BADGE_DEFINITION, kinds.CERTIFICATE_REVOCATION})
    await host.daemon.outbox.deliver_due()
    assert await _outsider_reads(url, Filter(kinds=certificate_kinds)) == []
    assert await _outsider_reads(url, Filter(kinds=frozenset({kinds.BADGE_AWARD}), tags={"p": frozenset({bo.pubkey})})) == []

    # Revoked: the relay gets a marker naming the award by hash only, and the index says revoked.
    assert (await host.cli("cert", "revoke", code)).code == 0
    markers = await eventually(lambda: _outsider_reads(url, Filter(kinds=certificate_kinds)))
    assert [[t[0] for t in m.tags] for m in markers] == [["x", "alt"]]
    assert bo.pubkey not in markers[0].to_json() and issued["award_id"] not in markers[0].to_json()
    assert (await host.cli("cert", "verify", code)).code == 4

    # More bad input: admitting to an ended session; tracking attendance for an unknown lesson.
    decisions = len(await host.ctx.store.query([Filter(kinds=frozenset({kinds.WAITING_ROOM_DECISION}))]))
    late = await host.cli("room", "admit", lesson_ref, ada.pubkey)
    assert late.code == 1 and "not allowed while the session is ended" in late.stderr
    assert len(await host.ctx.store.query([Filter(kinds=frozenset({kinds.WAITING_ROOM_DECISION}))])) == decisions
    unknown = f"{kinds.LESSON}:{host.pubkey}:no-such-lesson"
    observed = len(await host.ctx.store.actions(action=live.OBSERVED_ACTION))
    with pytest.raises(NotFound):
        await live.track_live_attendance(host.ctx, unknown, ada.pubkey, clock.now() - 60)
    assert len(await host.ctx.store.actions(action=live.OBSERVED_ACTION)) == observed


async def _epochs_reach(person: Person, lesson, epoch: int):
    epochs = await person.epochs(lesson)
    return epochs if epoch in epochs else None


async def _room_epoch(person: Person, lesson, epoch: int) -> bool:
    await person.live.reconcile()  # what the live subscription missed, if anything
    room = current_room(await live.load_evidence(person.ctx, lesson))
    return room is not None and room.key_epoch == epoch


async def _state(person: Person, lesson: str, wanted: str) -> bool:
    await person.live.reconcile()  # what the live subscription missed, if anything
    result = await person.cli("lesson", "show", lesson, "--json")
    return result.code == 0 and json.loads(result.stdout)["state"] == wanted


async def _waiting(host: Person, lesson: str, count: int):
    await host.live.reconcile()  # what the live subscription missed, if anything
    answer = await host.cli_json("room", "waiting", lesson)
    return answer["waiting"] if len(answer["waiting"]) == count else None


async def _claims(host: Person, lesson: str, pubkey: str, count: int) -> bool:
    await host.live.reconcile()  # what the live subscription missed, if anything
    found = await host.ctx.store.query([Filter(kinds=frozenset({kinds.ATTENDANCE_CLAIM}), authors=frozenset({pubkey}),
                                               tags={"a": frozenset({lesson})})])
    return len(found) >= count


async def _sent(host: Person, epoch: int) -> set[str]:
    return {a.pubkey for a in await host.ctx.store.actions(action="room-key-sent") if a.detail == str(epoch)}


async def _delivered(host: Person, learners: int) -> bool:
    """The host keeps the records privately (none published) and each learner's delivery went out."""
    wanted = [Filter(kinds=frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD}))]
    assert await host.ctx.store.query(wanted) == []
    kept = await host.ctx.store.query(wanted, include_private=True)
    deliveries = await host.ctx.store.actions(action="attendance")
    wraps = await host.ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}))])
    states = [e.state.value for w in wraps for e in await host.ctx.store.outbox_entries(w.id)]
    return len(kept) == 3 and len(deliveries) == learners and "pending" not in states


async def _certificates(person: Person, code: str):
    listed = (await person.cli_json("cert", "list"))["certificates"]
    return [c for c in listed if c["code"] == code] or None


async def _outsider_reads(relay: str, *filters: Filter) -> list:
    """What anyone reads from the relay: a fresh pool, no key."""
    pool = make_pool(signer=None, clock=SystemClock())
    try:
        return await pool.fetch(list(filters), [relay], timeout=5)
    finally:
        await pool.close()


async def _with_record(person: Person, lesson: str):
    """The learner's view once the host's record (and, where it is met, the completion) arrived."""
    await person.live.reconcile()
    view = await person.cli_json("lesson", "status", lesson)
    return view if view["record"] and (view["completed"] or not view["record"]["met"]) else None
