-- Version 3: outcome tags of each call (comma-separated).
ALTER TABLE attempts ADD COLUMN tags TEXT;
