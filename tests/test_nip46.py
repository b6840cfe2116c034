"""NIP-46, the pure part (URIs, messages, permissions), signer profiles, and nostrconnect://
pairing over a real relay with a signer app played by a script built from the spec."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nostr_training import kinds
from nostr_training.clock import SystemClock
from nostr_training.daemon.relays import RelayPool
from nostr_training.errors import ConfigError, DecryptionError, EncodingError, MalformedEvent, SignerUnavailable
from nostr_training.event import EventTemplate, verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.nips import nip46
from nostr_training.nips.nip46 import BunkerUri, NostrConnectUri, Request, Response
from nostr_training.remote_signer import RemoteSigner, SignerProfile, open_signer
from nostr_training.signer import LocalSigner

from relay_servers import rust_relay  # noqa: F401  (fixture)

PK = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"


# URIs -------------------------------------------------------------------------------------


def test_bunker_uri_reads_relays_and_secret():
    uri = nip46.parse_bunker_uri(
        f"bunker://{PK}?relay=wss%3A%2F%2Frelay.one%2F&relay=wss://Relay.Two&relay=wss://relay.one&secret=abc"
    )
    assert uri == BunkerUri(PK, ("wss://relay.one", "wss://relay.two"), "abc")
    assert nip46.parse_bunker_uri(str(uri)) == uri
    assert str(uri.without_secret()) == f"bunker://{PK}?relay=wss%3A%2F%2Frelay.one&relay=wss%3A%2F%2Frelay.two"


@pytest.mark.parametrize("text, problem", [
    (f"bunker://{PK}", "at least one relay"),
    (f"bunker://{PK[:-2]}?relay=wss://r.example", "public key"),
    (f"bunker://{PK}?relay=https://r.example", "bad relay"),
    (f"nostrconnect://{PK}?relay=wss://r.example", "bunker://"),
    ("npub1xyz", "bunker://"),
])
def test_bad_bunker_uris_are_refused(text, problem):
    with pytest.raises(EncodingError, match=problem):
        nip46.parse_bunker_uri(text)


def test_nostrconnect_uri_round_trips_and_needs_a_secret():
    uri = NostrConnectUri(PK, ("wss://relay.example",), "s3cret", ("sign_event:31923", "nip44_encrypt"),
                          "Évening class & co", "https://school.example", None)
    text = str(uri)
    query = parse_qs(urlsplit(text).query)
    assert query["perms"] == ["sign_event:31923,nip44_encrypt"] and query["name"] == ["Évening class & co"]
    assert nip46.parse_nostrconnect_uri(text) == uri
    assert nip46.parse_connection_uri(text) == uri
    with pytest.raises(EncodingError, match="secret"):
        nip46.parse_nostrconnect_uri(f"nostrconnect://{PK}?relay=wss://relay.example")
    with pytest.raises(EncodingError, match="unknown NIP-46 permission"):
        nip46.parse_nostrconnect_uri(f"nostrconnect://{PK}?relay=wss://r.example&secret=x&perms=steal_key")


@given(
    secret=st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable()),
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True),
)
def test_bunker_uri_round_trip_property(secret, ports):
    uri = BunkerUri(PK, tuple(f"wss://relay.example:{p}" for p in ports), secret)
    assert nip46.parse_connection_uri(str(uri)) == uri


# Messages ---------------------------------------------------------------------------------


def test_request_and_response_travel_encrypted_between_the_two_keys(alice, bob):
    request = Request("r1", "sign_event", (json.dumps({"kind": 1, "content": "é", "tags": [], "created_at": 1}),))
    event = verify_event(nip46.message_event(request, alice.secret, bob.public_key, created_at=1_800_000_000))
    assert event.kind == 24133 and event.tags == (("p", bob.public_key),)
    assert "sign_event" not in event.content
    assert nip46.open_message(event, bob.secret) == request
    with pytest.raises(DecryptionError):
        nip46.open_message(event, Keys.generate().secret)
    answer = Response("r1", "pong")
    assert nip46.open_message(nip46.message_event(answer, bob.secret, alice.public_key, created_at=1), alice.secret) == answer


@pytest.mark.parametrize("content, field", [
    ("not json", "content"),
    ("[1]", "content"),
    ('{"method":"ping"}', "id"),
    ('{"id":"1","method":"ping","params":[1]}', "params"),
    ('{"id":"1"}', "result"),
])
def test_malformed_messages_name_the_field(content, field):
    with pytest.raises(MalformedEvent) as err:
        nip46.parse_message(content)
    assert err.value.field == field


def test_responses_tell_refusals_from_auth_challenges():
    challenge = nip46.parse_message('{"id":"1","result":"auth_url","error":"https://b.example/ok"}')
    assert isinstance(challenge, Response) and challenge.auth_url == "https://b.example/ok" and not challenge.refused
    assert nip46.parse_message('{"id":"1","result":"error","error":"Not authorized"}').refused
    assert nip46.parse_message('{"id":"1","result":"","error":"denied"}').refused
    assert not nip46.parse_message('{"id":"1","result":"ack"}').refused
    assert nip46.check_auth_url("https://b.example/ok") == "https://b.example/ok"
    for bad in ("javascript:alert(1)", "https://b.example/\x1b[2J", "file:///etc/passwd"):
        with pytest.raises(EncodingError):
            nip46.check_auth_url(bad)


# Permissions ------------------------------------------------------------------------------


def test_permissions_cover_every_kind_we_sign_and_no_rumor():
    perms = nip46.signing_permissions()
    signed = {int(p.split(":")[1]) for p in perms}
    assert {kinds.SEAL, kinds.LESSON, kinds.COURSE, kinds.METADATA, kinds.DELETION, kinds.AUTH} <= signed
    assert not signed & {kinds.DIRECT_MESSAGE, kinds.ROOM_KEY, kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL}
    assert signed == set(kinds.KINDS) - (kinds.PRIVATE_KINDS - {kinds.SEAL}) - {kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL}
    default = nip46.default_permissions()
    assert nip46.parse_permissions(",".join(default)) == default
    assert {"nip44_encrypt", "nip44_decrypt"} <= set(default)


# Profiles ---------------------------------------------------------------------------------


def test_signer_profiles_round_trip_and_refuse_nonsense(tmp_path):
    bunker = SignerProfile.remote(f"bunker://{PK}?relay=wss://r.example&secret=x", tmp_path / "s.key", request_timeout=5)
    assert SignerProfile.from_dict(bunker.to_dict()) == bunker
    assert bunker.bunker.remote_signer_pubkey == PK
    local = SignerProfile.local(tmp_path / "me.key")
    assert SignerProfile.from_dict(local.to_dict()) == local
    for bad in (
        {"kind": "hsm", "key_file": "k"},
        {"kind": "bunker", "key_file": "k"},
        {"kind": "bunker", "key_file": "k", "uri": "bunker://nope"},
        {"kind": "local", "key_file": "k", "uri": f"bunker://{PK}?relay=wss://r.example"},
        {"kind": "local", "key_file": "k", "colour": "red"},
        {"kind": "local", "key_file": "k", "request_timeout": "soon"},
    ):
        with pytest.raises(ConfigError):
            SignerProfile.from_dict(bad)


async def test_open_signer_builds_a_local_signer_or_needs_a_pool(tmp_path, alice):
    save_key_file(tmp_path / "me.key", alice, "pw", log_n=1)
    signer = open_signer(SignerProfile.local(tmp_path / "me.key"), "pw")
    assert isinstance(signer, LocalSigner) and await signer.get_public_key() == alice.public_key
    with pytest.raises(ConfigError, match="relay pool"):
        open_signer(SignerProfile.remote(f"bunker://{PK}?relay=wss://r.example", tmp_path / "me.key"), "pw")


# nostrconnect:// pairing ------------------------------------------------------------------


async def _signer_app(pool: RelayPool, user: Keys, uri: NostrConnectUri, *, echo: str) -> None:
    """A signer app that scanned ``uri``: it announces itself with ``echo`` as the connect
    result, then answers get_public_key and sign_event for the client, per NIP-46."""
    local = LocalSigner(user)
    key = f"app:{user.public_key[:8]}"

    async def on_event(relay: str, event) -> None:
        message = nip46.open_message(event, user.secret)
        if not isinstance(message, Request):
            return
        if message.method == "get_public_key":
            answer = Response(message.id, user.public_key)
        elif message.method == "sign_event":
            template = EventTemplate.from_dict(json.loads(message.params[0]))
            answer = Response(message.id, (await local.sign_event(template)).to_json())
        else:
            answer = Response(message.id, "error", f"unsupported {message.method}")
        reply = nip46.message_event(answer, user.secret, event.pubkey, created_at=event.created_at)
        await pool.publish(reply, list(uri.relays))

    ready = asyncio.Event()

    async def on_eose(relay: str) -> None:
        ready.set()

    await pool.subscribe(key, [Filter(kinds=frozenset({24133}), tags={"p": frozenset({user.public_key})})],
                         list(uri.relays), on_event, on_eose=on_eose)
    await ready.wait()
    hello = nip46.message_event(Response(nip46.new_request_id(), echo), user.secret, uri.client_pubkey,
                                created_at=SystemClock().now())
    await pool.publish(hello, list(uri.relays))


async def test_nostrconnect_pairing_takes_the_signer_that_echoes_the_secret(rust_relay):  # noqa: F811
    session, user, impostor = Keys.generate(), Keys.generate(), Keys.generate()
    uri = RemoteSigner.nostrconnect_uri(session, [rust_relay.url], name="nostr-training test")
    assert nip46.parse_nostrconnect_uri(str(uri)).perms == nip46.default_permissions()
    async with RelayPool() as pool:
        listening = asyncio.Event()
        pairing = asyncio.create_task(
            RemoteSigner.pair(pool, session, uri, timeout=20, on_listening=listening.set, request_timeout=10)
        )
        await listening.wait()
        await _signer_app(pool, impostor, uri, echo="not-the-secret")
        await _signer_app(pool, user, uri, echo=uri.secret)
        signer = await pairing
        assert signer.connection_uri.remote_signer_pubkey == user.public_key
        assert await signer.get_public_key() == user.public_key
        event = await signer.sign_event(EventTemplate(1, (), "paired", 1_800_000_000))
        assert verify_event(event).pubkey == user.public_key


async def test_nostrconnect_pairing_without_an_answer_is_unavailable(rust_relay):  # noqa: F811
    session = Keys.generate()
    uri = RemoteSigner.nostrconnect_uri(session, [rust_relay.url])
    async with RelayPool() as pool:
        with pytest.raises(SignerUnavailable, match="nostrconnect"):
            await RemoteSigner.pair(pool, session, uri, timeout=1)
