"""The kinds modules are pure: no sockets, no database, no clock; each says why it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nostr_training.kinds as kinds

FORBIDDEN_MODULES = {"asyncio", "websockets", "aiosqlite", "sqlite3", "time", "socket", "os"}
CLOCK_CALLS = {"now", "utcnow", "today", "time"}
MODULES = sorted(Path(kinds.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_kind_module_touches_nothing_outside(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_MODULES
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not calls & CLOCK_CALLS, "time is an argument, never read"
    assert ast.get_docstring(tree)


def test_public_api_resolves():
    assert not [name for name in kinds.__all__ if not hasattr(kinds, name)]
