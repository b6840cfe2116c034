-- 0002: typed outbox targets and the action log.
-- Outbox rows used to carry markers in their relay column ('targets:unresolved' while relay lists
-- were still to be looked up, 'no-inbox:<pubkey>' for a gift-wrap recipient without inbox
-- relays). A target is now a kind and a value: a relay URL, the look-up placeholder, or a
-- recipient who cannot be reached.
CREATE TABLE outbox_v2 (
    seq             INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL REFERENCES outbox_events (event_id),
    target_kind     TEXT    NOT NULL CHECK (target_kind IN ('relay', 'lookup', 'recipient')),
    target          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'refused')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_message    TEXT,
    enqueued_at     INTEGER NOT NULL,
    next_attempt_at INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event_id, target_kind, target),
    CHECK ((next_attempt_at IS NULL) = (state IN ('delivered', 'refused'))),
    CHECK ((target_kind = 'lookup') = (target = '')),
    CHECK (target_kind != 'recipient' OR length(target) = 64)
);
INSERT INTO outbox_v2 (seq, event_id, target_kind, target, state, attempts, last_message, enqueued_at,
                       next_attempt_at, updated_at)
SELECT seq, event_id,
       CASE WHEN relay = 'targets:unresolved' THEN 'lookup'
            WHEN relay LIKE 'no-inbox:%' THEN 'recipient' ELSE 'relay' END,
       CASE WHEN relay = 'targets:unresolved' THEN ''
            WHEN relay LIKE 'no-inbox:%' THEN substr(relay, 10) ELSE relay END,
       state, attempts, last_message, enqueued_at, next_attempt_at, updated_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- The action log: what the daemon did once (a reminder sent, a room key delivered, a
-- certificate issued), for which subject and pubkey, with which event, when. A scheduler asks
-- it before acting and writes it in the same transaction as the event it causes, so a restart
-- never repeats an action nor loses one. The old 'done' keys move over as action 'once'.
CREATE TABLE actions (
    key      TEXT    PRIMARY KEY,
    action   TEXT    NOT NULL CHECK (length(action) > 0),
    subject  TEXT,
    pubkey   TEXT    CHECK (pubkey IS NULL OR length(pubkey) = 64),
    event_id TEXT    CHECK (event_id IS NULL OR length(event_id) = 64),
    done_at  INTEGER NOT NULL,
    detail   TEXT
) WITHOUT ROWID;
CREATE INDEX actions_by_subject ON actions (subject, action) WHERE subject IS NOT NULL;
CREATE INDEX actions_by_pubkey ON actions (pubkey, action) WHERE pubkey IS NOT NULL;
CREATE INDEX actions_by_action ON actions (action, done_at);
INSERT INTO actions (key, action, done_at) SELECT key, 'once', done_at FROM done;
DROP TABLE done;
