"""A private course's certificate from the command line, with no daemon running, over a real relay
on loopback: the host issues it by the course's local name and revokes it by course and learner;
the holder's own ``cert list``/``cert verify`` then say revoked (they fetch the hash-only marker,
which nobody else follows); the marker carries no reason. A holder who publishes the certificate
makes it verifiable by a stranger whose data dir holds nothing but the relay's address."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_cli_services import cli_in_thread

from nostr_training import kinds
from nostr_training.daemon.config import load_config, write_config
from nostr_training.daemon.relays import RelayPool
from nostr_training.event import EventTemplate, sign_event, verify_event
from nostr_training.filters import Filter
from nostr_training.keys import Keys, save_key_file
from nostr_training.nips.nip19 import npub_encode

from relay_servers import rust_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.relay


class User:
    def __init__(self, home: Path, url: str, *, with_key: bool = True):
        self.home, self.keys = home, Keys.generate()
        home.mkdir(parents=True)
        if with_key:
            save_key_file(home / "key.ncryptsec", self.keys, "correct horse", log_n=4)
        write_config(load_config(home).with_overrides(relays=[url]))

    @property
    def npub(self) -> str:
        return npub_encode(self.keys.public_key)

    async def cli(self, *args: str):
        return await cli_in_thread(*args, "--data-dir", str(self.home))

    async def cli_json(self, *args: str):
        result = await self.cli(*args, "--json")
        assert result.code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
async def town(tmp_path, rust_relay, monkeypatch):
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "correct horse")
    users = {name: User(tmp_path / name, rust_relay.url) for name in ("host", "ada")}
    users["stranger"] = User(tmp_path / "stranger", rust_relay.url, with_key=False)
    async with RelayPool(verify=verify_event) as pool:
        for name in ("host", "ada"):  # their DM inboxes (10050): the certificate travels there
            inbox = sign_event(EventTemplate(kinds.DM_RELAYS, (("relay", rust_relay.url),), "", int(time.time())),
                               users[name].keys.secret)
            assert all(r.ok for r in (await pool.publish(inbox, [rust_relay.url], timeout=10)).values())
    return users


async def _private_certificate(town) -> tuple[str, str]:
    """The host's private course 'jail-support' and Ada's certificate of it, issued by local name."""
    host, ada = town["host"], town["ada"]
    created = await host.cli_json("course", "create", "jail-support", "Jail support", "--private", "--invite", ada.npub,
                                  "--certification")
    course = created["course"]["coordinate"]
    issued = await host.cli_json("cert", "issue", "jail-support", ada.npub, "--reason", "exam passed")
    assert issued["issued"] and issued["private"] and issued["course"] == course
    return course, issued["code"]


async def test_the_holder_sees_the_revocation_of_a_private_certificate_and_the_marker_says_no_reason(town, rust_relay):
    host, ada = town["host"], town["ada"]
    course, code = await _private_certificate(town)
    [row] = (await ada.cli_json("cert", "list"))["certificates"]
    assert (row["code"], row["status"], row["holder"]) == (code, "valid", ada.keys.public_key)
    assert (await ada.cli("cert", "verify", code)).code == 0
    [listed] = (await host.cli_json("cert", "list", "--course", "jail-support"))["certificates"]
    assert (listed["code"], listed["course"]) == (code, course), "the host lists by the course's local name"

    revoked = await host.cli_json("cert", "revoke", "jail-support", "--learner", ada.npub, "--reason", "failed practical")
    assert revoked["revoked"] and revoked["deletion_id"] is None

    verdict = await ada.cli("cert", "verify", code)
    assert verdict.code == 4 and verdict.stdout.startswith("REVOKED"), verdict.output
    [row] = (await ada.cli_json("cert", "list"))["certificates"]
    assert (row["code"], row["status"]) == (code, "revoked")
    exported = await ada.cli("cert", "export", code)
    assert exported.code == 0 and len(json.loads(exported.stdout)["revocations"]) == 1

    async with RelayPool(verify=verify_event) as pool:
        [marker] = await pool.fetch([Filter(kinds=frozenset({kinds.CERTIFICATE_REVOCATION}))], [rust_relay.url], timeout=10)
    assert marker.content == "" and "failed practical" not in marker.to_json()
    assert {t[0] for t in marker.tags} == {"x", "alt"}
    assert ada.keys.public_key not in marker.to_json() and course not in marker.to_json()


async def test_a_published_private_certificate_verifies_for_a_stranger_with_nothing_but_the_relay(town, rust_relay):
    host, ada, stranger = town["host"], town["ada"], town["stranger"]
    course, code = await _private_certificate(town)
    published = await ada.cli("cert", "publish", code)
    assert published.code == 0, published.output
    assert "and the course it was issued for" in published.stdout
    nevent = published.stdout.split("cert verify ")[1].split()[0]

    unseen = await stranger.cli("cert", "verify", code)  # a code is no relay filter: nothing local
    assert unseen.code == 5, unseen.output
    verdict = await stranger.cli_json("cert", "verify", nevent)
    assert verdict["status"] == "valid", verdict
    assert (verdict["holder"], verdict["course"], verdict["code"]) == (ada.keys.public_key, course, code)
    assert verdict["course_title"] == "Jail support"

    async with RelayPool(verify=verify_event) as pool:  # the course copy names no invitee
        [copy] = await pool.fetch([Filter(kinds=frozenset({kinds.COURSE}))], [rust_relay.url], timeout=10)
    assert copy.tag_value("p") is None and ada.keys.public_key not in copy.to_json()

    await host.cli_json("cert", "revoke", code)
    revoked = await stranger.cli("cert", "verify", nevent)
    assert revoked.code == 4 and revoked.stdout.startswith("REVOKED"), revoked.output
