-- Version 5: `contacts.fingerprint` loses its UNIQUE index. Fingerprints are hashes, so every
-- insert into that index landed on a random page: most of the time of importing a large list.
-- An import now reads the known fingerprints into memory once instead. (SQLite cannot drop a
-- column constraint, so the table is rebuilt, with foreign keys off around it.) The phone
-- index's condition is spelled with `!=`: SQLite evaluated `NOT IN (...)` through a temporary
-- table on every insert. Queries that use the index repeat the condition exactly, as SQLite
-- requires.
CREATE TABLE contacts_v5 (
    id          INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL,         -- the row's content and occurrence: known rows are skipped
    line        INTEGER NOT NULL,         -- where the row was in the contact list when imported
    cells       TEXT NOT NULL,            -- every column as imported, a JSON object
    phone       TEXT,                     -- normalised number; NULL when invalid
    requirement TEXT,                     -- the rendered user_requirement
    state       TEXT NOT NULL,
    reason      TEXT,                     -- why invalid, duplicate, uncertain or waiting
    imported_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    in_list     INTEGER NOT NULL DEFAULT 1 -- 0: the row left the contact list
);
INSERT INTO contacts_v5 (id, fingerprint, line, cells, phone, requirement, state, reason, imported_at, updated_at, in_list)
    SELECT id, fingerprint, line, cells, phone, requirement, state, reason, imported_at, updated_at, in_list FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_v5 RENAME TO contacts;
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone)
    WHERE state != 'invalid' AND state != 'duplicate' AND state != 'removed';
CREATE INDEX contacts_by_state ON contacts(state, id);
