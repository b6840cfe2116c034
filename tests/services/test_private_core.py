"""The private-training seam: envelopes, invitations, record deliveries, the inbox and the
outbox's refusal to publish anything private in the clear."""

from __future__ import annotations

import json

import pytest

from nostr_training import kinds
from nostr_training.errors import DecryptionError, MalformedEvent, PrivacyRefused
from nostr_training.event import Event, EventTemplate, coordinate, sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.kinds import private as pk
from nostr_training.nips.nip59 import make_rumor, unwrap
from nostr_training.services import private
from nostr_training.signer import LocalSigner

from .training_world import T, context

HOUR = 3600


def private_lesson(host: Keys, learner: Keys) -> kinds.Lesson:
    return kinds.Lesson(author=host.public_key, d="a1b2c3d4e5f6", title="Jail support", start=T + 2 * HOUR,
                        end=T + 3 * HOUR, instructor=host.public_key, private=True,
                        invitees=(learner.public_key,), description="Bring a pen.")


def test_a_lesson_marked_private_round_trips_with_its_invitees():
    host, learner = Keys.generate(), Keys.generate()
    lesson = private_lesson(host, learner)
    event = sign_event(kinds.build_lesson(lesson, created_at=T), host.secret)
    parsed = kinds.parse_lesson(event)
    assert parsed.private and parsed.invitees == (learner.public_key,)
    public = kinds.parse_lesson(sign_event(kinds.build_lesson(
        kinds.Lesson(author="", d="x", title="Open", start=T, end=T + HOUR, instructor=host.public_key),
        created_at=T), host.secret))
    assert not public.private and public.invitees == ()


def test_an_envelope_opens_only_with_its_view_key_and_shows_only_an_opaque_d():
    host, learner = Keys.generate(), Keys.generate()
    template = kinds.build_lesson(private_lesson(host, learner), created_at=T)
    key = pk.new_view_key()
    envelope = sign_event(pk.build_envelope(template, host.public_key, key, created_at=T), host.secret)
    assert envelope.kind == 32678 and [t[0] for t in envelope.tags] == ["d", "alt"]
    assert "Jail" not in envelope.to_json() and learner.public_key not in envelope.to_json()
    inner = pk.open_envelope(envelope, key)
    assert (inner.kind, inner.pubkey, inner.created_at) == (kinds.LESSON, host.public_key, T)
    assert inner.tags == template.tags and inner.content == "Bring a pen."
    assert kinds.parse_lesson(inner).title == "Jail support"
    with pytest.raises(DecryptionError):
        pk.open_envelope(envelope, pk.new_view_key())
    moved = sign_event(pk.build_envelope(template, host.public_key, key, created_at=T).__class__(
        32678, (("d", "0" * 32), *envelope.tags[1:]), envelope.content, T), host.secret)
    with pytest.raises(MalformedEvent):
        pk.open_envelope(moved, key)  # the inner address must be the one this d stands for


def test_an_invitation_and_a_record_delivery_round_trip_and_refuse_forgeries():
    host, learner, forger = Keys.generate(), Keys.generate(), Keys.generate()
    key = pk.new_view_key()
    item = coordinate(32678, host.public_key, "f" * 32)

    def rumor_of(template: EventTemplate, author: Keys) -> Event:
        return make_rumor(template, author.public_key)

    invitation = pk.parse_invitation(rumor_of(pk.build_invitation(item, key, learner.public_key, "Come", created_at=T), host))
    assert (invitation.item, invitation.view_key, invitation.invitee) == (item, key, learner.public_key)
    with pytest.raises(MalformedEvent):  # nobody but the item's author invites to it
        pk.parse_invitation(rumor_of(pk.build_invitation(item, key, learner.public_key, "Come", created_at=T), forger))
    record = sign_event(EventTemplate(kinds.ATTENDANCE_RECORD, (("d", "x"),), "", T), host.secret)
    delivery = pk.parse_record_delivery(rumor_of(pk.build_record_delivery([record], subject=item, created_at=T), host))
    assert delivery.events == (record,)
    forged = json.loads(record.to_json()) | {"content": "changed"}
    bad = EventTemplate(kinds.RECORD_DELIVERY, (("a", item),), json.dumps([forged]), T)
    with pytest.raises(MalformedEvent):
        pk.parse_record_delivery(rumor_of(bad, host))


def test_the_publication_rule():
    lesson = "31923:" + "a" * 64 + ":x"
    rsvp = sign_event(EventTemplate(kinds.RSVP, (("d", "r"), ("a", lesson)), "", T), Keys.generate().secret)
    assert pk.publication_refusal(rsvp, {lesson}) is not None
    assert pk.publication_refusal(rsvp, set()) is None
    marked = sign_event(EventTemplate(kinds.LESSON, (("d", "x"), ("visibility", "private")), "", T),
                        Keys.generate().secret)
    assert pk.publication_refusal(marked, set()) is not None


async def test_a_private_lesson_reaches_only_its_invitee_and_the_answer_only_the_host(clock):
    host, learner, outsider = Keys.generate(), Keys.generate(), Keys.generate()
    hosting, learning = await context(host, clock), await context(learner, clock)
    template = kinds.build_lesson(private_lesson(host, learner), created_at=clock.now())
    rumor = await private.publish_private_item(hosting, template)
    coord = rumor.address
    assert (await hosting.store.lesson(coord)).private
    [sent] = await private.invite(hosting, coord, [learner.public_key], text="You are invited")
    assert sent.sent
    again = await private.invite(hosting, coord, [learner.public_key], text="You are invited")
    assert not again[0].sent  # once per invitee

    published = await hosting.store.query([Filter(kinds=frozenset({32678, kinds.GIFT_WRAP}))], now=clock.now())
    assert {e.kind for e in published} == {32678, kinds.GIFT_WRAP}
    assert all("Jail" not in e.to_json() for e in published)
    for event in published:  # what the learner's relays hand over
        await learning.store.add(event, now=clock.now())
    report = await private.open_inbox(learning)
    assert report.invitations == 1 and coord in report.items
    lesson = await learning.store.lesson(coord)
    assert lesson is not None and lesson.title == "Jail support" and lesson.event_id == rumor.id

    answer = kinds.build_rsvp(lesson, kinds.RsvpStatus.ACCEPTED, created_at=clock.now())
    with pytest.raises(PrivacyRefused):  # the outbox will not publish an answer to a private lesson
        await learning.outbox.submit(sign_event(answer, learner.secret))
    kept, [delivery] = await private.deliver_rumor(learning, answer, [host.public_key], once=f"rsvp|{coord}")
    wrap = await learning.store.get(delivery.wrap_id)
    with pytest.raises(DecryptionError):
        await unwrap(wrap, LocalSigner(outsider))
    await hosting.store.add(wrap, now=clock.now())
    assert (await private.open_inbox(hosting)).rumors == 1
    [seen] = await hosting.store.rsvps(coord)
    assert seen.author == learner.public_key and seen.status is kinds.RsvpStatus.ACCEPTED
    assert [r.author for r in await learning.store.rsvps(coord)] == [learner.public_key]  # own copy

    proof = sign_event(EventTemplate(kinds.ATTENDANCE_RECORD, (("d", "p"), ("a", coord), ("p", learner.public_key)), "",
                                     clock.now()),
                       host.secret)
    with pytest.raises(PrivacyRefused):
        await hosting.outbox.submit(proof)
    handed = await private.deliver_records(hosting, [proof], subject=coord, recipient=learner.public_key,
                                           once=f"attendance-proof|{coord}|{learner.public_key}")
    await learning.store.add(await hosting.store.get(handed.wrap_id), now=clock.now())
    assert (await private.open_inbox(learning)).records == 1
    assert await learning.store.get(proof.id) == proof


async def test_the_inbox_refuses_what_does_not_hold_up_and_says_so(clock):
    host, learner, forger = Keys.generate(), Keys.generate(), Keys.generate()
    hosting, learning, forging = await context(host, clock), await context(learner, clock), await context(forger, clock)
    for ctx in (hosting, learning):
        await ctx.store.add(sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", "wss://relay.example"),), "",
                                                     clock.now()), (host if ctx is hosting else learner).secret))
        await forging.store.add((await ctx.store.query([Filter(kinds=frozenset({kinds.DM_RELAYS}))]))[0])
    await learning.store.add((await hosting.store.query([Filter(kinds=frozenset({kinds.DM_RELAYS}))]))[0])
    coord = "31923:" + host.public_key + ":a1b2"
    someone_else = sign_event(EventTemplate(kinds.ATTENDANCE_RECORD, (("d", "x"), ("a", coord), ("p", forger.public_key)),
                                            "", clock.now()), host.secret)
    mine = sign_event(EventTemplate(kinds.ATTENDANCE_RECORD, (("d", "y"), ("a", coord), ("p", learner.public_key)),
                                    "", clock.now()), host.secret)
    handed = await private.deliver_records(hosting, [someone_else, mine], subject=coord, recipient=learner.public_key)
    item = coordinate(32678, host.public_key, "f" * 32)
    forged = await private.deliver_rumor(forging, pk.build_invitation(item, pk.new_view_key(), learner.public_key,
                                                                      "Come", created_at=clock.now()),
                                         [learner.public_key], keep=False)
    unreadable = sign_event(EventTemplate(kinds.GIFT_WRAP, (("p", learner.public_key),), "not a payload", clock.now()),
                            Keys.generate().secret)
    wraps = [await hosting.store.get(handed.wrap_id), await forging.store.get(forged[1][0].wrap_id), unreadable]
    report = await private.open_inbox(learning, wraps)
    assert report.records == 1 and report.invitations == 0
    assert len(report.refused) == 2, report.refused  # the record about someone else, the forged invitation
    assert await learning.store.get(mine.id) == mine and await learning.store.get(someone_else.id) is None
    assert await learning.store.get_action(f"{private.OPENED_ACTION}|{unreadable.id}") is not None  # not tried again
    assert (await private.open_inbox(learning, wraps)).opened == 0
