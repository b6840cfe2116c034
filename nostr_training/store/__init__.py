"""The local index: one interface (``base.Store``), a SQLite implementation and an in-memory one."""

from .base import AddOutcome, OutboxEntry, OutboxItem, OutboxState, Store, expiration_of, is_delivered_message
from .memory import MemoryStore
from .sqlite import SCHEMA_VERSION, SqliteStore

__all__ = [
    "AddOutcome",
    "OutboxEntry",
    "OutboxItem",
    "OutboxState",
    "Store",
    "MemoryStore",
    "SqliteStore",
    "SCHEMA_VERSION",
    "expiration_of",
    "is_delivered_message",
]
