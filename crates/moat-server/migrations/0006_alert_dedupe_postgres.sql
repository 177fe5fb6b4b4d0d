-- Runtime alert ingest (H-query, PostgreSQL text; see 0006_alert_dedupe_sqlite.sql for why): dedupe by
-- (ts_ms, content_digest), a key that grows at its end, instead of the random content digest alone;
-- the unique index also serves the time-ordered reads of the ts_ms index it replaces.
ALTER TABLE runtime_alert DROP CONSTRAINT runtime_alert_content_digest_key;
DROP INDEX runtime_alert_ts;
CREATE UNIQUE INDEX runtime_alert_content ON runtime_alert(ts_ms, content_digest);
