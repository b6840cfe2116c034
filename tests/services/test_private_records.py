"""Issue 15, records: attendance and completion records never leave the host in the clear, each
learner holds their own as an offline proof, and a private certificate reaches only its holder
(who alone may publish it), revoked by a marker that names nobody."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from nostr_training import kinds
from nostr_training.errors import CertificateRefused, NotFound, PrivacyRefused
from nostr_training.event import Event, sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.kinds import private as pk
from nostr_training.kinds.certificate_bundle import parse_certificate_bundle
from nostr_training.rules.verification import VerdictStatus, verify_certificate
from nostr_training.services import certificates as certs
from nostr_training.services import private, records

from .training_world import DAY, School, T, context, school

MIN = 60


def attendance(host: Keys, learner: Keys, lesson: str, minutes: int, *, met: bool, at: int = T) -> Event:
    record = kinds.AttendanceRecord(author=host.public_key, lesson=lesson, learner=learner.public_key,
                                    total_seconds=minutes * MIN, join_count=1, intervals=((at - minutes * MIN, at),),
                                    rule="at least 30 minutes", met=met, created_at=at, required_seconds=30 * MIN)
    return sign_event(kinds.build_attendance_record(record, created_at=at), host.secret)


def completion(host: Keys, learner: Keys, lesson: str, cites: str, *, at: int = T) -> Event:
    record = kinds.CompletionRecord(author=host.public_key, subject=lesson, learner=learner.public_key, completed_at=at,
                                    basis=kinds.CompletionBasis.ATTENDANCE, created_at=at, evidence=(cites,))
    return sign_event(kinds.build_completion_record(record, created_at=at), host.secret)


def door_check(host: Keys, learner: Keys, lesson: str, action: str, at: int) -> Event:
    return sign_event(kinds.build_door_check(lesson, learner.public_key, action, at=at, created_at=T), host.secret)


def door_attendance(host: Keys, learner: Keys, lesson: str, checks: list[Event]) -> Event:
    """The host daemon's record of a door: 45 minutes, the checks' ids as its evidence."""
    record = kinds.AttendanceRecord(author=host.public_key, lesson=lesson, learner=learner.public_key,
                                    total_seconds=45 * MIN, join_count=1, intervals=((T - 45 * MIN, T),),
                                    rule="at least 30 minutes", met=True, created_at=T, required_seconds=30 * MIN,
                                    evidence=tuple(sorted(c.id for c in checks)))
    return sign_event(kinds.build_attendance_record(record, created_at=T), host.secret)


async def _host_and_learner(clock):
    """The school's issuer hosting its first lesson and Ana (Bo beside her), both indexes synced."""
    world = school()
    host, ana, bo = world.issuer, world.learners[0], world.learners[1]
    hosting, ana_ctx = await context(host, clock), await context(ana, clock)
    for event in world.events:
        await hosting.store.add(event)
        await ana_ctx.store.add(event)
    return host, ana, bo, hosting, ana_ctx, world.lessons[0].coordinate


async def handed_over(sender, receiver) -> None:
    """What the receiver's relays would hand over: every gift wrap the sender queued for them."""
    me = await receiver.require_signer().get_public_key()
    for wrap in await sender.store.query([Filter(kinds=frozenset({kinds.GIFT_WRAP}), tags={"p": frozenset({me})})]):
        await receiver.store.add(wrap, now=receiver.clock.now())


# Attendance records --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(pk.NEVER_PUBLISHED_KINDS))
async def test_attendance_and_completion_records_and_door_checks_of_a_public_lesson_are_refused_by_the_outbox(clock, kind):
    world = school()
    ctx = await context(world.issuer, clock)
    lesson, learner = world.lessons[0].coordinate, world.learners[0]
    record = attendance(world.issuer, learner, lesson, 45, met=True)
    event = {
        kinds.ATTENDANCE_RECORD: record,
        kinds.COMPLETION_RECORD: completion(world.issuer, learner, lesson, record.id),
        kinds.DOOR_CHECK: door_check(world.issuer, learner, lesson, "check_in", T - 45 * MIN),
    }[kind]
    assert pk.publication_refusal(event, frozenset()) is not None
    with pytest.raises(PrivacyRefused, match="record delivery"):
        await ctx.outbox.submit(event)
    assert await ctx.store.outbox_depth() == 0
    await ctx.outbox.submit(event, reveal=True)  # only a user's explicit choice bypasses the rule


async def test_a_learner_holds_a_proof_of_their_own_attendance_that_verifies_offline(clock):
    host, ana, bo, hosting, ana_ctx, lesson = await _host_and_learner(clock)
    with pytest.raises(NotFound, match="no attendance record from its host"):
        await records.attendance_proof(ana_ctx, lesson)
    ana_record = attendance(host, ana, lesson, 45, met=True)
    ana_done = completion(host, ana, lesson, ana_record.id)
    bo_record = attendance(host, bo, lesson, 10, met=False)
    await private.deliver_records(hosting, [ana_record, ana_done], subject=lesson, recipient=ana.public_key, once="a|1")
    await private.deliver_records(hosting, [bo_record], subject=lesson, recipient=bo.public_key, once="a|2")
    assert len(await hosting.store.attendance(lesson)) == 2  # the host keeps both, privately
    assert not await hosting.store.query([Filter(kinds=frozenset(pk.NEVER_PUBLISHED_KINDS))])
    await handed_over(hosting, ana_ctx)

    proof = await records.attendance_proof(ana_ctx, lesson)
    assert [e.id for e in proof.events] == [ana_record.id, ana_done.id]
    check = records.check_attendance_proof(proof.to_json())
    assert check.valid and (check.lesson, check.learner, check.host) == (lesson, ana.public_key, host.public_key)
    assert check.minutes == 45 and check.met and check.complete and check.completed_at == T
    assert await ana_ctx.store.get(bo_record.id) is None  # Bo's record went to Bo alone


async def test_a_proof_of_an_in_person_lesson_holds_the_door_checks_its_record_names(clock):
    host, ana, bo, hosting, ana_ctx, lesson = await _host_and_learner(clock)
    checks = [door_check(host, ana, lesson, "check_in", T - 45 * MIN), door_check(host, ana, lesson, "check_out", T)]
    for check in checks:  # as services.events.track_event_attendance hands each one over
        await private.deliver_records(hosting, [check], subject=lesson, recipient=ana.public_key, once=f"door-check|{check.id}")
    stray = door_check(host, ana, lesson, "check_in", T - 5 * MIN)  # a check the record does not name
    record = door_attendance(host, ana, lesson, checks)
    await private.deliver_records(hosting, [stray], subject=lesson, recipient=ana.public_key, once="door-check|stray")
    await private.deliver_records(hosting, [record], subject=lesson, recipient=ana.public_key, once="a|1")
    await handed_over(hosting, ana_ctx)

    proof = await records.attendance_proof(ana_ctx, lesson)
    assert proof.events[0].id == record.id and sorted(e.id for e in proof.events[1:]) == sorted(c.id for c in checks)
    check = records.check_attendance_proof(proof.to_json())
    assert check.valid and check.door_checks == 2 and check.minutes == 45, check.reason

    good = json.loads(proof.to_json())
    bo_check = door_check(host, bo, lesson, "check_in", T - 45 * MIN)
    by_someone_else = door_check(Keys.generate(), ana, lesson, "check_in", T - 45 * MIN)
    for name, extra in {"not named": stray, "another learner": bo_check, "another host": by_someone_else}.items():
        verdict = records.check_attendance_proof(json.dumps(good + [extra.to_dict()]))
        assert not verdict.valid and "door check" in verdict.reason, name


def test_a_proof_that_was_edited_or_is_not_a_hosts_record_does_not_verify():
    host, ana, bo = Keys.generate(), Keys.generate(), Keys.generate()
    lesson = f"31923:{host.public_key}:intro"
    record = attendance(host, ana, lesson, 45, met=True)
    good = json.loads(json.dumps([record.to_dict()]))
    assert records.check_attendance_proof(json.dumps(good)).valid
    assert records.check_attendance_proof(json.dumps(good[0])).valid  # one event alone is read too
    edited = [dict(good[0], tags=[t if t[0] != "total_seconds" else ["total_seconds", "3600"] for t in good[0]["tags"]])]
    cases = {
        "not JSON": "{",
        "empty": "[]",
        "edited": json.dumps(edited),
        "two records": json.dumps(good + [attendance(host, ana, lesson, 50, met=True).to_dict()]),
        "another kind": json.dumps([sign_event(kinds.build_completion_record(kinds.CompletionRecord(
            author="", subject=lesson, learner=ana.public_key, completed_at=T, basis=kinds.CompletionBasis.ATTENDANCE,
            created_at=T), created_at=T), host.secret).to_dict(), {"kind": 1}]),
        "self signed": json.dumps([attendance(ana, ana, lesson, 45, met=True).to_dict()]),
        "signed by a stranger": json.dumps([attendance(Keys.generate(), ana, lesson, 45, met=True).to_dict()]),
        "someone else's completion": json.dumps(good + [completion(host, bo, lesson, record.id).to_dict()]),
    }
    for name, text in cases.items():
        check = records.check_attendance_proof(text)
        assert not check.valid, name
        assert check.reason, name


# Private certificates -------------------------------------------------------------------------


async def _school_with_completion(clock) -> tuple[School, object, Keys]:
    world = school()
    ctx = await context(world.issuer, clock)
    for event in world.events:
        await ctx.store.add(event)
    ana = world.learners[0]
    for lesson in world.lessons:  # the host's own records, kept privately as finalise_attendance does
        await ctx.store.add_private(world.completion(ana, lesson, at=clock.now() - DAY))
    return world, ctx, ana


async def test_a_private_certificate_is_delivered_never_published_and_verifies_from_the_learners_export(clock):
    world, issuing, ana = await _school_with_completion(clock)
    issued = await certs.issue_certificate(issuing, world.course.coordinate, ana.public_key, private=True)
    assert issued.issued and issued.private
    queued = await issuing.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD, kinds.BADGE_DEFINITION}))])
    assert queued == []  # nothing published: the award and its definition are private events
    assert [c.code for c in await certs.list_certificates(issuing)] == [issued.code]  # the issuer sees it
    with pytest.raises(CertificateRefused, match="already holds"):  # the private award counts like a public one
        await certs.issue_certificate(issuing, world.course.coordinate, ana.public_key, private=True)

    learning = await context(ana, clock)
    await handed_over(issuing, learning)
    await records.refresh_inbox(learning)
    [row] = await certs.list_certificates(learning, holder=ana.public_key)
    assert (row.code, row.status) == (issued.code, "valid")
    text = await certs.export_bundle(learning, issued.code)
    bundle = parse_certificate_bundle(text)
    assert pk.is_marked_private(bundle.definition)
    assert verify_certificate(bundle, now=clock.now()).status is VerdictStatus.VALID
    with pytest.raises(PrivacyRefused, match="cert publish"):  # accepting would publish it
        await certs.accept_certificate(learning, issued.code)

    published = await certs.publish_certificate(learning, issued.code)
    assert published["award"] == issued.award_id
    assert published["courses"] == []  # a public course is on the relays already
    for name in ("award", "definition", "profile_badges"):  # queued for the relays
        assert await learning.store.outbox_entries(published[name]), name


async def test_a_private_courses_certificate_is_private_and_its_course_copy_names_no_invitee(clock):
    world = school()
    host, ana, bo = world.issuer, world.learners[0], world.learners[1]
    issuing = await context(host, clock)
    course = replace(world.course, private=True, invitees=(ana.public_key, bo.public_key))
    rumor = await private.publish_private_item(issuing, kinds.build_course(course, created_at=clock.now()))
    for lesson in world.lessons:
        await issuing.store.add_private(world.completion(ana, lesson, at=clock.now() - DAY))
    issued = await certs.issue_certificate(issuing, rumor.address, ana.public_key)
    assert issued.private
    assert not await issuing.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD, kinds.BADGE_DEFINITION}))])
    current = await issuing.store.course(rumor.address)
    assert current.invitees == (ana.public_key, bo.public_key)  # the copy never replaces the host's course

    learning = await context(ana, clock)
    await handed_over(issuing, learning)
    await records.refresh_inbox(learning)
    bundle = parse_certificate_bundle(await certs.export_bundle(learning, issued.code))
    assert bo.public_key not in bundle.course.to_json() and "p" not in {t[0] for t in bundle.course.tags}
    assert verify_certificate(bundle, now=clock.now()).status is VerdictStatus.VALID

    other = await context(bo, clock)  # an invitee who is not the issuer cannot sign the course copy
    await other.store.add_private(rumor)
    with pytest.raises(CertificateRefused):
        await certs.issue_certificate(other, replace(course, issuer=bo.public_key, event_id=rumor.id,
                                                     created_at=rumor.created_at), ana.public_key, reason="by hand")


async def test_revoking_a_private_certificate_publishes_only_a_hash_marker(clock):
    world, issuing, ana = await _school_with_completion(clock)
    issued = await certs.issue_certificate(issuing, world.course.coordinate, ana.public_key, private=True)
    learning = await context(ana, clock)
    await handed_over(issuing, learning)
    await records.refresh_inbox(learning)
    await clock.advance(DAY)
    revoked = await certs.revoke_certificate(issuing, issued.code, "issued in error")
    assert revoked.revoked and revoked.deletion_id is None
    [marker] = await issuing.store.query([Filter(kinds=frozenset({kinds.CERTIFICATE_REVOCATION}))])
    assert [t[0] for t in marker.tags] == ["x", "alt"] and marker.tag_value("x") == kinds.award_hash(issued.award_id)
    assert marker.content == "" and "issued in error" not in marker.to_json()  # a reason says something of the holder
    assert (await issuing.store.get_action(f"certificate-revocation|{issued.award_id}")).detail == "issued in error"
    assert ana.public_key not in marker.to_json() and issued.award_id not in marker.to_json()
    assert not await issuing.store.query([Filter(kinds=frozenset({kinds.DELETION}))])
    assert (await certs.verify(issuing, issued.code)).status is VerdictStatus.REVOKED
    await learning.store.add(marker)  # the marker, as the holder's relays return it
    bundle = parse_certificate_bundle(await certs.export_bundle(learning, issued.code))
    assert verify_certificate(bundle, now=clock.now()).status is VerdictStatus.REVOKED
    assert (await certs.revoke_certificate(issuing, issued.code)).revoked is False  # once


async def _private_course_certificate(clock):
    world = school()
    host, ana = world.issuer, world.learners[0]
    issuing = await context(host, clock)
    course = replace(world.course, private=True, invitees=(ana.public_key,))
    rumor = await private.publish_private_item(issuing, kinds.build_course(course, created_at=clock.now()))
    issued = await certs.issue_certificate(issuing, rumor.address, ana.public_key, reason="exam passed")
    learning = await context(ana, clock)
    await handed_over(issuing, learning)
    await records.refresh_inbox(learning)
    return world, issuing, learning, issued


async def test_a_published_private_courses_certificate_verifies_from_what_the_holder_published_alone(clock):
    world, issuing, learning, issued = await _private_course_certificate(clock)
    published = await certs.publish_certificate(learning, issued.code)
    [copy_id] = published["courses"]  # the signed course copy the certificate rests on goes out too
    stranger = await context(None, clock)
    for event_id in (published["award"], published["definition"], copy_id, published["profile_badges"]):
        assert await learning.store.outbox_entries(event_id), event_id
        await stranger.store.add(await learning.store.get(event_id))  # what the relays now serve
    copy = await stranger.store.get(copy_id)
    assert copy.kind == kinds.COURSE and copy.tag_value("p") is None
    verdict = await certs.verify(stranger, issued.award_id)
    assert verdict.status is VerdictStatus.VALID, verdict.reason
    assert verdict.course == issued.course and verdict.holder == world.learners[0].public_key


async def test_following_a_private_course_is_refused_for_it_would_name_the_course_in_reqs(clock):
    from nostr_training.services.follows import follow_course

    world, issuing, learning, issued = await _private_course_certificate(clock)
    assert (await learning.store.course(issued.course)).private
    with pytest.raises(PrivacyRefused, match="you are invited to it; your daemon follows it already"):
        await follow_course(learning, issued.course)
