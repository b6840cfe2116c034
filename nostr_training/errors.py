"""The one error tree of nostr-training.

Every error the package raises on purpose derives from ``NostrTrainingError``::

    NostrTrainingError
    ├── MalformedEvent          an event (or tag) does not have the shape its kind requires
    │   └── MissingTag          a required tag is absent
    ├── InvalidEvent            well formed but not authentic
    │   ├── InvalidId           the id is not the hash of the fields
    │   └── InvalidSignature    the signature does not verify against the id
    ├── CryptoError             keys, NIP-44, NIP-49, NIP-59 failures
    │   ├── InvalidKey
    │   ├── DecryptionError
    │   └── UnsupportedVersion
    ├── EncodingError           NIP-19 / bech32 input that cannot be decoded
    ├── RelayError              a relay cannot be used: refused, timed out, unreachable, pool closed
    │   ├── RelayRefused        the relay said no (OK false or CLOSED; ``reason`` is its prefix)
    │   ├── RelayTimeout        no answer in time
    │   ├── RelayUnreachable    no connection to the relay
    │   └── AuthRequired        NIP-42 AUTH needed and not given (no signer, or refused)
    ├── StoreError              the local index cannot do what was asked
    │   └── DatabaseTooNew
    ├── DomainError             a training rule says no
    │   ├── IllegalTransition
    │   ├── RsvpRefused
    │   ├── CertificateRefused
    │   ├── NotFound
    │   ├── PrivacyRefused      it would publish private training data in the clear
    │   ├── JoinRefused         no SFU join token for this participant
    │   │   ├── AdmissionRequired   a learner the waiting room has not admitted
    │   │   └── RoomKeyRequired     E2EE is required and there is no room key
    │   └── RecordingRefused    a recording the session's settings exclude
    ├── ConfigError             settings, key files and passwords
    ├── MediaError              an SFU or a blob server refused, or sent what does not verify
    │   ├── WebhookRefused      an SFU webhook whose signature, body hash or shape is wrong
    │   ├── BlossomError        a Blossom server refused a request or broke BUD-01/02/11
    │   └── BlobMismatch        downloaded or stored bytes do not hash to the sha256 asked for
    ├── ContactError            a contact, or a line of a contacts CSV, we cannot accept
    └── SignerError             a remote signer (NIP-46) could not do what was asked
        ├── SignerRefused       it said no (permission denied, wrong secret)
        └── SignerUnavailable   offline, or no answer in time

The CLI turns these into one line on stderr: exit 1 for all of them (a negative answer),
exit 2 only for usage errors raised by click itself.
"""

from __future__ import annotations

__all__ = [
    "AuthRequired",
    "CertificateRefused",
    "ConfigError",
    "CryptoError",
    "DatabaseTooNew",
    "DecryptionError",
    "DomainError",
    "EncodingError",
    "IllegalTransition",
    "InvalidEvent",
    "InvalidId",
    "InvalidKey",
    "InvalidSignature",
    "MalformedEvent",
    "MissingTag",
    "NostrTrainingError",
    "NotFound",
    "RelayError",
    "RelayRefused",
    "RelayTimeout",
    "RelayUnreachable",
    "StoreError",
    "RsvpRefused",
    "JoinRefused",
    "AdmissionRequired",
    "RoomKeyRequired",
    "RecordingRefused",
    "MediaError",
    "WebhookRefused",
    "BlossomError",
    "BlobMismatch",
    "ContactError",
    "SignerError",
    "SignerRefused",
    "SignerUnavailable",
]


class NostrTrainingError(Exception):
    """Base of every deliberate error in the package."""


class MalformedEvent(NostrTrainingError):
    """An event does not have the shape NIP-01 or its kind requires.

    ``field`` names the offending field or tag; ``event_id`` the event when it is known.
    """

    def __init__(self, message: str, *, field: str | None = None, event_id: str | None = None):
        self.field = field
        self.event_id = event_id
        prefix = f"event {event_id[:16]}: " if event_id else ""
        where = f"{field}: " if field and not message.startswith(field + ":") else ""
        super().__init__(f"{prefix}{where}{message}")


class MissingTag(MalformedEvent):
    """A tag the kind requires is absent."""

    def __init__(self, tag: str, *, event_id: str | None = None):
        self.tag = tag
        super().__init__(f"missing required tag '{tag}'", field=tag, event_id=event_id)


class InvalidEvent(NostrTrainingError):
    """Well formed, but not what its author signed."""


class InvalidId(InvalidEvent):
    """The id is not the SHA-256 of the serialised fields."""


class InvalidSignature(InvalidEvent):
    """The signature does not verify for the pubkey and id."""


class CryptoError(NostrTrainingError):
    """A cryptographic operation failed."""


class InvalidKey(CryptoError):
    """A key is out of range, not on the curve, or not in a form we read."""


class DecryptionError(CryptoError):
    """A ciphertext is corrupt, truncated, or its MAC does not match."""


class UnsupportedVersion(CryptoError):
    """A payload uses an encryption version we do not implement."""


class EncodingError(NostrTrainingError):
    """A NIP-19 / bech32 string cannot be decoded."""


class RelayError(NostrTrainingError):
    """A relay cannot be used for what was asked (also: the relay pool is closed)."""

    def __init__(self, message: str, *, relay: str | None = None):
        self.relay = relay
        super().__init__(f"{relay}: {message}" if relay else message)


class RelayRefused(RelayError):
    """A relay answered OK false or CLOSED; ``reason`` holds its machine-readable prefix."""

    def __init__(self, message: str, *, relay: str | None = None):
        self.reason = message.split(":", 1)[0] if ":" in message else ""
        super().__init__(message, relay=relay)


class RelayTimeout(RelayError):
    """A relay did not answer in time."""


class RelayUnreachable(RelayError):
    """No connection to the relay: down, refusing connections, or not in a usable state."""


class AuthRequired(RelayError):
    """A relay wants NIP-42 AUTH and we could not give it."""


class StoreError(NostrTrainingError):
    """The local index cannot do what was asked."""


class DatabaseTooNew(StoreError):
    """The database was written by a newer version of this program."""


class DomainError(NostrTrainingError):
    """A training rule refuses the request."""


class IllegalTransition(DomainError):
    """A session lifecycle step that is not allowed from the current state."""


class RsvpRefused(DomainError):
    """An RSVP that the lesson does not accept now."""


class CertificateRefused(DomainError):
    """A certificate that must not be issued (already valid, revoked, requirements unmet)."""


class NotFound(DomainError):
    """Something the request names does not exist here."""


class PrivacyRefused(DomainError):
    """The outbox will not publish this in the clear: it is, or it names, a private item."""


class ConfigError(NostrTrainingError):
    """Settings, key files or passwords are missing or wrong."""


class JoinRefused(DomainError):
    """No SFU join token for this participant: the room's rules do not let them in."""


class AdmissionRequired(JoinRefused):
    """A learner asked to join a room whose waiting room has not admitted them."""


class RoomKeyRequired(JoinRefused):
    """The room requires E2EE and this participant holds no room key: never clear media instead."""


class RecordingRefused(DomainError):
    """A recording the session's settings exclude (server-side recording of an E2EE room)."""


class MediaError(NostrTrainingError):
    """An SFU or a blob server refused, broke its protocol, or sent what does not verify."""


class WebhookRefused(MediaError):
    """An SFU webhook whose signature, body hash, age or shape is wrong; nothing of it is used."""


class BlossomError(MediaError):
    """A Blossom server refused a request or answered outside BUD-01/02/11.

    ``status`` is the HTTP status when there was one; ``reason`` the server's ``X-Reason``.
    """

    def __init__(self, message: str, *, server: str | None = None, status: int | None = None, reason: str = ""):
        self.server = server
        self.status = status
        self.reason = reason
        where = f"{server}: " if server else ""
        why = f" ({reason})" if reason else ""
        super().__init__(f"{where}{message}{why}")


class BlobMismatch(MediaError):
    """Bytes that do not hash to the sha256 they were asked for or announced under."""
class ContactError(NostrTrainingError):
    """A contact we cannot accept, or a contacts CSV line we cannot read; names line and column."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        self.line = line
        self.column = column
        at_line = f"line {line}: " if line is not None else ""
        at_column = f"{column}: " if column else ""
        super().__init__(f"{at_line}{at_column}{message}")

class SignerError(NostrTrainingError):
    """A remote signer could not do what was asked, or answered something we cannot use."""


class SignerRefused(SignerError):
    """The signer answered no: permission denied, wrong connection secret, request rejected."""

    def __init__(self, message: str, *, method: str | None = None):
        self.method = method
        super().__init__(message)


class SignerUnavailable(SignerError):
    """The signer did not answer in time, or none of its relays took the request."""
