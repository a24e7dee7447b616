-- Lists sorted or filtered by when records were created or last changed, per entity, live
-- records only. (Indexes on entity fields are made by Kontor itself from the schemas: see
-- the store's `list` module.)
CREATE INDEX records_live_created ON records (entity, created_at, id) WHERE deleted_batch IS NULL;
CREATE INDEX records_live_updated ON records (entity, updated_at, id) WHERE deleted_batch IS NULL;
