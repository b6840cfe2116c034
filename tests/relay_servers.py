"""Real relays for tests: each runs as a direct child process on 127.0.0.1 and is stopped by pid.

Two implementations, neither of them ours:
- rust-nostr's ``LocalRelay`` from PyPI ``nostr-sdk`` (in the project venv), started through
  ``tests/relay_runner_rust.py``; optional NIP-42 modes and ``auth_dm`` (gift wraps served only
  to their authenticated ``p``). In-memory database: a restart forgets every event. Ready when
  its TCP port accepts. Quirks measured against nostr-sdk 0.45.1:
    * no NIP-11 document (the HTTP request is closed without a response);
    * 60 EVENTs a minute per connection by default, then ``OK false "rate-limited: slow down"``;
    * a duplicate is ``OK true "duplicate: already have this event"``; an older revision of an
      addressable event it already has is ``OK false "error: unknown"``;
    * a REQ whose filters only name ``ids`` is CLOSED (empty message) right after its EOSE;
    * at most 500 stored events per filter, whatever its ``limit``.
- PyPI ``nostr-relay`` 1.14 in its own venv under ``.test-tools/`` (created on first use),
  SQLite database in a temp dir, served by uvicorn. Ready when its NIP-11 document answers.
  Quirks measured against 1.14:
    * a duplicate is ``OK false "duplicate: exists"`` (NIP-01 says true); an older revision of
      an addressable event is ``OK true`` (and not served);
    * past 32 open subscriptions on one connection a REQ gets only
      ``NOTICE "rejected: too many subscriptions"`` (no CLOSED, no EOSE), and the limit is not
      in its NIP-11 document;
    * every refused EVENT is answered ``["OK", "", false, ...]`` (empty id), and the relay then
      stops reading that connection for 2 s, doubling with each further refusal (2, 4, 8, 16 s);
    * ``max_event_size`` (4096) limits the *content* length, with the message
      "invalid: 280 characters should be enough for anybody"; it publishes no NIP-11 limits;
    * an event whose id does not match its fields is refused as "invalid: Bad signature";
    * SIGTERM does not stop it while a connection is open: ``stop`` escalates to SIGKILL.
    * with ``auth=True`` it sends ``["AUTH", challenge]`` on connect and refuses an EVENT from a
      pubkey without the ``w`` role (or before any AUTH) as ``["OK", "", false, "restricted:
      permission denied"]``, never ``auth-required:``; a good AUTH gets no answer at all (no OK)
      and resets the throttle, a bad one only a NOTICE such as "invalid: Wrong domain: <url>".

Use ``start_rust_relay``/``start_nostr_relay`` (factories) or the fixtures below.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TOOLS = REPO / ".test-tools"
NOSTR_RELAY_VENV = TOOLS / "nostr-relay-venv"
NOSTR_RELAY_PINS = (
    "nostr-relay==1.14",
    "uvicorn==0.54.0",
    "websockets==17.4",
    "falcon==4.4.0",
    "SQLAlchemy==2.1.9",
    "aiosqlite==0.22.1",
    "alembic==1.20.1",
)
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _nip11_answers(port: int) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Accept": "application/nostr+json"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return isinstance(json.loads(response.read()), dict)
    except (OSError, ValueError):
        return False


@dataclass
class RelayProcess:
    """One relay child process; ``restart`` keeps the port (and, for nostr-relay, the data)."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    ready: Callable[[int], bool]
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> "RelayProcess":
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready on port {self.port} after {START_TIMEOUT:g} s: "
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 3 s; waits until the process is gone."""
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def kill(self) -> None:
        """SIGKILL at once: the relay vanishes mid-connection, as in a crash."""
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_rust_relay(workdir: Path, *, nip42: str | None = None, auth_dm: bool = False,
                     notes_per_minute: int | None = None, port: int | None = None) -> RelayProcess:
    """rust-nostr's LocalRelay; ``nip42`` is read, write or both (AUTH required for that).

    ``notes_per_minute`` lifts the default rate limit of 60 EVENTs a minute per connection."""
    argv = [sys.executable, str(TESTS / "relay_runner_rust.py"), "--port"]
    port = port or free_port()
    argv.append(str(port))
    if nip42:
        argv += ["--nip42", nip42]
    if auth_dm:
        argv.append("--auth-dm")
    if notes_per_minute:
        argv += ["--notes-per-minute", str(notes_per_minute)]
    workdir.mkdir(parents=True, exist_ok=True)
    return RelayProcess("rust-relay", argv, port, workdir, _port_accepts).start()


def ensure_nostr_relay_venv() -> Path:
    """The ``nostr-relay`` executable, installing it into its own venv on first use."""
    exe = NOSTR_RELAY_VENV / "bin" / "nostr-relay"
    if exe.exists():
        return exe
    TOOLS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(NOSTR_RELAY_VENV)], check=True, timeout=300)
    subprocess.run(
        [str(NOSTR_RELAY_VENV / "bin" / "pip"), "install", "--quiet", *NOSTR_RELAY_PINS],
        check=True, timeout=900,
    )
    return exe


_NOSTR_RELAY_CONFIG = """\
DEBUG: false
relay_name: nostr-training test relay
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: {auth}
  relay_urls:
    - ws://127.0.0.1:{port}
  actions:
    save: w
    query: arw
"""


def start_nostr_relay(workdir: Path, *, port: int | None = None, auth: bool = False) -> RelayProcess:
    """PyPI nostr-relay 1.14 with an SQLite database in ``workdir`` (kept across ``restart``).

    ``auth`` turns NIP-42 on with writes only for pubkeys given the ``w`` role
    (``set_nostr_relay_roles``) that have authenticated as ``ws://127.0.0.1:<port>``."""
    exe = ensure_nostr_relay_venv()
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "relay.yaml"
    config.write_text(_NOSTR_RELAY_CONFIG.format(db=workdir / "nostr.sqlite3", port=port,
                                                 auth="true" if auth else "false"))
    argv = [str(exe), "-c", str(config), "serve", "--use-uvicorn"]
    return RelayProcess("nostr-relay", argv, port, workdir, _nip11_answers).start()


def set_nostr_relay_roles(relay: RelayProcess, pubkey: str, roles: str) -> None:
    """Give ``pubkey`` nostr-relay roles (``w`` writes when auth is on), through its own CLI."""
    exe = NOSTR_RELAY_VENV / "bin" / "nostr-relay"
    subprocess.run([str(exe), "-c", str(relay.workdir / "relay.yaml"), "role", "set", "-p", pubkey, "-r", roles],
                   cwd=relay.workdir, check=True, capture_output=True, timeout=60)


# Fixtures ------------------------------------------------------------------------------------
# Session-scoped relays are shared: tests using them publish events with fresh keys and never
# restart them. Tests that kill or restart a relay take the function-scoped ones.


@pytest.fixture(scope="session")
def rust_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    relay = start_rust_relay(tmp_path_factory.mktemp("rust-relay"))
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def rust_relay_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """rust-nostr relay that serves gift wraps (kind 1059) only to their authenticated recipient."""
    relay = start_rust_relay(tmp_path_factory.mktemp("rust-relay-auth"), auth_dm=True)
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def rust_relay_auth_write(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """rust-nostr relay that accepts EVENTs only from authenticated clients (NIP-42 write mode)."""
    relay = start_rust_relay(tmp_path_factory.mktemp("rust-relay-auth-write"), nip42="write")
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def nostr_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    relay = start_nostr_relay(tmp_path_factory.mktemp("nostr-relay"))
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def nostr_relay_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """nostr-relay with NIP-42 on: only pubkeys given the ``w`` role may write, once authenticated."""
    relay = start_nostr_relay(tmp_path_factory.mktemp("nostr-relay-auth"), auth=True)
    yield relay
    relay.stop()


@pytest.fixture
def restartable_nostr_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_nostr_relay(tmp_path / "nostr-relay")
    yield relay
    relay.stop()


@pytest.fixture
def restartable_rust_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_rust_relay(tmp_path / "rust-relay")
    yield relay
    relay.stop()
