-- Incremental cursors used to be the newest change read, and each read reached back 5 s before
-- them; they now already allow for changes that show late, and reads start at them. Cursors kept
-- before this migration are moved back those 5 s once, so no change around them is missed.
UPDATE sync_state SET hub_cursor = CAST(CAST(hub_cursor AS BIGINT) - 5000 AS TEXT)
    WHERE phase = 'incremental' AND hub_cursor <> '' AND LTRIM(hub_cursor, '0123456789') = '';
UPDATE sync_state SET app_cursor = CAST(CAST(app_cursor AS BIGINT) - 5000 AS TEXT)
    WHERE phase = 'incremental' AND app_cursor <> '' AND LTRIM(app_cursor, '0123456789') = '';
