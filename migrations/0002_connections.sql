-- Connected apps (one row per provider account), OAuth sign-ins in progress, and the audit log.
-- Written once for SQLite and Postgres: TEXT ids (UUID v7), BIGINT Unix milliseconds.

CREATE TABLE connections (
    id                    TEXT PRIMARY KEY,
    -- 'hubspot' or an app's key ('pipedrive').
    provider              TEXT NOT NULL,
    -- The provider's account: HubSpot portal id, Pipedrive company id.
    account_id            TEXT NOT NULL,
    account_name          TEXT NOT NULL,
    account_domain        TEXT,
    -- Where the account's API lives (Pipedrive's api_domain; HubSpot's API base).
    api_base              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('connected', 'needs_reconnection', 'uninstalled')),
    status_reason         TEXT,
    scopes                TEXT NOT NULL,
    -- Sealed with Tandem's secret key (crypto::SecretBox); NULL once uninstalled.
    access_token          TEXT,
    refresh_token         TEXT,
    access_expires_at     BIGINT,
    -- One refresh at a time across instances: a short lease taken before calling the provider.
    refresh_claimed_until BIGINT,
    installed_by          TEXT REFERENCES users (id) ON DELETE SET NULL,
    installed_by_name     TEXT NOT NULL,
    installed_at          BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (provider, account_id)
);

-- An OAuth authorization in progress: single use, bound to the admin's session, short-lived.
CREATE TABLE oauth_states (
    -- SHA-256 of the `state` sent to the provider.
    state_hash    TEXT PRIMARY KEY,
    session_hash  TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    -- Set when reconnecting an existing connection.
    connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
    -- The PKCE verifier, sealed.
    pkce_verifier TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);

-- Who did what, when: installs, reconnects, uninstalls, and (later) sync setting changes.
CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    -- NULL for Tandem itself (for example a connection that lost its authorization).
    actor_id   TEXT REFERENCES users (id) ON DELETE SET NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    summary    TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
