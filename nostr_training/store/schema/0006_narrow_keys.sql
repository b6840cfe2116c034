-- 0006: narrower keys for the indexes every arrival inserts into at a random place. Measured by
-- the WAL frames of the last 50,000-event batch at 1M events (4.9 KB written per event): the
-- author index (pubkey text, ~96 bytes an entry) wrote 1.5 KB per event, as every (author, kind)
-- range ended on a page of its own; the unique 32-byte id index 0.9 KB and current_versions
-- (keyed by the ~88-byte address text) 0.5 KB, a batch dirtying nearly all of their pages.
-- - Each distinct pubkey is stored once in authors; event rows and the author index hold its
--   number (6,441 -> 4,690 bytes written per event at 1M).
-- - The id index is keyed by the id's first 8 bytes (id_key, big-endian, signed); a look-up
--   compares the whole id, so two ids sharing a key are told apart (-> 4,234).
-- - An event row keeps its address's d instead of the whole address (kind and author are the
--   row's own) and current_versions is keyed by (author, kind, d).

CREATE TABLE authors (
    aid    INTEGER PRIMARY KEY,
    pubkey TEXT    NOT NULL UNIQUE CHECK (length(pubkey) = 64)
);

INSERT INTO authors (pubkey) SELECT DISTINCT pubkey FROM events ORDER BY pubkey;

CREATE TABLE events_v6 (
    seq         INTEGER PRIMARY KEY,              -- arrival order; tag rows point here
    id          BLOB    NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 32),
    id_key      INTEGER NOT NULL,                 -- the id's first 8 bytes, big-endian, signed
    author      INTEGER NOT NULL REFERENCES authors (aid),
    created_at  INTEGER NOT NULL CHECK (created_at >= 0),
    kind        INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 65535 AND NOT kind BETWEEN 20000 AND 29999),
    d           TEXT,                             -- its address is kind:pubkey:d ('' for a replaceable)
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    expiration  INTEGER,                          -- NIP-40, unix seconds
    private     INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    container_id TEXT CHECK (container_id IS NULL OR private = 1),
    received_at INTEGER,
    raw         TEXT    NOT NULL CHECK (substr(raw, 1, 1) = '{'),
    CHECK ((d IS NULL) = (kind NOT IN (0, 3) AND NOT kind BETWEEN 10000 AND 19999
                                AND NOT kind BETWEEN 30000 AND 39999))
);

INSERT INTO events_v6 (seq, id, id_key, author, created_at, kind, d, deleted, expiration, private, container_id,
                       received_at, raw)
    SELECT e.seq, e.id, id_key(e.id), a.aid, e.created_at, e.kind,
           substr(e.address, instr(e.address, ':') + 66),  -- after kind, ':', 64 hex and ':'; NULL stays NULL
           e.deleted, e.expiration, e.private, e.container_id, e.received_at, e.raw
    FROM events e JOIN authors a ON a.pubkey = e.pubkey ORDER BY e.seq;

DROP TABLE events;
ALTER TABLE events_v6 RENAME TO events;
CREATE INDEX events_kind ON events (kind, created_at);
CREATE INDEX events_author ON events (author, kind, created_at);
CREATE INDEX events_id ON events (id_key);

-- Which version is current, keyed by (author, kind, d) instead of the address text.
CREATE TABLE current_versions_v6 (
    author  INTEGER NOT NULL REFERENCES authors (aid),
    kind    INTEGER NOT NULL,
    d       TEXT    NOT NULL,
    private INTEGER NOT NULL CHECK (private IN (0, 1)),
    seq     INTEGER NOT NULL REFERENCES events (seq),
    PRIMARY KEY (author, kind, d, private)
) WITHOUT ROWID;

INSERT INTO current_versions_v6 (author, kind, d, private, seq)
    SELECT e.author, e.kind, e.d, c.private, c.seq FROM current_versions c JOIN events e ON e.seq = c.seq;

DROP TABLE current_versions;
ALTER TABLE current_versions_v6 RENAME TO current_versions;
