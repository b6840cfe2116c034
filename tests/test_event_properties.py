"""Properties of NIP-01 signing: any Unicode round-trips, any change breaks verification."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nostr_training.errors import InvalidEvent, InvalidId, InvalidSignature, MalformedEvent
from nostr_training.event import Event, EventTemplate, compute_id, id_and_json, sign_event, verify_event
from nostr_training.keys import Keys

AUTHOR = Keys(hashlib.sha256(b"event property author").digest())
OTHER = Keys(hashlib.sha256(b"event property other").digest())

# codec="utf-8" leaves out lone surrogates: every string can be encoded.
text = st.text(st.characters(codec="utf-8"), max_size=60)
tags = st.lists(st.lists(text, min_size=1, max_size=4).map(tuple), max_size=5).map(tuple)
kinds = st.integers(0, 65535)
times = st.integers(0, 2**40)
templates = st.builds(EventTemplate, kind=kinds, tags=tags, content=text, created_at=times)


@settings(max_examples=80, deadline=None)
@given(templates)
def test_sign_then_verify_round_trips_through_json(template):
    event = sign_event(template, AUTHOR.secret)
    assert verify_event(event) is event
    wire = event.to_json()
    again = Event.from_json(wire)
    assert again == event
    assert verify_event(again) is again
    assert json.loads(wire)["content"] == template.content


@settings(max_examples=40, deadline=None)
@given(templates)
def test_id_is_sha256_of_the_compact_utf8_serialisation(template):
    event = sign_event(template, AUTHOR.secret)
    body = json.dumps(
        [0, event.pubkey, event.created_at, event.kind, [list(t) for t in event.tags], event.content],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert event.id == hashlib.sha256(body.encode("utf-8")).hexdigest()


@settings(max_examples=80, deadline=None)
@given(templates, st.booleans())
def test_id_and_json_match_compute_id_and_the_json_encoder(template, rumor):
    """The store's one-pass encoding gives the id of NIP-01's serialisation and the JSON the
    standard encoder writes."""
    event = sign_event(template, AUTHOR.secret)
    if rumor:
        event = _rebuild(event, sig=None)
    encoded = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)
    assert id_and_json(event) == (event.id, encoded)
    tampered = _rebuild(event, content=event.content + "x")
    assert id_and_json(tampered)[0] == compute_id(tampered.pubkey, tampered.created_at, tampered.kind, tampered.tags, tampered.content) != event.id


@pytest.mark.parametrize("change", [{"kind": True}, {"created_at": 1.0}, {"content": 5}, {"id": None}])
def test_id_and_json_refuse_fields_of_the_wrong_type(change):
    """An Event built by hand may carry them; JSON would spell them differently from the hash
    the signer took, so they are refused rather than guessed at."""
    event = sign_event(EventTemplate(1, (("t", "x"),), "hi", 1), AUTHOR.secret)
    with pytest.raises(MalformedEvent):
        id_and_json(_rebuild(event, **change))


def _flip_hex(value: str, position: int) -> str:
    i = position % len(value)
    return value[:i] + ("1" if value[i] != "1" else "2") + value[i + 1 :]


def _rebuild(event: Event, **changes) -> Event:
    fields = dict(
        id=event.id,
        pubkey=event.pubkey,
        created_at=event.created_at,
        kind=event.kind,
        tags=event.tags,
        content=event.content,
        sig=event.sig,
    )
    fields.update(changes)
    return Event(**fields)


@settings(max_examples=120, deadline=None)
@given(templates, st.data())
def test_any_change_fails_verification(template, data):
    event = sign_event(template, AUTHOR.secret)
    field = data.draw(st.sampled_from(["id", "sig", "content", "tags", "kind", "created_at", "pubkey"]))
    if field == "id":
        changed = _rebuild(event, id=_flip_hex(event.id, data.draw(st.integers(0, 63))))
    elif field == "sig":
        changed = _rebuild(event, sig=_flip_hex(event.sig, data.draw(st.integers(0, 127))))
    elif field == "content":
        new = data.draw(text)
        assume(new != event.content)
        changed = _rebuild(event, content=new)
    elif field == "tags":
        new = data.draw(tags)
        assume(new != event.tags)
        changed = _rebuild(event, tags=new)
    elif field == "kind":
        new = data.draw(kinds)
        assume(new != event.kind)
        changed = _rebuild(event, kind=new)
    elif field == "created_at":
        new = data.draw(times)
        assume(new != event.created_at)
        changed = _rebuild(event, created_at=new)
    else:
        changed = _rebuild(event, pubkey=OTHER.public_key)
    with pytest.raises(InvalidEvent):
        verify_event(changed)


@settings(max_examples=40, deadline=None)
@given(templates)
def test_a_signature_from_another_key_with_a_matching_id_is_refused(template):
    """Re-pointing an event at another author with a correct id still needs that author's key."""
    event = sign_event(template, AUTHOR.secret)
    forged_id = compute_id(OTHER.public_key, event.created_at, event.kind, event.tags, event.content)
    forged = _rebuild(event, pubkey=OTHER.public_key, id=forged_id)
    with pytest.raises(InvalidSignature):
        verify_event(forged)
    with pytest.raises(InvalidId):
        verify_event(_rebuild(event, pubkey=OTHER.public_key))


surrogate = st.integers(0xD800, 0xDFFF).map(chr)


@settings(max_examples=40, deadline=None)
@given(text, surrogate, st.integers(0, 60), st.booleans())
def test_lone_surrogates_are_refused(base, lone, at, in_tag):
    poisoned = base[:at] + lone + base[at:]
    template = (
        EventTemplate(1, (("t", poisoned),), "", 1) if in_tag else EventTemplate(1, (), poisoned, 1)
    )
    with pytest.raises(MalformedEvent) as caught:
        sign_event(template, AUTHOR.secret)
    assert caught.value.field == ("tags" if in_tag else "content")
    with pytest.raises(MalformedEvent):
        compute_id(AUTHOR.public_key, 1, 1, template.tags, template.content)
    with pytest.raises(MalformedEvent) as caught:
        id_and_json(Event("00" * 32, AUTHOR.public_key, 1, 1, template.tags, template.content, "00" * 64))
    assert caught.value.field == ("tags" if in_tag else "content")
