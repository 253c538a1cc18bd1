-- Syncs (one per connected app account and object) and every saved version of their settings.
-- Written once for SQLite and Postgres: TEXT ids (UUID v7), BIGINT Unix milliseconds.

CREATE TABLE syncs (
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- 'deal', 'contact' or 'company'.
    object        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('on', 'paused', 'off')),
    -- The settings version in force.
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (connection_id, object)
);

CREATE TABLE sync_settings (
    sync_id       TEXT NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    -- model::sync::SyncSettings as JSON.
    settings      TEXT NOT NULL,
    saved_by      TEXT REFERENCES users (id) ON DELETE SET NULL,
    saved_by_name TEXT NOT NULL,
    saved_at      BIGINT NOT NULL,
    PRIMARY KEY (sync_id, version)
);
