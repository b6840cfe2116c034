"""The package's layers, enforced: who may import what, and who may read the wall clock.

The rules are data (``RULES``, ``WALL_CLOCK``); adjust them there. A path pattern ending in
``/`` means everything under that directory of ``nostr_training/``, any other pattern one file.
Imports anywhere in a module count, also the ones inside functions. ``KNOWN_VIOLATIONS`` lists
what today's tree still breaks, each with the change that removes it; an entry that no longer
occurs fails the test, so the list only shrinks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nostr_training"

PURE_CORE = ("event.py", "filters.py", "keys.py", "protocol.py", "nips/", "kinds/", "rules/")


@dataclass(frozen=True)
class Rule:
    modules: tuple[str, ...]
    """Imported modules (dotted names; a name also covers its submodules)."""
    why: str
    only_in: tuple[str, ...] | None = None
    """When set, only these paths may import ``modules``."""
    never_in: tuple[str, ...] = ()
    """These paths must not import ``modules``."""


RULES = (
    Rule(("websockets",), "the relay pool is the one websocket client", only_in=("daemon/relays.py",)),
    Rule(("sqlite3", "aiosqlite"), "the store owns the database", only_in=("store/",)),
    Rule(("click",), "the CLI owns the command line", only_in=("cli/",)),
    Rule(
        ("nostr_training.cli",), "the CLI sits on top; nothing below it reaches up",
        never_in=("daemon/", "services/", "store/", "rules/", "kinds/", "nips/", "paths.py", *PURE_CORE),
    ),
    Rule(
        ("asyncio", "websockets", "aiohttp", "aiosqlite", "sqlite3", "socket", "click"),
        "the protocol core is pure: no I/O, no event loop", never_in=PURE_CORE,
    ),
    Rule(("aiohttp",), "HTTP lives with the daemon and the services", only_in=("daemon/", "media/", "sfu/", "services/")),
    Rule(("nostr_sdk",), "the demo starts rust-nostr's relay (the 'demo' extra); nothing else uses it", only_in=("demo.py",)),
    Rule(("pytest", "hypothesis"), "test-only dependencies stay out of the package", only_in=()),
)

#: Reads of the wall clock (as ``module.attr`` after resolving ``import x as y`` and
#: ``from x import y``); only these files may make them. Everything else takes a ``Clock``.
WALL_CLOCK = frozenset({
    "time.time", "time.time_ns", "time.localtime", "time.gmtime", "time.ctime", "time.asctime",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
})
WALL_CLOCK_ONLY_IN = ("clock.py",)

#: (path, what) pairs the tree still has, and what removes each.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def _covers(pattern: str, path: str) -> bool:
    return path.startswith(pattern) if pattern.endswith("/") else path == pattern


def _module_of(path: str) -> list[str]:
    """The dotted package of a file, e.g. ``daemon/config.py`` -> ["nostr_training", "daemon"]."""
    return ["nostr_training", *path.split("/")[:-1]]


def imported_modules(path: str, tree: ast.AST) -> set[str]:
    """Every module a file imports, relative imports resolved; ``from a import b`` yields both
    ``a`` and ``a.b`` (``b`` may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _module_of(path)
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _matches(imported: str, module: str) -> bool:
    return imported == module or imported.startswith(module + ".")


def wall_clock_reads(tree: ast.AST) -> set[str]:
    """``module.attr`` chains that read the wall clock, whatever the module was imported as."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)):
            dotted = _dotted(node, names)
            if dotted in WALL_CLOCK:
                found.add(dotted)
    return found


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def violations(path: str, source: str) -> set[str]:
    """What ``source`` (the file at ``path`` under nostr_training/) breaks, as short phrases."""
    tree = ast.parse(source)
    imported = imported_modules(path, tree)
    out: set[str] = set()
    for rule in RULES:
        allowed = rule.only_in is None or any(_covers(p, path) for p in rule.only_in)
        denied = any(_covers(p, path) for p in rule.never_in)
        if allowed and not denied:
            continue
        for module in rule.modules:
            if any(_matches(name, module) for name in imported):
                out.add(f"imports {module}")
    if not any(_covers(p, path) for p in WALL_CLOCK_ONLY_IN):
        out.update(f"reads the wall clock: {read}" for read in wall_clock_reads(tree))
    return out


def tree_violations() -> dict[tuple[str, str], None]:
    found: dict[tuple[str, str], None] = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        path = file.relative_to(PACKAGE).as_posix()
        for what in sorted(violations(path, file.read_text("utf-8"))):
            found[(path, what)] = None
    return found


def test_the_package_keeps_its_layers():
    found = tree_violations()
    new = [f"{path}: {what}" for path, what in found if (path, what) not in KNOWN_VIOLATIONS]
    assert new == [], "layer rules broken (see RULES in tests/test_layers.py):\n" + "\n".join(new)
    gone = [f"{path}: {what}" for path, what in KNOWN_VIOLATIONS if (path, what) not in found]
    assert gone == [], "fixed: remove from KNOWN_VIOLATIONS:\n" + "\n".join(gone)


def test_the_checker_catches_each_kind_of_offence():
    """The checker can fail: a synthetic module breaking every rule is caught on each count."""
    offender = """
import asyncio
import socket as net
from time import time as now_s
import datetime as dt
from .. import cli
from ..store import sqlite

def later():
    import websockets, aiohttp, click, sqlite3
    from nostr_sdk import Client
    return now_s(), dt.datetime.now(), dt.date.today()
"""
    assert violations("kinds/offender.py", offender) == {
        "imports asyncio", "imports socket", "imports websockets", "imports aiohttp", "imports click",
        "imports sqlite3", "imports nostr_sdk", "imports nostr_training.cli",
        "reads the wall clock: time.time", "reads the wall clock: datetime.datetime.now",
        "reads the wall clock: datetime.date.today",
    }
    assert violations("daemon/config.py", "from ..cli.options import data_dir\n") == {"imports nostr_training.cli"}
    assert violations("services/status.py", "from datetime import datetime\nx = datetime.utcnow()\n") == {
        "reads the wall clock: datetime.datetime.utcnow"
    }
    assert violations("store/sqlite.py", "import aiosqlite, sqlite3, asyncio\n") == set()
    assert violations("daemon/relays.py", "import websockets\nimport aiohttp\n") == set()
    assert violations("clock.py", "import time\nx = time.time()\n") == set()
    assert violations("cli/daemon.py", "import click\nfrom ..daemon import app\nimport time\nt = time.monotonic()\n") == set()
