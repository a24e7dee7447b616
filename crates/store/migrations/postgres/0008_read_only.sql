-- Business data frozen for every node (maintenance, a shutdown, an upgrade): a JSON text, NULL
-- when writes are open. Kept on the head row because every writer locks that row first: a
-- node sees a freeze at its next write, and setting one waits for the writes in flight.
ALTER TABLE journal_head ADD COLUMN read_only TEXT;
