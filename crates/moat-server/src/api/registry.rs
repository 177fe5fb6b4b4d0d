//! `POST /api/v1/registry/events` (scope `ingest`): registry push notifications (the CNCF distribution
//! envelope, Harbor's `PUSH_ARTIFACT` webhook in its Default or CloudEvents format) become scan jobs.
//! 202 is only sent after the jobs are committed, so a push the registry saw acknowledged is never lost
//! (distribution counts any 2xx as delivered and drops it from its in-memory queue).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::ApiError;
use crate::AppState;
use crate::auth::Principal;
use crate::registry::ingest::{self, IngestError};
use crate::registry::payload;
use crate::store::{Scope, StoreError};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/registry/events", post(post_events))
}

async fn post_events(
    State(st): State<AppState>,
    p: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require(Scope::Ingest)?;
    let parsed =
        payload::parse(&body).map_err(|e| ApiError::bad_request(format!("registry event: {e}")))?;
    let settings = &st.config.pipeline.scan;
    let mut tx = st
        .store
        .begin()
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    let out = match ingest::enqueue_pushes(&mut tx, &parsed, settings).await {
        Ok(o) => o,
        Err(IngestError::Invalid(m)) => {
            return Err(ApiError::bad_request(format!("registry event: {m}")));
        }
        Err(IngestError::Refused(m)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("registry event: {m}"),
            ));
        }
        Err(IngestError::Store(e)) => {
            st.metrics.store_error();
            return Err(e.into());
        }
    };
    tx.commit()
        .await
        .map_err(StoreError::from)
        .inspect_err(|_| st.metrics.store_error())?;
    if out.queued > 0 {
        crate::worker::wake();
    }
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}
