-- 0005: events are only appended. Which version of an address is served moves out of the event
-- rows into current_versions (one row per address and namespace naming the winner's seq); the
-- superseded flag and the address index that carried it are gone; ids are their 32 bytes.
-- Measured by what a batch writes: a newer version used to rewrite the old version's page among
-- the large rows (a third of arrivals at 1M) and move its entry in a ~140-byte-per-entry index;
-- now it upserts one narrow row. The id index, which every arrival inserts into at a random
-- place, is half its size as 32-byte BLOBs. A version is superseded when it is not its
-- address's current version (newest created_at, then lowest id: NIP-01).

CREATE TABLE events_v5 (
    seq         INTEGER PRIMARY KEY,              -- arrival order; tag rows point here
    id          BLOB    NOT NULL UNIQUE CHECK (typeof(id) = 'blob' AND length(id) = 32),
    pubkey      TEXT    NOT NULL CHECK (length(pubkey) = 64),
    created_at  INTEGER NOT NULL CHECK (created_at >= 0),
    kind        INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 65535 AND NOT kind BETWEEN 20000 AND 29999),
    address     TEXT,                             -- kind:pubkey:d for (parameterised) replaceables
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    expiration  INTEGER,                          -- NIP-40, unix seconds
    private     INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    container_id TEXT CHECK (container_id IS NULL OR private = 1),
    received_at INTEGER,
    raw         TEXT    NOT NULL CHECK (substr(raw, 1, 1) = '{'),
    CHECK ((address IS NULL) = (kind NOT IN (0, 3) AND NOT kind BETWEEN 10000 AND 19999
                                AND NOT kind BETWEEN 30000 AND 39999))
);

INSERT INTO events_v5 (seq, id, pubkey, created_at, kind, address, deleted, expiration, private, container_id,
                       received_at, raw)
    SELECT seq, unhex(id), pubkey, created_at, kind, address, deleted, expiration, private, container_id,
           received_at, raw
    FROM events ORDER BY seq;

-- From the definition, not from the old flag.
CREATE TABLE current_versions (
    address TEXT    NOT NULL,
    private INTEGER NOT NULL CHECK (private IN (0, 1)),
    seq     INTEGER NOT NULL REFERENCES events (seq),
    PRIMARY KEY (address, private)
) WITHOUT ROWID;

INSERT INTO current_versions (address, private, seq)
    SELECT address, private, seq FROM (
        SELECT address, private, seq,
               row_number() OVER (PARTITION BY address, private ORDER BY created_at DESC, id) AS rank
        FROM events WHERE address IS NOT NULL
    ) WHERE rank = 1;

DROP TABLE events;
ALTER TABLE events_v5 RENAME TO events;
CREATE INDEX events_kind ON events (kind, created_at);
CREATE INDEX events_author ON events (pubkey, kind, created_at);
