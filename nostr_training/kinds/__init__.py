"""Every event kind nostr-training reads or writes: one table, then builders and parsers.

A row says the number, a name, the NIP that defines it, its storage class and whether the kind
is ours (custom; always carries an ``alt`` tag). Builders return unsigned ``EventTemplate``s and
take ``created_at``; parsers take a verified ``Event`` and return a typed value or raise
``MalformedEvent`` naming the event and the field. ``docs/protocol.md`` documents every tag.

One module per family: ``calendar`` (course 31924, lesson 31923, RSVP 31925), ``rooms`` (30312,
30313, 10312, room-key rumor 8310, recording consent 8311, join request 8312, waiting-room
decision 8313), ``attendance`` (claim 8315, record 31930, completion 31931), ``certificates``
(30009, 8, revocation 8314) with ``certificate_bundle`` (the offline verification file),
``training_events`` (NIP-52 events linked to training, door check-in 8316), ``recordings``
(1063), ``reminders`` (kind-14 rumors), ``deletion`` (5) and ``profile`` (0, and what an
imported key already publishes in 0/10002/10050).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..event import KindClass, kind_class

__all__ = [
    "KindInfo",
    "KINDS",
    "PRIVATE_KINDS",
    "info",
    # calendar
    "RsvpStatus",
    "FreeBusy",
    "Module",
    "Course",
    "Lesson",
    "Rsvp",
    "lesson_days",
    "rsvp_status",
    "rsvp_d",
    "build_course",
    "parse_course",
    "build_lesson",
    "parse_lesson",
    "build_rsvp",
    "parse_rsvp",
    # rooms
    "RoomStatus",
    "MeetingStatus",
    "Decision",
    "Room",
    "Meeting",
    "Presence",
    "RoomKey",
    "WaitingRoomDecision",
    "ConsentAnswer",
    "JoinRequest",
    "RecordingConsent",
    "build_room",
    "parse_room",
    "build_meeting",
    "parse_meeting",
    "build_presence",
    "parse_presence",
    "build_room_key",
    "parse_room_key",
    "build_waiting_room_decision",
    "parse_waiting_room_decision",
    "build_join_request",
    "parse_join_request",
    "build_recording_consent",
    "parse_recording_consent",
    # attendance
    "AttendanceAction",
    "CompletionBasis",
    "AttendanceClaim",
    "AttendanceRecord",
    "CompletionRecord",
    "attendance_record_d",
    "completion_record_d",
    "build_attendance_claim",
    "parse_attendance_claim",
    "build_attendance_record",
    "parse_attendance_record",
    "build_completion_record",
    "parse_completion_record",
    # certificates
    "CertificateDefinition",
    "CertificateAward",
    "CertificateRevocation",
    "RevocationMarker",
    "award_hash",
    "build_revocation_marker",
    "parse_revocation_marker",
    "parse_revocation",
    "verification_code",
    "new_verification_code",
    "normalize_code",
    "build_certificate_definition",
    "parse_certificate_definition",
    "build_certificate_award",
    "parse_certificate_award",
    "build_certificate_revocation",
    "parse_certificate_revocation",
    "build_award_deletion",
    "ProfileBadges",
    "parse_profile_badges",
    "build_profile_badge_acceptance",
    # certificate bundle
    "CertificateBundle",
    "build_certificate_bundle",
    "collect_certificate_bundle",
    "bundle_to_dict",
    "bundle_to_json",
    "parse_certificate_bundle",
    # training events
    "DoorAction",
    "DoorCheck",
    "TrainingLink",
    "build_door_check",
    "parse_door_check",
    "build_event_link",
    "parse_training_link",
    # recordings, reminders, deletion
    "Recording",
    "RecordingKey",
    "build_recording",
    "build_recording_key",
    "parse_recording",
    "parse_recording_key",
    "with_recording_tag",
    "ReminderKind",
    "Reminder",
    "reminder_text",
    "build_reminder",
    "parse_reminder",
    "Deletion",
    "build_deletion",
    "parse_deletion",
    # profile
    "Profile",
    "build_profile",
    "parse_profile",
    "ExistingIdentity",
    "identity_to_reuse",
]


@dataclass(frozen=True, slots=True)
class KindInfo:
    number: int
    name: str
    nip: str
    ours: bool = False

    @property
    def kind_class(self) -> KindClass:
        return kind_class(self.number)


METADATA = 0
DELETION = 5
BADGE_AWARD = 8
SEAL = 13
DIRECT_MESSAGE = 14
GIFT_WRAP = 1059
FILE_METADATA = 1063
LABEL = 1985
ROOM_KEY = 8310
RECORDING_CONSENT = 8311
JOIN_REQUEST = 8312
WAITING_ROOM_DECISION = 8313
CERTIFICATE_REVOCATION = 8314
ATTENDANCE_CLAIM = 8315
DOOR_CHECK = 8316
RECORDING_KEY = 8320
RECORD_DELIVERY = 8317
PROFILE_BADGES = 10008
RELAY_LIST = 10002
DM_RELAYS = 10050
BLOSSOM_SERVERS = 10063
ROOM_PRESENCE = 10312
GIFT_WRAP_EPHEMERAL = 21059
AUTH = 22242
BLOSSOM_AUTH = 24242
FOLLOW_SET = 30000
BADGE_DEFINITION = 30009
LIVE_EVENT = 30311
ROOM = 30312
MEETING = 30313
ATTENDANCE_RECORD = 31930
COMPLETION_RECORD = 31931
DATE_EVENT = 31922
LESSON = 31923
COURSE = 31924
RSVP = 31925
PRIVATE_CALENDAR_ITEM = 32678

KINDS: dict[int, KindInfo] = {
    k.number: k
    for k in (
        KindInfo(METADATA, "profile metadata", "01"),
        KindInfo(DELETION, "deletion request", "09"),
        KindInfo(BADGE_AWARD, "certificate award (badge award)", "58"),
        KindInfo(SEAL, "seal", "59"),
        KindInfo(DIRECT_MESSAGE, "direct message rumor", "17"),
        KindInfo(GIFT_WRAP, "gift wrap", "59"),
        KindInfo(FILE_METADATA, "recording (file metadata)", "94"),
        KindInfo(LABEL, "label", "32"),
        KindInfo(ROOM_KEY, "conference room key (rumor only)", "ours", ours=True),
        KindInfo(RECORDING_CONSENT, "recording consent", "ours", ours=True),
        KindInfo(JOIN_REQUEST, "waiting-room join request", "ours", ours=True),
        KindInfo(WAITING_ROOM_DECISION, "waiting-room admit/deny", "ours", ours=True),
        KindInfo(CERTIFICATE_REVOCATION, "certificate revocation", "ours", ours=True),
        KindInfo(ATTENDANCE_CLAIM, "learner join/leave claim", "ours", ours=True),
        KindInfo(DOOR_CHECK, "door check-in/check-out (host-signed)", "ours", ours=True),
        KindInfo(RECORDING_KEY, "recording file key (rumor only)", "ours", ours=True),
        KindInfo(RECORD_DELIVERY, "signed records delivered to one learner (rumor only)", "ours", ours=True),
        KindInfo(RELAY_LIST, "relay list", "65"),
        KindInfo(PROFILE_BADGES, "profile badges", "58"),
        KindInfo(DM_RELAYS, "DM inbox relays", "17"),
        KindInfo(BLOSSOM_SERVERS, "Blossom server list", "B7"),
        KindInfo(ROOM_PRESENCE, "room presence", "53"),
        KindInfo(GIFT_WRAP_EPHEMERAL, "ephemeral gift wrap", "59"),
        KindInfo(AUTH, "relay authentication", "42"),
        KindInfo(BLOSSOM_AUTH, "Blossom authorisation", "B7"),
        KindInfo(FOLLOW_SET, "follow set (roster)", "51"),
        KindInfo(BADGE_DEFINITION, "certificate definition (badge definition)", "58"),
        KindInfo(LIVE_EVENT, "live event", "53"),
        KindInfo(ROOM, "conference room (interactive room)", "53"),
        KindInfo(MEETING, "meeting (conference event)", "53"),
        KindInfo(ATTENDANCE_RECORD, "attendance record", "ours", ours=True),
        KindInfo(COMPLETION_RECORD, "completion record", "ours", ours=True),
        KindInfo(DATE_EVENT, "date-based calendar event", "52"),
        KindInfo(LESSON, "live-session lesson (time-based calendar event)", "52"),
        KindInfo(COURSE, "course (calendar)", "52"),
        KindInfo(RSVP, "RSVP", "52"),
        KindInfo(PRIVATE_CALENDAR_ITEM, "private calendar item (encrypted, Formstr Calendar's kind)", "ours", ours=True),
    )
}


#: Kinds that only ever travel inside a gift wrap. Signed and published, a room key or a DM is
#: a leak; a seal is signed, but only its wrap is ever published.
PRIVATE_KINDS = frozenset({SEAL, DIRECT_MESSAGE, ROOM_KEY, RECORDING_KEY, RECORD_DELIVERY})


def info(kind: int) -> KindInfo | None:
    return KINDS.get(kind)


# The kind modules read the numbers above from this package, so they are imported last.
from .attendance import (  # noqa: E402
    AttendanceAction,
    AttendanceClaim,
    AttendanceRecord,
    CompletionBasis,
    CompletionRecord,
    attendance_record_d,
    build_attendance_claim,
    build_attendance_record,
    build_completion_record,
    completion_record_d,
    parse_attendance_claim,
    parse_attendance_record,
    parse_completion_record,
)
from .calendar import (  # noqa: E402
    Course,
    FreeBusy,
    Lesson,
    Module,
    Rsvp,
    RsvpStatus,
    build_course,
    build_lesson,
    build_rsvp,
    lesson_days,
    parse_course,
    parse_lesson,
    parse_rsvp,
    rsvp_d,
    rsvp_status,
)
from .certificate_bundle import (  # noqa: E402
    CertificateBundle,
    build_certificate_bundle,
    bundle_to_dict,
    bundle_to_json,
    collect_certificate_bundle,
    parse_certificate_bundle,
)
from .certificates import (  # noqa: E402
    CertificateAward,
    CertificateDefinition,
    CertificateRevocation,
    ProfileBadges,
    RevocationMarker,
    award_hash,
    build_award_deletion,
    build_certificate_award,
    build_certificate_definition,
    build_certificate_revocation,
    build_profile_badge_acceptance,
    build_revocation_marker,
    new_verification_code,
    normalize_code,
    parse_certificate_award,
    parse_certificate_definition,
    parse_certificate_revocation,
    parse_profile_badges,
    parse_revocation,
    parse_revocation_marker,
    verification_code,
)
from .deletion import Deletion, build_deletion, parse_deletion  # noqa: E402
from .profile import ExistingIdentity, Profile, build_profile, identity_to_reuse, parse_profile  # noqa: E402
from .recordings import (  # noqa: E402
    Recording,
    RecordingKey,
    build_recording,
    build_recording_key,
    parse_recording,
    parse_recording_key,
    with_recording_tag,
)
from .reminders import Reminder, ReminderKind, build_reminder, parse_reminder, reminder_text  # noqa: E402
from .rooms import (  # noqa: E402
    ConsentAnswer,
    Decision,
    JoinRequest,
    Meeting,
    MeetingStatus,
    Presence,
    RecordingConsent,
    Room,
    RoomKey,
    RoomStatus,
    WaitingRoomDecision,
    build_join_request,
    build_meeting,
    build_presence,
    build_recording_consent,
    build_room,
    build_room_key,
    build_waiting_room_decision,
    parse_join_request,
    parse_meeting,
    parse_presence,
    parse_recording_consent,
    parse_room,
    parse_room_key,
    parse_waiting_room_decision,
)
from .training_events import (  # noqa: E402
    DoorAction,
    DoorCheck,
    TrainingLink,
    build_door_check,
    build_event_link,
    parse_door_check,
    parse_training_link,
)
