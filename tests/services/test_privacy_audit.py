"""``audit``: a stranger's read of a real relay shows nothing of a private lesson, and the check
does find a leak when there is one."""

from __future__ import annotations

import json

from test_cli_services import cli_in_thread

from nostr_training import kinds
from nostr_training.clock import SystemClock
from nostr_training.daemon.config import DaemonConfig
from nostr_training.event import EventTemplate, sign_event
from nostr_training.keys import Keys
from nostr_training.rules.privacy import Secrets, find_leaks
from nostr_training.services import private
from nostr_training.services.audit import audit_relays
from nostr_training.services.context import offline_context
from nostr_training.services.publish import publish_events
from nostr_training.signer import LocalSigner

from relay_servers import start_rust_relay

T = 1_800_000_000
LEARNER = "b" * 64


def _event(kind: int, tags: tuple[tuple[str, ...], ...], content: str = "", keys: Keys | None = None):
    return sign_event(EventTemplate(kind, tags, content, T), (keys or Keys.generate()).secret)


def test_the_leak_rule():
    secrets = Secrets({"Jail support": "title of the lesson"}, frozenset({LEARNER}), frozenset({"31923:x:open"}))
    wrap = _event(kinds.GIFT_WRAP, (("p", LEARNER),), "ciphertext")
    public_decision = _event(kinds.WAITING_ROOM_DECISION, (("a", "31923:x:open"), ("p", LEARNER)))
    titled = _event(1, (), "Notes from Jail support")
    follow_list = _event(3, (("p", LEARNER),))
    record = _event(kinds.ATTENDANCE_RECORD, (("d", "r"),))
    leaks = {leak.event_id: leak.why for leak in find_leaks([wrap, public_decision, titled, follow_list, record], secrets)}
    assert set(leaks) == {titled.id, follow_list.id, record.id}
    assert "title" in leaks[titled.id] and "learner" in leaks[follow_list.id] and "attendance" in leaks[record.id]
    # Only the people of the private items can leak them: a stranger quoting the title is not a leak.
    host = Keys.generate()
    by_host = _event(1, (), "Notes from Jail support", keys=host)
    scoped = Secrets(secrets.texts, secrets.learners, secrets.public_addresses, frozenset({host.public_key, LEARNER}))
    assert [leak.event_id for leak in find_leaks([titled, by_host, wrap], scoped)] == [by_host.id]


async def test_a_stranger_reads_nothing_private_from_a_real_relay_until_something_leaks(tmp_path):
    relay = start_rust_relay(tmp_path / "relay")
    try:
        host, learner = Keys.generate(), Keys.generate()
        config = DaemonConfig(data_dir=tmp_path / "host", config_path=tmp_path / "host" / "config.toml",
                              relays=(relay.url,), publish_timeout=5.0)
        async with offline_context(config, LocalSigner(host), clock=SystemClock()) as ctx:
            now = ctx.clock.now()
            inbox = sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", relay.url),), "", now), learner.secret)
            await publish_events(ctx, [inbox], relays=[relay.url], wait=5)
            lesson = kinds.Lesson(author=host.public_key, d="9f8e7d6c5b4a39281706f5e4d3c2b1a0", title="Jail support",
                                  start=now + 86400, end=now + 90000, instructor=host.public_key, private=True,
                                  invitees=(learner.public_key,), description="Meet at the side door, bring water.")
            rumor = await private.publish_private_item(ctx, kinds.build_lesson(lesson, created_at=now))
            await private.invite(ctx, rumor.address, [learner.public_key], text="You are invited to a lesson")
            while await ctx.outbox.deliver_due():
                pass
            clean = await audit_relays(ctx, timeout=5)
            assert clean.private_items == 1 and clean.learners == 1
            assert clean.by_kind.get(32678) == 1 and clean.by_kind.get(kinds.GIFT_WRAP) == 1
            assert clean.leaks == ()

            answer = sign_event(kinds.build_rsvp(await ctx.store.lesson(rumor.address), kinds.RsvpStatus.ACCEPTED,
                                                 created_at=now), learner.secret)
            await ctx.outbox.submit(answer, [relay.url], reveal=True)  # what a careless client would do
            while await ctx.outbox.deliver_due():
                pass
            leaked = await audit_relays(ctx, timeout=5)
            assert [leak.event_id for leak in leaked.leaks] == [answer.id]
        said = await cli_in_thread("audit", "--data-dir", str(config.data_dir), "--timeout", "5", "--json", "--relay", relay.url)
        assert said.code == 1 and said.stdout, said.output
        assert [leak["event"] for leak in json.loads(said.stdout)["leaks"]] == [answer.id]
        told = await cli_in_thread("audit", "--data-dir", str(config.data_dir), "--timeout", "5", "--relay", relay.url)
        assert told.code == 1 and "shows the address of the private item" in told.stdout and "1 private items" in told.stdout
    finally:
        relay.stop()
