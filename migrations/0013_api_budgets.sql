-- One API budget per provider account (a connection: a HubSpot account, a Pipedrive company, a
-- Zoho CRM organization), shared by every sync and every instance through this database.

-- The share of the account's limit Tandem may use, in percent (the rest is left to the account's
-- other integrations). Set on the connection's page.
ALTER TABLE connections ADD COLUMN api_share BIGINT NOT NULL DEFAULT 80;

-- What the provider's answers said of the account's limit, and what Tandem spent today.
CREATE TABLE api_budgets (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    -- The provider's rolling window (HubSpot's ten seconds, Pipedrive's burst window): at most
    -- window_max calls per window_ms; 0 when its answers name none (limits off).
    window_max    BIGINT NOT NULL DEFAULT 0,
    window_ms     BIGINT NOT NULL DEFAULT 0,
    -- No call before this (Unix ms): the provider answered 429 or said nothing is left.
    paused_until  BIGINT NOT NULL DEFAULT 0,
    -- Calls on the UTC day numbered `day` (days since the Unix epoch).
    day           BIGINT NOT NULL DEFAULT 0,
    day_calls     BIGINT NOT NULL DEFAULT 0
);

-- Calls sent per tenth of a second, kept for the longest window (a minute), so that every
-- instance counts the calls of all of them in the provider's window.
CREATE TABLE api_calls (
    connection_id TEXT NOT NULL,
    -- Unix ms / 100.
    slot          BIGINT NOT NULL,
    calls         BIGINT NOT NULL,
    -- Of them, searches (HubSpot's search allows a few a second apart from the window).
    searches      BIGINT NOT NULL,
    PRIMARY KEY (connection_id, slot)
);
