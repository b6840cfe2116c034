"""The product with its key held elsewhere: the daemon and the CLI signing through NDK's NIP-46
backend (tests/interop/ndk_bunker.mjs, fixtures from test_nip46_interop) on rust-nostr's relay,
with no user key on disk. What they publish is checked by rust-nostr's client (nostr-sdk):
fetched from the relay, signatures verified, gift wraps opened with the recipient's key.

Also: a refused permission and a signer gone offline are one clear line and leave nothing
half-done; ``keys import`` finds an existing key's profile and relay lists.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import nostr_sdk as sdk
import pytest
from test_cli_services import cli_in_thread, invoke
from test_nip46_interop import ndk, relay, start_bunker  # noqa: F401  (fixtures)

from nostr_training import kinds
from nostr_training.daemon.app import Daemon
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.errors import SignerRefused, SignerUnavailable
from nostr_training.event import sign_event
from nostr_training.keys import Keys
from nostr_training.kinds.profile import Profile, build_profile
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.nips.nip65 import RelayList, relay_list_template
from nostr_training.services.messages import send_dm, send_private
from nostr_training.services.publish import publish_events
from nostr_training.store import ActionRecord
from nostr_training.user_signer import SESSION_KEY_FILE, BunkerSigner, open_user_signer

from relay_servers import start_rust_relay

pytestmark = [pytest.mark.interop, pytest.mark.relay]

PASSWORD = "correct horse"


def now() -> int:
    return int(time.time())


async def publish_to(url: str, events) -> None:
    async with RelayPool() as pool:
        for event in events:
            results = await pool.publish(event, [url], timeout=10)
            assert results[url].ok, results[url].message


async def fetch_with_nostr_sdk(url: str, nostr_filter: sdk.Filter) -> list[sdk.Event]:
    """rust-nostr's client reading the relay: an implementation that shares no code with ours."""
    client = sdk.Client()
    relay_url = sdk.RelayUrl.parse(url)
    await client.add_relay(relay_url)
    await client.connect()
    try:
        events = await client.fetch_events(sdk.ReqTarget.single(relay_url, [nostr_filter]), timedelta(seconds=5))
    finally:
        await client.shutdown()
    return list(events)


def learner_inbox(learner: Keys, url: str):
    return sign_event(inbox_relays_template([url], created_at=now()), learner.secret)


def connect_with_the_cli(bunker) -> dict:
    """``signer connect bunker://…`` as a user runs it: config.toml gains the profile."""
    result = invoke("signer", "connect", bunker.uri, "--json")
    assert result.code == 0, result.output
    return json.loads(result.stdout)


async def test_a_daemon_with_only_a_bunker_publishes_a_lesson_a_room_key_and_a_reminder(home, start_bunker, relay):
    bunker = start_bunker()
    user = bunker.user.public_key
    learner = Keys.generate()
    await publish_to(relay.url, [learner_inbox(learner, relay.url)])
    config = load_config().with_overrides(relays=[relay.url], port=0)
    remembered = []
    signer = open_user_signer(config, password=lambda: PASSWORD, bunker_uri=bunker.uri, log_n=4,
                              on_connected=remembered.append)
    assert isinstance(signer, BunkerSigner)
    daemon = Daemon(config, signer=signer)
    await daemon.start()
    try:
        assert daemon.me == user
        assert remembered[-1].pubkey == user and remembered[-1].bunker.secret is None  # the spent secret is dropped
        lesson = kinds.Lesson(author=user, d="ownership", title="Ownership", start=now() + 86400, end=now() + 90000,
                              instructor=user)
        event = await daemon.services.signer.sign_event(kinds.build_lesson(lesson, created_at=now()))
        (report,) = await publish_events(daemon.services, [event], wait=10)
        assert report.accepted and report.delivered, report.to_dict()

        room = f"30312:{user}:room-1"
        room_key = kinds.build_room_key(room, os.urandom(32), 1, created_at=now())
        wrapped = await send_private(daemon.services, room_key, learner.public_key,
                                     action=ActionRecord(f"room-key|{room}|1|{learner.public_key}", "room-key", now()))
        reminder = await send_dm(daemon.services, learner.public_key, "Ownership starts in 1 hour",
                                 action=ActionRecord(f"reminder|ownership|{learner.public_key}|1h", "reminder", now()))
        assert wrapped.sent and reminder.sent
        await daemon.outbox.wait_attempted([wrapped.wrap_id, reminder.wrap_id], 10)
    finally:
        await daemon.stop()
        await signer.close()
    assert not (home / "key.ncryptsec").exists() and (home / SESSION_KEY_FILE).exists()

    (theirs,) = await fetch_with_nostr_sdk(relay.url, sdk.Filter().id(sdk.EventId.parse(event.id)))
    assert theirs.verify() and theirs.author().to_hex() == user and theirs.kind().as_u16() == kinds.LESSON
    wraps = await fetch_with_nostr_sdk(relay.url, sdk.Filter().kind(sdk.Kind(kinds.GIFT_WRAP)).pubkey(
        sdk.PublicKey.parse(learner.public_key)))
    assert {w.id().to_hex() for w in wraps} == {wrapped.wrap_id, reminder.wrap_id}
    opened = {}
    for wrap in wraps:
        assert wrap.verify()
        gift = sdk.UnwrappedGift.from_gift_wrap(sdk.Keys.parse(learner.secret_hex), wrap)
        assert gift.sender().to_hex() == user
        rumor = json.loads(gift.rumor().as_json())
        opened[rumor["kind"]] = rumor
    assert opened[kinds.DIRECT_MESSAGE]["content"] == "Ownership starts in 1 hour"
    assert ["a", room] in opened[kinds.ROOM_KEY]["tags"]


async def test_relays_that_demand_auth_for_the_bunker_and_for_the_user_do_not_deadlock(home, start_bunker, tmp_path):
    """The bunker sits on a relay that lets only authenticated clients read, and the daemon's
    relay takes events only from authenticated authors. Our requests to the bunker AUTH with the
    session key (the user's key is what they wait for); the daemon's AUTH is signed by the user's
    key through the bunker, a round trip over the session's own sockets.

    (The bunker's relay does not also demand AUTH for writing: NDK's backend then never
    retries its answer after signing in, whichever client asks.)"""
    bunker_relay = start_rust_relay(tmp_path / "bunker-relay", nip42="read", notes_per_minute=100_000)
    user_relay = start_rust_relay(tmp_path / "user-relay", nip42="write", notes_per_minute=100_000)
    try:
        bunker = start_bunker(relay=bunker_relay.url, sign_in=True)
        config = load_config().with_overrides(relays=[user_relay.url], port=0)
        signer = open_user_signer(config, password=lambda: PASSWORD, bunker_uri=bunker.uri, log_n=4)
        daemon = Daemon(config, signer=signer)
        await daemon.start()
        try:
            user = bunker.user.public_key
            lesson = kinds.Lesson(author=user, d="auth", title="Behind AUTH", start=now() + 86400, end=now() + 90000,
                                  instructor=user)
            event = await daemon.services.signer.sign_event(kinds.build_lesson(lesson, created_at=now()))
            (report,) = await publish_events(daemon.services, [event], wait=10)
            assert report.delivered, report.to_dict()
        finally:
            await daemon.stop()
            await signer.close()
        assert bunker.saw(f"request sign_event:{kinds.AUTH} allowed")
    finally:
        bunker_relay.stop()
        user_relay.stop()


async def test_a_refused_kind_is_one_clear_line_and_nothing_is_queued(home, start_bunker, relay):
    bunker = start_bunker(deny_kinds=[kinds.METADATA, kinds.SEAL])
    await asyncio.to_thread(connect_with_the_cli, bunker)
    config = load_config()
    write_config(replace(config, relays=(relay.url,)))
    result = await cli_in_thread("profile", "set", "--name", "Ada")
    assert result.code == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("nostr-training: remote signer refused sign_event (kind 0)"), result.stderr
    # a private send the signer refuses (the seal) logs nothing and queues nothing
    learner = Keys.generate()
    signer = open_user_signer(load_config(), password=lambda: PASSWORD)
    daemon = Daemon(load_config().with_overrides(port=0), signer=signer)
    await daemon.start()
    try:
        action = ActionRecord("reminder|l1|x|1h", "reminder", now())
        with pytest.raises(SignerRefused, match=r"kind 13"):
            await send_dm(daemon.services, learner.public_key, "hello", action=action)
        assert await daemon.store.get_action(action.key) is None
        assert await daemon.store.outbox_entries() == []
    finally:
        await daemon.stop()
        await signer.close()
    assert bunker.saw("request sign_event:0 denied") and bunker.saw("request sign_event:13 denied")


async def test_a_signer_gone_offline_is_one_clear_line_and_loses_nothing_queued(home, start_bunker, relay):
    bunker = start_bunker()
    await asyncio.to_thread(connect_with_the_cli, bunker)
    config = load_config()
    write_config(replace(config, relays=(relay.url,), signer=replace(config.signer, request_timeout=2.0)))
    learner = Keys.generate()
    await publish_to(relay.url, [learner_inbox(learner, relay.url)])
    signer = open_user_signer(load_config(), password=lambda: PASSWORD)
    daemon = Daemon(load_config().with_overrides(port=0), signer=signer)
    await daemon.start()
    try:
        first = await send_dm(daemon.services, learner.public_key, "first",
                              action=ActionRecord("reminder|l1|a|24h", "reminder", now()))
        bunker.kill()
        action = ActionRecord("reminder|l1|a|1h", "reminder", now())
        with pytest.raises(SignerUnavailable, match="did not answer"):
            await send_dm(daemon.services, learner.public_key, "second", action=action)
        assert await daemon.store.get_action(action.key) is None  # the next tick tries again
        await daemon.outbox.wait_attempted([first.wrap_id], 10)
        assert {e.state.value for e in await daemon.store.outbox_entries(first.wrap_id)} == {"delivered"}
    finally:
        await daemon.stop()
        await signer.close()
    # the CLI says so in one line, with the configured timeout
    result = await cli_in_thread("event", "sign", stdin='{"kind":1,"tags":[],"content":"hi"}')
    assert result.code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("nostr-training: remote signer "), result.stderr
    assert "did not answer" in result.stderr


def test_signer_connect_then_profile_set_and_show_through_the_bunker(home, start_bunker, relay):
    bunker = start_bunker()
    shown = connect_with_the_cli(bunker)
    assert shown["kind"] == "bunker" and shown["pubkey"] == bunker.user.public_key and "secret" not in shown["uri"]
    assert not (home / "key.ncryptsec").exists()
    assert invoke("relays", "set", relay.url, "--json").code == 0
    first = invoke("profile", "set", "--name", "Ada", "--about", "Teaches Nostr", "--json")
    assert first.code == 0, first.output
    assert f"signing as {bunker.user.public_key[:16]}... (bunker" in first.stderr
    second = invoke("profile", "set", "--nip05", "ada@school.example", "--json")
    assert second.code == 0, second.output
    show = invoke("profile", "show", "--json")
    assert show.code == 0, show.output
    profile = json.loads(show.stdout)["profile"]
    assert (profile["name"], profile["about"], profile["nip05"]) == ("Ada", "Teaches Nostr", "ada@school.example")
    assert profile["pubkey"] == bunker.user.public_key
    signed_show = invoke("signer", "show", "--json")
    assert json.loads(signed_show.stdout)["pubkey"] == bunker.user.public_key
    assert json.loads(invoke("keys", "show").stdout) == {"pubkey": bunker.user.public_key, "npub": shown["npub"]}
    assert bunker.saw("request sign_event:0 allowed") and bunker.saw("request sign_event:10002 allowed")


async def test_profile_set_through_a_running_daemon_signs_with_its_bunker(home, start_bunker, relay):
    bunker = start_bunker()
    await asyncio.to_thread(connect_with_the_cli, bunker)
    write_config(replace(load_config(), relays=(relay.url,)))
    signer = open_user_signer(load_config(), password=lambda: PASSWORD)
    daemon = Daemon(load_config().with_overrides(port=0), signer=signer)
    await daemon.start()
    try:
        result = await cli_in_thread("profile", "set", "--name", "Grace", "--json")
        assert result.code == 0, result.output
        assert "daemon's signer" in result.stderr
        show = await cli_in_thread("profile", "show", "--json")
        assert json.loads(show.stdout)["profile"]["name"] == "Grace"
    finally:
        await daemon.stop()
        await signer.close()
    (theirs,) = await fetch_with_nostr_sdk(relay.url, sdk.Filter().kind(sdk.Kind(0)).author(
        sdk.PublicKey.parse(bunker.user.public_key)))
    assert theirs.verify() and json.loads(theirs.content())["name"] == "Grace"


async def test_keys_import_picks_up_an_existing_profile_and_relay_lists(home, relay):
    existing = Keys.generate()
    elsewhere = "wss://elsewhere.example"
    profile = Profile(name="Lin", about="runs the Tuesday class", extra={"lud16": "lin@wallet.example"})
    await publish_to(relay.url, [
        sign_event(build_profile(profile, created_at=now() - 10), existing.secret),
        sign_event(relay_list_template(RelayList.of(read=[relay.url], write=[relay.url, elsewhere]), created_at=now()),
                   existing.secret),
        sign_event(inbox_relays_template([relay.url], created_at=now()), existing.secret),
    ])
    result = await cli_in_thread("keys", "import", "--relay", relay.url, "--reuse", stdin=existing.nsec)
    assert result.code == 0, result.output
    out = json.loads(result.stdout)
    assert out["pubkey"] == existing.public_key and out["reused"] is True
    found = out["found"]
    assert found["profile"]["name"] == "Lin" and found["profile"]["extra"] == {"lud16": "lin@wallet.example"}
    assert set(found["relays"]["write"]) == {relay.url, elsewhere} and found["relays"]["read"] == [relay.url]
    assert found["inbox"] == [relay.url]
    assert set(load_config().relays) == {relay.url, elsewhere}
    # without --reuse (and no terminal) nothing is written, but it is still reported
    other = Keys.generate()
    plain = await cli_in_thread("keys", "import", "--key-file", str(home / "other.key"), "--relay", relay.url,
                                stdin=other.nsec)
    assert plain.code == 0 and json.loads(plain.stdout)["found"] == {
        "profile": None, "relays": None, "inbox": None, "unreadable": []}
    assert set(load_config().relays) == {relay.url, elsewhere}


async def test_signer_connect_nostrconnect_prints_the_uri_and_keeps_the_app_that_answers(home, relay):
    """The command as a user runs it (a child process): it prints the URI once it listens; the
    signer app (played per NIP-46 by test_nip46's script) echoes the secret; the pairing is kept."""
    from test_nip46 import _signer_app

    from nostr_training.nips import nip46

    user = Keys.generate()
    exe = Path(sys.executable).parent / "nostr-training"
    process = await asyncio.create_subprocess_exec(
        str(exe), "signer", "connect", "--nostrconnect", relay.url, "--timeout", "30", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    try:
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        uri = nip46.parse_nostrconnect_uri(first["nostrconnect"])
        assert uri.relays == (relay.url,) and uri.perms == nip46.default_permissions()
        async with RelayPool() as pool:
            await _signer_app(pool, user, uri, echo=uri.secret)
            paired = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
            assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert paired["pubkey"] == user.public_key and paired["kind"] == "bunker"
    stored = load_config().signer
    assert stored.pubkey == user.public_key and stored.bunker.remote_signer_pubkey == user.public_key
    assert stored.bunker.secret is None and stored.key_file == home / SESSION_KEY_FILE
    assert Keys.from_ncryptsec(stored.key_file.read_text().strip(), PASSWORD).public_key == uri.client_pubkey
