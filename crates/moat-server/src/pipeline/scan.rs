//! One scan job: pull the pushed manifest from its registry by digest through moat's engine (the
//! same `moat_engine::scan` the CLI runs), match it against the server's vulnerability database, and
//! store and judge it ([`super::record`]). An image index becomes one job per platform.
//!
//! Fails closed: a pull that fails (registry down, manifest gone, digest mismatch), a database that
//! is missing, or a lost lease leaves the verdict `pending` and the job is retried with backoff; only
//! a complete scan is ever judged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::gate::{GatePolicy, SignatureStatus};
use super::record;
use super::settings::PipelineConfig;
use crate::AppState;
use crate::registry::payload::is_index;
use crate::store::images::ImageMeta;
use crate::store::queue::{self, Job};
use crate::store::{StoreError, now_ms};

/// The payload of a scan job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanJob {
    /// Registry host (`127.0.0.1:5000`, `harbor.example`).
    pub host: String,
    pub repository: String,
    pub digest: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    /// `distribution`, `harbor`, `index` (a platform of a pushed index), `api`.
    pub source: String,
    /// The registry event's key.
    pub event: String,
    /// When the server received the event (push-to-verdict latency is measured from it).
    pub received_ms: i64,
    /// For a platform of an index: the index digest and the platform.
    #[serde(default)]
    pub index: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
}

impl ScanJob {
    /// `host/repository`, the image name admission and reports use.
    pub fn image_name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    /// The engine target: the manifest by digest.
    pub fn target(&self) -> String {
        format!("registry:{}/{}@{}", self.host, self.repository, self.digest)
    }
}

/// What the workers share: the configuration and the loaded gate policy.
pub struct Pipeline {
    pub config: PipelineConfig,
    pub policy: GatePolicy,
    /// The server's vulnerability database.
    pub db: PathBuf,
}

impl Pipeline {
    pub fn new(config: PipelineConfig, db: PathBuf) -> Result<Pipeline, String> {
        let policy = GatePolicy::load(config.gate.clone()).map_err(|e| e.to_string())?;
        Ok(Pipeline { config, policy, db })
    }
}

/// Why a job did not finish.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub message: String,
}

impl JobError {
    pub fn new(m: impl Into<String>) -> JobError {
        JobError { message: m.into() }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> JobError {
        JobError::new(e.to_string())
    }
}

const INDEX_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Runs one scan job to completion (committed with the job's completion) or fails it.
pub async fn run(
    st: &AppState,
    p: &Arc<Pipeline>,
    job: &Job,
    worker: &str,
) -> Result<(), JobError> {
    let sj: ScanJob = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::new(format!("job {}: payload: {e}", job.id)))?;
    let res = if sj.media_type.as_deref().is_some_and(is_index) {
        expand_index(st, p, job, &sj, worker).await
    } else {
        scan_manifest(st, p, job, &sj, worker).await
    };
    if let Err(e) = &res {
        // The reason is visible on the verdict (still pending) while the job waits for its retry.
        let last = job.attempts >= job.max_attempts;
        let why = format!(
            "scan attempt {}/{} failed{}: {}",
            job.attempts,
            job.max_attempts,
            if last {
                " (no retries left)"
            } else {
                "; retrying"
            },
            e.message
        );
        if let Ok(mut tx) = st.store.begin().await
            && record::record_failure(&mut tx, &sj.digest, &why)
                .await
                .is_ok()
        {
            let _ = tx.commit().await;
        }
    }
    res
}

async fn scan_manifest(
    st: &AppState,
    p: &Arc<Pipeline>,
    job: &Job,
    sj: &ScanJob,
    worker: &str,
) -> Result<(), JobError> {
    let started = Instant::now();
    let settings = &p.config.scan;
    let mut req = moat_engine::ScanRequest::new(sj.target());
    req.insecure_registry = settings.insecure(&sj.host);
    req.ignore = moat_engine::IgnoreChoice::None;
    req.db = moat_engine::DbChoice {
        path: p.db.clone(),
        explicit: true,
    };
    let target = sj.target();
    let cache =
        super::layers::StoreLayerCache::new(st.store.clone(), tokio::runtime::Handle::current());
    let handle = cache.handle(&req.scanners);
    let outcome =
        tokio::task::spawn_blocking(move || moat_engine::scan_with_cache(&req, Some(handle)))
            .await
            .map_err(|e| JobError::new(format!("scan task: {e}")))?
            .map_err(|e| JobError::new(format!("{target}: {e}")))?;
    if !outcome.vulnerabilities_checked() {
        // No database: an image whose vulnerabilities were not checked is never judged.
        return Err(JobError::new(format!(
            "vulnerabilities not checked: no vulnerability database at {} (moat db update / moat db import on the server)",
            p.db.display()
        )));
    }
    let got = outcome
        .inventory
        .image
        .as_ref()
        .and_then(|i| i.manifest_digest.clone());
    if got.as_deref() != Some(sj.digest.as_str()) {
        return Err(JobError::new(format!(
            "{}: the registry served manifest {} for digest {}",
            sj.target(),
            got.as_deref().unwrap_or("(none)"),
            sj.digest
        )));
    }
    let cfg = outcome.image_config.as_ref();
    let info = outcome.inventory.image.as_ref();
    let meta = ImageMeta {
        digest: sj.digest.clone(),
        repository: Some(sj.image_name()),
        tag: sj.tag.clone(),
        media_type: sj.media_type.clone(),
        user: cfg.and_then(|c| c.user.clone()),
        labels: cfg.map(|c| c.labels.clone()).unwrap_or_default(),
        signature: None,
        os: info.and_then(|i| i.os.clone()),
        arch: info.and_then(|i| i.architecture.clone()),
    };
    // Signatures are not fetched by the push pipeline yet: with trusted keys configured, the gate
    // blocks as "not verified" (fail closed).
    let signature = SignatureStatus::NotChecked;
    let extra = json!({
        "registry": sj.host,
        "source": sj.source,
        "event": sj.event,
        "platform": sj.platform,
        "index": sj.index,
        "received_ms": sj.received_ms,
        "layers": {
            "total": info.map_or(0, |i| i.layers.len()),
            "from_cache": cache.hits.load(std::sync::atomic::Ordering::Relaxed),
            "read": cache.misses.load(std::sync::atomic::Ordering::Relaxed),
        },
    });
    let mut tx = st.store.begin().await?;
    let rec = record::record_scan(
        &mut tx,
        &meta,
        &outcome.report,
        &outcome.inventory,
        cfg.is_some(),
        &p.policy,
        &signature,
        &extra,
    )
    .await?;
    if !queue::complete(&mut tx, &job.id, worker).await? {
        // The lease expired and another worker owns the job now: its result wins.
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(());
    }
    tx.commit().await.map_err(StoreError::from)?;
    st.metrics.observe_scan(started.elapsed());
    let latency = now_ms() - sj.received_ms;
    eprintln!(
        "moat server: {} {} -> {} ({} findings, {} new; layers: {} read, {} from the layer cache; {} ms after the push event)",
        sj.image_name(),
        sj.digest,
        rec.verdict.decision.as_str(),
        outcome.report.findings.len(),
        rec.new_findings,
        cache.misses.load(std::sync::atomic::Ordering::Relaxed),
        cache.hits.load(std::sync::atomic::Ordering::Relaxed),
        latency
    );
    Ok(())
}

/// A pushed index: one job per wanted platform (each deduplicated by its own digest), the platforms
/// recorded so the index gets the worst of their verdicts.
async fn expand_index(
    st: &AppState,
    p: &Arc<Pipeline>,
    job: &Job,
    sj: &ScanJob,
    worker: &str,
) -> Result<(), JobError> {
    let settings = p.config.scan.clone();
    let host = sj.host.clone();
    let repo = sj.repository.clone();
    let digest = sj.digest.clone();
    let body =
        tokio::task::spawn_blocking(move || fetch_manifest(&host, &repo, &digest, &settings))
            .await
            .map_err(|e| JobError::new(format!("index task: {e}")))??;
    let platforms = index_platforms(&body)
        .map_err(|e| JobError::new(format!("{}: index: {e}", sj.target())))?;
    let mut tx = st.store.begin().await?;
    for (platform, child, media_type) in platforms {
        if platform == "unknown/unknown" || !p.config.scan.wants_platform(&platform) {
            continue;
        }
        sqlx::query(
            "INSERT INTO index_platform (index_digest, digest, platform) VALUES ($1, $2, $3) \
             ON CONFLICT (index_digest, digest) DO NOTHING",
        )
        .bind(&sj.digest)
        .bind(&child)
        .bind(&platform)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let cj = ScanJob {
            digest: child,
            media_type: Some(media_type),
            source: "index".into(),
            index: Some(sj.digest.clone()),
            platform: Some(platform),
            tag: None,
            ..sj.clone()
        };
        crate::registry::ingest::enqueue_scan(&mut tx, &cj, &job.lane, &p.config.scan).await?;
    }
    if !queue::complete(&mut tx, &job.id, worker).await? {
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(());
    }
    // Platforms scanned earlier (pushed on their own first) count at once.
    record::update_indexes_of(&mut tx, &sj.digest).await?;
    tx.commit().await.map_err(StoreError::from)?;
    crate::worker::wake();
    Ok(())
}

/// GET a manifest by digest (verified).
fn fetch_manifest(
    host: &str,
    repo: &str,
    digest: &str,
    s: &super::settings::ScanSettings,
) -> Result<Vec<u8>, JobError> {
    use moat_image::registry::{Client, ClientOptions, read_body};
    let c = Client::new(
        host,
        repo,
        &ClientOptions {
            insecure: s.insecure(host),
            timeout: Duration::from_secs(s.registry_timeout_seconds),
            auth_file: None,
        },
    );
    let url = format!("{}/manifests/{digest}", c.base());
    let resp = c
        .get(&url, Some(INDEX_ACCEPT))
        .map_err(|e| JobError::new(e.to_string()))?;
    let body = read_body(resp, 4 << 20, &url).map_err(|e| JobError::new(e.to_string()))?;
    let got = crate::store::content_digest(&body);
    if got != digest {
        return Err(JobError::new(format!(
            "{url}: content digest {got} does not match {digest}"
        )));
    }
    Ok(body)
}

/// (`os/arch[/variant]`, digest, media type) of each manifest an index lists.
pub fn index_platforms(body: &[u8]) -> Result<Vec<(String, String, String)>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let ms = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("no `manifests` array")?;
    let mut out = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        let s = |k: &str| m.get(k).and_then(Value::as_str);
        let digest = s("digest").ok_or(format!("manifests[{i}].digest is missing"))?;
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(format!(
                "manifests[{i}].digest {digest:?} is not a sha256 digest"
            ));
        }
        let media = s("mediaType")
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        if is_index(&media) {
            // Nested indexes are not followed (no registry writes them for images).
            continue;
        }
        let pf = m.get("platform");
        let ps = |k: &str| pf.and_then(|p| p.get(k)).and_then(Value::as_str);
        let mut platform = format!(
            "{}/{}",
            ps("os").unwrap_or("unknown"),
            ps("architecture").unwrap_or("unknown")
        );
        if let Some(v) = ps("variant").filter(|v| !v.is_empty()) {
            platform.push('/');
            platform.push_str(v);
        }
        out.push((platform, digest.to_string(), media));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_platforms_are_listed_and_attestations_kept_apart() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let p = index_platforms(body).expect("parses");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].0, "linux/amd64");
        assert_eq!(p[1].0, "linux/arm64/v8");
        assert_eq!(p[2].0, "unknown/unknown");
        let e = index_platforms(br#"{"manifests":[{"digest":"sha256:../x"}]}"#).unwrap_err();
        assert!(e.contains("manifests[0].digest"), "{e}");
    }
}
