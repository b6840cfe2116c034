-- 0001: the event index, deletions, the durable outbox, subscription cursors, once-only actions.
-- Applied inside one transaction; PRAGMA user_version records the last migration applied.

-- Every event ever accepted, including superseded, deleted and private ones (kept for audit).
-- The whole event is kept as the JSON it was stored as (raw); the columns hold what queries use.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,              -- arrival order; tag rows point here
    id          TEXT    NOT NULL UNIQUE CHECK (length(id) = 64),
    pubkey      TEXT    NOT NULL CHECK (length(pubkey) = 64),
    created_at  INTEGER NOT NULL CHECK (created_at >= 0),
    kind        INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 65535 AND NOT kind BETWEEN 20000 AND 29999),
    address     TEXT,                             -- kind:pubkey:d for (parameterised) replaceables
    superseded  INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1)),
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    expiration  INTEGER,                          -- NIP-40, unix seconds
    private     INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    container_id TEXT CHECK (container_id IS NULL OR private = 1),
    received_at INTEGER,
    raw         TEXT    NOT NULL CHECK (substr(raw, 1, 1) = '{'),
    CHECK ((address IS NULL) = (kind NOT IN (0, 3) AND NOT kind BETWEEN 10000 AND 19999
                                AND NOT kind BETWEEN 30000 AND 39999))
);
CREATE INDEX events_kind ON events (kind, created_at);
CREATE INDEX events_author ON events (pubkey, kind, created_at);
CREATE INDEX events_address ON events (address, superseded, created_at) WHERE address IS NOT NULL;

-- Single-letter tags, first value only (what NIP-01 filters can match). kind and created_at are
-- copied so that "#a = X and kind = K, newest first" is answered from this index alone.
CREATE TABLE event_tags (
    name       TEXT    NOT NULL CHECK (length(name) = 1),
    value      TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL REFERENCES events (seq),
    PRIMARY KEY (name, value, kind, created_at, seq)
) WITHOUT ROWID;

-- NIP-09 targets (an event id or a kind:pubkey:d address), kept so that a deletion arriving
-- before its target still hides it.
CREATE TABLE deletions (
    target      TEXT    NOT NULL,
    deletion_id TEXT    NOT NULL CHECK (length(deletion_id) = 64),
    deleter     TEXT    NOT NULL CHECK (length(deleter) = 64),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (target, deletion_id)
) WITHOUT ROWID;

-- The durable outbox: an event is committed here before it is sent, one row per relay.
CREATE TABLE outbox_events (
    event_id TEXT    PRIMARY KEY CHECK (length(event_id) = 64),
    kind     INTEGER NOT NULL,
    raw      TEXT    NOT NULL CHECK (json_valid(raw))
) WITHOUT ROWID;

CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL REFERENCES outbox_events (event_id),
    relay           TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'refused')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_message    TEXT,
    enqueued_at     INTEGER NOT NULL,
    next_attempt_at INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event_id, relay),
    CHECK ((next_attempt_at IS NULL) = (state IN ('delivered', 'refused')))
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE cursors (
    relay      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    created_at INTEGER NOT NULL CHECK (created_at >= 0),
    PRIMARY KEY (relay, key)
) WITHOUT ROWID;

-- Once-only actions (reminders sent, keys delivered): the scheduler's memory across restarts.
CREATE TABLE done (
    key     TEXT    PRIMARY KEY,
    done_at INTEGER NOT NULL
) WITHOUT ROWID;
