-- Sync health and history dashboards: an admin's request to retry a failed record, and the
-- indexes that keep every dashboard page fast with a large history (keyset pagination).

-- Set by Retry / Retry all; the engine retries the record on its next run and clears it.
ALTER TABLE sync_records ADD COLUMN retry_requested_at BIGINT;

-- Of a run's skipped records, those read from HubSpot (the rest were read from the app): History
-- shows skips per direction.
ALTER TABLE sync_runs ADD COLUMN skipped_from_hub BIGINT NOT NULL DEFAULT 0;

-- Records of one Health bucket (state, reason), in id order for keyset pages.
DROP INDEX sync_records_by_state;
CREATE INDEX sync_records_by_state ON sync_records (sync_id, state, reason, id);

-- Runs newest first, with the id breaking ties.
DROP INDEX sync_runs_by_sync;
CREATE INDEX sync_runs_by_sync ON sync_runs (sync_id, started_at, id);

-- Events of a sync by time (export, charts), with the id breaking ties.
DROP INDEX record_events_by_sync;
CREATE INDEX record_events_by_sync ON record_events (sync_id, at, id);

-- Record search by name: the index holds what the filter reads and gives the order, so a search
-- reads the names, not the records.
CREATE INDEX sync_records_by_name ON sync_records (sync_id, name, id);
