"""The rules stay pure: no I/O, no clock, no randomness; each module says what it decides."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import nostr_training.rules as rules

FORBIDDEN = {"asyncio", "websockets", "aiosqlite", "sqlite3", "time", "datetime", "random", "os"}
MODULES = sorted(p for p in Path(rules.__file__).parent.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_rule_module_imports_nothing_that_touches_the_world(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert ast.get_docstring(tree), "a rule module opens with what it decides and why"


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_public_names_exist(path):
    module = importlib.import_module(f"nostr_training.rules.{path.stem}")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing
