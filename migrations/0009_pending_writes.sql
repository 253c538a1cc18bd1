-- Updates of a linked record sent and not committed yet (JSON: the mapping keys written to each
-- side and the values agreed once they land), so that a run cut off after its writes landed
-- knows them for its own. NULL when nothing is on its way.
ALTER TABLE sync_records ADD COLUMN pending TEXT;
