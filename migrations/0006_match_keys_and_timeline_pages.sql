-- Contacts and companies: the key a record is matched on across the two apps (a contact's email,
-- a company's domain), normalised, so a record new on one side is linked to the one that already
-- exists on the other instead of being created twice.
ALTER TABLE sync_records ADD COLUMN match_key TEXT;
CREATE INDEX sync_records_by_match_key ON sync_records (sync_id, match_key);

-- A record's timeline pages newest first, with the id breaking ties (keyset pagination).
DROP INDEX record_events_by_record;
CREATE INDEX record_events_by_record ON record_events (record_id, at, id);
