-- A run's calls to the providers by what they were for (reads, writes, lookups, schema), beside
-- their total (`api_calls`), for the History tab. Runs before this migration count none.
ALTER TABLE sync_runs ADD COLUMN calls_read BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN calls_write BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN calls_lookup BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN calls_schema BIGINT NOT NULL DEFAULT 0;
