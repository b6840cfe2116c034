"""Interop with two independent Nostr implementations: rust-nostr (Python bindings
``nostr-sdk``) and nostr-tools (JavaScript, driven through tests/interop/nostr_tools_bridge.mjs).

Events and gift wraps we make must verify and unwrap there, theirs here; NIP-44 payloads must
decrypt both ways; NIP-19 strings must agree. nostr-tools is installed on first use into the
git-ignored .test-tools/node (a pinned version); a machine without node/npm fails these tests
rather than skipping them, since CI has both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nostr_training.event import Event, EventTemplate, compute_id, sign_event, verify_event
from nostr_training.keys import Keys
from nostr_training.nips import nip19, nip44, nip59
from nostr_training.signer import LocalSigner

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / ".test-tools" / "node"
BRIDGE = Path(__file__).resolve().parent / "interop" / "nostr_tools_bridge.mjs"
NOSTR_TOOLS_VERSION = "2.25.2"
NOW = 1_800_000_000

# Strings that stress NIP-01 serialisation: every escape, raw non-ASCII, U+2028, controls.
TRICKY = [
    "plain",
    "",
    "quote \" backslash \\ slash / tab \t newline \n cr \r bs \b ff \f",
    "controls \x00\x01\x1f del \x7f",
    "unicode é ü ß 中文 🎉 👩🏽‍🏫 \u2028 \u2029 \ufeff",
    "combining e\u0301 and zero width \u200b",
]


def realistic_template(content: str) -> EventTemplate:
    """A lesson-like addressable event with many tags, some carrying tricky text."""
    tags = (
        ("d", "lesson-1"),
        ("title", content[:40] or "untitled"),
        ("start", "1800003600"),
        ("end", "1800007200"),
        ("D", "20833"),
        ("p", "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d", "", "host"),
        ("t", "training"),
        ("location", "https://meet.example/room?x=1&y=2"),
    )
    return EventTemplate(31923, tags, content, NOW)


# rust-nostr ---------------------------------------------------------------------------------

import nostr_sdk as sdk  # noqa: E402  (a declared test dependency)


def sdk_keys(keys: Keys):
    return sdk.Keys.parse(keys.secret_hex)


@pytest.mark.parametrize("content", TRICKY)
def test_our_events_verify_in_rust_nostr(alice, content):
    ours = sign_event(realistic_template(content), alice.secret)
    theirs = sdk.Event.from_json(ours.to_json())
    assert theirs.verify()
    assert theirs.id().to_hex() == ours.id


def test_rust_nostr_rejects_a_tampered_event_of_ours(alice):
    tampered = sign_event(realistic_template("x"), alice.secret).to_dict()
    tampered["content"] = "y"
    assert not sdk.Event.from_json(json.dumps(tampered)).verify()


@pytest.mark.parametrize("content", TRICKY)
def test_rust_nostr_events_verify_here(alice, content):
    tags = [sdk.Tag.parse(list(t)) for t in realistic_template(content).tags]
    theirs = (
        sdk.EventBuilder(sdk.Kind(31923), content)
        .tags(tags)
        .custom_created_at(sdk.Timestamp.from_secs(NOW))
        .finalize(sdk_keys(alice))
    )
    ours = verify_event(Event.from_json(theirs.as_json()))
    assert ours.id == theirs.id().to_hex() and ours.content == content


def test_nip44_both_ways_with_rust_nostr(alice, bob):
    text = TRICKY[4] * 20
    ours = nip44.encrypt(text, nip44.get_conversation_key(alice.secret, bob.public_key))
    assert sdk.nip44_decrypt(sdk_keys(bob).secret_key(), sdk_keys(alice).public_key(), ours) == text
    theirs = sdk.nip44_encrypt(sdk_keys(bob).secret_key(), sdk_keys(alice).public_key(), text, sdk.Nip44Version.V2)
    assert nip44.decrypt(theirs, nip44.get_conversation_key(alice.secret, bob.public_key)) == text


async def test_our_gift_wrap_unwraps_in_rust_nostr(alice, bob):
    template = EventTemplate(14, (("p", bob.public_key),), TRICKY[4], NOW)
    wrap = await nip59.gift_wrap(template, LocalSigner(alice), bob.public_key, now=NOW, expiration=NOW + 86400)
    opened = sdk.UnwrappedGift.from_gift_wrap(sdk_keys(bob), sdk.Event.from_json(wrap.to_json()))
    assert opened.sender().to_hex() == alice.public_key
    rumor = json.loads(opened.rumor().as_json())
    assert rumor["id"] == nip59.make_rumor(template, alice.public_key).id
    assert rumor["content"] == TRICKY[4] and rumor["kind"] == 14


async def test_rust_nostr_gift_wrap_and_dm_unwrap_here(alice, bob):
    rumor = sdk.EventBuilder(sdk.Kind(1), "from rust ✓").finalize_unsigned(sdk_keys(alice).public_key())
    wrap = sdk.nip59_make_gift_wrap(sdk_keys(alice), sdk_keys(bob).public_key(), rumor)
    opened = await nip59.unwrap(Event.from_json(wrap.as_json()), LocalSigner(bob))
    assert opened.author == alice.public_key and opened.rumor.content == "from rust ✓"
    dm = sdk.nip17_make_private_msg(sdk_keys(alice), sdk_keys(bob).public_key(), "dm from rust")
    opened_dm = nip59.unwrap_with_key(Event.from_json(dm.as_json()), bob.secret)
    assert opened_dm.rumor.kind == 14 and opened_dm.rumor.content == "dm from rust"
    assert opened_dm.rumor.tag_value("p") == bob.public_key


def test_nip19_agrees_with_rust_nostr(alice):
    pk, event_id = alice.public_key, "ab" * 32
    relay = "wss://relay.example"
    sdk_pk = sdk.PublicKey.parse(pk)
    assert sdk_pk.to_bech32() == nip19.npub_encode(pk)
    assert sdk.SecretKey.parse(alice.secret_hex).to_bech32() == nip19.nsec_encode(alice.secret)
    assert sdk.EventId.parse(event_id).to_bech32() == nip19.note_encode(event_id)

    profile = sdk.Nip19Profile.from_bech32(nip19.nprofile_encode(pk, [relay]))
    assert profile.public_key().to_hex() == pk and [str(r).rstrip("/") for r in profile.relays()] == [relay]
    theirs_profile = nip19.decode(sdk.Nip19Profile(sdk_pk, [sdk.RelayUrl.parse(relay)]).to_bech32()).data
    assert theirs_profile.pubkey == pk and [r.rstrip("/") for r in theirs_profile.relays] == [relay]

    nevent = sdk.Nip19Event.from_bech32(nip19.nevent_encode(event_id, [relay], pk, 1))
    assert (nevent.event_id().to_hex(), nevent.author().to_hex(), nevent.kind().as_u16()) == (event_id, pk, 1)
    theirs_event = nip19.decode(sdk.Nip19Event(sdk.EventId.parse(event_id), sdk_pk, sdk.Kind(1), []).to_bech32()).data
    assert (theirs_event.id, theirs_event.author, theirs_event.kind) == (event_id, pk, 1)

    naddr = sdk.Nip19Coordinate.from_bech32(nip19.naddr_encode(31923, pk, "lesson-1", [relay]))
    coordinate = naddr.coordinate()
    assert (coordinate.kind().as_u16(), coordinate.public_key().to_hex(), coordinate.identifier()) == (31923, pk, "lesson-1")
    ours = nip19.decode(sdk.Nip19Coordinate(sdk.Coordinate(sdk.Kind(31923), sdk_pk, "lesson-1"), []).to_bech32()).data
    assert (ours.kind, ours.pubkey, ours.identifier) == (31923, pk, "lesson-1")


# nostr-tools ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nostr_tools():
    """Call the bridge with a batch of requests; install nostr-tools on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the nostr-tools interop tests")
    package = NODE_DIR / "node_modules" / "nostr-tools" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != NOSTR_TOOLS_VERSION:
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), f"nostr-tools@{NOSTR_TOOLS_VERSION}"],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0:
            pytest.fail(f"cannot install nostr-tools: {proc.stderr.strip().splitlines()[-1:]}")

    def call(requests: list[dict]) -> list:
        proc = subprocess.run(
            [node, str(BRIDGE), str(NODE_DIR)], input=json.dumps(requests), capture_output=True, text=True, timeout=60, check=True
        )
        results = json.loads(proc.stdout)
        for request, result in zip(requests, results, strict=True):
            assert "error" not in result, f"nostr-tools {request['op']}: {result['error']}"
        return [r["ok"] for r in results]

    assert call([{"op": "version"}]) == [NOSTR_TOOLS_VERSION]
    return call


def test_ids_and_signatures_agree_with_nostr_tools(nostr_tools, alice):
    ours = [sign_event(realistic_template(c), alice.secret) for c in TRICKY]
    tampered = dict(ours[0].to_dict(), content="changed")
    requests = [{"op": "verify", "event": e.to_dict()} for e in ours]
    requests += [{"op": "verify", "event": tampered}]
    requests += [{"op": "sign", "template": realistic_template(c).to_dict(), "secret": alice.secret_hex} for c in TRICKY]
    results = nostr_tools(requests)
    n = len(TRICKY)
    assert results[:n] == [True] * n
    assert results[n] is False
    for content, theirs in zip(TRICKY, results[n + 1 :], strict=True):
        event = verify_event(Event.from_dict(theirs))
        assert event.content == content and event.pubkey == alice.public_key


def test_nip44_both_ways_with_nostr_tools(nostr_tools, alice, bob):
    text = TRICKY[4] * 20
    ours = nip44.encrypt(text, nip44.get_conversation_key(alice.secret, bob.public_key))
    decrypted, theirs, conversation_key = nostr_tools([
        {"op": "nip44_decrypt", "secret": bob.secret_hex, "pubkey": alice.public_key, "payload": ours},
        {"op": "nip44_encrypt", "secret": bob.secret_hex, "pubkey": alice.public_key, "plaintext": text},
        {"op": "conversation_key", "secret": bob.secret_hex, "pubkey": alice.public_key},
    ])
    assert decrypted == text
    assert nip44.decrypt(theirs, nip44.get_conversation_key(alice.secret, bob.public_key)) == text
    assert conversation_key == nip44.get_conversation_key(alice.secret, bob.public_key).hex()


async def test_gift_wraps_both_ways_with_nostr_tools(nostr_tools, alice, bob):
    template = EventTemplate(14, (("p", bob.public_key), ("subject", "Lesson 3")), TRICKY[2], NOW)
    ours = await nip59.gift_wrap(template, LocalSigner(alice), bob.public_key, now=NOW)
    their_rumor, their_wrap = nostr_tools([
        {"op": "unwrap", "wrap": ours.to_dict(), "secret": bob.secret_hex},
        {"op": "gift_wrap", "rumor": {"kind": 14, "tags": [["p", bob.public_key]], "content": "from js ✓", "created_at": NOW},
         "secret": alice.secret_hex, "recipient": bob.public_key},
    ])
    assert their_rumor["id"] == nip59.make_rumor(template, alice.public_key).id
    assert their_rumor["pubkey"] == alice.public_key and their_rumor["content"] == TRICKY[2]
    opened = await nip59.unwrap(Event.from_dict(their_wrap), LocalSigner(bob))
    assert opened.author == alice.public_key and opened.rumor.content == "from js ✓"
    assert opened.rumor.created_at == NOW


def test_nip19_agrees_with_nostr_tools(nostr_tools, alice):
    pk, event_id, relay = alice.public_key, "cd" * 32, "wss://relay.example"
    pointers = {
        "nprofile": {"pubkey": pk, "relays": [relay]},
        "nevent": {"id": event_id, "relays": [relay], "author": pk, "kind": 31923},
        "naddr": {"kind": 31923, "pubkey": pk, "identifier": "lesson-ü", "relays": [relay]},
    }
    ours = {
        "npub": nip19.npub_encode(pk),
        "nsec": nip19.nsec_encode(alice.secret),
        "note": nip19.note_encode(event_id),
        "nprofile": nip19.nprofile_encode(pk, [relay]),
        "nevent": nip19.nevent_encode(event_id, [relay], pk, 31923),
        "naddr": nip19.naddr_encode(31923, pk, "lesson-ü", [relay]),
    }
    values = {"npub": pk, "nsec": alice.secret_hex, "note": event_id, **pointers}
    requests = [{"op": "nip19_encode", "entity": e, "value": values[e]} for e in ours]
    requests += [{"op": "nip19_decode", "text": text} for text in ours.values()]
    results = nostr_tools(requests)
    theirs, decoded = dict(zip(ours, results[: len(ours)], strict=True)), results[len(ours) :]
    # Plain entities are byte-identical; TLV records may come in any order (nostr-tools puts
    # relays first), so those must decode to the same pointer instead.
    assert [theirs[e] for e in ("npub", "nsec", "note")] == [ours[e] for e in ("npub", "nsec", "note")]
    for entity in ("nprofile", "nevent", "naddr"):
        assert nip19.decode(theirs[entity]) == nip19.decode(ours[entity])
    assert [d["type"] for d in decoded] == list(ours)
    assert [d["data"] for d in decoded[:3]] == [pk, alice.secret_hex, event_id]
    assert decoded[3:] == [{"type": e, "data": pointers[e]} for e in ("nprofile", "nevent", "naddr")]


def test_event_hash_matches_for_tricky_strings(nostr_tools, alice):
    rumors = [nip59.make_rumor(EventTemplate(1, (("t", c),), c, NOW), alice.public_key) for c in TRICKY]
    hashes = nostr_tools([{"op": "event_hash", "event": r.to_dict()} for r in rumors])
    assert hashes == [compute_id(r.pubkey, r.created_at, r.kind, r.tags, r.content) for r in rumors]
