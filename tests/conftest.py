"""Shared fixtures: keys, a manual clock, temp data dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nostr_training.clock import ManualClock
from nostr_training.keys import Keys

REPO = Path(__file__).resolve().parent.parent
#: Official test vectors, carried inside the repository (a clone has nothing beside it).
VECTORS = REPO / "tests" / "vectors"
TOOLS = REPO / ".test-tools"


@pytest.fixture
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture
def alice() -> Keys:
    return Keys.from_hex("7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a")


@pytest.fixture
def bob() -> Keys:
    return Keys.from_hex("c15d2a640a7bd00f291e074e5e9c1b0bb8b2bbb0f0c2b4a7e5b8e0a63d4a1b2c")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated NOSTR_TRAINING_HOME with a known password."""
    monkeypatch.setenv("NOSTR_TRAINING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NOSTR_TRAINING_PASSWORD", "correct horse")
    monkeypatch.delenv("NOSTR_TRAINING_KEY_FILE", raising=False)
    return tmp_path / "home"
