"""The CRM over every contact (not only the user's), fed from the index; event RSVPs enrol."""

from __future__ import annotations

import pytest

from nostr_training import kinds
from nostr_training.clock import ManualClock
from nostr_training.errors import ContactError, MalformedEvent, PrivacyRefused
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.nips.nip19 import npub_encode
from nostr_training.rules.certification import CertificateStatus
from nostr_training.services import certificates as certs
from nostr_training.services import crm
from nostr_training.services import events as training_events

from .training_world import DAY, T, context, school, signed

CSV = "name,email,npub,tags\r\n" + "".join(f"{name},{name.lower()}@example.org,{{{name}}},volunteers\r\n" for name in (
    "Valid", "Expiring", "Expired", "Revoked", "Renewed", "Never")) + "Unlinked,u@example.org,,volunteers\r\n"


async def crm_world():
    """Six linked contacts whose certificates are in every state at T, and one not linked."""
    world = school(validity_days=100, learners=6)
    store = None
    at = {"Valid": -10, "Expiring": -80, "Expired": -150, "Revoked": -10, "Renewed": -150}
    names = ["Valid", "Expiring", "Expired", "Revoked", "Renewed", "Never"]
    people = dict(zip(names, world.learners, strict=True))
    for name, days in sorted(at.items(), key=lambda item: item[1]):
        clock = ManualClock(T + days * DAY)
        ctx = await context(world.issuer, clock, store)
        store = ctx.store
        if len(await store.query([])) == 0:
            for event in world.events:
                await store.add(event)
        for lesson in world.lessons:
            await store.add(world.completion(people[name], lesson, at=T - 200 * DAY))
        await certs.issue_certificate(ctx, world.course.coordinate, people[name].public_key)
    clock = ManualClock(T - 5 * DAY)
    ctx = await context(world.issuer, clock, store)
    await certs.revoke_certificate(ctx, (await certs.list_certificates(ctx, holder=people["Revoked"].public_key))[0].code, "error")
    await certs.issue_certificate(ctx, world.course.coordinate, people["Renewed"].public_key)
    now = await context(world.issuer, ManualClock(T), store)
    text = CSV
    for name, keys in people.items():
        text = text.replace("{" + name + "}", npub_encode(keys.public_key))
    assert await crm.import_contacts(now, text) == {"added": 7, "updated": 0, "unchanged": 0, "dry_run": False}
    return world, people, now


async def test_the_seed_questions_over_contacts_in_every_certificate_state():
    world, people, ctx = await crm_world()
    course = world.course.coordinate
    holders = [c.name for c in await crm.filter_contacts_by_certification(ctx, course)]
    assert holders == ["Expiring", "Renewed", "Valid"]
    with_expired = [c.name for c in await crm.filter_contacts_by_certification(ctx, course, include_expired=True)]
    assert with_expired == ["Expired", "Expiring", "Renewed", "Valid"]
    report = {name: await crm.check_training_requirements(ctx, keys.public_key, [course]) for name, keys in people.items()}
    assert {name: r.met for name, r in report.items()} == {
        "Valid": True, "Expiring": True, "Expired": False, "Revoked": False, "Renewed": True, "Never": False}
    assert report["Expired"].requirements[0].expired and report["Expired"].requirements[0].expires_at == T - 50 * DAY
    assert report["Revoked"].requirements[0].status is CertificateStatus.REVOKED
    assert report["Never"].requirements[0].status is CertificateStatus.MISSING
    assert report["Renewed"].requirements[0].expires_at == T + 95 * DAY
    expiring = await crm.get_contacts_with_expiring_certifications(ctx, 30)
    assert [(e["contact"]["name"], e["days_left"]) for e in expiring] == [("Expiring", 20)]
    wider = await crm.get_contacts_with_expiring_certifications(ctx, 100)
    assert [(e["contact"]["name"], e["days_left"]) for e in wider] == [("Expiring", 20), ("Valid", 90), ("Renewed", 95)]
    status = await crm.get_contact_training_status(ctx, "Renewed")
    assert (status["completed"], status["certifications_earned"], status["certifications_expiring"]) == (1, 1, 0)
    assert (await crm.get_contact_training_status(ctx, "Unlinked"))["linked"] is False
    revoked = await crm.get_contact_training_status(ctx, npub_encode(people["Revoked"].public_key))
    assert revoked["certifications"][0]["status"] == "revoked" and revoked["certifications_earned"] == 0


async def test_contacts_round_trip_through_csv_and_link_by_npub():
    world, people, ctx = await crm_world()
    exported = await crm.export_contacts(ctx)
    assert await crm.import_contacts(ctx, exported) == {"added": 0, "updated": 0, "unchanged": 7, "dry_run": False}
    stranger = Keys.generate()
    linked = await crm.link_contact(ctx, "Unlinked", npub_encode(stranger.public_key))
    assert linked.pubkey == stranger.public_key
    with pytest.raises(ContactError, match="already linked"):
        await crm.link_contact(ctx, "Never", npub_encode(stranger.public_key))
    issued = await crm.add_certification_to_contact(ctx, "Unlinked", world.course.coordinate, "assessed at the door")
    assert issued.issued and issued.learner == stranger.public_key


async def test_an_event_rsvp_of_going_enrols_and_confirms_and_not_going_withdraws(clock):
    world = school()
    host_ctx = await context(world.issuer, clock)
    for event in world.events:
        await host_ctx.store.add(event)
    created = await training_events.create_training_event(
        host_ctx, d="fa-day", title="First aid day", start=clock.now() + DAY, end=clock.now() + DAY + 3600,
        location="Hall B", course=world.course.coordinate,
    )
    link = kinds.parse_training_link(created)
    assert link.lesson == created.address and link.course == world.course.coordinate
    ana = world.learners[0]
    rsvp = signed(ana, kinds.build_rsvp(kinds.parse_lesson(created), "accepted", created_at=clock.now()))
    await host_ctx.store.add(rsvp)
    change = await training_events.sync_event_rsvp_to_training(host_ctx, created.address, ana.public_key, "going", rsvp=rsvp)
    again = await training_events.sync_event_rsvp_to_training(host_ctx, created.address, ana.public_key, "going", rsvp=rsvp)
    assert change.enrolled and change.recorded and not again.recorded and change.status == "accepted"
    roster = await training_events.event_rsvps(host_ctx.store, created.address, clock.now())
    assert [(r.author, r.status) for _, r in roster] == [(ana.public_key, kinds.RsvpStatus.ACCEPTED)]
    status = await crm.training_book(host_ctx, clock.now())
    assert status.evidence_of(ana.public_key).enrolments == {world.course.coordinate: clock.now()}
    await clock.advance(60)
    withdrawn = await training_events.sync_event_rsvp_to_training(host_ctx, created.address, ana.public_key, "not_going")
    assert not withdrawn.enrolled and withdrawn.lesson_rsvp is None
    assert await training_events.enrolments(host_ctx.store) == {(ana.public_key, world.course.coordinate): (False, clock.now())}
    mine = await training_events.sync_event_rsvp_to_training(host_ctx, created.address, world.issuer.public_key, "maybe")
    lesson_rsvp = await host_ctx.store.get(mine.lesson_rsvp)
    assert kinds.parse_rsvp(lesson_rsvp).status is kinds.RsvpStatus.TENTATIVE and lesson_rsvp.tag_value("a") == created.address


async def test_a_door_check_is_counted_once_and_never_dated_in_the_future(clock):
    world = school()
    host_ctx = await context(world.issuer, clock)
    for event in world.events:
        await host_ctx.store.add(event)
    lesson = world.lessons[0].coordinate
    ana = world.learners[0]
    first = await training_events.track_event_attendance(host_ctx, lesson, ana.public_key, clock.now() - 600, clock.now() - 60)
    again = await training_events.track_event_attendance(host_ctx, lesson, ana.public_key, clock.now() - 600, clock.now() - 60)
    assert len(first) == 2 and again == []
    checks = await training_events.door_checks(host_ctx.store, lesson, clock.now())
    assert sorted((c.action.value, c.at) for c in checks) == [("check_in", clock.now() - 600), ("check_out", clock.now() - 60)]
    # Never published (issue 15): the host keeps them, the learner gets one gift wrap per check.
    assert await host_ctx.store.query([Filter(kinds=frozenset({kinds.DOOR_CHECK}))]) == []
    queued = {e.kind for e in await host_ctx.store.outbox_entries()}
    wraps = await host_ctx.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({ana.public_key})})])
    assert queued == {kinds.GIFT_WRAP} and len(wraps) == 2
    with pytest.raises(PrivacyRefused):
        await host_ctx.outbox.submit(await host_ctx.store.get(first[0]))
    with pytest.raises(MalformedEvent, match="after now"):
        await training_events.track_event_attendance(host_ctx, lesson, ana.public_key, clock.now() + 60)


async def test_linking_an_event_to_a_lesson_makes_its_rsvps_answers_to_that_lesson(clock):
    world = school()
    host_ctx = await context(world.issuer, clock)
    for event in world.events:
        await host_ctx.store.add(event)
    created = await training_events.create_training_event(
        host_ctx, d="open-day", title="Open day", start=clock.now() + DAY, end=clock.now() + DAY + 3600, location="Hall B",
    )
    assert kinds.parse_training_link(created).lesson is None
    await clock.advance(5)
    lesson = world.lessons[1].coordinate
    linked = await training_events.link_event_to_training(host_ctx, created.address, course=world.course.coordinate, lesson=lesson)
    link = await training_events.event_link(host_ctx.store, created.address, clock.now())
    assert linked.address == created.address and (link.course, link.lesson) == (world.course.coordinate, lesson)
    ben = world.learners[1]
    answer = signed(ben, kinds.build_rsvp(kinds.parse_lesson(linked), "declined", created_at=clock.now()))
    await host_ctx.store.add(answer)
    change = await training_events.sync_event_rsvp_to_training(host_ctx, created.address, ben.public_key, "declined", rsvp=answer)
    assert (change.enrolled, change.lesson) == (False, lesson)
    assert [(r.author, r.lesson) for _, r in await training_events.event_rsvps(host_ctx.store, created.address, clock.now())] == [
        (ben.public_key, lesson)]
    stranger = await context(Keys.generate(), clock, host_ctx.store)
    with pytest.raises(MalformedEvent, match="only the event's author"):
        await training_events.link_event_to_training(stranger, created.address, lesson=lesson)
