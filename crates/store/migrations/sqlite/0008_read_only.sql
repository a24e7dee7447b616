-- Business data frozen (maintenance, a shutdown, an upgrade): a JSON text, NULL when writes
-- are open. One row; the process that owns the file mirrors it in its in-memory journal head.
CREATE TABLE database_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    read_only  TEXT
);
INSERT INTO database_state (id, read_only) VALUES (1, NULL);
