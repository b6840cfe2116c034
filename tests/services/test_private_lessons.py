"""Private courses and lessons as services: random ids and local names, invitations, revisions
the invitees see without a new invitation, private RSVPs on the host's roster, private
cancellation, and the fetch a command does without a daemon. Each person has their own memory
store; one scripted relay (a ``FakePool`` that keeps what is published) connects them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import pytest
from daemon.daemon_fakes import FakePool

from nostr_training import kinds
from nostr_training.daemon.outbox import Outbox
from nostr_training.daemon.pool import PublishResult
from nostr_training.errors import DomainError, RsvpRefused
from nostr_training.event import Event, EventTemplate, sign_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys
from nostr_training.services import live, private, private_training
from nostr_training.services.context import ServiceContext
from nostr_training.services.rsvp import rsvp_list, rsvp_to_lesson
from nostr_training.signer import LocalSigner
from nostr_training.store.memory import MemoryStore

R = "wss://relay.example"
HOUR = 3600


@dataclass
class ScriptedRelay(FakePool):
    """A FakePool that keeps every event published to it and serves them to fetches."""

    async def publish(self, event: Event, relays: Sequence[str], timeout: float = 10) -> dict[str, PublishResult]:
        if all(e.id != event.id for e in self.stored):
            self.stored.append(event)
        return await super().publish(event, relays, timeout)

    def titles_leaked(self, *words: str) -> list[str]:
        return [e.id for e in self.stored if any(w in e.to_json() for w in words)]


async def person(keys: Keys, relay: ScriptedRelay, clock) -> ServiceContext:
    store = await MemoryStore.open()
    config = SimpleNamespace(relays=(R,), publish_timeout=0.5, extra={})
    outbox = Outbox(store, relay, clock=clock, default_relays=[R], timeout=0.5, fetch_timeout=0.5)
    relay.stored.append(sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", R),), "", clock.now()), keys.secret))
    return ServiceContext(config=config, store=store, outbox=outbox, clock=clock,  # type: ignore[arg-type]
                          signer=LocalSigner(keys))


@pytest.fixture
async def world(clock):
    relay = ScriptedRelay()
    host, ada, bo, eve = Keys.generate(), Keys.generate(), Keys.generate(), Keys.generate()
    people = {name: await person(keys, relay, clock) for name, keys in
              (("host", host), ("ada", ada), ("bo", bo), ("eve", eve))}
    return SimpleNamespace(relay=relay, keys={"host": host, "ada": ada, "bo": bo, "eve": eve}, **people)


async def receive(ctx: ServiceContext) -> private.InboxReport | None:
    """What a command does without a daemon: fetch the user's wraps and envelopes, open them."""
    return await private_training.fetch_private(ctx, timeout=0.5)


async def schedule(world, clock, *, seats: int | None = 1) -> kinds.Lesson:
    await live.create_course(world.host, "jail-support", "Jail support", private=True)
    return await live.schedule_lesson(
        world.host, "jail-support", "intro", "Jail support: intro", clock.now() + 2 * 86400, 60,
        max_participants=seats, requires_rsvp=True,
        invitees=[world.keys["ada"].public_key, world.keys["bo"].public_key])


async def test_a_private_course_and_lesson_get_random_ids_and_keep_their_local_names(world, clock):
    lesson = await schedule(world, clock)
    course = await private_training.resolve_course(world.host, "jail-support")
    assert course.private and re.fullmatch("[0-9a-f]{32}", course.d)
    assert lesson.private and re.fullmatch("[0-9a-f]{32}", lesson.d) and lesson.course == course.coordinate
    assert (await live.resolve_lesson(world.host, "intro")).coordinate == lesson.coordinate
    assert course.lessons == (lesson.coordinate,)  # the course's revision lists it, privately
    assert set(lesson.invitees) == {world.keys["ada"].public_key, world.keys["bo"].public_key}
    # Scheduling "intro" again revises that lesson instead of making a second one.
    again = await live.schedule_lesson(world.host, "jail-support", "intro", "Jail support: intro", lesson.start + HOUR,
                                       60, max_participants=1, requires_rsvp=True)
    assert again.coordinate == lesson.coordinate and set(again.invitees) == set(lesson.invitees)
    assert [x.coordinate for x in await live.list_lessons(world.host)] == [lesson.coordinate]
    # What left the machine: envelopes and gift wraps only, no title, no name, no learner.
    assert {e.kind for e in world.relay.stored} == {kinds.DM_RELAYS, kinds.PRIVATE_CALENDAR_ITEM, kinds.GIFT_WRAP}
    assert world.relay.titles_leaked("Jail", "jail-support", "intro", lesson.d, course.d) == []
    envelopes = [e for e in world.relay.stored if e.kind == kinds.PRIVATE_CALENDAR_ITEM]
    assert all(world.keys["ada"].public_key not in e.to_json() for e in envelopes)


async def test_a_private_lesson_in_a_public_course_is_refused(world, clock):
    world.host.config.publish_timeout = 0.1
    await live.create_course(world.host, "open", "Open course")
    with pytest.raises(DomainError, match="public"):
        await live.schedule_lesson(world.host, "open", "secret", "Secret", clock.now() + HOUR, 60, private=True)
    with pytest.raises(DomainError, match="public already"):
        await live.create_course(world.host, "open", "Open course", private=True)
    assert not await world.host.store.query([Filter(kinds=frozenset({kinds.LESSON}))], include_private=True)


async def test_invitees_see_the_lesson_and_its_revisions_without_a_new_invitation(world, clock):
    lesson = await schedule(world, clock)
    for name in ("ada", "bo"):
        report = await receive(world.__dict__[name])
        assert report is not None and report.invitations == 1
        [seen] = await live.list_lessons(world.__dict__[name])
        assert (seen.coordinate, seen.title, seen.private) == (lesson.coordinate, "Jail support: intro", True)
        [course] = await live.list_courses(world.__dict__[name])
        assert course.private and course.title == "Jail support"
    assert await receive(world.eve) is not None
    assert await live.list_lessons(world.eve) == [] and await live.list_courses(world.eve) == []

    moved = await live.reschedule_lesson(world.host, "intro", lesson.start + 86400)
    wraps_before = sum(e.kind == kinds.GIFT_WRAP for e in world.relay.stored)
    report = await receive(world.ada)
    assert report is not None and report.invitations == 0 and lesson.coordinate in report.items
    assert (await world.ada.store.lesson(lesson.coordinate)).start == moved.start
    assert sum(e.kind == kinds.GIFT_WRAP for e in world.relay.stored) == wraps_before

    # A second lesson of the course is private without asking, and opens with the same key.
    second = await live.schedule_lesson(world.host, "jail-support", "practice", "Practice", lesson.start + 3 * 86400, 90)
    assert second.private and second.course == lesson.course
    await receive(world.bo)
    assert {x.title for x in await live.list_lessons(world.bo)} == {"Jail support: intro", "Practice"}
    assert (await world.bo.store.course(lesson.course)).lessons == (lesson.coordinate, second.coordinate)


async def test_course_and_lesson_invitations_reach_each_learner_once(world, clock):
    lesson = await schedule(world, clock)
    course = await private_training.resolve_course(world.host, "jail-support")
    eve = world.keys["eve"].public_key
    first = await private_training.invite_to_lesson(world.host, lesson, [eve, world.keys["ada"].public_key])
    assert first.sent == (eve,) and first.already == (world.keys["ada"].public_key,)
    assert first.key_item == course.coordinate  # the course's key opens its lessons
    again = await private_training.invite_to_course(world.host, await private_training.resolve_course(world.host, course.coordinate), [eve])
    assert again.sent == () and again.already == (eve,)
    assert eve in (await world.host.store.course(course.coordinate)).invitees
    assert eve in (await world.host.store.lesson(lesson.coordinate)).invitees
    await receive(world.eve)
    assert [x.title for x in await live.list_lessons(world.eve)] == ["Jail support: intro"]


async def test_a_private_answer_reaches_only_the_host_and_counts_there_like_a_public_one(world, clock):
    lesson = await schedule(world, clock, seats=1)
    for name in ("ada", "bo"):
        await receive(world.__dict__[name])
    first = await rsvp_to_lesson(world.ada, lesson.coordinate, "accepted", wait=0.5)
    assert first.private and first.report.accepted
    await receive(world.host)  # an answer counts from when the host sees it
    await clock.advance(60)
    await rsvp_to_lesson(world.bo, lesson.coordinate, "accepted", wait=0.5)
    assert not [e for e in world.relay.stored if e.kind == kinds.RSVP]
    assert world.relay.titles_leaked("Jail") == []

    await receive(world.host)
    listing = await rsvp_list(world.host, lesson.coordinate)
    rows = {r.pubkey: r for r in listing.rows}
    assert (rows[world.keys["ada"].public_key].status, rows[world.keys["bo"].public_key].status) == ("confirmed", "waitlisted")
    assert rows[world.keys["bo"].public_key].waitlist_position == 1
    mine = await rsvp_list(world.ada, lesson.coordinate)  # the learner's own view: their answer
    assert [(r.pubkey, r.status) for r in mine.rows] == [(world.keys["ada"].public_key, "confirmed")]

    await clock.advance(60)
    await rsvp_to_lesson(world.ada, lesson.coordinate, "declined", wait=0.5)
    await receive(world.host)
    rows = {r.pubkey: r for r in (await rsvp_list(world.host, lesson.coordinate)).rows}
    assert rows[world.keys["bo"].public_key].status == "confirmed"
    assert rows[world.keys["bo"].public_key].promoted_at is not None
    assert rows[world.keys["ada"].public_key].status == "declined"


async def test_a_cancelled_private_lesson_is_gone_for_its_people_and_takes_no_answer(world, clock):
    lesson = await schedule(world, clock)
    await receive(world.ada)
    deletion = await live.cancel_lesson(world.host, "intro", reason="instructor ill")
    assert not [e for e in world.relay.stored if e.kind == kinds.DELETION]
    assert await world.host.store.get(deletion) is not None
    assert await live.list_lessons(world.host) == []
    with pytest.raises(DomainError, match="cancelled already"):
        await live.cancel_lesson(world.host, "intro")
    await receive(world.ada)
    assert await live.list_lessons(world.ada) == []
    with pytest.raises(RsvpRefused, match="cancelled"):
        await rsvp_to_lesson(world.ada, lesson.coordinate, "accepted", wait=0.5)
    assert (await rsvp_list(world.ada, lesson.coordinate)).cancelled
