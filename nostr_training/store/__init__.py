"""The local index: one interface (``base.Store``), a SQLite implementation and an in-memory one."""

from .base import (
    LOOKUP,
    ActionRecord,
    AddOutcome,
    OutboxEntry,
    OutboxItem,
    OutboxState,
    OutboxTarget,
    Store,
    TargetKind,
    expiration_of,
    is_delivered_message,
)
from .memory import MemoryStore
from .sqlite import SCHEMA_VERSION, SqliteStore

__all__ = [
    "LOOKUP",
    "ActionRecord",
    "AddOutcome",
    "OutboxEntry",
    "OutboxItem",
    "OutboxState",
    "OutboxTarget",
    "Store",
    "TargetKind",
    "MemoryStore",
    "SqliteStore",
    "SCHEMA_VERSION",
    "expiration_of",
    "is_delivered_message",
]
