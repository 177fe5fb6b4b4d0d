//! From parsed registry notifications to scan jobs: every manifest push becomes one job on the push
//! lane, deduplicated by digest (a digest is scanned once, whatever the number of events, tags or
//! retried deliveries naming it), and the image is recorded with a `pending` verdict, all in the
//! caller's transaction, so an acknowledged push is never lost.

use serde::Serialize;
use sqlx::Row;

use super::payload::{Parsed, PushHint};
use crate::pipeline::scan::ScanJob;
use crate::pipeline::settings::ScanSettings;
use crate::store::queue::{self, LANE_PUSH, NewJob};
use crate::store::{StoreError, Tx, now_ms};

/// What an envelope did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EnqueueOutcome {
    /// New scan jobs.
    pub queued: usize,
    /// Pushes of digests already queued, being scanned or scanned.
    pub duplicates: usize,
    /// Pulls, mounts, deletes, blob pushes, other event types.
    pub ignored: usize,
    /// The digests the pushes named, in order.
    pub digests: Vec<String>,
}

/// Why an envelope was refused before anything was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A push names no registry host and no `scan.default_registry` is configured (400).
    #[error("{0}")]
    Invalid(String),
    /// A push names a registry not in `scan.registries` (403): moat never pulls from a host it was
    /// not told to trust, whoever sends the event.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The job a push becomes (hosts checked).
pub fn job_for(hint: &PushHint, settings: &ScanSettings, i: usize) -> Result<ScanJob, IngestError> {
    let host = hint
        .host
        .clone()
        .or_else(|| settings.default_registry.clone())
        .ok_or_else(|| {
            IngestError::Invalid(format!(
                "push {i} ({}@{}): the event names no registry host (target.url / resource_url) and scan.default_registry is not configured",
                hint.repository, hint.digest
            ))
        })?;
    if !settings.allows(&host) {
        return Err(IngestError::Refused(format!(
            "push {i} ({}@{}): registry {host:?} is not in scan.registries",
            hint.repository, hint.digest
        )));
    }
    if !valid_host(&host) {
        return Err(IngestError::Invalid(format!(
            "push {i}: {:?} is not a registry host",
            host.chars().take(100).collect::<String>()
        )));
    }
    if !valid_repository(&hint.repository) {
        return Err(IngestError::Invalid(format!(
            "push {i}: {:?} is not a repository name (lowercase letters, digits, . _ - and /)",
            hint.repository.chars().take(200).collect::<String>()
        )));
    }
    Ok(ScanJob {
        host,
        repository: hint.repository.clone(),
        digest: hint.digest.clone(),
        tag: hint.tag.clone(),
        media_type: hint.media_type.clone(),
        source: hint.source.as_str().to_string(),
        event: hint.event_key.clone(),
        received_ms: now_ms(),
        index: None,
        platform: None,
    })
}

/// Enqueues one scan job (dedupe key `scan:<digest>`) and records the image as pending. A dead job of
/// the same digest (its pulls kept failing) is revived by a new push. True when a job was queued.
pub async fn enqueue_scan(
    tx: &mut Tx,
    job: &ScanJob,
    lane: &str,
    settings: &ScanSettings,
) -> Result<bool, StoreError> {
    record_pending_artifact(tx, job).await?;
    let key = format!("scan:{}", job.digest);
    let payload = serde_json::to_value(job).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let state = sqlx::query("SELECT state FROM job WHERE dedupe_key = $1")
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    match state.as_deref() {
        Some("dead") => {
            let body =
                serde_json::to_string(&payload).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let n = sqlx::query(
                "UPDATE job SET state = 'queued', attempts = 0, run_after_ms = 0, last_error = NULL, \
                 lease_owner = NULL, lease_until_ms = NULL, payload = $1, updated_ms = $2 \
                 WHERE dedupe_key = $3 AND state = 'dead'",
            )
            .bind(body)
            .bind(now_ms())
            .bind(&key)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            Ok(n > 0)
        }
        Some(_) => Ok(false),
        None => {
            let mut nj = NewJob::new(lane, job.digest.clone(), payload).dedupe(key);
            nj.max_attempts = settings.max_attempts;
            Ok(queue::enqueue(tx, &nj).await?.is_some())
        }
    }
}

/// The artifact row (verdict `pending` until judged) and the tag the push named.
async fn record_pending_artifact(tx: &mut Tx, job: &ScanJob) -> Result<(), StoreError> {
    let now = now_ms();
    let repo = job.image_name();
    sqlx::query(
        "INSERT INTO artifact (digest, media_type, repository, tag, first_seen_ms, last_scanned_ms) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (digest) DO UPDATE SET \
         media_type = COALESCE(artifact.media_type, excluded.media_type), \
         repository = COALESCE(artifact.repository, excluded.repository), \
         tag = COALESCE(excluded.tag, artifact.tag)",
    )
    .bind(&job.digest)
    .bind(job.media_type.as_deref())
    .bind(&repo)
    .bind(job.tag.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let Some(tag) = &job.tag {
        sqlx::query(
            "INSERT INTO tag (repository, tag, digest, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms",
        )
        .bind(&repo)
        .bind(tag)
        .bind(&job.digest)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Every push of a parsed envelope, in the caller's transaction. Hosts are all checked first, so a
/// refused envelope stores nothing.
pub async fn enqueue_pushes(
    tx: &mut Tx,
    parsed: &Parsed,
    settings: &ScanSettings,
) -> Result<EnqueueOutcome, IngestError> {
    let jobs = parsed
        .pushes
        .iter()
        .enumerate()
        .map(|(i, h)| job_for(h, settings, i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = EnqueueOutcome {
        ignored: parsed.ignored,
        ..EnqueueOutcome::default()
    };
    for job in &jobs {
        if enqueue_scan(tx, job, LANE_PUSH, settings).await? {
            out.queued += 1;
        } else {
            out.duplicates += 1;
        }
        out.digests.push(job.digest.clone());
    }
    Ok(out)
}

/// `host[:port]` (a name, an IPv4 address or a bracketed IPv6 address).
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The distribution name grammar: `/`-separated components of lowercase letters and digits joined
/// by `.`, `_`, `__` or `-`s.
fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::payload;
    use crate::store::Store;

    fn envelope(digest: &str, id: &str, url_host: &str) -> Parsed {
        let body = serde_json::json!({"events": [
            {"id": id, "action": "push", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                "repository": "team-a/app", "tag": "1",
                "url": format!("http://{url_host}/v2/team-a/app/manifests/{digest}")}},
            {"id": "p", "action": "pull", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                "repository": "team-a/app"}}
        ]});
        payload::parse(body.to_string().as_bytes()).expect("envelope")
    }

    #[test]
    fn one_job_per_digest_revived_when_dead_and_refused_hosts_store_nothing() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let st = Store::connect("sqlite::memory:").await.expect("store");
            let d = format!("sha256:{}", "ab".repeat(32));
            let s = ScanSettings::default();
            let mut tx = st.begin().await.unwrap();
            let o = enqueue_pushes(&mut tx, &envelope(&d, "e1", "127.0.0.1:5000"), &s)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!((o.queued, o.duplicates, o.ignored), (1, 0, 1));
            // The same digest again (a retried delivery, another tag): not a second job.
            let mut tx = st.begin().await.unwrap();
            let o = enqueue_pushes(&mut tx, &envelope(&d, "e2", "127.0.0.1:5000"), &s)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!((o.queued, o.duplicates), (0, 1));
            let v = st.verdict(&d).await.unwrap().expect("recorded");
            assert_eq!(v.decision, "pending");
            // A dead job (its pulls kept failing) is queued again by a new push.
            sqlx::query("UPDATE job SET state = 'dead', attempts = 8")
                .execute(st.pool())
                .await
                .unwrap();
            let mut tx = st.begin().await.unwrap();
            let o = enqueue_pushes(&mut tx, &envelope(&d, "e3", "127.0.0.1:5000"), &s)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(o.queued, 1);
            let r = sqlx::query("SELECT state, attempts FROM job")
                .fetch_all(st.pool())
                .await
                .unwrap();
            assert_eq!(r.len(), 1);
            use sqlx::Row;
            assert_eq!(r[0].get::<String, _>(0), "queued");
            assert_eq!(r[0].get::<i64, _>(1), 0);
            // A registry outside scan.registries: refused before anything is stored.
            let only = ScanSettings {
                registries: vec!["registry.example".into()],
                ..ScanSettings::default()
            };
            let other = format!("sha256:{}", "cd".repeat(32));
            let mut tx = st.begin().await.unwrap();
            let e = enqueue_pushes(&mut tx, &envelope(&other, "e4", "evil.example"), &only)
                .await
                .unwrap_err();
            drop(tx);
            assert!(matches!(e, IngestError::Refused(_)), "{e}");
            assert!(e.to_string().contains("evil.example"), "{e}");
            assert!(st.verdict(&other).await.unwrap().is_none());
        });
    }

    #[test]
    fn names() {
        assert!(valid_repository("team-a/payments"));
        assert!(valid_repository("moat/lang_image.v2"));
        for bad in ["", "/a", "a/", "a//b", "A/b", "../etc", "a/-b", "a b"] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(valid_host("127.0.0.1:5000"));
        assert!(valid_host("[::1]:5000"));
        assert!(!valid_host("evil.example/x"));
        assert!(!valid_host(""));
    }
}
