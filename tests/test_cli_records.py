"""``attendance proof|verify`` and ``cert issue --private`` / ``cert publish`` from the CLI, through
a learner's and an issuer's running daemons (FakePool): the proof prints from the learner's
inbox and verifies offline; a private certificate is never handed to the relays by its issuer."""

from __future__ import annotations

import json
from dataclasses import replace

from daemon.daemon_fakes import FakePool
from services.test_private_records import attendance, completion
from services.training_world import context, school
from test_cli_services import cli_in_thread, daemon, user  # noqa: F401  (fixtures)
from test_cli_training import run_ticks

from nostr_training import kinds
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.certificates import TrainingRecords
from nostr_training.daemon.config import load_config
from nostr_training.filters import Filter
from nostr_training.keys import save_key_file
from nostr_training.nips.nip19 import npub_encode
from nostr_training.services import private
from nostr_training.signer import LocalSigner


async def test_a_learner_prints_their_proof_and_anyone_verifies_it_offline(daemon, user, clock, tmp_path):
    world = school()
    host = world.issuer
    hosting = await context(host, clock)
    for event in world.events:
        await daemon.store.add(event)
        await hosting.store.add(event)
    lesson = world.lessons[0].coordinate
    missing = await cli_in_thread("attendance", "proof", lesson)
    assert missing.code == 1 and "no attendance record from its host" in missing.stderr

    record = attendance(host, user, lesson, 45, met=True)
    done = completion(host, user, lesson, record.id)
    await private.deliver_records(hosting, [record, done], subject=lesson, recipient=user.public_key, once="a|1")
    for wrap in await hosting.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}))]):
        await daemon.store.add(wrap)

    printed = await cli_in_thread("attendance", "proof", lesson)
    assert printed.code == 0, printed.output
    assert [e["id"] for e in json.loads(printed.stdout)] == [record.id, done.id]
    path = tmp_path / "proof.json"
    path.write_text(printed.stdout)
    checked = await cli_in_thread("attendance", "verify", str(path))
    assert checked.code == 0 and "VALID" in checked.stdout
    assert "minutes   45" in checked.stdout and "complete  yes" in checked.stdout
    assert npub_encode(user.public_key) in checked.stdout
    as_json = json.loads((await cli_in_thread("attendance", "verify", "-", "--json", stdin=printed.stdout)).stdout)
    assert as_json["valid"] and as_json["lesson"] == lesson and as_json["learner"] == user.public_key

    edited = printed.stdout.replace('"2700"', '"3600"')
    assert edited != printed.stdout
    refused = await cli_in_thread("attendance", "verify", "-", stdin=edited)
    assert refused.code == 1 and "INVALID" in refused.stdout and "does not verify" in refused.stderr


async def test_the_issuer_issues_a_private_certificate_that_never_reaches_the_relays(home, clock):
    world = school()
    save_key_file(home / "key.ncryptsec", world.issuer, "correct horse", log_n=4)
    pool = FakePool()
    running = Daemon(load_config().with_overrides(relays=["wss://relay.example"], port=0),
                     signer=LocalSigner(world.issuer), pool=pool, clock=clock)
    await running.start()
    try:
        for event in world.events:
            await running.store.add(event)
        ana = world.learners[0]
        issued = await cli_in_thread("cert", "issue", world.course.coordinate, npub_encode(ana.public_key),
                                     "--reason", "exam passed", "--private")
        assert issued.code == 0 and "privately" in issued.stdout, issued.output
        code = issued.stdout.split()[1]
        listed = json.loads((await cli_in_thread("cert", "list", "--json")).stdout)["certificates"]
        assert [(c["code"], c["holder"]) for c in listed] == [(code, ana.public_key)]
        await running.outbox.deliver_due()
        sent = {event_id for _, event_id in pool.published}
        private_ids = {e.id for e in await running.store.query(
            [Filter(kinds=frozenset({kinds.BADGE_AWARD, kinds.BADGE_DEFINITION}))], include_private=True)}
        assert private_ids and not private_ids & sent
        refused = await cli_in_thread("cert", "publish", code)  # only the holder publishes it
        assert refused.code == 1 and "awarded to you" in refused.stderr
    finally:
        await running.stop()


async def test_the_issuers_daemon_certifies_a_private_course_privately(home, clock):
    world = school()
    ana, ben = world.learners[:2]
    component = TrainingRecords()
    pool = FakePool()
    running = Daemon(load_config().with_overrides(relays=["wss://relay.example"], port=0),
                     signer=LocalSigner(world.issuer), pool=pool, clock=clock, components=(component,))
    await running.start()
    try:
        course = replace(world.course, private=True, invitees=(ana.public_key, ben.public_key))
        rumor = await private.publish_private_item(running.services, kinds.build_course(course, created_at=clock.now()))
        for event in world.events[1:]:  # the lessons
            await running.store.add(event)
        for lesson in world.lessons:
            await running.store.add_private(world.completion(ana, lesson, at=clock.now() - 60))
        await run_ticks(clock, component, 2)
        assert component.issued == 1
        [award] = await running.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD}))], include_private=True)
        assert award.tag_value("p") == ana.public_key
        await running.outbox.deliver_due()
        assert award.id not in {event_id for _, event_id in pool.published}
        assert not await running.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD, kinds.BADGE_DEFINITION}))])
        assert (await running.store.course(rumor.address)).invitees == (ana.public_key, ben.public_key)
    finally:
        await running.stop()
