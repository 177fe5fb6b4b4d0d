//! The versioned JSON API under /api/v1 (contract: docs/server.md). Every handler checks its scope;
//! a 2xx is only sent after the store committed.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub mod harbor;
pub mod ingest;
pub mod query;
pub mod ratelimit;
pub mod registry;

use crate::AppState;
use crate::auth::Principal;
use crate::store::images::{self, ImageMeta};
use crate::store::{Scope, StoreError};

/// An error answer: `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// Parses a JSON body into `T`; the error names the line/column and the field serde complained about.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error(de).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

fn serde_path_to_error<'de, T: serde::de::DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, serde_json::Error> {
    let v = T::deserialize(&mut *de)?;
    de.end()?;
    Ok(v)
}

/// The /api/v1 routes of the core (the bearer layer is applied by [`crate::app`]).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/reports", post(post_report))
        .route("/api/v1/verdicts/{digest}", get(get_verdict))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .merge(ingest::routes())
        .merge(registry::routes())
        .merge(harbor::routes())
        .merge(query::routes())
}

/// The image a report is about: `metadata.image_digest`, else the target if it is a digest reference,
/// else the content digest of the target name (a report of a directory still has a stable identity).
fn report_meta(r: &moat_report::Report) -> ImageMeta {
    let target = &r.target.name;
    let digest = r
        .metadata
        .get("image_digest")
        .or_else(|| r.metadata.get("manifest_digest"))
        .cloned()
        .or_else(|| {
            target
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .filter(|d| d.starts_with("sha256:"))
        })
        .unwrap_or_else(|| crate::store::content_digest(target.as_bytes()));
    let repository = target
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(target)
        .split('@')
        .next()
        .map(|s| {
            // registry:host/repo:tag -> host/repo ; keep the tag apart.
            match s.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
                _ => s.to_string(),
            }
        });
    let tag = target
        .split('@')
        .next()
        .and_then(|s| s.rsplit_once(':'))
        .map(|(_, t)| t.to_string())
        .filter(|t| !t.contains('/') && !t.is_empty());
    ImageMeta {
        digest,
        repository,
        tag,
        ..ImageMeta::default()
    }
}

async fn post_report(
    State(st): State<AppState>,
    p: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require(Scope::Ingest)?;
    let report: moat_report::Report = json_body(&body, "report")?;
    if report.schema != moat_report::REPORT_SCHEMA {
        return Err(ApiError::bad_request(format!(
            "report: field `schema` is {:?}; this server reads {:?}",
            report.schema,
            moat_report::REPORT_SCHEMA
        )));
    }
    let meta = report_meta(&report);
    let mut tx = st
        .store
        .begin()
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    let out = images::ingest_report(&mut tx, &body, &report, &meta)
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    tx.commit()
        .await
        .map_err(StoreError::from)
        .inspect_err(|_| st.metrics.store_error())?;
    if !out.duplicate {
        st.metrics.reports_ingested.fetch_add(1, Ordering::Relaxed);
    }
    let status = if out.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)).into_response())
}

async fn get_verdict(
    State(st): State<AppState>,
    p: Principal,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    match st.store.verdict(&digest).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!(
            "the server never saw image {digest}"
        ))),
    }
}

async fn metrics(State(st): State<AppState>, p: Principal) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    let lanes: Vec<(String, i64, i64, i64)> = st
        .store
        .queue_depth()
        .await
        .inspect_err(|_| st.metrics.store_error())?
        .into_iter()
        .map(|d| (d.lane, d.queued, d.running, d.oldest_age_ms))
        .collect();
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        st.metrics.render(&lanes),
    )
        .into_response())
}

/// The OpenAPI 3 document of the routes this server serves (kept by hand; a test checks every route).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi(p: Principal) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response())
}
