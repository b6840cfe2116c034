"""Kind 0 profiles and what an imported key already publishes (0, 10002, 10050)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nostr_training import kinds as k
from nostr_training.errors import MalformedEvent
from nostr_training.event import EventTemplate, sign_event
from nostr_training.keys import Keys
from nostr_training.nips.nip17 import inbox_relays_template
from nostr_training.nips.nip65 import RelayList, relay_list_template

USER = Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")
NOW = 1_800_000_000


def signed(template: EventTemplate, keys: Keys = USER):
    return sign_event(template, keys.secret)


def metadata(content: str, created_at: int = NOW, keys: Keys = USER):
    return signed(EventTemplate(k.METADATA, (), content, created_at), keys)


def test_profile_round_trips_and_keeps_fields_it_does_not_manage():
    theirs = metadata(json.dumps({"name": "old", "lud16": "me@wallet.example", "banner": "https://b.example/x.png"}))
    profile = k.parse_profile(theirs)
    assert profile.name == "old" and profile.extra == {"lud16": "me@wallet.example", "banner": "https://b.example/x.png"}
    updated = k.Profile(name="Ada", display_name="Ada L. 👩🏽‍🏫", picture="https://p.example/a.jpg", about="Teaches\nNostr",
                        nip05="ada@school.example", extra=profile.extra)
    template = k.build_profile(updated, created_at=NOW + 1)
    assert template.kind == 0 and template.tags == ()
    again = k.parse_profile(signed(template))
    assert again.fields() == updated.fields() and again.extra == profile.extra
    assert again.author == USER.public_key and again.created_at == NOW + 1


def test_deprecated_display_name_and_nulls_are_read():
    profile = k.parse_profile(metadata('{"displayName":"Ada","name":null,"about":"x"}'))
    assert (profile.display_name, profile.name, profile.about) == ("Ada", None, "x")


@pytest.mark.parametrize("content, field", [
    ("not json", "content"),
    ('["a"]', "content"),
    ('{"name":"a","name":"b"}', "content"),
    ('{"name":NaN}', "content"),
    ('{"name":1}', "name"),
    ('{"picture":{"url":"x"}}', "picture"),
])
def test_malformed_profiles_name_the_field(content, field):
    with pytest.raises(MalformedEvent) as err:
        k.parse_profile(metadata(content))
    assert err.value.field == field and err.value.event_id


@pytest.mark.parametrize("profile, field", [
    (k.Profile(picture="javascript:alert(1)"), "picture"),
    (k.Profile(nip05="not an address"), "nip05"),
    (k.Profile(name="a", extra={"x": float("nan")}), "content"),
])
def test_builder_refuses_what_the_parser_would(profile, field):
    with pytest.raises(MalformedEvent) as err:
        k.build_profile(profile, created_at=NOW)
    assert err.value.field == field


@given(st.dictionaries(st.sampled_from(["name", "display_name", "about"]), st.text(max_size=50)),
       st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda s: s not in k.profile.PROFILE_FIELDS + ("displayName",)),
                       st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none()), max_size=4))
def test_profile_round_trip_property(fields, extra):
    profile = k.Profile(**fields, extra=extra)
    parsed = k.parse_profile(signed(k.build_profile(profile, created_at=NOW)))
    assert parsed.fields() == profile.fields() and dict(parsed.extra) == extra


def test_identity_to_reuse_takes_the_newest_readable_of_each():
    other = Keys.generate()
    events = [
        metadata('{"name":"first"}', NOW),
        metadata('{"name":"second"}', NOW + 10),
        metadata("{broken", NOW + 20),
        metadata('{"name":"someone else"}', NOW + 30, other),
        signed(relay_list_template(RelayList.of(["wss://old.example"], ["wss://old.example"]), created_at=NOW)),
        signed(relay_list_template(RelayList.of(["wss://read.example"], ["wss://write.example"]), created_at=NOW + 5)),
        signed(inbox_relays_template(["wss://inbox.example"], created_at=NOW)),
        signed(EventTemplate(1, (), "a note", NOW + 40)),
    ]
    found = k.identity_to_reuse(USER.public_key, reversed(events))
    assert found.profile is not None and found.profile.name == "second"
    assert found.profile_event == events[1] and found.unreadable == (events[2].id,)
    assert found.relay_list == RelayList(("wss://read.example",), ("wss://write.example",))
    assert found.dm_relays == ("wss://inbox.example",) and found.dm_relays_event == events[6]


def test_a_cleared_relay_list_does_not_bring_an_older_one_back():
    events = [
        signed(inbox_relays_template(["wss://inbox.example"], created_at=NOW)),
        signed(EventTemplate(k.DM_RELAYS, (), "", NOW + 1)),
        signed(relay_list_template(RelayList.of(["wss://r.example"], []), created_at=NOW)),
        signed(EventTemplate(k.RELAY_LIST, (), "", NOW + 1)),
    ]
    found = k.identity_to_reuse(USER.public_key, events)
    assert (found.dm_relays, found.relay_list, found.profile) == (None, None, None)
    stranger = Keys.generate().public_key
    assert k.identity_to_reuse(stranger, events) == k.ExistingIdentity(stranger)
