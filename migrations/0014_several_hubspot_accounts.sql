-- Several HubSpot accounts on one Tandem: each app connection (a Pipedrive company, a Zoho CRM
-- organization), and so each of its syncs, belongs to one HubSpot account.

-- The HubSpot connection an app connection syncs with. NULL for HubSpot's own connections, and
-- for an app installed before any HubSpot account was connected (it joins the first one that is).
-- Kept for the connection's life: its syncs' records are linked to that account's ids.
ALTER TABLE connections ADD COLUMN hub_connection_id TEXT REFERENCES connections (id);

-- Until now one HubSpot account served every app.
UPDATE connections SET hub_connection_id = (
    SELECT h.id FROM connections h
    WHERE h.provider = 'hubspot' AND h.status <> 'uninstalled'
    ORDER BY h.installed_at, h.id LIMIT 1
) WHERE provider <> 'hubspot';

-- The HubSpot account an install in progress was started for.
ALTER TABLE oauth_states ADD COLUMN hub_connection_id TEXT;

-- The instance (its engine's id) that ran each run: with several instances sharing the work,
-- the runs show that no sync was ever run by two at once.
ALTER TABLE sync_runs ADD COLUMN instance TEXT;
