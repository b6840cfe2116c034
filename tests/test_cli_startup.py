"""The CLI imports a command's module only when that command runs (start-up time, issue 10).

What each command loads is checked in a fresh interpreter; the speed itself is measured by
``benchmarks/cli_startup.py``, not asserted here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import click
import pytest

from nostr_training.cli import COMMANDS, cli
from nostr_training.event import EventTemplate, sign_event

PROBE = """
import json, sys
from nostr_training.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

#: What neither --help nor event verify needs: the daemon, the store, asyncio, NaCl and
#: cryptography (NIP-44/49), every kind module, NIP-17/19/59.
HEAVY = (
    "asyncio",
    "nacl",
    "cryptography",
    "sqlite3",
    "aiosqlite",
    "websockets",
    "nostr_training.cli.daemon",
    "nostr_training.daemon",
    "nostr_training.store",
    "nostr_training.kinds",
    "nostr_training.nips",
    "nostr_training.keys",
)


def loaded_by(*args: str, stdin: str = "") -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["modules"]


def heavy_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_help_lists_every_command_without_importing_them():
    code, modules = loaded_by("--help")
    assert code == 0
    assert heavy_in(modules) == []
    assert "nostr_training.cli.toolbox" not in modules


def test_event_verify_loads_only_the_toolbox_and_the_event_core():
    secret = hashlib.sha256(b"startup").digest()
    event = sign_event(EventTemplate(1, (), "hello", 1_800_000_000), secret)
    code, modules = loaded_by("event", "verify", stdin=event.to_json() + "\n")
    assert code == 0
    assert "nostr_training.cli.toolbox" in modules
    assert heavy_in(modules) == []


def test_a_command_that_needs_more_still_loads_it():
    code, modules = loaded_by("nip19", "encode", "npub", "00" * 32)
    assert code == 0
    assert "nostr_training.nips.nip19" in modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_listed_without_importing_is_the_commands_own(name: str):
    _, _, listed = COMMANDS[name]
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name
    own = (command.help or "").split("\n\n")[0].strip()
    assert listed == own
    for limit in (30, 45, 80, 200):
        assert click.Command(name, help=listed).get_short_help_str(limit) == command.get_short_help_str(limit)
