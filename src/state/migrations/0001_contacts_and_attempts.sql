-- Version 1: contacts, their dial attempts and the answers, and the campaign's meta.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL UNIQUE,  -- the row's content and occurrence: known rows are skipped
    line        INTEGER NOT NULL,         -- where the row was in the contact list when imported
    cells       TEXT NOT NULL,            -- every column as imported, a JSON object
    phone       TEXT,                     -- normalised number; NULL when invalid
    requirement TEXT,                     -- the rendered user_requirement
    state       TEXT NOT NULL,
    reason      TEXT,                     -- why invalid, duplicate, uncertain or waiting
    imported_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone) WHERE state NOT IN ('invalid', 'duplicate');
CREATE INDEX contacts_by_state ON contacts(state, id);
CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    number           INTEGER NOT NULL,    -- 1 for a contact's first call; a not_sent try keeps its number
    started_at       TEXT NOT NULL,
    request          TEXT NOT NULL,       -- the JSON body sent (the key is a header, never stored)
    idempotency_key  TEXT NOT NULL,
    outcome          TEXT NOT NULL,       -- a contact state, or not_sent
    call_id          TEXT,
    status_raw       TEXT,
    duration_seconds INTEGER,
    cost             REAL,
    transcript       TEXT,
    error            TEXT,
    polls            INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
);
CREATE INDEX attempts_by_contact ON attempts(contact_id);
CREATE INDEX attempts_awaiting ON attempts(outcome) WHERE outcome = 'dialed';
CREATE TABLE answers (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts(id),
    kind        TEXT NOT NULL,            -- initiate or search
    received_at TEXT NOT NULL,
    http_status INTEGER,
    body        TEXT NOT NULL
);
CREATE INDEX answers_by_attempt ON answers(attempt_id);
