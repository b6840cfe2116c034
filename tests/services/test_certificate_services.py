"""Certificates as a service over an index: only the course's issuer issues, once a round;
verification from the index or from an exported file alone; revocation; re-certification after
expiry; a learner shows a certificate in their 10008."""

from __future__ import annotations

import json

import pytest

from nostr_training import kinds
from nostr_training.errors import CertificateRefused
from nostr_training.event import Event, EventTemplate, coordinate, sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.kinds.certificate_bundle import bundle_to_dict, parse_certificate_bundle
from nostr_training.nips.nip19 import nevent_encode
from nostr_training.rules.verification import EXIT_CODES, VerdictStatus
from nostr_training.services import certificates as certs

from .training_world import DAY, School, context, school


async def complete_all(ctx, world: School, learner: Keys) -> None:
    for lesson in world.lessons:
        await ctx.store.add(world.completion(learner, lesson, at=ctx.clock.now() - DAY))


async def issuer_ctx(world: School, clock):
    ctx = await context(world.issuer, clock)
    for event in world.events:
        await ctx.store.add(event)
    return ctx


async def test_the_issuer_certifies_a_learner_who_completed_once_and_the_definition_once(clock):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    with pytest.raises(CertificateRefused, match="not complete"):
        await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    await complete_all(ctx, world, ana)
    issued = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    assert issued.issued and issued.valid_until == clock.now() + 365 * DAY
    with pytest.raises(CertificateRefused, match="already holds"):
        await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    awards = await ctx.store.query([Filter(kinds=frozenset({kinds.BADGE_AWARD}))])
    definitions = await ctx.store.query([Filter(kinds=frozenset({kinds.BADGE_DEFINITION}))])
    assert len(awards) == 1 and awards[0].pubkey == world.issuer.public_key and len(definitions) == 1
    assert awards[0].tag_value("code") == issued.code and awards[0].tag_value("a") == definitions[0].address
    logged = await ctx.store.actions(action=certs.ISSUE_ACTION)
    assert [(a.pubkey, a.event_id) for a in logged] == [(ana.public_key, issued.award_id)]


async def test_nobody_but_the_issuer_signs_and_no_learner_certifies_themselves(clock):
    world = school()
    ana = world.learners[0]
    learner_ctx = await context(ana, clock)
    for event in world.events:
        await learner_ctx.store.add(event)
    await complete_all(learner_ctx, world, ana)
    with pytest.raises(CertificateRefused, match="only its issuer"):
        await certs.issue_certificate(learner_ctx, world.course.coordinate, ana.public_key)
    ctx = await issuer_ctx(world, clock)
    with pytest.raises(CertificateRefused, match="never certifies itself"):
        await certs.issue_certificate(ctx, world.course.coordinate, world.issuer.public_key, "I know it")


async def test_self_signed_completion_records_are_not_evidence(clock):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    for lesson in world.lessons:
        await ctx.store.add(world.completion(ana, lesson, by=ana))
    with pytest.raises(CertificateRefused, match="not complete"):
        await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    by_hand = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key, "assessed in person")
    assert by_hand.issued and "assessed in person" in by_hand.reason


async def test_verify_by_code_and_nevent_and_from_an_exported_file_on_a_fresh_machine(clock):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    await complete_all(ctx, world, ana)
    issued = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    by_code = await certs.verify(ctx, issued.code.lower().replace("-", ""))
    by_nevent = await certs.verify(ctx, nevent_encode(issued.award_id))
    assert by_code.status is by_nevent.status is VerdictStatus.VALID and by_code.holder == ana.public_key
    text = await certs.export_bundle(ctx, issued.code)
    fresh = await context(None, clock)
    offline = await certs.verify(fresh, "certificate.json", bundle_text=text)
    assert offline.status is VerdictStatus.VALID and offline.course_title == "First aid"
    assert (await certs.verify(fresh, issued.code)).status is VerdictStatus.NOT_FOUND
    assert (await certs.verify(fresh, "x.json", bundle_text="{not json")).status is VerdictStatus.INVALID


def _resign(event: Event, keys: Keys, **changes) -> dict:
    template = EventTemplate(event.kind, changes.get("tags", event.tags), event.content, event.created_at)
    return sign_event(template, keys.secret).to_dict()


async def test_files_that_must_not_pass_each_get_their_own_status(clock):
    world = school(validity_days=90)
    ctx = await issuer_ctx(world, clock)
    ana, ben = world.learners[:2]
    for learner in (ana, ben):
        await complete_all(ctx, world, learner)
    genuine = json.loads(await certs.export_bundle(ctx, (await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)).code))
    fresh = await context(None, clock)

    async def verdict(data: dict):
        return await certs.verify(fresh, "file", bundle_text=json.dumps(data))

    tampered = json.loads(json.dumps(genuine))
    tampered["award"]["tags"] = [t if t[0] != "valid_until" else ["valid_until", str(clock.now() + 9999 * DAY)]
                                 for t in tampered["award"]["tags"]]
    award = Event.from_dict(genuine["award"])
    self_issued = {**genuine, "award": _resign(award, ana, tags=tuple(
        t if t[0] != "a" else ("a", coordinate(kinds.BADGE_DEFINITION, ana.public_key, "x")) for t in award.tags))}
    mallory = Keys.generate()
    definition = Event.from_dict(genuine["definition"])
    foreign_definition = _resign(definition, mallory)
    foreign_award = _resign(award, mallory, tags=tuple(
        t if t[0] != "a" else ("a", Event.from_dict(foreign_definition).address) for t in award.tags))
    foreign = {**genuine, "award": foreign_award, "definition": foreign_definition, "code": award.tag_value("code")}
    got = {
        "genuine": await verdict(genuine),
        "tampered": await verdict(tampered),
        "self": await verdict(self_issued),
        "foreign": await verdict(foreign),
    }
    assert got["genuine"].status is VerdictStatus.VALID
    assert (got["tampered"].status, got["tampered"].problem.value) == (VerdictStatus.INVALID, "tampered")
    assert got["self"].status is VerdictStatus.INVALID and got["self"].problem.value == "self_issued"
    assert (got["foreign"].status, got["foreign"].problem.value) == (VerdictStatus.INVALID, "foreign_key")
    await clock.advance(91 * DAY)
    expired = await verdict(genuine)
    assert expired.status is VerdictStatus.EXPIRED and expired.exit_code == EXIT_CODES[VerdictStatus.EXPIRED] == 3


async def test_revocation_is_durable_and_verifies_as_revoked_from_the_index_and_a_later_export(clock):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    await complete_all(ctx, world, ana)
    issued = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    before = await certs.export_bundle(ctx, issued.code)
    await clock.advance(3600)
    revoked = await certs.revoke_certificate(ctx, issued.code, "issued in error")
    again = await certs.revoke_certificate(ctx, issued.code, "issued in error")
    assert revoked.revoked and revoked.deletion_id and not again.revoked and again.deletion_id is None
    assert await ctx.store.query([Filter(ids=frozenset({issued.award_id}))]) == [], "the deletion hides the award"
    from_index = await certs.verify(ctx, issued.code)
    assert from_index.status is VerdictStatus.REVOKED and from_index.revocation_reason == "issued in error"
    after = parse_certificate_bundle(await certs.export_bundle(ctx, issued.code))
    assert len(after.revocations) == 1
    fresh = await context(None, clock)
    assert (await certs.verify(fresh, "f", bundle_text=json.dumps(bundle_to_dict(after)))).exit_code == 4
    assert (await certs.verify(fresh, "f", bundle_text=before)).status is VerdictStatus.VALID, \
        "a file carries only what its exporter knew: verify against the index for revocations"
    with pytest.raises(CertificateRefused, match="revoked"):
        await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    renewed = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key, "re-assessed")
    assert renewed.issued


async def test_recertification_after_expiry_and_the_expiring_list(clock):
    world = school(validity_days=60)
    ctx = await issuer_ctx(world, clock)
    ana, ben = world.learners[:2]
    for learner in (ana, ben):
        await complete_all(ctx, world, learner)
    first = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    await clock.advance(20 * DAY)
    await certs.issue_certificate(ctx, world.course.coordinate, ben.public_key)
    await clock.advance(25 * DAY)
    soon = await certs.list_certificates(ctx, expiring_days=30)
    assert [(r.holder, r.status, r.days_left) for r in soon] == [(ana.public_key, "expiring", 15)]
    assert {r.holder: r.status for r in await certs.list_certificates(ctx)} == {ana.public_key: "expiring", ben.public_key: "valid"}
    await clock.advance(16 * DAY)
    assert (await certs.verify(ctx, first.code)).status is VerdictStatus.EXPIRED
    renewed = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    assert renewed.issued and renewed.code != first.code and renewed.reason == "completion rule met"
    rows = {r.holder: r for r in await certs.list_certificates(ctx)}
    assert rows[ana.public_key].code == renewed.code and rows[ana.public_key].status == "valid"


async def test_a_learner_accepts_a_certificate_into_their_profile_badges(clock):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    await complete_all(ctx, world, ana)
    issued = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    learner_ctx = await context(ana, clock, ctx.store)
    shown = await certs.accept_certificate(learner_ctx, issued.code)
    badges = kinds.parse_profile_badges(await ctx.store.get(shown))
    assert badges.author == ana.public_key and badges.pairs[-1][1] == issued.award_id
    with pytest.raises(Exception, match="awarded to you"):
        await certs.accept_certificate(await context(world.learners[1], clock, ctx.store), issued.code)


async def test_verify_takes_a_bundle_path(clock, tmp_path):
    world = school()
    ctx = await issuer_ctx(world, clock)
    ana = world.learners[0]
    await complete_all(ctx, world, ana)
    issued = await certs.issue_certificate(ctx, world.course.coordinate, ana.public_key)
    path = tmp_path / "certificate.json"
    path.write_text(await certs.export_bundle(ctx, issued.code))
    fresh = await context(None, clock)
    assert (await certs.verify(fresh, str(path))).status is VerdictStatus.VALID
    path.write_bytes(b"\xff\xfe")
    assert (await certs.verify(fresh, str(path))).status is VerdictStatus.INVALID
