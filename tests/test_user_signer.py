"""The user's signer from config.toml: the [signer] table, the order of choices, and what a
signer that cannot sign leaves behind (nothing logged, nothing lost: the next tick does it)."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest
from daemon.daemon_fakes import FakePool, signed

from nostr_training import kinds
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.outbox import Outbox
from nostr_training.errors import ConfigError, SignerRefused, SignerUnavailable
from nostr_training.event import Event, EventTemplate
from nostr_training.keys import Keys, load_key_file, save_key_file
from nostr_training.nips import nip46
from nostr_training.nips.nip59 import unwrap
from nostr_training.remote_signer import SignerProfile
from nostr_training.services.context import ServiceContext
from nostr_training.services.messages import send_dm, send_private
from nostr_training.signer import LocalSigner
from nostr_training.store import ActionRecord
from nostr_training.store.memory import MemoryStore
from nostr_training.user_signer import SESSION_KEY_FILE, BunkerSigner, open_user_signer

INBOX = "wss://inbox.example"
PASSWORD = "correct horse"


def bunker_uri(secret: str | None = "s3cret") -> str:
    return str(nip46.BunkerUri(Keys.generate().public_key, ("wss://bunker.example",), secret))


def test_the_signer_table_round_trips_and_settings_we_do_not_read_survive_a_rewrite(home):
    home.mkdir(parents=True)
    user = Keys.generate().public_key
    uri = bunker_uri(None)
    (home / "config.toml").write_text(
        'relays = ["wss://relay.example"]\n'
        'future_setting = 3\n'
        "[sfu]\n"
        'url = "wss://sfu.example"\n'
        "limits = { rooms = 4 }\n"
        "[signer]\n"
        'kind = "bunker"\n'
        f'uri = "{uri}"\n'
        f'key_file = "{home / SESSION_KEY_FILE}"\n'
        f'pubkey = "{user}"\n'
    )
    config = load_config()
    assert config.signer == SignerProfile("bunker", home / SESSION_KEY_FILE, uri, pubkey=user)
    assert config.extra == {"future_setting": 3, "sfu": {"url": "wss://sfu.example", "limits": {"rooms": 4}}}
    write_config(replace(config, relays=("wss://other.example",)))
    again = load_config()
    assert again.signer == config.signer and again.extra == config.extra
    assert again.relays == ("wss://other.example",)
    assert tomllib.loads((home / "config.toml").read_text())["signer"]["kind"] == "bunker"


def test_a_bad_signer_table_is_a_config_error_naming_it(home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[signer]\nkind = "bunker"\nkey_file = "s.key"\nuri = "https://x"\n')
    with pytest.raises(ConfigError, match="signer URI"):
        load_config()
    (home / "config.toml").write_text('[signer]\nkind = "bunker"\nkey_file = "s.key"\nuri = "%s"\npubkey = "npub1"\n' % bunker_uri())
    with pytest.raises(ConfigError, match="signer pubkey"):
        load_config()


def test_without_any_key_the_error_says_how_to_get_one(home):
    config = load_config()
    assert open_user_signer(config, password=lambda: PASSWORD, required=False) is None
    with pytest.raises(ConfigError, match="keys generate.*signer connect"):
        open_user_signer(config, password=lambda: PASSWORD)


async def test_the_key_file_then_the_signer_table_then_a_uri_for_this_run(home):
    home.mkdir(parents=True)
    user = Keys.generate()
    save_key_file(home / "key.ncryptsec", user, PASSWORD, log_n=4)
    config = load_config()
    local = open_user_signer(config, password=lambda: PASSWORD)
    assert isinstance(local, LocalSigner) and local.public_key == user.public_key

    session = Keys.generate()
    save_key_file(home / SESSION_KEY_FILE, session, PASSWORD, log_n=4)
    uri = bunker_uri(None)
    profile = SignerProfile.remote(uri, home / SESSION_KEY_FILE, pubkey=user.public_key)
    write_config(replace(config, signer=profile))
    configured = open_user_signer(load_config(), password=lambda: PASSWORD)
    assert isinstance(configured, BunkerSigner) and configured.session_pubkey == session.public_key
    # the daemon starts with the pubkey it remembers: no round trip to a bunker that may be offline
    assert await configured.get_public_key() == user.public_key
    # an explicit key file still wins over the table
    assert isinstance(open_user_signer(load_config(), password=lambda: PASSWORD, key_file=home / "key.ncryptsec"), LocalSigner)

    # the same bunker given again for a run: the approved session, the spent secret dropped
    again = open_user_signer(load_config(), password=lambda: PASSWORD,
                             bunker_uri=str(nip46.BunkerUri(profile.bunker.remote_signer_pubkey, profile.bunker.relays, "old")))
    assert isinstance(again, BunkerSigner) and again.profile.bunker.secret is None
    assert again.profile.pubkey == user.public_key


def test_a_new_bunker_for_this_run_gets_a_session_key_in_the_data_dir(home):
    config = load_config()
    uri = bunker_uri("fresh")
    signer = open_user_signer(config, password=lambda: PASSWORD, bunker_uri=uri, log_n=4)
    assert isinstance(signer, BunkerSigner)
    assert signer.profile.uri == uri and signer.profile.pubkey is None
    assert load_key_file(home / SESSION_KEY_FILE, PASSWORD).public_key == signer.session_pubkey
    with pytest.raises(ConfigError, match="--signer"):
        open_user_signer(config, password=lambda: PASSWORD, bunker_uri="bunker://nope")


class FlakySigner:
    """The user's key behind a signer that is offline (or refuses) until told otherwise."""

    def __init__(self, keys: Keys):
        self.inner = LocalSigner(keys)
        self.failure: Exception | None = SignerUnavailable("remote signer did not answer sign_event within 2 s")
        self.calls = 0

    async def get_public_key(self) -> str:
        return await self.inner.get_public_key()

    async def sign_event(self, template: EventTemplate) -> Event:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return await self.inner.sign_event(template)

    async def nip44_encrypt(self, peer_pubkey: str, plaintext: str) -> str:
        if self.failure is not None:
            raise self.failure
        return await self.inner.nip44_encrypt(peer_pubkey, plaintext)

    async def nip44_decrypt(self, peer_pubkey: str, payload: str) -> str:
        return await self.inner.nip44_decrypt(peer_pubkey, payload)


@pytest.mark.parametrize("failure", [SignerUnavailable("offline"), SignerRefused("no", method="nip44_encrypt")])
async def test_a_private_send_the_signer_cannot_do_is_not_logged_and_the_next_tick_sends_it(alice, bob, clock, failure):
    """send_private logs the action only in the commit of the wrap it causes: a signer that is
    offline or refuses leaves no trace, so the scheduler's next tick tries again."""
    store = await MemoryStore.open()
    pool = FakePool()
    signer = FlakySigner(alice)
    signer.failure = failure
    ctx = ServiceContext(config=None, store=store, outbox=Outbox(store, pool, clock=clock, default_relays=[INBOX]),  # type: ignore[arg-type]
                         clock=clock, signer=signer)
    await store.add(signed(bob, kinds.DM_RELAYS, tags=[("relay", INBOX)], created_at=clock.now()))
    action = ActionRecord("reminder|l1|bob|1h", "reminder", clock.now(), subject="31923:x:l1")
    with pytest.raises(type(failure)):
        await send_dm(ctx, bob.public_key, "Starting in 1 hour", action=action)
    assert await store.get_action(action.key) is None
    assert await store.outbox_depth() == 0 and await store.outbox_entries() == []

    signer.failure = None
    await clock.advance(60)
    sent = await send_dm(ctx, bob.public_key, "Starting in 1 hour", action=action)
    assert sent.sent and (await store.get_action(action.key)).event_id == sent.wrap_id
    await ctx.outbox.deliver_due()
    assert pool.published == [(INBOX, sent.wrap_id)]
    assert (await unwrap(await store.get(sent.wrap_id), LocalSigner(bob))).rumor.content == "Starting in 1 hour"
    assert not (await send_private(ctx, EventTemplate(14, (("p", bob.public_key),), "x", clock.now()), bob.public_key,
                                   action=action)).sent
