-- Runtime alert ingest (H-query, SQLite text; 0006_alert_dedupe_postgres.sql is the same change).
-- Dedupe by (ts_ms, content_digest) instead of content_digest alone. ts_ms is parsed from the alert's
-- own `time`, so it is a function of the content and the two unique keys refuse exactly the same rows;
-- but this one grows at its end (alerts arrive in time order) where a key of random digests touched
-- a random leaf of the whole index on every insert, which on SQLite meant writing most of that index
-- to the WAL again with every batch. It also serves the time-ordered reads the old ts_ms index served.
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt (same columns and rows).
CREATE TABLE runtime_alert_0006 (
    id TEXT PRIMARY KEY,
    content_digest TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    priority TEXT NOT NULL,
    severity BIGINT NOT NULL,
    namespace TEXT,
    pod TEXT,
    container_id TEXT,
    image TEXT,
    digest TEXT,
    output TEXT NOT NULL,
    data TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
INSERT INTO runtime_alert_0006 (id, content_digest, ts_ms, source, rule, priority, severity, namespace, pod,
    container_id, image, digest, output, data, received_ms)
    SELECT id, content_digest, ts_ms, source, rule, priority, severity, namespace, pod, container_id, image,
    digest, output, data, received_ms FROM runtime_alert;
DROP TABLE runtime_alert;
ALTER TABLE runtime_alert_0006 RENAME TO runtime_alert;
CREATE UNIQUE INDEX runtime_alert_content ON runtime_alert(ts_ms, content_digest);
CREATE INDEX runtime_alert_rule ON runtime_alert(rule);
