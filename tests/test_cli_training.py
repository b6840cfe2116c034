"""The cert, crm and event commands through a running daemon's control API (FakePool), and the
daemon's expiry notices: one DM per certificate, whatever the ticks and restarts."""

from __future__ import annotations

import asyncio

import pytest
from daemon.daemon_fakes import FakePool
from services.training_world import DAY, School, school
from test_cli_services import cli_in_thread, lines

from nostr_training import kinds
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.certificates import TrainingRecords
from nostr_training.daemon.config import load_config
from nostr_training.keys import save_key_file
from nostr_training.nips.nip19 import npub_encode
from nostr_training.services import certificates as certs
from nostr_training.signer import LocalSigner

R = "wss://relay.example"


async def run_ticks(clock, component: TrainingRecords, rounds: int = 1) -> None:
    for _ in range(rounds):
        await clock.advance(int(component.interval))
        async with asyncio.timeout(10):
            while not (component.waiting.is_set() and component.next_due > clock.now()):
                await asyncio.sleep(0.002)


@pytest.fixture
def world() -> School:
    return school(validity_days=40)


@pytest.fixture
async def issuer_daemon(home, world, clock):
    save_key_file(home / "key.ncryptsec", world.issuer, "correct horse", log_n=4)
    component = TrainingRecords()
    daemon = Daemon(load_config().with_overrides(relays=[R], port=0), signer=LocalSigner(world.issuer), pool=FakePool(),
                    clock=clock, components=(component,))
    await daemon.start()
    for event in world.events:
        await daemon.store.add(event)
    daemon.training = component  # type: ignore[attr-defined]
    yield daemon
    await daemon.stop()


async def test_crm_commands_answer_over_linked_contacts(issuer_daemon, world, tmp_path):
    ana, ben = world.learners[:2]
    for lesson in world.lessons:
        await issuer_daemon.store.add(world.completion(ana, lesson))
    await run_ticks(issuer_daemon.clock, issuer_daemon.training)
    assert issuer_daemon.training.issued == 1
    path = tmp_path / "people.csv"
    path.write_text(f"name,email,npub\nAna,ana@example.org,{npub_encode(ana.public_key)}\nBen,ben@example.org,\n")
    result = await cli_in_thread("crm", "import", str(path), "--json")
    assert lines(result) == [{"added": 2, "updated": 0, "unchanged": 0, "dry_run": False}]
    assert (await cli_in_thread("crm", "link", "Ben", npub_encode(ben.public_key))).code == 0
    met = await cli_in_thread("crm", "require", "Ana", world.course.coordinate, "--json")
    unmet = await cli_in_thread("crm", "require", "Ben", world.course.coordinate, "--json")
    assert (met.code, lines(met)[0]["met"]) == (0, True)
    assert (unmet.code, lines(unmet)[0]["requirements"][0]["status"]) == (1, "missing")
    certified = await cli_in_thread("crm", "list", "--certified-in", world.course.coordinate, "--csv")
    assert certified.stdout.splitlines()[1].split(",")[1] == "Ana" and len(certified.stdout.splitlines()) == 2
    shown = lines(await cli_in_thread("crm", "show", "Ana", "--json"))[0]
    assert (shown["certifications_earned"], shown["completed"]) == (1, 1)
    await issuer_daemon.clock.advance(15 * DAY)
    expiring = lines(await cli_in_thread("crm", "expiring", "--days", "30", "--json"))[0]["expiring"]
    assert [(e["contact"]["name"], e["days_left"]) for e in expiring] == [("Ana", 25)]
    listed = lines(await cli_in_thread("cert", "list", "--expiring", "30", "--json"))[0]["certificates"]
    assert [(c["holder"], c["status"]) for c in listed] == [(ana.public_key, "expiring")]


async def test_the_daemon_sends_one_expiry_notice_per_certificate(issuer_daemon, world):
    ana = world.learners[0]
    for lesson in world.lessons:
        await issuer_daemon.store.add(world.completion(ana, lesson))
    await run_ticks(issuer_daemon.clock, issuer_daemon.training)
    await issuer_daemon.clock.advance(9 * DAY)
    await run_ticks(issuer_daemon.clock, issuer_daemon.training, 2)
    assert issuer_daemon.training.notices == 0, "40-day certificate: 31 days left, not yet within 30"
    await issuer_daemon.clock.advance(2 * DAY)
    await run_ticks(issuer_daemon.clock, issuer_daemon.training, 4)
    notices = await issuer_daemon.store.actions(action="certificate-expiry-notice")
    assert issuer_daemon.training.notices == 1 and [n.pubkey for n in notices] == [ana.public_key]
    wrap = await issuer_daemon.store.get(notices[0].event_id)
    assert wrap.kind == kinds.GIFT_WRAP and wrap.tag_value("p") == ana.public_key


async def test_event_commands_create_and_sync_an_rsvp(issuer_daemon, world):
    clock = issuer_daemon.clock
    created = await cli_in_thread(
        "event", "create", "--d", "fa-day", "--title", "First aid day", "--start", str(clock.now() + DAY),
        "--end", str(clock.now() + DAY + 3600), "--location", "Hall B", "--course", world.course.coordinate, "--json",
    )
    assert created.code == 0, created.stderr
    address = lines(created)[0]["event"]
    ana = world.learners[0]
    going = await cli_in_thread("event", "rsvp-sync", address, npub_encode(ana.public_key), "going", "--json")
    assert lines(going)[0] | {"enrolled": True} == lines(going)[0] and lines(going)[0]["status"] == "accepted"
    refused = await cli_in_thread("event", "rsvp-sync", address, npub_encode(ana.public_key), "perhaps")
    assert refused.code == 1 and "perhaps" in refused.stderr


async def test_a_learner_cannot_issue_through_the_cli(home, world, clock, tmp_path):
    keys = world.learners[0]
    save_key_file(home / "key.ncryptsec", keys, "correct horse", log_n=4)
    daemon = Daemon(load_config().with_overrides(relays=[R], port=0), signer=LocalSigner(keys), pool=FakePool(), clock=clock)
    await daemon.start()
    try:
        for event in world.events:
            await daemon.store.add(event)
        refused = await cli_in_thread("cert", "issue", world.course.coordinate, npub_encode(keys.public_key), "--reason", "me")
        assert refused.code == 1 and "only its issuer" in refused.stderr
        assert await certs.list_certificates(daemon.services) == []
    finally:
        await daemon.stop()


