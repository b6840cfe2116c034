"""The main job (``./dev run``): the whole instructor/learner round trip over a real relay."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.relay


def test_round_trip_through_two_daemons_and_a_real_relay(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "nostr_training.demo", "--json", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["confirmed"] == [summary["learner"]]
    assert summary["room_key_delivered"] is True
    assert summary["wraps_without_auth"] == 0
    for name in ("instructor", "learner"):
        status = summary["status"][name]
        assert status["running"] is True
        assert status["outbox_depth"] == 0
        assert status["relays"][0]["state"] == "connected"
    assert (tmp_path / "learner" / "index.sqlite").exists()
    assert not (tmp_path / "learner" / "daemon.json").exists(), "a stopped daemon leaves no runtime file"


def test_a_relay_that_is_not_there_fails_with_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "nostr_training.demo", "--relay", "ws://127.0.0.1:9", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("demo: ") and len(done.stderr.strip().splitlines()) == 1
