-- Queries and continuous re-evaluation (H-query). Portable types only, one text for SQLite and PostgreSQL.

-- GET /api/v1/images: filter by verdict and sort by scan time / first sight without a table scan.
CREATE INDEX artifact_verdict ON artifact(verdict, last_scanned_ms);
CREATE INDEX artifact_first_seen ON artifact(first_seen_ms);
-- `?package=NAME` and the remediation plan's package locations.
CREATE INDEX package_name ON package(name);
-- "Which images have CVE-X": alias -> primary id is the primary key; primary id -> open findings.
-- Covering: the answer is read from the index alone, never from the finding rows (their JSON is large).
CREATE INDEX finding_vuln_open ON finding(vuln_id, resolved_ms, digest, package_key, severity, fixable,
    package_name, package_version, first_seen_ms, snapshot_digest);
-- Re-evaluation replaces one package's open findings of one image.
CREATE INDEX finding_pkg ON finding(digest, package_key);

-- One row per re-evaluation run: which snapshot, how much changed, how long it took.
CREATE TABLE reeval_run (
    id TEXT PRIMARY KEY,
    snapshot_digest TEXT NOT NULL,
    previous_digest TEXT,
    mode TEXT NOT NULL,
    changed_keys BIGINT NOT NULL,
    images BIGINT NOT NULL,
    packages BIGINT NOT NULL,
    new_findings BIGINT NOT NULL,
    resolved_findings BIGINT NOT NULL,
    verdicts_changed BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL
);
CREATE INDEX reeval_run_finished ON reeval_run(finished_ms);
