//! The Harbor Scanner Adapter API v1.2 (goharbor/pluggable-scanner-spec), so Harbor can use moat as
//! its scanner ("Interrogation Services"): `GET /api/v1/metadata`, `POST /api/v1/scan` (asynchronous:
//! a scan job on the push lane, deduplicated by digest like a registry push), and
//! `GET /api/v1/scan/{id}/report`: 302 with `Refresh-After` while the scan runs, 200 with the
//! vulnerability report (`application/vnd.security.vulnerability.report; version=1.1` or the Harbor
//! 1.0 type) or the SBOM report (`application/vnd.security.sbom.report+json; version=1.0`, CycloneDX or
//! SPDX), 500 once the scan failed for good.
//!
//! Harbor authenticates with a bearer token (register the scanner with "Bearer" and a moat token of
//! scopes `ingest,read`). The request's `registry.authorization` (a short-lived robot credential) is not
//! used: moat pulls with its own registry credentials (`$REGISTRY_AUTH_FILE`, `~/.docker/config.json`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use moat_model::{FindingKind, Inventory, Severity};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::AppState;
use crate::auth::Principal;
use crate::pipeline::scan::ScanJob;
use crate::store::queue::LANE_PUSH;
use crate::store::{Scope, StoreError, now_ms};

pub const METADATA_MIME: &str = "application/vnd.scanner.adapter.metadata+json; version=1.1";
pub const SCAN_RESPONSE_MIME: &str =
    "application/vnd.scanner.adapter.scan.response+json; version=1.0";
pub const ERROR_MIME: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
pub const VULN_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";
pub const VULN_MIME_HARBOR: &str =
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
pub const SBOM_MIME: &str = "application/vnd.security.sbom.report+json; version=1.0";
const CONSUMES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const SBOM_TYPES: [&str; 2] = ["application/vnd.cyclonedx+json", "application/spdx+json"];

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/scan", post(scan))
        .route("/api/v1/scan/{id}/report", get(report))
}

/// An adapter error: `{"error": {"message": ...}}` with the adapter's error type.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = (
        status,
        json!({"error": {"message": message.into()}}).to_string(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ERROR_MIME));
    r
}

fn typed(status: StatusCode, mime: &'static str, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    r
}

fn scanner() -> Value {
    json!({"name": "moat", "vendor": "moat", "version": moat_model::MOAT_VERSION})
}

fn store_error(st: &AppState, e: StoreError) -> Response {
    st.metrics.store_error();
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn metadata(State(st): State<AppState>, p: Principal) -> Response {
    if let Err(e) = p.require(Scope::Read) {
        return e.into_response();
    }
    let mut properties = json!({
        "harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
    });
    let db = st.config.db.clone();
    let snap = tokio::task::spawn_blocking(move || moat_vulndb::Snapshot::open(&db))
        .await
        .ok()
        .and_then(Result::ok);
    if let Some(s) = snap {
        properties["harbor.scanner-adapter/vulnerability-database-updated-at"] =
            json!(s.meta().created_at);
        properties["org.moat/vulnerability-database-digest"] = json!(s.meta().digest);
    }
    let body = json!({
        "scanner": scanner(),
        "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": CONSUMES,
             "produces_mime_types": [VULN_MIME_HARBOR, VULN_MIME]},
            {"type": "sbom", "consumes_mime_types": CONSUMES, "produces_mime_types": [SBOM_MIME],
             "additional_attributes": {"sbom_media_types": SBOM_TYPES}}
        ],
        "properties": properties,
    });
    typed(StatusCode::OK, METADATA_MIME, &body)
}

#[derive(Deserialize)]
struct ScanRequest {
    registry: RegistryRef,
    artifact: Artifact,
}

#[derive(Deserialize)]
struct RegistryRef {
    url: String,
}

#[derive(Deserialize)]
struct Artifact {
    repository: String,
    digest: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
}

/// The scan request id: the digest, so polling needs no state beyond the image's own.
fn request_id(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

fn digest_of(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256-")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

async fn scan(State(st): State<AppState>, p: Principal, body: Bytes) -> Response {
    if let Err(e) = p.require(Scope::Ingest) {
        return e.into_response();
    }
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let req: ScanRequest = match serde::Deserialize::deserialize(de) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("scan request: {e}")),
    };
    let a = &req.artifact;
    if let Some(m) = &a.mime_type
        && !CONSUMES.contains(&m.as_str())
    {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "artifact.mime_type {m:?}: moat scans {} (an index is scanned per platform on push)",
                CONSUMES.join(", ")
            ),
        );
    }
    let url = req.registry.url.trim().trim_end_matches('/');
    let (plain, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("registry.url {url:?}: expected http:// or https://"),
        );
    };
    let host = rest.split('/').next().unwrap_or("").to_string();
    let settings = &st.config.pipeline.scan;
    if plain && !settings.insecure(&host) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "registry.url {url:?}: plain HTTP to {host} is refused (list it in scan.insecure_registries)"
            ),
        );
    }
    if !plain && settings.insecure(&host) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("registry.url {url:?}: {host} is configured as a plain-HTTP registry"),
        );
    }
    let hint = crate::registry::payload::PushHint {
        source: crate::registry::payload::Source::Harbor,
        event_key: format!("harbor-adapter/{}", a.digest),
        host: Some(host),
        repository: a.repository.clone(),
        digest: a.digest.clone(),
        tag: a.tag.clone().filter(|t| !t.is_empty()),
        media_type: a.mime_type.clone(),
    };
    let digest_ok = a
        .digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !digest_ok {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("artifact.digest {:?} is not a sha256 digest", a.digest),
        );
    }
    let mut job: ScanJob = match crate::registry::ingest::job_for(&hint, settings, 0) {
        Ok(j) => j,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    job.source = "harbor-adapter".into();
    let res = async {
        let mut tx = st.store.begin().await?;
        let queued =
            crate::registry::ingest::enqueue_scan(&mut tx, &job, LANE_PUSH, settings).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<bool, StoreError>(queued)
    }
    .await;
    match res {
        Ok(queued) => {
            if queued {
                crate::worker::wake();
            }
            typed(
                StatusCode::ACCEPTED,
                SCAN_RESPONSE_MIME,
                &json!({"id": request_id(&a.digest)}),
            )
        }
        Err(e) => store_error(&st, e),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    #[serde(default)]
    sbom_media_type: Option<String>,
}

/// Harbor's severity scale.
pub fn harbor_severity(s: Severity) -> &'static str {
    match s {
        Severity::Unknown => "Unknown",
        Severity::Info => "Negligible",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

async fn report(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = p.require(Scope::Read) {
        return e.into_response();
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(VULN_MIME)
        .trim()
        .to_string();
    let mime: &'static str = if accept.is_empty() || accept == "*/*" || accept == VULN_MIME {
        VULN_MIME
    } else if accept == VULN_MIME_HARBOR {
        VULN_MIME_HARBOR
    } else if accept == SBOM_MIME {
        SBOM_MIME
    } else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "Accept {accept:?}: moat produces {VULN_MIME}, {VULN_MIME_HARBOR} and {SBOM_MIME}"
            ),
        );
    };
    let sbom_type = if mime == SBOM_MIME {
        // A raw `+` in the query decodes to a space; media types never hold one.
        let asked = q.sbom_media_type.as_ref().map(|t| t.replace(' ', "+"));
        match asked.as_deref() {
            Some(t) if SBOM_TYPES.contains(&t) => Some(t.to_string()),
            Some(t) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "sbom_media_type {t:?}: expected {}",
                        SBOM_TYPES.join(" or ")
                    ),
                );
            }
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "an SBOM report needs ?sbom_media_type=application/vnd.cyclonedx+json or application/spdx+json",
                );
            }
        }
    } else {
        None
    };
    let Some(digest) = digest_of(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no scan request {id:?}"));
    };
    let pool = st.store.pool();
    let sbom = match sqlx::query("SELECT inventory FROM sbom WHERE digest = $1")
        .bind(&digest)
        .fetch_optional(pool)
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(&st, e.into()),
    };
    let Some(sbom) = sbom else {
        let job = sqlx::query("SELECT state, last_error FROM job WHERE dedupe_key = $1")
            .bind(format!("scan:{digest}"))
            .fetch_optional(pool)
            .await;
        return match job {
            Err(e) => store_error(&st, e.into()),
            Ok(None) => error(StatusCode::NOT_FOUND, format!("no scan request {id:?}")),
            Ok(Some(r)) => {
                let state: String = r.try_get(0).unwrap_or_default();
                let last: Option<String> = r.try_get(1).unwrap_or_default();
                if state == "dead" {
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!(
                            "the scan of {digest} failed: {}",
                            last.unwrap_or_else(|| "no error recorded".into())
                        ),
                    )
                } else {
                    let mut r = StatusCode::FOUND.into_response();
                    r.headers_mut()
                        .insert("Refresh-After", HeaderValue::from_static("2"));
                    r.headers_mut().insert(
                        header::LOCATION,
                        HeaderValue::from_str(&format!("/api/v1/scan/{id}/report"))
                            .unwrap_or(HeaderValue::from_static("/api/v1/scan")),
                    );
                    r
                }
            }
        };
    };
    let art = sqlx::query("SELECT repository, tag, media_type FROM artifact WHERE digest = $1")
        .bind(&digest)
        .fetch_optional(pool)
        .await;
    let (repo, tag, media) = match art {
        Ok(Some(r)) => (
            r.try_get::<Option<String>, _>(0).ok().flatten(),
            r.try_get::<Option<String>, _>(1).ok().flatten(),
            r.try_get::<Option<String>, _>(2).ok().flatten(),
        ),
        Ok(None) => (None, None, None),
        Err(e) => return store_error(&st, e.into()),
    };
    // Harbor names the repository without the registry host.
    let repository = repo.map(|r| match r.split_once('/') {
        Some((h, rest)) if h.contains(':') || h.contains('.') => rest.to_string(),
        _ => r,
    });
    let artifact = json!({"repository": repository, "digest": digest, "tag": tag,
        "mime_type": media.unwrap_or_else(|| CONSUMES[0].to_string())});
    let generated_at = crate::alerts::targets::rfc3339(now_ms());
    if let Some(t) = sbom_type {
        let text: String = sbom.try_get(0).unwrap_or_default();
        let inv: Inventory = match serde_json::from_str(&text) {
            Ok(i) => i,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("stored SBOM of {digest}: {e}"),
                );
            }
        };
        let format = if t == SBOM_TYPES[0] {
            moat_sbom::format::Format::CycloneDx
        } else {
            moat_sbom::format::Format::Spdx
        };
        let doc = moat_sbom::format::write(&inv, format, &Default::default());
        let doc: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
        let body = json!({"generated_at": generated_at, "artifact": artifact, "scanner": scanner(),
            "media_type": t, "sbom": doc});
        return typed(StatusCode::OK, SBOM_MIME, &body);
    }
    let findings = match st.store.open_findings(&digest).await {
        Ok(f) => f,
        Err(e) => return store_error(&st, e),
    };
    let mut worst = Severity::Unknown;
    let mut vulns = Vec::new();
    for f in findings
        .iter()
        .filter(|f| f.kind == FindingKind::Vulnerability && f.suppressed.is_none())
    {
        worst = worst.max(f.severity);
        let v = f.vulnerability.as_ref();
        let mut links: Vec<String> = f.references.clone();
        if links.is_empty() && f.id.starts_with("CVE-") {
            links.push(format!("https://nvd.nist.gov/vuln/detail/{}", f.id));
        }
        let mut item = json!({
            "id": f.id,
            "package": f.package.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            "version": f.package.as_ref().map(|p| p.version.clone()).unwrap_or_default(),
            "fix_version": v.and_then(|v| v.fixed_versions.first().cloned()).unwrap_or_default(),
            "severity": harbor_severity(f.severity),
            "description": if f.message.is_empty() { f.title.clone() } else { f.message.clone() },
            "links": links,
            "vendor_attributes": {"aliases": f.aliases, "purl": f.package.as_ref().map(|p| p.purl.to_string()),
                "layer": f.location.layer},
        });
        if let Some(c) = v.and_then(|v| v.cvss.iter().find(|c| c.version == "CVSS_V3")) {
            item["preferred_cvss"] = json!({"vector_v3": c.vector, "score_v3": c.score});
        }
        vulns.push(item);
    }
    let body = json!({"generated_at": generated_at, "artifact": artifact, "scanner": scanner(),
        "severity": harbor_severity(worst),
        "vulnerabilities": vulns});
    typed(StatusCode::OK, mime, &body)
}
