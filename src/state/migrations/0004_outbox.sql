-- Version 4: the outbox of results owed to the CRM webhook, written in the same transaction
-- as the result, so a result is never recorded without its delivery being owed.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    event        TEXT NOT NULL,             -- the JSON body to POST
    created_at   TEXT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    next_unix    INTEGER NOT NULL DEFAULT 0, -- not before this time (backoff)
    delivered_at TEXT,
    last_error   TEXT
);
CREATE INDEX outbox_owed ON outbox(next_unix) WHERE delivered_at IS NULL;
