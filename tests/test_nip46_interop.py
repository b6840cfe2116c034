"""RemoteSigner against an independent NIP-46 signer: NDK's NDKNip46Backend (npm
``@nostr-dev-kit/ndk``, driven by tests/interop/ndk_bunker.mjs) on a real rust-nostr relay.

NDK is installed on first use into the git-ignored .test-tools/ndk (pinned versions; only the
npm registry is needed). A machine without node/npm fails these tests rather than skipping them.
Signed events and gift wraps are also checked by rust-nostr, a third implementation.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nostr_sdk as sdk
import pytest

from nostr_training.daemon.relays import RelayPool
from nostr_training.errors import SignerError, SignerRefused, SignerUnavailable
from nostr_training.event import Event, EventTemplate, verify_event
from nostr_training.keys import Keys
from nostr_training.nips import nip44, nip46, nip59
from nostr_training.remote_signer import RemoteSigner, SignerProfile, create_session_key, open_signer

from relay_servers import RelayProcess, free_port, start_rust_relay

pytestmark = [pytest.mark.interop, pytest.mark.relay]

REPO = Path(__file__).resolve().parent.parent
NDK_DIR = REPO / ".test-tools" / "ndk"
BUNKER_SCRIPT = Path(__file__).resolve().parent / "interop" / "ndk_bunker.mjs"
NDK_VERSION = "3.0.3"
WS_VERSION = "8.23.0"
NOW = 1_800_000_000
TIMEOUT = 10.0
"""Per-request timeout for the signers under test; generous, since it only bounds failures."""


@pytest.fixture(scope="module")
def ndk() -> Path:
    """The directory holding node_modules/@nostr-dev-kit/ndk, installed on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the NDK NIP-46 interop tests")
    package = NDK_DIR / "node_modules" / "@nostr-dev-kit" / "ndk" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != NDK_VERSION:
        NDK_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NDK_DIR),
             f"@nostr-dev-kit/ndk@{NDK_VERSION}", f"ws@{WS_VERSION}"],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"cannot install NDK: {proc.stderr.strip().splitlines()[-1:]}")
    return NDK_DIR


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """rust-nostr's relay, without its 60-events-a-minute limit (every call is two events)."""
    process = start_rust_relay(tmp_path_factory.mktemp("nip46-relay"), notes_per_minute=100_000)
    yield process
    process.stop()


@dataclass
class Bunker:
    """One NDK backend process holding ``user``'s key; stopped (or killed) by pid."""

    user: Keys
    uri: str
    process: subprocess.Popen[str]
    decisions: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def follow(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                with self._changed:
                    self.decisions.append(line.strip())
                    self._changed.notify_all()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def saw(self, line: str) -> bool:
        """Whether the bunker printed ``line`` (it prints before answering; the pipe may lag)."""
        with self._changed:
            return self._changed.wait_for(lambda: line in self.decisions, timeout=TIMEOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if self._reader is not None:
            self._reader.join(10)


@pytest.fixture
def start_bunker(ndk: Path, relay: RelayProcess, tmp_path: Path) -> Iterator:
    started: list[Bunker] = []

    def start(**policy) -> Bunker:
        user = Keys.generate()
        config = {"relay": relay.url, "secret_key": user.secret_hex, "connect_secret": nip46.new_secret(), **policy}
        log = tmp_path / f"bunker-{len(started)}.log"
        with open(log, "w") as stderr:
            process = subprocess.Popen(
                ["node", str(BUNKER_SCRIPT), str(ndk)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                text=True,
            )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(config))
        process.stdin.close()
        first = process.stdout.readline().strip()
        if not first.startswith("ready "):
            process.kill()
            process.wait(10)
            pytest.fail(f"NDK bunker did not start: {first!r} {log.read_text()[-2000:]}")
        bunker = Bunker(user, first.split(" ", 1)[1], process)
        bunker.follow()
        started.append(bunker)
        return bunker

    yield start
    for bunker in started:
        bunker.kill()


@pytest.fixture
async def pool() -> Iterator[RelayPool]:
    async with RelayPool() as shared:
        yield shared


def remote(pool: RelayPool, uri: str, session: Keys | None = None, **kwargs) -> RemoteSigner:
    return RemoteSigner(pool, session or Keys.generate(), nip46.parse_bunker_uri(uri),
                        request_timeout=kwargs.pop("request_timeout", TIMEOUT), **kwargs)


def lesson_template(content: str = "Bring a laptop. Café ☕ at 10.") -> EventTemplate:
    return EventTemplate(31923, (
        ("d", "lesson-1"),
        ("title", "Intro to Nostr"),
        ("start", str(NOW + 3600)),
        ("end", str(NOW + 7200)),
        ("D", str((NOW + 3600) // 86400)),
        ("p", "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d", "", "host"),
        ("alt", "Live training session"),
    ), content, NOW)


async def test_connect_with_a_bunker_uri_and_learn_the_user_key(start_bunker, pool):
    bunker = start_bunker()
    uri = nip46.parse_bunker_uri(bunker.uri)
    assert uri.secret is not None
    signer = remote(pool, bunker.uri)
    assert signer.connection_uri.secret == uri.secret
    assert await signer.get_public_key() == bunker.user.public_key
    assert signer.connection_uri == uri.without_secret()
    await signer.ping()
    assert bunker.saw("request connect allowed")


async def test_concurrent_first_calls_share_one_connect(start_bunker, pool):
    bunker = start_bunker()
    signer = remote(pool, bunker.uri)
    peers = [Keys.generate() for _ in range(4)]
    payloads = await asyncio.gather(*(signer.nip44_encrypt(p.public_key, f"to {i}") for i, p in enumerate(peers)))
    for i, (peer, payload) in enumerate(zip(peers, payloads, strict=False)):
        assert nip44.decrypt(payload, nip44.get_conversation_key(peer.secret, bunker.user.public_key)) == f"to {i}"
    assert bunker.saw("request nip44_encrypt allowed")
    assert bunker.decisions.count("request connect allowed") == 1


async def test_signed_events_verify_here_and_in_rust_nostr(start_bunker, pool):
    bunker = start_bunker()
    signer = remote(pool, bunker.uri)
    template = lesson_template()
    event = await signer.sign_event(template)
    assert verify_event(event).pubkey == bunker.user.public_key
    assert event.template() == template
    theirs = sdk.Event.from_json(event.to_json())
    assert theirs.verify() and theirs.id().to_hex() == event.id


async def test_nip44_round_trip_through_the_bunker(start_bunker, pool):
    bunker = start_bunker()
    signer = remote(pool, bunker.uri)
    peer = Keys.generate()
    text = "room key follows ✓ " * 20
    payload = await signer.nip44_encrypt(peer.public_key, text)
    assert nip44.decrypt(payload, nip44.get_conversation_key(peer.secret, bunker.user.public_key)) == text
    reply = nip44.encrypt("answer é", nip44.get_conversation_key(peer.secret, bunker.user.public_key))
    assert await signer.nip44_decrypt(peer.public_key, reply) == "answer é"


async def test_gift_wrap_a_rumor_through_the_bunker(start_bunker, pool):
    bunker = start_bunker()
    signer = remote(pool, bunker.uri)
    learners = [Keys.generate() for _ in range(2)]
    rumor = EventTemplate(8310, (("a", f"31923:{bunker.user.public_key}:lesson-1"),), "room key", NOW)
    wraps = await nip59.gift_wrap_many(rumor, signer, [k.public_key for k in learners], now=NOW)
    for learner, wrap in zip(learners, wraps, strict=False):
        opened = sdk.UnwrappedGift.from_gift_wrap(sdk.Keys.parse(learner.secret_hex), sdk.Event.from_json(wrap.to_json()))
        assert opened.sender().to_hex() == bunker.user.public_key
        assert json.loads(opened.rumor().as_json())["content"] == "room key"
    # and the other way: a DM to the user, opened by the bunker's decryption
    dm = nip59.gift_wrap_with_key(EventTemplate(14, (("p", bunker.user.public_key),), "see you", NOW),
                                  learners[0].secret, bunker.user.public_key, now=NOW)
    opened = await nip59.unwrap(dm, signer)
    assert opened.author == learners[0].public_key and opened.rumor.content == "see you"


async def test_a_refused_permission_is_signer_refused_and_the_session_goes_on(start_bunker, pool):
    bunker = start_bunker(deny_kinds=[5], deny_methods=["nip44_decrypt"])
    signer = remote(pool, bunker.uri)
    with pytest.raises(SignerRefused, match=r"sign_event \(kind 5\).*Not authorized") as refused:
        await signer.sign_event(EventTemplate(5, (("e", "ab" * 32),), "", NOW))
    assert refused.value.method == "sign_event"
    with pytest.raises(SignerRefused):
        await signer.nip44_decrypt(Keys.generate().public_key, "AgAA")
    assert (await signer.sign_event(lesson_template())).kind == 31923
    assert bunker.saw("request sign_event:5 denied")


async def test_a_wrong_secret_is_refused_and_a_secret_is_single_use(start_bunker, pool):
    bunker = start_bunker()
    uri = nip46.parse_bunker_uri(bunker.uri)
    wrong = nip46.BunkerUri(uri.remote_signer_pubkey, uri.relays, "not-the-secret")
    with pytest.raises(SignerRefused, match="connect"):
        await remote(pool, str(wrong)).connect()
    session = Keys.generate()
    first = remote(pool, bunker.uri, session)
    await first.connect()
    with pytest.raises(SignerRefused):
        await remote(pool, bunker.uri).connect()
    # the approved session comes back later without the spent secret
    again = remote(pool, str(first.connection_uri), session)
    assert await again.get_public_key() == bunker.user.public_key


async def test_switch_relays_moves_the_session_to_the_relays_the_signer_names(start_bunker, pool, relay, tmp_path):
    second = start_rust_relay(tmp_path / "second-relay", notes_per_minute=100_000)
    try:
        bunker = start_bunker(relays=[relay.url, second.url])
        signer = remote(pool, bunker.uri)
        assert signer.relays == (relay.url,)
        assert await signer.switch_relays() == (relay.url, second.url)
        assert signer.connection_uri.relays == (relay.url, second.url)
        await pool.remove_relay(relay.url)
        event = await signer.sign_event(lesson_template())
        assert verify_event(event).pubkey == bunker.user.public_key
    finally:
        second.stop()


async def test_a_signer_that_goes_offline_is_signer_unavailable(start_bunker, pool):
    bunker = start_bunker()
    signer = remote(pool, bunker.uri, request_timeout=2.0)
    await signer.connect()
    bunker.kill()
    with pytest.raises(SignerUnavailable, match="did not answer sign_event"):
        await signer.sign_event(lesson_template())


async def test_relays_that_nobody_serves_are_signer_unavailable(pool):
    uri = nip46.BunkerUri(Keys.generate().public_key, (f"ws://127.0.0.1:{free_port()}",), "s")
    with pytest.raises(SignerUnavailable, match="no relay"):
        await remote(pool, str(uri), request_timeout=1.0).connect()


async def test_an_auth_challenge_is_shown_and_the_request_completes(start_bunker, pool):
    bunker = start_bunker(auth_methods=["sign_event"], auth_url="https://bunker.example/approve?req=1")
    shown: list[str] = []
    signer = remote(pool, bunker.uri, on_auth_url=shown.append)
    event = await signer.sign_event(lesson_template())
    assert shown == ["https://bunker.example/approve?req=1"]
    assert verify_event(event).template() == lesson_template()


async def test_tags_ndk_appends_are_accepted_and_tags_it_drops_are_refused(start_bunker, pool):
    """NDK's content tagger adds a ``t`` per #hashtag and merges away a tag that is a prefix of
    another: the first leaves our event intact, the second would change what we publish."""
    bunker = start_bunker()
    signer = remote(pool, bunker.uri)
    template = lesson_template("Bring a laptop #python")
    event = await signer.sign_event(template)
    assert event.tags[: len(template.tags)] == template.tags and event.tags[len(template.tags):] == (("t", "python"),)
    pk = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"
    prefixed = EventTemplate(31923, lesson_template().tags + (("p", pk),), "", NOW)
    with pytest.raises(SignerError, match="changed the tags"):
        await signer.sign_event(prefixed)


async def test_a_bunker_profile_with_a_session_key_file_builds_a_remote_signer(start_bunker, pool, tmp_path):
    bunker = start_bunker()
    create_session_key(tmp_path / "session.key", "pw", log_n=4)
    profile = SignerProfile.from_dict(SignerProfile.remote(bunker.uri, tmp_path / "session.key").to_dict())
    signer = open_signer(profile, "pw", pool=pool)
    assert isinstance(signer, RemoteSigner)
    assert signer.session_pubkey == Keys.from_ncryptsec((tmp_path / "session.key").read_text(), "pw").public_key
    event = await signer.sign_event(lesson_template())
    assert Event.from_json(event.to_json()).pubkey == bunker.user.public_key
