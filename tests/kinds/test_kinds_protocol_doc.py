"""docs/protocol.md lists every kind and every tag we write, and its examples parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nostr_training import kinds as k
from nostr_training.event import Event, compute_id, verify_event

from kinds_samples import samples

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

PARSERS = {
    k.COURSE: k.parse_course,
    k.LESSON: k.parse_lesson,
    k.RSVP: k.parse_rsvp,
    k.ROOM: k.parse_room,
    k.MEETING: k.parse_meeting,
    k.ROOM_PRESENCE: k.parse_presence,
    k.ROOM_KEY: k.parse_room_key,
    k.WAITING_ROOM_DECISION: k.parse_waiting_room_decision,
    k.JOIN_REQUEST: k.parse_join_request,
    k.RECORDING_CONSENT: k.parse_recording_consent,
    k.ATTENDANCE_CLAIM: k.parse_attendance_claim,
    k.ATTENDANCE_RECORD: k.parse_attendance_record,
    k.COMPLETION_RECORD: k.parse_completion_record,
    k.BADGE_DEFINITION: k.parse_certificate_definition,
    k.BADGE_AWARD: k.parse_certificate_award,
    k.CERTIFICATE_REVOCATION: k.parse_revocation,
    k.DOOR_CHECK: k.parse_door_check,
    k.PROFILE_BADGES: k.parse_profile_badges,
    k.DELETION: k.parse_deletion,
    k.FILE_METADATA: k.parse_recording,
    k.RECORDING_KEY: k.parse_recording_key,
    k.DIRECT_MESSAGE: k.parse_reminder,
}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(doc: str, kind: int) -> str:
    match = re.search(rf"^## {kind} .*?(?=^## |\Z)", doc, re.M | re.S)
    assert match, f"docs/protocol.md has no section for kind {kind}"
    return match.group(0)


def test_every_kind_is_in_the_table(doc):
    for number, info in k.KINDS.items():
        assert re.search(rf"^\| {number} \| {re.escape(info.name)} \|", doc, re.M), number


@pytest.mark.parametrize("name", sorted(samples()))
def test_every_tag_we_write_is_documented_under_its_kind(doc, name):
    template, _ = samples()[name]
    section = _section(doc, template.kind)
    for tag in {t[0] for t in template.tags}:
        assert f"| `{tag}` |" in section, f"kind {template.kind}: tag {tag!r} is not documented"


def test_every_example_verifies_and_parses(doc):
    blocks = re.findall(r"```json\n(.*?)\n```", doc, re.S)
    seen = set()
    for block in blocks:
        data = json.loads(block)
        if "sig" in data:
            event = verify_event(Event.from_dict(data))
        else:
            event = Event.from_dict(data, rumor=True)
            assert compute_id(event.pubkey, event.created_at, event.kind, event.tags, event.content) == event.id
        PARSERS[event.kind](event)
        seen.add(event.kind)
    assert seen == set(PARSERS)
