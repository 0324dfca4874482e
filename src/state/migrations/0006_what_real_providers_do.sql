-- Version 6: what real providers and machines do that our own simulator did not.
-- - `attempts.placed_with`: the provider placed several calls for one request (`call_ids` with
--   more than one id); every call after the first is an attempt of its own, pointing at the
--   first, so each is polled and kept.
-- - `attempts.run_id`: the run that committed a `dialing` intent, so recovery only touches
--   the intents of runs that are gone.
-- - `contacts.not_before`: the provider asked to call this number less often; it waits until
--   then (Unix seconds).
-- - `contacts.template_invalid`: the row is invalid only because of the template, so it is
--   judged again when the template changes.
-- - `meta.database_id`: a random identity, for webhook ids unique across databases.
--
-- Partial indexes keep the new lookups off full scans: the calls placed with another, the
-- contacts held back, and the intents still `dialing` (what recovery reads).
ALTER TABLE attempts ADD COLUMN placed_with INTEGER REFERENCES attempts(id);
CREATE INDEX attempts_placed_with ON attempts(placed_with) WHERE placed_with IS NOT NULL;
ALTER TABLE attempts ADD COLUMN run_id TEXT;
ALTER TABLE contacts ADD COLUMN not_before INTEGER;
CREATE INDEX contacts_held_back ON contacts(not_before) WHERE not_before IS NOT NULL;
CREATE INDEX attempts_dialing ON attempts(contact_id) WHERE outcome = 'dialing';
ALTER TABLE contacts ADD COLUMN template_invalid INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
