"""Issue 14 end to end against a real relay (rust-nostr's, a child process on loopback) with
daemons in-process on ManualClock and the CLI run in-process: an issuer's daemon turns door
check-ins into attendance, completion and one certificate (still one after a restart); the
exported file verifies on a machine that never saw the relay, and each forgery gets its own exit
code; door checks made with the relay down reach the learner (gift-wrapped, never published)
once it is back."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from click.testing import CliRunner
from polling import eventually

from nostr_training import kinds
from nostr_training.cli import main
from nostr_training.clock import ManualClock
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.certificates import TrainingRecords
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import Event, EventTemplate, coordinate, sign_event, verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.kinds.private import parse_record_delivery
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.nips.nip19 import npub_encode
from nostr_training.nips.nip59 import unwrap
from nostr_training.services.events import create_training_event
from nostr_training.signer import LocalSigner

from relay_servers import restartable_rust_relay, rust_relay  # noqa: F401  (fixtures)

pytestmark = pytest.mark.relay

MINUTE = 60
DAY = 86400


def invoke(*args: str) -> tuple[int, str, str]:
    """The CLI in-process exactly as the console script runs it (main -> sys.exit)."""
    with CliRunner().isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


async def cli(*args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(invoke, *args)




async def run_ticks(clock: ManualClock, component: TrainingRecords, rounds: int = 1) -> None:
    """Advance one interval at a time and wait for the tick each advance starts to finish."""
    for _ in range(rounds):
        await clock.advance(int(component.interval))
        async with asyncio.timeout(20):
            while not (component.waiting.is_set() and component.next_due > clock.now()):
                await asyncio.sleep(0.005)


async def on_relay(url: str, filters: list[Filter]) -> list[Event]:
    async with RelayPool(verify=verify_event) as pool:
        return await pool.fetch(filters, [url], timeout=10)


async def start_daemon(config, keys: Keys, clock: ManualClock) -> tuple[Daemon, TrainingRecords]:
    component = TrainingRecords()
    daemon = Daemon(config, signer=LocalSigner(keys), clock=clock, components=(component,))
    await daemon.start()
    return daemon, component


async def publish_course(daemon: Daemon, issuer: Keys, lesson_d: str, *, validity_days: int = 365) -> kinds.Course:
    lesson = coordinate(kinds.LESSON, issuer.public_key, lesson_d)
    course = kinds.Course(issuer.public_key, "first-aid", "First aid", "Bandages and calm.", lessons=(lesson,),
                          certification_enabled=True, validity_days=validity_days)
    event = sign_event(kinds.build_course(course, created_at=daemon.clock.now() - DAY), issuer.secret)
    await daemon.outbox.submit(event)
    return course


def resigned(event: Event, keys: Keys, tags=None) -> dict:
    return sign_event(EventTemplate(event.kind, tuple(tags if tags is not None else event.tags), event.content, event.created_at),
                      keys.secret).to_dict()


async def test_the_issuers_daemon_certifies_once_and_anyone_verifies_the_file_offline(home, rust_relay, tmp_path):
    issuer, ana, ben, mallory = (Keys.generate() for _ in range(4))
    save_key_file(home / "key.ncryptsec", issuer, "correct horse", log_n=4)
    # Daemon time runs behind the wall clock, so the CLI without a daemon (the wall clock) sees
    # the award's valid_from in its past however many ticks the test runs.
    clock = ManualClock(int(time.time()) - 6 * 3600)
    config = load_config().with_overrides(relays=[rust_relay.url], port=0)
    daemon, component = await start_daemon(config, issuer, clock)
    try:
        course = await publish_course(daemon, issuer, "fa-day")
        start = clock.now() - 2 * 3600
        lesson = await create_training_event(
            daemon.services, d="fa-day", title="First aid day", start=start, end=start + 60 * MINUTE,
            location="Hall B", course=course.coordinate,
        )
        # The learner answers the event with their own key; the host's daemon sees it on the relay.
        rsvp = sign_event(kinds.build_rsvp(kinds.parse_lesson(lesson), "accepted", created_at=clock.now()), ana.secret)
        async with RelayPool(verify=verify_event) as pool:
            await pool.publish(rsvp, [rust_relay.url], timeout=10)
        door = [("checkin", ana, start + 5 * MINUTE), ("checkout", ana, start + 50 * MINUTE),
                ("checkin", ben, start + 10 * MINUTE), ("checkout", ben, start + 30 * MINUTE)]
        for verb, who, at in door:
            code, out, err = await cli("event", verb, lesson.address, npub_encode(who.public_key), "--at", str(at), "--json")
            assert code == 0, err
            assert "signing with the running daemon's key" in err and len(json.loads(out)["ids"]) == 1
        await eventually(lambda: daemon.store.get(rsvp.id))
        await run_ticks(clock, component)

        records = {r.learner: r for r in await daemon.store.attendance(lesson.address)}
        assert (records[ana.public_key].total_seconds, records[ana.public_key].met) == (45 * MINUTE, True)
        assert (records[ben.public_key].total_seconds, records[ben.public_key].met) == (20 * MINUTE, False)
        awards = await daemon.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD}))])
        assert [a.tag_value("p") for a in awards] == [ana.public_key] and awards[0].pubkey == issuer.public_key
        enrolled = await daemon.store.actions(action="training-enrolment", pubkey=ana.public_key)
        assert [(e.subject, e.event_id) for e in enrolled] == [(course.coordinate, rsvp.id)]
        assert json.loads(enrolled[0].detail)["status"] == "accepted"
        code = awards[0].tag_value("code")
        await run_ticks(clock, component, 3)
        assert len(await daemon.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD}))])) == 1

        async def all_delivered() -> bool:
            return await daemon.store.outbox_depth() == 0

        await eventually(all_delivered)
    finally:
        await daemon.stop()

    # A restart issues nothing again.
    daemon, component = await start_daemon(config, issuer, clock)
    try:
        await run_ticks(clock, component, 3)
        assert component.issued == 0 and component.failures == 0
        assert len(await daemon.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD}))])) == 1
        on_the_relay = await on_relay(rust_relay.url, [Filter(kinds=frozenset({kinds.BADGE_AWARD}), authors=frozenset({issuer.public_key}))])
        assert [a.tag_value("code") for a in on_the_relay] == [code]
        records_kinds = frozenset({kinds.ATTENDANCE_RECORD, kinds.COMPLETION_RECORD})
        assert await on_relay(rust_relay.url, [Filter(kinds=records_kinds)]) == []  # never published (issue 15)
        assert len(await daemon.store.actions(action="door-attendance")) == 2  # each learner's own, delivered once

        # The exported file verifies on a machine that never saw the relay.
        genuine_path = tmp_path / "genuine.json"
        assert (await cli("cert", "export", code, "-o", str(genuine_path)))[0] == 0
        fresh = tmp_path / "fresh-machine"
        status, out, err = await cli("cert", "verify", str(genuine_path), "--data-dir", str(fresh))
        assert status == 0, out + err
        assert out.startswith("VALID: First aid") and npub_encode(ana.public_key) in out and code in out
        assert not (fresh / "config.toml").exists() or "relay" not in (fresh / "config.toml").read_text()

        genuine = json.loads(genuine_path.read_text())
        award, definition = Event.from_dict(genuine["award"]), Event.from_dict(genuine["definition"])
        tampered = json.loads(json.dumps(genuine))
        tampered["award"]["tags"] = [t if t[0] != "valid_until" else ["valid_until", str(clock.now() + 9000 * DAY)]
                                     for t in tampered["award"]["tags"]]
        own_definition = resigned(definition, ana)
        self_issued = {**genuine, "definition": own_definition, "award": resigned(award, ana, [
            t if t[0] != "a" else ("a", Event.from_dict(own_definition).address) for t in award.tags])}
        foreign_definition = resigned(definition, mallory)
        foreign = {**genuine, "definition": foreign_definition, "award": resigned(award, mallory, [
            t if t[0] != "a" else ("a", Event.from_dict(foreign_definition).address) for t in award.tags])}
        now = int(time.time())
        expired = {**genuine, "award": resigned(award, issuer, [
            t if t[0] not in ("valid_from", "valid_until") else (t[0], str(now - 400 * DAY if t[0] == "valid_from" else now - 35 * DAY))
            for t in award.tags])}
        answers = {}
        for name, data in (("tampered", tampered), ("self-issued", self_issued), ("foreign-key", foreign), ("expired", expired)):
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(data))
            status, out, _ = await cli("cert", "verify", str(path), "--data-dir", str(fresh), "--json")
            answers[name] = (status, json.loads(out)["status"], json.loads(out)["problem"])
        assert answers == {
            "tampered": (6, "invalid", "tampered"),
            "self-issued": (6, "invalid", "self_issued"),
            "foreign-key": (6, "invalid", "foreign_key"),
            "expired": (3, "expired", None),
        }
        assert (await cli("cert", "verify", "ABCD-EFGH-JKMN-PQRS", "--data-dir", str(fresh)))[0] == 5

        status, _, err = await cli("cert", "revoke", code, "--reason", "issued in error")
        assert status == 0 and "signing with the running daemon's key" in err
        revoked_path = tmp_path / "revoked.json"
        assert (await cli("cert", "export", code, "-o", str(revoked_path)))[0] == 0
        status, out, _ = await cli("cert", "verify", str(revoked_path), "--data-dir", str(fresh), "--json")
        assert (status, json.loads(out)["status"], json.loads(out)["revocation_reason"]) == (4, "revoked", "issued in error")
        assert (await cli("cert", "verify", code))[0] == 4, "the issuer's own index says revoked too"
        await run_ticks(clock, component, 2)
        assert component.issued == 0, "a revoked certificate is not re-issued automatically"
    finally:
        await daemon.stop()


async def test_door_checks_made_with_the_relay_down_reach_the_learner_once_it_is_back(home, restartable_rust_relay):
    """A door check is never published (issue 15): the relay carries only a gift wrap to the
    learner, holding the host-signed checks, which verify on their own."""
    relay = restartable_rust_relay
    host, learner = Keys.generate(), Keys.generate()
    save_key_file(home / "key.ncryptsec", host, "correct horse", log_n=4)
    config = load_config().with_overrides(relays=[relay.url], port=0)
    write_config(config)  # the host's relays, as the CLI without a daemon reads them
    clock = ManualClock(int(time.time()))
    daemon, _ = await start_daemon(config, host, clock)
    try:
        start = clock.now() - 3600
        lesson = await create_training_event(
            daemon.services, d="door", title="Door test", start=start, end=start + 3600, location="Hall C",
            course=coordinate(kinds.COURSE, host.public_key, "c"),
        )
        # The learner's inbox relays (10050), as the host's daemon saw them before the door.
        await daemon.store.add(sign_event(inbox_relays_template([relay.url], created_at=clock.now()), learner.secret))
    finally:
        await daemon.stop()
    relay.stop()
    # At the door, no daemon and no network: the CLI signs and commits to the data dir's outbox.
    status, out, err = await cli("event", "checkin", lesson.address, npub_encode(learner.public_key), "--json")
    assert status == 0, err
    assert "signing with npub" in err and "queued" in err
    ids = json.loads(out)["ids"]
    status, out, _ = await cli("event", "checkout", lesson.address, npub_encode(learner.public_key), "--json")
    ids += json.loads(out)["ids"]
    assert len(ids) == 2
    relay.start()
    daemon, _ = await start_daemon(config, host, clock)
    try:
        async def delivered() -> bool:
            await clock.advance(600)
            return await daemon.store.outbox_depth() == 0

        await eventually(delivered, tries=200, delay=0.1)
        assert await on_relay(relay.url, [Filter(kinds=frozenset({kinds.DOOR_CHECK}))]) == []
        assert await on_relay(relay.url, [Filter(ids=frozenset(ids))]) == []
        wraps = await on_relay(relay.url, [Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({learner.public_key})})])
        held = []
        for wrap in wraps:
            delivery = parse_record_delivery((await unwrap(wrap, LocalSigner(learner))).rumor)
            assert delivery.author == host.public_key and delivery.subject == lesson.address
            held += [verify_event(e) for e in delivery.events]
        checks = [e for e in held if e.kind == kinds.DOOR_CHECK]
        assert sorted(e.id for e in checks) == sorted(ids)  # one delivery per check: two wraps
        assert {kinds.parse_door_check(e).action.value for e in checks} == {"check_in", "check_out"}
        # The lesson has ended: the daemon turned the kept checks into the learner's record (third wrap).
        [record] = [kinds.parse_attendance_record(e) for e in held if e.kind == kinds.ATTENDANCE_RECORD]
        assert len(wraps) == 3 and record.learner == learner.public_key and sorted(record.evidence) == sorted(ids)
        # The host keeps its own checks privately: the door's attendance is still counted.
        kept = await daemon.store.query([Filter(kinds=frozenset({kinds.DOOR_CHECK}))], include_private=True)
        assert sorted(e.id for e in kept) == sorted(ids)
    finally:
        await daemon.stop()


def test_cert_verify_reads_a_file_that_is_not_a_bundle_as_invalid(home, tmp_path):
    path = tmp_path / "junk.json"
    path.write_text('{"format": "something else"}')
    status, out, _ = invoke("cert", "verify", str(path), "--json")
    assert (status, json.loads(out)["status"], json.loads(out)["problem"]) == (6, "invalid", "malformed")


