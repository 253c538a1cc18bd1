-- Accounts, sessions, invitations and login throttling.
-- Written once for SQLite and Postgres: TEXT ids (UUID v7), BIGINT Unix milliseconds.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('super_admin', 'app_marketplace_access', 'viewer')),
    -- NULL until an invited user accepts and chooses a password.
    password_hash TEXT,
    invited_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    last_login_at BIGINT
);

-- One row per one-time event of the installation ("first_admin"); its primary key makes the
-- first-run setup happen exactly once even when two browsers submit it together.
CREATE TABLE instance_flags (
    name   TEXT PRIMARY KEY,
    set_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 of the cookie value; the cookie itself is never stored.
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX invites_by_user ON invites (user_id);

-- Consecutive failed logins per email (known or not), for throttling.
CREATE TABLE login_attempts (
    email           TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL
);
