-- Registry pipeline (scan on push): the layer cache and the platforms of pushed image indexes.
-- Portable types only (BIGINT unix ms, TEXT ids and JSON), one text for SQLite and PostgreSQL.

-- What one layer adds and removes, keyed by its digest (the compressed blob digest the manifest names;
-- the entry is only written after the whole blob was read and its digest verified). A push whose
-- layers are all cached is judged without reading any layer blob.
CREATE TABLE layer_cache (
    layer_digest TEXT PRIMARY KEY,
    diff_id TEXT,
    changes TEXT NOT NULL,
    entries BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    used_ms BIGINT NOT NULL
);
CREATE INDEX layer_cache_used ON layer_cache(used_ms);

-- The per-platform manifests of a pushed index: the index's verdict is the worst of its platforms'.
CREATE TABLE index_platform (
    index_digest TEXT NOT NULL,
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    PRIMARY KEY (index_digest, digest)
);
CREATE INDEX index_platform_digest ON index_platform(digest);
