//! Images and the reports about them: ingest is idempotent by the content digest of the body.

use std::collections::BTreeMap;

use moat_model::Finding;
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, Tx, content_digest, new_id, now_ms};

/// What is known of an image besides its findings.
#[derive(Debug, Clone, Default)]
pub struct ImageMeta {
    pub digest: String,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub media_type: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `signed`, `unsigned`, `invalid`, or None when not checked.
    pub signature: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
}

/// The answer to an ingest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IngestOutcome {
    pub id: String,
    pub digest: String,
    pub duplicate: bool,
}

/// Severity as a sortable integer (unknown 0 … critical 5).
pub fn severity_rank(s: moat_model::Severity) -> i64 {
    use moat_model::Severity::*;
    match s {
        Unknown => 0,
        Info => 1,
        Low => 2,
        Medium => 3,
        High => 4,
        Critical => 5,
    }
}

/// Creates or updates the artifact row (and its tag).
pub async fn upsert_artifact(tx: &mut Tx, m: &ImageMeta) -> Result<(), StoreError> {
    let now = now_ms();
    let labels = serde_json::to_string(&m.labels).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO artifact (digest, media_type, repository, tag, os, arch, config_user, labels, signature, \
         first_seen_ms, last_scanned_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (digest) DO UPDATE SET media_type = COALESCE(excluded.media_type, artifact.media_type), \
         repository = COALESCE(excluded.repository, artifact.repository), tag = COALESCE(excluded.tag, artifact.tag), \
         os = COALESCE(excluded.os, artifact.os), arch = COALESCE(excluded.arch, artifact.arch), \
         config_user = COALESCE(excluded.config_user, artifact.config_user), \
         labels = CASE WHEN excluded.labels = '{}' THEN artifact.labels ELSE excluded.labels END, \
         signature = COALESCE(excluded.signature, artifact.signature), last_scanned_ms = excluded.last_scanned_ms",
    )
    .bind(&m.digest)
    .bind(m.media_type.as_deref())
    .bind(m.repository.as_deref())
    .bind(m.tag.as_deref())
    .bind(m.os.as_deref())
    .bind(m.arch.as_deref())
    .bind(m.user.as_deref())
    .bind(labels)
    .bind(m.signature.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let (Some(repo), Some(tag)) = (&m.repository, &m.tag) {
        sqlx::query(
            "INSERT INTO tag (repository, tag, digest, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms",
        )
        .bind(repo)
        .bind(tag)
        .bind(&m.digest)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The key of a finding's package inside an image (empty for findings without a package).
fn package_key(f: &Finding) -> String {
    f.package
        .as_ref()
        .map(|p| p.purl.to_string())
        .unwrap_or_else(|| {
            f.location
                .file
                .clone()
                .or_else(|| f.location.field.clone())
                .unwrap_or_default()
        })
}

/// Replaces the open findings of one source (`report` or `server`) of an image with `findings`:
/// new ones get `first_seen`, vanished ones `resolved` (with the snapshot), kept ones keep their history.
/// Returns the findings that are new.
pub async fn replace_findings(
    tx: &mut Tx,
    digest: &str,
    source: &str,
    findings: &[Finding],
    snapshot: Option<&str>,
) -> Result<Vec<Finding>, StoreError> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT vuln_id, package_key FROM finding WHERE digest = $1 AND source = $2 AND resolved_ms IS NULL",
    )
    .bind(digest)
    .bind(source)
    .fetch_all(&mut **tx)
    .await?;
    let mut open: std::collections::HashSet<(String, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut new = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in findings {
        if f.suppressed.is_some() {
            continue;
        }
        let key = (f.id.clone(), package_key(f));
        if !seen.insert(key.clone()) {
            continue;
        }
        let data = serde_json::to_string(f).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let fixable = f
            .vulnerability
            .as_ref()
            .is_some_and(|v| !v.fixed_versions.is_empty()) as i64;
        let was_open = open.remove(&key);
        sqlx::query(
            "INSERT INTO finding (digest, vuln_id, package_key, source, kind, severity, fixable, package_name, \
             package_version, data, first_seen_ms, snapshot_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (digest, source, vuln_id, package_key) DO UPDATE SET severity = excluded.severity, \
             fixable = excluded.fixable, data = excluded.data, resolved_ms = NULL, resolved_snapshot = NULL, \
             first_seen_ms = CASE WHEN finding.resolved_ms IS NULL THEN finding.first_seen_ms ELSE excluded.first_seen_ms END, \
             snapshot_digest = CASE WHEN finding.resolved_ms IS NULL THEN finding.snapshot_digest ELSE excluded.snapshot_digest END",
        )
        .bind(digest)
        .bind(&key.0)
        .bind(&key.1)
        .bind(source)
        .bind(f.kind.as_str())
        .bind(severity_rank(f.severity))
        .bind(fixable)
        .bind(f.package.as_ref().map(|p| p.name.clone()))
        .bind(f.package.as_ref().map(|p| p.version.clone()))
        .bind(data)
        .bind(now)
        .bind(snapshot)
        .execute(&mut **tx)
        .await?;
        for alias in std::iter::once(&f.id).chain(&f.aliases) {
            sqlx::query(
                "INSERT INTO vuln_alias (alias, vuln_id) VALUES ($1, $2) ON CONFLICT (alias, vuln_id) DO NOTHING",
            )
            .bind(alias)
            .bind(&f.id)
            .execute(&mut **tx)
            .await?;
        }
        if !was_open {
            new.push(f.clone());
        }
    }
    for (id, pkg) in open {
        sqlx::query(
            "UPDATE finding SET resolved_ms = $1, resolved_snapshot = $2 \
             WHERE digest = $3 AND source = $4 AND vuln_id = $5 AND package_key = $6",
        )
        .bind(now)
        .bind(snapshot)
        .bind(digest)
        .bind(source)
        .bind(id)
        .bind(pkg)
        .execute(&mut **tx)
        .await?;
    }
    Ok(new)
}

/// Stores a moat JSON scan report about the image `meta` describes. A body already stored (same content
/// digest) is a duplicate: nothing changes.
pub async fn ingest_report(
    tx: &mut Tx,
    body: &[u8],
    report: &moat_report::Report,
    meta: &ImageMeta,
) -> Result<IngestOutcome, StoreError> {
    let cd = content_digest(body);
    if let Some(r) = sqlx::query("SELECT id FROM report WHERE content_digest = $1")
        .bind(&cd)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(IngestOutcome {
            id: r.try_get(0)?,
            digest: cd,
            duplicate: true,
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| StoreError::Invalid("report body is not UTF-8".into()))?;
    let id = new_id();
    upsert_artifact(tx, meta).await?;
    sqlx::query(
        "INSERT INTO report (id, content_digest, kind, digest, target, body, received_ms) \
         VALUES ($1, $2, 'moat.report', $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&cd)
    .bind(&meta.digest)
    .bind(&report.target.name)
    .bind(text)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    let snapshot = report.metadata.get("db_digest").map(String::as_str);
    replace_findings(tx, &meta.digest, "report", &report.findings, snapshot).await?;
    Ok(IngestOutcome {
        id,
        digest: cd,
        duplicate: false,
    })
}

impl Store {
    /// Whether a report with this content digest is stored.
    pub async fn report_exists(&self, content_digest: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM report WHERE content_digest = $1")
                .bind(content_digest)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Number of stored reports.
    pub async fn report_count(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM report")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get(0)?)
    }

    /// The open findings of an image, worst first.
    pub async fn open_findings(&self, digest: &str) -> Result<Vec<Finding>, StoreError> {
        let rows = sqlx::query(
            "SELECT data FROM finding WHERE digest = $1 AND resolved_ms IS NULL \
             ORDER BY severity DESC, vuln_id, package_key",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get(0)?;
                serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(format!("finding: {e}")))
            })
            .collect()
    }
}
