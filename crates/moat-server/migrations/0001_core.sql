-- moat server core schema. Portable types only (BIGINT unix ms, TEXT ids and JSON) so one SQL text runs on
-- SQLite and PostgreSQL through sqlx's Any driver. A version whose DDL must differ gets one file per backend.

CREATE TABLE token (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE artifact (
    digest TEXT PRIMARY KEY,
    media_type TEXT,
    repository TEXT,
    tag TEXT,
    os TEXT,
    arch TEXT,
    config_user TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    signature TEXT,
    package_count BIGINT NOT NULL DEFAULT 0,
    verdict TEXT NOT NULL DEFAULT 'pending',
    verdict_ms BIGINT,
    snapshot_digest TEXT,
    first_seen_ms BIGINT NOT NULL,
    last_scanned_ms BIGINT NOT NULL,
    deleted_ms BIGINT
);
CREATE INDEX artifact_repo ON artifact(repository, tag);
CREATE INDEX artifact_scanned ON artifact(last_scanned_ms);

CREATE TABLE tag (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX tag_digest ON tag(digest);

CREATE TABLE report (
    id TEXT PRIMARY KEY,
    content_digest TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    digest TEXT,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
CREATE INDEX report_digest ON report(digest);

CREATE TABLE sbom (
    digest TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    inventory TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE package (
    id TEXT PRIMARY KEY,
    vkey TEXT NOT NULL,
    purl TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    os TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX package_vkey ON package(vkey);

CREATE TABLE image_package (
    digest TEXT NOT NULL,
    package_id TEXT NOT NULL,
    PRIMARY KEY (digest, package_id)
);
CREATE INDEX image_package_pkg ON image_package(package_id);

CREATE TABLE finding (
    digest TEXT NOT NULL,
    vuln_id TEXT NOT NULL,
    package_key TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity BIGINT NOT NULL,
    fixable BIGINT NOT NULL,
    package_name TEXT,
    package_version TEXT,
    data TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    snapshot_digest TEXT,
    resolved_ms BIGINT,
    resolved_snapshot TEXT,
    PRIMARY KEY (digest, source, vuln_id, package_key)
);
CREATE INDEX finding_vuln ON finding(vuln_id);
CREATE INDEX finding_open ON finding(digest, resolved_ms);

CREATE TABLE vuln_alias (
    alias TEXT NOT NULL,
    vuln_id TEXT NOT NULL,
    PRIMARY KEY (alias, vuln_id)
);

CREATE TABLE verdict (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    decision TEXT NOT NULL,
    reasons TEXT NOT NULL,
    policy TEXT NOT NULL,
    snapshot_digest TEXT,
    decided_ms BIGINT NOT NULL
);
CREATE INDEX verdict_digest ON verdict(digest, decided_ms);

CREATE TABLE workload_image (
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    workload TEXT NOT NULL,
    pod TEXT NOT NULL,
    container TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (cluster, namespace, pod, container, digest, source)
);
CREATE INDEX workload_image_digest ON workload_image(digest);

CREATE TABLE runtime_alert (
    id TEXT PRIMARY KEY,
    content_digest TEXT NOT NULL UNIQUE,
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
CREATE INDEX runtime_alert_ts ON runtime_alert(ts_ms);
CREATE INDEX runtime_alert_rule ON runtime_alert(rule);

CREATE TABLE admission_decision (
    id TEXT PRIMARY KEY,
    content_digest TEXT NOT NULL UNIQUE,
    ts_ms BIGINT NOT NULL,
    allowed BIGINT NOT NULL,
    namespace TEXT,
    kind TEXT,
    name TEXT,
    images TEXT NOT NULL,
    reasons TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX admission_decision_ts ON admission_decision(ts_ms);

CREATE TABLE job (
    id TEXT PRIMARY KEY,
    lane TEXT NOT NULL,
    priority BIGINT NOT NULL,
    concurrency_key TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    run_after_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX job_claim ON job(lane, state, priority, created_ms);
-- One digest is never scanned twice at once: at most one running job per concurrency key.
CREATE UNIQUE INDEX job_running_key ON job(concurrency_key) WHERE state = 'running';

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    state TEXT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    done_ms BIGINT
);
CREATE INDEX outbox_pending ON outbox(state, created_ms);

CREATE TABLE db_snapshot (
    digest TEXT PRIMARY KEY,
    records BIGINT NOT NULL,
    loaded_ms BIGINT NOT NULL,
    evaluated_ms BIGINT
);

-- Per (ecosystem, name) key of the vulnerability snapshot last evaluated: a fingerprint of its records,
-- so a reload re-matches only the packages whose advisories changed.
CREATE TABLE advisory_key (
    vkey TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL
);

CREATE TABLE server_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
