-- Version 2: times as Unix seconds for calling-hours arithmetic (redial spacing, daily caps),
-- and the do-not-call numbers.
ALTER TABLE attempts ADD COLUMN started_unix INTEGER;   -- when the intent was committed
ALTER TABLE attempts ADD COLUMN finished_unix INTEGER;  -- when its result arrived
UPDATE attempts SET started_unix = unixepoch(started_at);
UPDATE attempts SET finished_unix = unixepoch(updated_at) WHERE status_raw IS NOT NULL;
CREATE INDEX attempts_by_start ON attempts(started_unix);
CREATE TABLE suppressed (
    phone    TEXT PRIMARY KEY,                      -- normalised, like contacts.phone
    source   TEXT NOT NULL,                         -- the list file, or `stepcall suppress`
    added_at TEXT NOT NULL
) WITHOUT ROWID;
-- Whether the contact's row is still in the list: a row deleted (or corrected) in the CSV is
-- never dialled again, and a contact not dialled yet becomes `removed`.
ALTER TABLE contacts ADD COLUMN in_list INTEGER NOT NULL DEFAULT 1;
DROP INDEX contacts_by_phone;
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone) WHERE state NOT IN ('invalid', 'duplicate', 'removed');
