"""No public event we build carries room-key material; only the 8310 rumor does."""

from __future__ import annotations

import base64

import pytest

from nostr_training import kinds as k
from nostr_training.event import EventTemplate

from kinds_samples import ROOM_KEY_BYTES, samples

# Public means it may be signed and sent to a relay as is; rumors only travel inside gift wraps.
RUMOR_ONLY = {k.ROOM_KEY, k.DIRECT_MESSAGE}


def _encodings(key: bytes) -> list[str]:
    return [
        key.hex(),
        key.hex().upper(),
        base64.b64encode(key).decode(),
        base64.b64encode(key).decode().rstrip("="),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
        key.decode("latin-1"),
    ]


def _leaks(template: EventTemplate, key: bytes) -> list[str]:
    texts = [template.content, *(item for tag in template.tags for item in tag)]
    # Any 12-byte window of the key, in any common encoding, counts as a leak.
    windows = [key[i : i + 12] for i in range(len(key) - 11)]
    return [text for text in texts for window in windows for enc in _encodings(window) if enc in text]


@pytest.mark.parametrize("name", sorted(n for n, (t, public) in samples().items() if public))
def test_public_events_carry_no_key_material(name):
    template, _ = samples()[name]
    assert template.kind not in RUMOR_ONLY
    assert _leaks(template, ROOM_KEY_BYTES) == []


def test_the_scan_finds_the_key_in_the_room_key_rumor():
    template, public = samples()["room_key"]
    assert not public and template.kind == k.ROOM_KEY
    assert _leaks(template, ROOM_KEY_BYTES)


def test_room_key_kind_is_a_rumor_only_kind_with_alt():
    template, _ = samples()["room_key"]
    assert ("alt", k.rooms.ROOM_KEY_ALT) in template.tags
    assert k.KINDS[k.ROOM_KEY].ours
