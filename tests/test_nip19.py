"""NIP-19 entities and the bech32 codec under them."""

from __future__ import annotations

import hashlib

import nostr_sdk as sdk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import EncodingError
from nostr_training.keys import Keys
from nostr_training.nips import SECP256K1_ORDER, bech32, nip19
from nostr_training.nips.nip19 import AddressPointer, EventPointer, ProfilePointer

NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
NPUB_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
NSEC_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
FIATJAF_HEX = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"
FIATJAF_NPUB = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6"
NPROFILE = (
    "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69"
    "uhkg6nzv9ejuumpv34kytnrdaksjlyr9p"
)


# known answers from NIP-19 ------------------------------------------------------------------


def test_npub_known_answer():
    assert nip19.npub_encode(NPUB_HEX) == NPUB
    assert nip19.decode(NPUB) == ("npub", NPUB_HEX)


def test_nsec_known_answer():
    assert nip19.nsec_encode(bytes.fromhex(NSEC_HEX)) == NSEC
    assert nip19.decode(NSEC) == ("nsec", bytes.fromhex(NSEC_HEX))


def test_hex_npub_pair_known_answer():
    assert nip19.npub_encode(FIATJAF_HEX) == FIATJAF_NPUB
    assert nip19.decode(FIATJAF_NPUB).data == FIATJAF_HEX


def test_nprofile_known_answer():
    decoded = nip19.decode(NPROFILE)
    assert decoded.hrp == "nprofile"
    assert decoded.data == ProfilePointer(FIATJAF_HEX, ("wss://r.x.com", "wss://djbas.sadkb.com"))
    assert nip19.nprofile_encode(FIATJAF_HEX, ["wss://r.x.com", "wss://djbas.sadkb.com"]) == NPROFILE


def test_nostr_uri_prefix_and_surrounding_space_are_accepted():
    assert nip19.decode(f"  nostr:{NPUB}\n").data == NPUB_HEX
    assert nip19.decode(NPUB.upper()).data == NPUB_HEX


# round trips ------------------------------------------------------------------------------

hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
relay = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60).map(
    lambda s: "wss://" + s
)
relays = st.lists(relay, max_size=4).map(tuple)
identifier = st.text(max_size=80).filter(lambda s: len(s.encode()) <= 255)


@settings(max_examples=40)
@given(hex32)
def test_npub_and_note_round_trip(value):
    assert nip19.decode(nip19.npub_encode(value)) == ("npub", value)
    assert nip19.decode(nip19.note_encode(value)) == ("note", value)


@settings(max_examples=40)
@given(st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(lambda k: k.to_bytes(32, "big")))
def test_nsec_round_trip(secret):
    assert nip19.decode(nip19.nsec_encode(secret)) == ("nsec", secret)


@pytest.mark.parametrize("k", [0, SECP256K1_ORDER, 2**256 - 1])
def test_nsec_of_a_key_outside_the_group_is_refused(k):
    with pytest.raises(EncodingError, match="group order"):
        nip19.nsec_encode(k.to_bytes(32, "big"))


@settings(max_examples=40)
@given(hex32, relays)
def test_nprofile_round_trip(pubkey, urls):
    assert nip19.decode(nip19.nprofile_encode(pubkey, urls)).data == ProfilePointer(pubkey, urls)


@settings(max_examples=40)
@given(hex32, relays, st.none() | hex32, st.none() | st.integers(0, 2**32 - 1))
def test_nevent_round_trip(event_id, urls, author, kind):
    decoded = nip19.decode(nip19.nevent_encode(event_id, urls, author, kind))
    assert decoded == ("nevent", EventPointer(event_id, urls, author, kind))


@settings(max_examples=60)
@given(st.integers(0, 65535), hex32, identifier, relays)
def test_naddr_round_trip(kind, pubkey, d, urls):
    decoded = nip19.decode(nip19.naddr_encode(kind, pubkey, d, urls))
    assert decoded == ("naddr", AddressPointer(kind, pubkey, d, urls))


@settings(max_examples=20)
@given(st.binary(min_size=1, max_size=120))
def test_ncryptsec_payload_round_trip(raw):
    assert nip19.decode(nip19.ncryptsec_encode(raw)) == ("ncryptsec", raw)


def test_encode_by_name_matches_the_specific_encoders():
    assert nip19.encode("npub", NPUB_HEX) == NPUB
    assert nip19.encode("nsec", NSEC_HEX) == NSEC
    assert nip19.encode("nprofile", FIATJAF_HEX, ["wss://r.x.com", "wss://djbas.sadkb.com"]) == NPROFILE
    assert nip19.encode("naddr", 31923, NPUB_HEX, "lesson-1") == nip19.naddr_encode(31923, NPUB_HEX, "lesson-1")
    with pytest.raises(EncodingError):
        nip19.encode("nrelay", "wss://x")
    with pytest.raises(EncodingError):
        nip19.encode("npub")


# TLV rules --------------------------------------------------------------------------------


def _tlv(t: int, value: bytes) -> bytes:
    return bytes([t, len(value)]) + value


def test_unknown_tlv_records_are_ignored():
    data = _tlv(0, bytes.fromhex(FIATJAF_HEX)) + _tlv(9, b"future") + _tlv(1, b"wss://a") + _tlv(200, b"")
    decoded = nip19.decode(bech32.bech32_encode("nprofile", data))
    assert decoded.data == ProfilePointer(FIATJAF_HEX, ("wss://a",))


def test_naddr_requires_author_and_kind():
    kind = (31923).to_bytes(4, "big")
    author = bytes.fromhex(NPUB_HEX)
    without_kind = _tlv(0, b"lesson") + _tlv(2, author)
    without_author = _tlv(0, b"lesson") + _tlv(3, kind)
    for data in (without_kind, without_author):
        with pytest.raises(EncodingError, match="missing"):
            nip19.decode(bech32.bech32_encode("naddr", data))
    complete = nip19.decode(bech32.bech32_encode("naddr", _tlv(0, b"lesson") + _tlv(2, author) + _tlv(3, kind)))
    assert complete.data == AddressPointer(31923, NPUB_HEX, "lesson", ())


@pytest.mark.parametrize(
    "data",
    [
        _tlv(0, bytes(31)),  # pubkey too short
        bytes([0, 32]) + bytes(20),  # truncated value
        _tlv(0, bytes(32)) + b"\x01",  # truncated header
        _tlv(1, b"wss://x"),  # no pubkey at all
    ],
    ids=["short-special", "truncated-value", "truncated-header", "missing-special"],
)
def test_malformed_tlv_is_refused(data):
    with pytest.raises(EncodingError):
        nip19.decode(bech32.bech32_encode("nprofile", data))


def test_d_tag_over_255_bytes_is_refused():
    assert nip19.decode(nip19.naddr_encode(30023, NPUB_HEX, "é" * 127)).data.identifier == "é" * 127
    with pytest.raises(EncodingError, match="255"):
        nip19.naddr_encode(30023, NPUB_HEX, "é" * 128)
    with pytest.raises(EncodingError, match="255"):
        nip19.nprofile_encode(NPUB_HEX, ["wss://" + "a" * 250])


def test_payload_size_must_match_the_entity():
    with pytest.raises(EncodingError):
        nip19.decode(bech32.bech32_encode("npub", bytes(31)))
    with pytest.raises(EncodingError):
        nip19.decode(bech32.bech32_encode("note", bytes(33)))
    with pytest.raises(EncodingError, match="unknown"):
        nip19.decode(bech32.bech32_encode("nrelay", b"wss://x"))


# length limits ----------------------------------------------------------------------------


def test_strings_longer_than_bip173_90_chars_are_fine():
    text = nip19.naddr_encode(31923, NPUB_HEX, "a" * 200, ["wss://relay.example.com"])
    assert len(text) > 90
    assert nip19.decode(text).data.identifier == "a" * 200


def test_strings_longer_than_5000_chars_are_refused(monkeypatch):
    urls = ["wss://" + "r" * 240] * 12
    near_limit = nip19.nprofile_encode(NPUB_HEX, urls)
    assert 4000 < len(near_limit) <= 5000
    assert nip19.decode(near_limit).data.relays == tuple(urls)
    with pytest.raises(EncodingError, match="5000"):
        nip19.nprofile_encode(NPUB_HEX, urls * 2)
    monkeypatch.setattr(bech32, "MAX_LENGTH", 100_000)
    too_long = nip19.nprofile_encode(NPUB_HEX, urls * 2)
    monkeypatch.undo()
    assert len(too_long) > 5000
    with pytest.raises(EncodingError, match="5000"):
        nip19.decode(too_long)


# bech32 strictness (BIP-173 / BIP-350 test strings) -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ],
)
def test_bip173_valid_strings_decode(text):
    hrp, _ = bech32.bech32_decode(text)
    assert hrp == text.lower()[: text.lower().rfind("1")]


@pytest.mark.parametrize(
    "text",
    [
        "A1LQFN3A",  # bech32m (BIP-350 valid vectors)
        "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
        "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
        "\x201nwldj5",  # HRP character out of range
        "pzry9x0s0muk",  # no separator
        "1pzry9x0s0muk",  # empty HRP
        "x1b4n0q5v",  # invalid data character
        "li1dgmt3",  # checksum too short
        "A1G7SGD8",  # checksum computed with an uppercase HRP
        "a12UEL5L",  # mixed case
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e2w",  # bad checksum
    ],
)
def test_invalid_bech32_is_refused(text):
    with pytest.raises(EncodingError):
        bech32.bech32_decode(text)


def test_corrupted_entities_are_refused():
    flipped = NPUB[:-3] + ("q" if NPUB[-3] != "q" else "p") + NPUB[-2:]
    mixed = NPUB[:10] + NPUB[10:20].upper() + NPUB[20:]
    for bad in (flipped, mixed, NPUB[:-1], "npub1", "", "nostr:", 42):
        with pytest.raises(EncodingError):
            nip19.decode(bad)


def test_non_zero_padding_bits_are_refused():
    # 32 bytes give 52 groups of 5 bits with 4 padding bits; set one of them.
    words = bech32._convert_bits(bytes(32), 8, 5, True)
    words[-1] |= 1
    values = bech32._hrp_expand("npub") + words
    polymod = bech32._polymod(values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = "npub1" + "".join(bech32.CHARSET[d] for d in words + checksum)
    with pytest.raises(EncodingError, match="padding"):
        nip19.decode(text)


# pubkey_from_text -------------------------------------------------------------------------


def test_pubkey_from_text_accepts_npub_nprofile_and_hex():
    assert nip19.pubkey_from_text(FIATJAF_NPUB) == FIATJAF_HEX
    assert nip19.pubkey_from_text(NPROFILE) == FIATJAF_HEX
    assert nip19.pubkey_from_text(f"nostr:{NPROFILE}") == FIATJAF_HEX
    assert nip19.pubkey_from_text(FIATJAF_HEX.upper() + "\n") == FIATJAF_HEX


@pytest.mark.parametrize(
    "text",
    [NSEC, FIATJAF_HEX[:-1], "ff" * 32, "zz" * 32, nip19.note_encode(FIATJAF_HEX)],
    ids=["nsec", "63-hex", "not-on-curve", "not-hex", "note"],
)
def test_pubkey_from_text_refuses_other_things(text):
    with pytest.raises(EncodingError):
        nip19.pubkey_from_text(text)


def test_keys_and_nip19_agree():
    keys = Keys(bytes.fromhex(NSEC_HEX))
    assert keys.nsec == NSEC
    assert nip19.pubkey_from_text(keys.npub) == keys.public_key


# interop with rust-nostr (nostr-sdk) -------------------------------------------------------


@pytest.mark.interop
@settings(max_examples=20, deadline=None)
@given(hex32, hex32, st.integers(0, 65535), identifier.filter(lambda s: s.isprintable()))
def test_entities_agree_with_rust_nostr(event_id, seed, kind, d):
    pubkey = Keys(hashlib.sha256(bytes.fromhex(seed)).digest()).public_key
    urls = ["wss://relay.example.com"]
    pk = sdk.PublicKey.parse(pubkey)
    relay_urls = [sdk.RelayUrl.parse(u) for u in urls]
    assert pk.to_bech32() == nip19.npub_encode(pubkey)
    assert sdk.Nip19Profile(pk, relay_urls).to_bech32() == nip19.nprofile_encode(pubkey, urls)
    theirs = sdk.Nip19Event(sdk.EventId.parse(event_id), pk, sdk.Kind(kind), relay_urls).to_bech32()
    assert nip19.decode(theirs).data == EventPointer(event_id, tuple(urls), pubkey, kind)
    coordinate = sdk.Coordinate(sdk.Kind(kind), pk, d)
    theirs = sdk.Nip19Coordinate(coordinate, relay_urls).to_bech32()
    assert nip19.decode(theirs).data == AddressPointer(kind, pubkey, d, tuple(urls))
    ours = nip19.naddr_encode(kind, pubkey, d, urls)
    back = sdk.Nip19Coordinate.from_bech32(ours)
    assert (back.coordinate().identifier(), back.coordinate().public_key().to_hex()) == (d, pubkey)
