"""A planned reminder as the learner's DM client sees it: a kind 14 from the instructor, unwrapped."""

from __future__ import annotations

from nostr_training import kinds as k
from nostr_training.nips import nip59
from nostr_training.rules.reminders import plan_reminders
from nostr_training.signer import LocalSigner

from kinds_samples import HOST, LEARNER, NOW, START, lesson_value, signed


async def test_each_due_reminder_unwraps_with_the_learners_key_as_a_kind_14_from_the_instructor():
    lesson = k.parse_lesson(signed(k.build_lesson(lesson_value(), created_at=NOW)))
    answer = k.parse_rsvp(signed(k.build_rsvp(lesson, "accepted", created_at=NOW + 60), LEARNER))
    now = START - 86400
    (due,) = plan_reminders(lesson, [answer], now).due
    rumor = k.build_reminder(
        due.kind, lesson, due.pubkey, created_at=now, expires_at=due.expires_at, viewer_tz="America/New_York"
    )
    wrap = await nip59.gift_wrap(rumor, LocalSigner(HOST), due.pubkey, now=now, expiration=due.expires_at)
    assert wrap.tag_value("p") == LEARNER.public_key and wrap.tag_value("expiration") == str(due.expires_at)

    opened = await nip59.unwrap(wrap, LocalSigner(LEARNER))
    assert opened.author == HOST.public_key and opened.rumor.kind == 14
    reminder = k.parse_reminder(opened.rumor)
    assert reminder.kind is k.ReminderKind.DAY_BEFORE and reminder.recipient == LEARNER.public_key
    assert reminder.lesson == lesson.coordinate and reminder.expires_at == lesson.end + 86400
    assert reminder.text == "Tomorrow: Jail Support Role-Play at 09:00 CET (03:00 EST your time)"
