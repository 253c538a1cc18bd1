-- How many times the app said its schema changed (a Pipedrive stage or pipeline added, renamed or
-- deleted, a user added, told by its webhooks): what the engine keeps of a sync's schemas between
-- runs is read again by the next run on any instance once this moves.
ALTER TABLE connections ADD COLUMN schema_changes BIGINT NOT NULL DEFAULT 0;
