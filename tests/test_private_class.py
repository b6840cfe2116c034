"""Issue 15's whole story over a real relay: the demo's class run as a private course (invite,
private RSVPs and waitlist, waiting room, room keys, attendance, certificate, recording), then
everything the relay stored read as a stranger would: plain REQs for every kind and COUNT, with
no key of ours. Nothing names the course, a lesson or a learner; no attendance, no certificate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import websockets

from nostr_training import kinds
from nostr_training.nips.nip19 import decode

from relay_servers import start_rust_relay

pytestmark = pytest.mark.relay

#: Kinds that say something about a lesson or a learner: none may be on the relay in the clear.
TRAINING_KINDS = (
    kinds.COURSE, kinds.LESSON, kinds.RSVP, kinds.ROOM, kinds.MEETING, kinds.ROOM_PRESENCE, kinds.JOIN_REQUEST,
    kinds.WAITING_ROOM_DECISION, kinds.ATTENDANCE_CLAIM, kinds.RECORDING_CONSENT, kinds.ATTENDANCE_RECORD,
    kinds.COMPLETION_RECORD, kinds.BADGE_AWARD, kinds.BADGE_DEFINITION, kinds.FILE_METADATA, kinds.LIVE_EVENT,
    kinds.PROFILE_BADGES, kinds.CERTIFICATE_REVOCATION, kinds.DELETION,
)
#: What a learner may publish about themselves: where their DMs and events go.
OWN_LISTS = (kinds.RELAY_LIST, kinds.DM_RELAYS)
TITLES = ("De-escalation basics", "Role play", "de-escalation", "role-play")


def run_demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
    env["TMPDIR"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "nostr_training.demo", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd, env=env, check=False)


async def read_as_stranger(url: str) -> tuple[list[dict], dict[int, int | None]]:
    """Every event the relay serves to a plain REQ per kind and an unfiltered one, and its COUNT
    per kind (None when the relay does not answer COUNT)."""
    events: dict[str, dict] = {}
    counts: dict[int, int | None] = {}
    async with websockets.connect(url, max_size=None) as ws:
        for filters in [{"kinds": [k], "limit": 5000} for k in sorted(kinds.KINDS)] + [{"limit": 5000}]:
            sub = uuid.uuid4().hex[:12]
            await ws.send(json.dumps(["REQ", sub, filters]))
            while True:
                message = json.loads(await ws.recv())
                if message[0] == "EVENT" and message[1] == sub:
                    events[message[2]["id"]] = message[2]
                elif message[0] in ("EOSE", "CLOSED") and message[1] == sub:
                    break
            await ws.send(json.dumps(["CLOSE", sub]))
        for kind in sorted(kinds.KINDS):
            sub = uuid.uuid4().hex[:12]
            await ws.send(json.dumps(["COUNT", sub, {"kinds": [kind]}]))
            while True:
                message = json.loads(await ws.recv())
                if message[0] == "COUNT" and message[1] == sub:
                    counts[kind] = int(message[2]["count"])
                    break
                if message[0] in ("CLOSED", "NOTICE"):
                    counts[kind] = None
                    break
    return list(events.values()), counts


async def test_a_private_class_leaves_nothing_a_stranger_can_read(tmp_path):
    relay = start_rust_relay(tmp_path / "relay", notes_per_minute=100_000)
    try:
        work = tmp_path / "class"
        done = run_demo("--private", "--json", "--keep", str(work), "--relay", relay.url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        events, counts = await read_as_stranger(relay.url)
    finally:
        relay.stop()

    # The class ran as it does in public: the rules gave the same answers.
    assert summary["private"] is True
    learners = {s["name"]: s for s in summary["learners"]}
    assert learners["bo"]["attended_minutes"] == 35 and learners["bo"]["completed"]
    assert learners["ada"]["attended_minutes"] == 20 and not learners["ada"]["completed"]
    assert learners["ada"]["rsvp"] == "declined" and learners["bo"]["rsvp"] == "confirmed"
    assert learners["bo"]["reminders"] == ["promoted", "1h", "starting", "recording_ready"]
    assert learners["bo"]["certificate"] == "valid" and learners["ada"]["certificate"] == "not issued"
    assert summary["certificate_verified_offline"] == "valid"
    assert all(s["proof_verified_offline"] == "valid" for s in learners.values())
    assert learners["bo"]["recording_watched_percent"] == 90
    assert summary["outsider"]["leaks"] == [] and summary["outsider"]["learners"] == 2

    # What the relay holds, read with no key: envelopes, gift wraps and relay lists only.
    learner_keys = {decode(s["npub"]).data for s in learners.values()}
    assert events, "the stranger read the relay"
    by_kind: dict[int, int] = {}
    for event in events:
        by_kind[event["kind"]] = by_kind.get(event["kind"], 0) + 1
        assert event["kind"] not in TRAINING_KINDS, event
        text = json.dumps([event["tags"], event["content"]])
        assert not any(title in text for title in TITLES), event
        if event["kind"] in (kinds.GIFT_WRAP, kinds.GIFT_WRAP_EPHEMERAL):
            text = json.dumps([t for t in event["tags"] if t[0] != "p"])
        named = {k for k in learner_keys if k in text}
        assert not named, f"kind {event['kind']} names a learner outside a gift wrap's p: {event}"
        if event["pubkey"] in learner_keys:
            assert event["kind"] in OWN_LISTS + (kinds.GIFT_WRAP,), event
    assert by_kind.get(kinds.PRIVATE_CALENDAR_ITEM, 0) >= 3  # course, lesson, room and meeting, opaque
    assert by_kind.get(kinds.GIFT_WRAP, 0) > 0
    for kind in TRAINING_KINDS:
        assert counts.get(kind) in (0, None), f"COUNT of kind {kind}: {counts.get(kind)}"
    assert any(counts.get(k) is not None for k in TRAINING_KINDS), "the relay answers COUNT"
    # Each learner's proof and the certificate verify offline from the files they keep.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOSTR_TRAINING_")}
    for name in ("ada", "bo"):
        proof = subprocess.run([sys.executable, "-m", "nostr_training.cli", "attendance", "verify",
                                str(work / f"attendance-{name}.json"), "--json"],
                               capture_output=True, text=True, timeout=60, env=env, check=False)
        assert proof.returncode == 0, proof.stderr
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    certificate = subprocess.run([sys.executable, "-m", "nostr_training.cli", "cert", "verify",
                                  str(work / "certificate-bo.json"), "--json", "--data-dir", str(stranger)],
                                 capture_output=True, text=True, timeout=60, env=env, check=False)
    assert certificate.returncode == 0 and json.loads(certificate.stdout)["status"] == "valid", certificate.stderr
