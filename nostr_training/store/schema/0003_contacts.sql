-- 0003: the CRM's contacts. A contact links to a Nostr identity by pubkey, at most one contact
-- per pubkey, so "which contact is this learner" has one answer. Tags are a JSON array of text.
CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL CHECK (length(name) > 0),
    email      TEXT    NOT NULL DEFAULT '',
    notes      TEXT    NOT NULL DEFAULT '',
    tags       TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    pubkey     TEXT    UNIQUE CHECK (pubkey IS NULL OR length(pubkey) = 64),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_name ON contacts (name COLLATE NOCASE, id);
