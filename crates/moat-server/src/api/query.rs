//! Read queries (scope `read`) and the database reload (scope `admin`):
//! `GET /api/v1/images`, `GET /api/v1/images/{digest}`, `GET /api/v1/images/{digest}/remediation`,
//! `GET /api/v1/advisories/{id}`, `POST /api/v1/db/reload`, `GET /api/v1/db/reevaluations`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::AppState;
use crate::auth::Principal;
use crate::reeval::{self, Mode};
use crate::store::{Scope, StoreError, query};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/images", get(list_images))
        .route("/api/v1/images/{digest}", get(get_image))
        .route("/api/v1/images/{digest}/remediation", get(get_remediation))
        .route("/api/v1/advisories/{id}", get(get_advisory))
        .route("/api/v1/db/reload", post(post_reload))
        .route("/api/v1/db/reevaluations", get(get_reevaluations))
}

/// Query-string errors (`?limit=abc`, an unknown parameter) as 400 naming the parameter.
fn query_params<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
}

async fn list_images(
    State(st): State<AppState>,
    p: Principal,
    q: Result<Query<query::ImageFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    let f = query_params(q)?;
    let page = query::list_images(&st.store, &f)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    Ok(Json(page).into_response())
}

fn store_err(st: &AppState, e: &StoreError) {
    if !matches!(e, StoreError::Invalid(_)) {
        st.metrics.store_error();
    }
}

fn check_digest(d: &str) -> Result<(), ApiError> {
    let ok = d
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "digest {d:?}: expected sha256:<64 hex digits>"
        )))
    }
}

async fn get_image(
    State(st): State<AppState>,
    p: Principal,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    check_digest(&digest)?;
    match query::image_detail(&st.store, &digest)
        .await
        .inspect_err(|e| store_err(&st, e))?
    {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!(
            "the server never saw image {digest}"
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AdvisoryParams {
    limit: Option<i64>,
}

async fn get_advisory(
    State(st): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    q: Result<Query<AdvisoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    let q = query_params(q)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: expected 1..=10000"
        )));
    }
    if id.is_empty() || id.len() > 200 {
        return Err(ApiError::bad_request("advisory id: 1 to 200 characters"));
    }
    match query::advisory(&st.store, &id, limit)
        .await
        .inspect_err(|e| store_err(&st, e))?
    {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::not_found(format!(
            "no stored image has an open finding of {id} (by id or alias)"
        ))),
    }
}

async fn get_remediation(
    State(st): State<AppState>,
    p: Principal,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    check_digest(&digest)?;
    if st
        .store
        .verdict(&digest)
        .await
        .inspect_err(|e| store_err(&st, e))?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "the server never saw image {digest}"
        )));
    }
    let findings = st
        .store
        .open_findings(&digest)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    let reeval::Remediation {
        mut plans,
        snapshot,
        warning,
    } = reeval::remediation(&st.config.db, findings)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let warnings: Vec<String> = warning.into_iter().collect();
    // Where each package sits, from the SBOM when the findings do not say.
    let pkgs = query::packages_of(&st.store, &digest)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    for pl in &mut plans {
        if pl.locations.is_empty() {
            for sp in pkgs.iter().filter(|sp| pl.packages.contains(&sp.purl)) {
                let loc = moat_model::Location {
                    file: sp
                        .data
                        .get("path")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    layer: sp
                        .data
                        .get("layer")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    ..moat_model::Location::default()
                };
                if (loc.file.is_some() || loc.layer.is_some()) && !pl.locations.contains(&loc) {
                    pl.locations.push(loc);
                }
            }
        }
    }
    let clears: usize = plans.iter().map(|p| p.clears.len()).sum();
    let open: usize = plans.iter().map(|p| p.left_open.len()).sum();
    Ok(Json(json!({
        "digest": digest,
        "snapshot": snapshot,
        "summary": {
            "packages": plans.len(),
            "upgrades": plans.iter().filter(|p| p.target_version.is_some()).count(),
            "findings_cleared": clears,
            "findings_left_open": open,
        },
        "packages": plans,
        "warnings": warnings,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ReloadParams {
    mode: Option<String>,
}

async fn post_reload(
    State(st): State<AppState>,
    p: Principal,
    q: Result<Query<ReloadParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    p.require(Scope::Admin)?;
    let q = query_params(q)?;
    let mode = match q.mode.as_deref() {
        None => Mode::Delta,
        Some(m) => Mode::parse(m)
            .ok_or_else(|| ApiError::bad_request(format!("mode {m:?}: expected delta or full")))?,
    };
    // Fail before queueing when the database cannot be opened: the job could never succeed.
    let snap = reeval::snapshot(&st.config.db)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let job = reeval::enqueue(&st.store, mode, &format!("reload by {}", p.0.name), None)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    let previous = reeval::evaluated_snapshot(&st.store)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "job": job,
            "lane": crate::store::queue::LANE_REEVAL,
            "mode": mode,
            "snapshot": snap.meta().digest,
            "records": snap.meta().records,
            "evaluated_snapshot": previous,
        })),
    )
        .into_response())
}

async fn get_reevaluations(State(st): State<AppState>, p: Principal) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    let runs = reeval::runs(&st.store, 50)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    let evaluated = reeval::evaluated_snapshot(&st.store)
        .await
        .inspect_err(|e| store_err(&st, e))?;
    Ok(Json(json!({"evaluated_snapshot": evaluated, "runs": runs})).into_response())
}
