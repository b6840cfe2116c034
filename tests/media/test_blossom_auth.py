"""BUD-11 authorisation tokens and BUD-02 descriptors, without a server."""

from __future__ import annotations

import ast
import base64
import importlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nostr_training.errors import BlossomError, InvalidEvent, MalformedEvent, MissingTag
from nostr_training.event import EventTemplate, sign_event
from nostr_training.keys import Keys
from nostr_training.nips.blossom import (
    KIND_BLOSSOM_AUTH,
    authorization_template,
    blob_url,
    check_authorization,
    decode_authorization,
    encode_authorization,
    is_sha256,
    parse_blob_descriptor,
    server_domain,
    sha256_from_url,
    sha256_hex,
)

REPO = Path(__file__).resolve().parents[2]
SIGNER = Keys.generate()
NOW = 1_800_000_000
BLOB = sha256_hex(b"a recording")
OTHER = sha256_hex(b"another blob")


def _token(keys, verb="upload", *, created_at=NOW - 10, expiration=NOW + 600, sha256=(BLOB,), servers=("https://cdn.example.com",), content=None):
    template = authorization_template(
        verb, created_at=created_at, expiration=expiration, sha256=sha256, servers=servers, content=content
    )
    return sign_event(template, keys.secret)


def _check(event, verb="upload", server="cdn.example.com", sha256=BLOB, x_required=True):
    return check_authorization(event, verb=verb, server=server, now=NOW, sha256=sha256, x_required=x_required)


def test_template_has_the_bud11_tags(keys):
    template = authorization_template(
        "upload", created_at=NOW, expiration=NOW + 60, sha256=[BLOB], servers=["https://CDN.Example.com:8443/path"]
    )
    assert template.kind == KIND_BLOSSOM_AUTH == 24242
    assert template.tags == (("t", "upload"), ("expiration", str(NOW + 60)), ("x", BLOB), ("server", "cdn.example.com"))
    assert template.content == "Upload Blob"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"verb": "steal"},
        {"expiration": NOW},
        {"sha256": ["ABC"]},
        {"servers": ["https://"]},
    ],
)
def test_template_refuses_bad_input(kwargs):
    args = {"verb": "upload", "created_at": NOW, "expiration": NOW + 60, "sha256": [], "servers": []} | kwargs
    verb = args.pop("verb")
    with pytest.raises(MalformedEvent):
        authorization_template(verb, **args)


def test_header_round_trip_is_unpadded_base64url(keys):
    event = _token(keys)
    header = encode_authorization(event)
    scheme, payload = header.split(" ")
    assert scheme == "Nostr"
    assert "=" not in payload and "+" not in payload and "/" not in payload
    assert decode_authorization(header) == event


def _event_whose_base64_differs_between_alphabets(keys):
    for n in range(500):
        event = _token(keys, content=f"Upload Blob {n} ????>>>")
        raw = event.to_json().encode()
        if base64.b64encode(raw) != base64.urlsafe_b64encode(raw):
            return event
    raise AssertionError("no candidate content gives + or / in base64")


def test_standard_base64_padded_and_unpadded_is_accepted(keys):
    event = _event_whose_base64_differs_between_alphabets(keys)
    standard = base64.b64encode(event.to_json().encode()).decode()
    assert "+" in standard or "/" in standard
    assert decode_authorization(f"Nostr {standard}") == event
    assert decode_authorization(f"Nostr {standard.rstrip('=')}") == event
    url_safe = base64.urlsafe_b64encode(event.to_json().encode()).decode()
    assert decode_authorization(f"nostr {url_safe}") == event


@pytest.mark.parametrize("header", ["Bearer abc", "Nostr", "Nostr !!!!", "Nostr " + base64.b64encode(b"{}").decode()])
def test_undecodable_headers_are_malformed(header):
    with pytest.raises(MalformedEvent):
        decode_authorization(header)


def test_a_good_token_gives_its_pubkey(keys):
    assert _check(_token(keys)) == keys.public_key


def test_expired_token(keys):
    with pytest.raises(InvalidEvent, match="expired"):
        _check(_token(keys, expiration=NOW))


def test_token_from_the_future(keys):
    with pytest.raises(InvalidEvent, match="future"):
        _check(_token(keys, created_at=NOW + 5, expiration=NOW + 600))


def test_wrong_verb(keys):
    with pytest.raises(InvalidEvent, match="allows get"):
        _check(_token(keys, "get"))


def test_other_server(keys):
    with pytest.raises(InvalidEvent, match="other servers"):
        _check(_token(keys), server="https://evil.example.net")


def test_unscoped_server_is_valid_anywhere(keys):
    assert _check(_token(keys, servers=()), server="anything.example") == keys.public_key


def test_other_blob(keys):
    with pytest.raises(InvalidEvent, match="other blobs"):
        _check(_token(keys), sha256=OTHER)


def test_x_required_for_upload(keys):
    with pytest.raises(MissingTag):
        _check(_token(keys, sha256=()))


def test_x_tags_bind_even_where_optional(keys):
    assert _check(_token(keys, "get"), verb="get", x_required=False) == keys.public_key
    with pytest.raises(InvalidEvent):
        _check(_token(keys, "get"), verb="get", sha256=OTHER, x_required=False)


def test_missing_expiration_or_verb(keys):
    no_expiration = sign_event(EventTemplate(24242, (("t", "upload"), ("x", BLOB)), "Upload", NOW - 1), keys.secret)
    with pytest.raises(MissingTag, match="expiration"):
        _check(no_expiration)
    no_verb = sign_event(EventTemplate(24242, (("expiration", str(NOW + 60)), ("x", BLOB)), "Upload", NOW - 1), keys.secret)
    with pytest.raises(MissingTag, match="'t'"):
        _check(no_verb)


def test_wrong_kind(keys):
    event = sign_event(EventTemplate(22242, (("t", "upload"), ("expiration", str(NOW + 60))), "", NOW - 1), keys.secret)
    with pytest.raises(MalformedEvent, match="24242"):
        _check(event)


def test_forged_signature(keys):
    event = _token(keys)
    data = event.to_dict()
    data["tags"] = [["t", "upload"], ["expiration", str(NOW + 600)], ["x", OTHER]]
    forged = json.dumps(data)
    header = "Nostr " + base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
    with pytest.raises(InvalidEvent):
        _check(decode_authorization(header), sha256=OTHER)


def test_descriptor_parsing():
    data = {"url": f"https://cdn.example.com/{BLOB}.mp4", "sha256": BLOB, "size": 11, "type": "video/mp4", "uploaded": NOW, "nip94": []}
    descriptor = parse_blob_descriptor(data)
    assert (descriptor.sha256, descriptor.size, descriptor.type, descriptor.uploaded) == (BLOB, 11, "video/mp4", NOW)
    assert parse_blob_descriptor(descriptor.to_dict()) == descriptor
    assert parse_blob_descriptor(data | {"type": ""}).type == "application/octet-stream"


@pytest.mark.parametrize(
    "change",
    [{"url": "ftp://x"}, {"sha256": BLOB.upper()}, {"size": -1}, {"size": "11"}, {"uploaded": "yesterday"}, {"type": 5}],
)
def test_bad_descriptors(change):
    data = {"url": f"https://cdn.example.com/{BLOB}", "sha256": BLOB, "size": 11, "type": "video/mp4", "uploaded": NOW}
    with pytest.raises(BlossomError):
        parse_blob_descriptor(data | change)
    with pytest.raises(BlossomError):
        parse_blob_descriptor([data])


def test_hash_and_url_helpers():
    assert is_sha256(BLOB) and not is_sha256(BLOB.upper()) and not is_sha256(BLOB[:-1])
    assert sha256_from_url(f"https://cdn.example.com/{BLOB}.mp4") == BLOB
    assert sha256_from_url(f"https://x.example/{OTHER}/{BLOB}") == BLOB
    assert sha256_from_url("https://x.example/no-hash.mp4") is None
    assert blob_url("https://cdn.example.com/", BLOB, "mp4") == f"https://cdn.example.com/{BLOB}.mp4"
    assert server_domain("CDN.example.com") == "cdn.example.com"
    assert server_domain("http://127.0.0.1:3000") == "127.0.0.1"
    with pytest.raises(MalformedEvent):
        blob_url("https://cdn.example.com", "nothex")


@settings(max_examples=50, deadline=None)
@given(content=st.text(max_size=200), verb=st.sampled_from(["get", "upload", "list", "delete", "media"]))
def test_header_round_trip_in_both_alphabets(content, verb):
    event = _token(SIGNER, verb, content=content)
    assert decode_authorization(encode_authorization(event)) == event
    assert decode_authorization("Nostr " + base64.b64encode(event.to_json().encode()).decode()) == event


PURE = ["nostr_training/nips/blossom.py", "nostr_training/sfu/base.py"]
FORBIDDEN = {"asyncio", "aiohttp", "websockets", "aiosqlite", "sqlite3", "time", "socket", "os", "livekit"}


@pytest.mark.parametrize("relative", PURE)
def test_pure_modules_touch_nothing_outside(relative):
    tree = ast.parse((REPO / relative).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert ast.get_docstring(tree)


@pytest.mark.parametrize("name", ["nostr_training.nips.blossom", "nostr_training.media.blossom", "nostr_training.media.encrypt", "nostr_training.media.recording"])
def test_public_api_resolves(name):
    module = importlib.import_module(name)
    assert module.__all__ and not [n for n in module.__all__ if not hasattr(module, n)]
