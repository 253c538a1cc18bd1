-- The sync engine: where each sync stands (phase, cursors, lease), the identity map of synced
-- records with the values both sides last agreed on, every run, and every record event.
-- Written once for SQLite and Postgres: TEXT ids (UUID v7, so they sort by time), BIGINT Unix ms.

CREATE TABLE sync_state (
    sync_id            TEXT PRIMARY KEY REFERENCES syncs (id) ON DELETE CASCADE,
    -- 'initial_hubspot', 'initial_app' or 'incremental'.
    phase              TEXT NOT NULL,
    -- Where reading resumes on each side (a list cursor in the initial phase, a modification
    -- time afterwards). Committed with the page it covers.
    hub_cursor         TEXT,
    app_cursor         TEXT,
    initial_started_at BIGINT,
    -- The settings version the state was built for.
    settings_version   BIGINT NOT NULL,
    -- Initial sync progress: records handled of those found when it started.
    progress_done      BIGINT NOT NULL DEFAULT 0,
    progress_total     BIGINT,
    last_run_at        BIGINT,
    last_success_at    BIGINT,
    next_run_at        BIGINT NOT NULL,
    -- One runner at a time: the instance holding the lease and until when.
    lease_owner        TEXT,
    lease_until        BIGINT
);

CREATE TABLE sync_records (
    -- The Tandem id, written into the counterpart before it is created remotely.
    id          TEXT PRIMARY KEY,
    sync_id     TEXT NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    hubspot_id  TEXT,
    app_id      TEXT,
    -- 'creating' (counterpart being created), 'linked', 'excluded' or 'failed'.
    state       TEXT NOT NULL,
    -- Excluded: 'unmapped_stage', 'filter', 'direction'; failed: the error category.
    reason      TEXT,
    message     TEXT,
    -- The side the record was first seen on: 'hubspot' or 'app'.
    origin      TEXT NOT NULL,
    -- The side a pending creation writes to.
    create_on   TEXT,
    name        TEXT NOT NULL DEFAULT '',
    -- JSON: field key -> the values both sides held when they last agreed.
    agreed      TEXT NOT NULL DEFAULT '{}',
    -- Each side's modification time when Tandem last read or wrote it (a later one is a change).
    hub_seen_at BIGINT,
    app_seen_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX sync_records_by_hubspot_id ON sync_records (sync_id, hubspot_id);
CREATE UNIQUE INDEX sync_records_by_app_id ON sync_records (sync_id, app_id);
CREATE INDEX sync_records_by_state ON sync_records (sync_id, state, reason);

CREATE TABLE sync_runs (
    id               TEXT PRIMARY KEY,
    sync_id          TEXT NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    -- 'initial', 'scheduled', 'webhook' or 'manual'.
    trigger          TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    -- 'running', 'succeeded', 'partial' (some records failed), 'failed' or 'interrupted'.
    outcome          TEXT NOT NULL,
    message          TEXT,
    created_in_app   BIGINT NOT NULL DEFAULT 0,
    updated_in_app   BIGINT NOT NULL DEFAULT 0,
    created_in_hub   BIGINT NOT NULL DEFAULT 0,
    updated_in_hub   BIGINT NOT NULL DEFAULT 0,
    skipped          BIGINT NOT NULL DEFAULT 0,
    failed_to_app    BIGINT NOT NULL DEFAULT 0,
    failed_to_hub    BIGINT NOT NULL DEFAULT 0,
    conflicts        BIGINT NOT NULL DEFAULT 0,
    api_calls        BIGINT NOT NULL DEFAULT 0,
    rate_limit_waits BIGINT NOT NULL DEFAULT 0,
    rate_limit_wait_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sync_runs_by_sync ON sync_runs (sync_id, started_at);

CREATE TABLE record_events (
    id        TEXT PRIMARY KEY,
    sync_id   TEXT NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    run_id    TEXT NOT NULL,
    -- The Tandem id of the record.
    record_id TEXT NOT NULL,
    at        BIGINT NOT NULL,
    -- 'created', 'updated', 'conflict', 'excluded', 'failed' or 'deleted'.
    kind      TEXT NOT NULL,
    -- The side written ('created', 'updated'), or where it happened ('deleted', 'excluded').
    side      TEXT NOT NULL,
    -- JSON: [{field, old, new}] of the side written, and for conflicts both values.
    changes   TEXT NOT NULL DEFAULT '[]',
    rule      TEXT,
    category  TEXT,
    message   TEXT
);
CREATE INDEX record_events_by_record ON record_events (record_id, at);
CREATE INDEX record_events_by_run ON record_events (run_id, id);
CREATE INDEX record_events_by_sync ON record_events (sync_id, at);
