//! The mutating webhook: `/mutate` answers an AdmissionReview with the JSON patch (RFC 6902,
//! base64 in `response.patch`, `patchType: JSONPatch`) that the loaded Kyverno mutate rules and
//! MutatingPolicies make to the request's object. Validation stays on `/validate`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::review::{self, FailurePolicy, Review, ReviewError};

/// What the mutations did to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MutationDecision {
    /// RFC 6902 operations (empty: nothing to change).
    pub patch: Vec<Value>,
    /// `policy/rule` of every mutation applied.
    pub applied: Vec<String>,
    /// Mutations that failed to evaluate, decided by the failure policy.
    pub errors: Vec<String>,
}

/// The AdmissionReview response for a mutation: allowed with the patch, or (fail-closed, a mutation
/// failed) denied naming the failures.
pub fn respond(review: &Review, m: &MutationDecision, failure: FailurePolicy) -> Value {
    let mut resp = json!({"uid": review.uid, "allowed": true});
    if !m.errors.is_empty() && failure == FailurePolicy::Closed {
        resp["allowed"] = json!(false);
        resp["status"] = json!({
            "code": 403,
            "status": "Failure",
            "reason": "Forbidden",
            "message": format!(
                "moat denied the request: internal error (fail-closed): {}",
                m.errors.join("; ")
            ),
        });
    } else {
        if !m.patch.is_empty() {
            let bytes = serde_json::to_vec(&m.patch).unwrap_or_default();
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        if !m.errors.is_empty() {
            resp["warnings"] = json!(
                m.errors
                    .iter()
                    .map(|e| format!("internal error (fail-open): {e}"))
                    .collect::<Vec<_>>()
            );
        }
    }
    json!({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": resp})
}

/// Parses, mutates and answers in one step.
pub fn review(
    body: &[u8],
    engine: &Engine,
    failure: FailurePolicy,
) -> Result<(MutationDecision, Value), ReviewError> {
    let r = review::parse(body)?;
    let m = engine.mutate(&r.request);
    let out = respond(&r, &m, failure);
    Ok((m, out))
}

fn error_response(code: StatusCode, msg: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": msg}).to_string(),
    )
        .into_response()
}

/// `POST /mutate`.
pub(crate) async fn handler(
    State(st): State<Arc<crate::server::AppState>>,
    req: axum::extract::Request,
) -> Response {
    let body = match tokio::time::timeout(
        st.timeout,
        axum::body::to_bytes(req.into_body(), st.max_body),
    )
    .await
    {
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s",
                    st.timeout.as_secs_f64()
                ),
            );
        }
        Ok(Err(e)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "cannot read request body (limit {} bytes): {e}",
                    st.max_body
                ),
            );
        }
        Ok(Ok(b)) => b,
    };
    let engine = st.engine();
    let failure = st.failure;
    // Off the async workers, on the webhook's bounded pool, within its deadline (issue 17).
    let Some(outcome) = st
        .evaluate(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                review(&body, &engine, failure)
            }))
        })
        .await
    else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "mutation evaluation did not finish within the {} s deadline (eval_deadline)",
                st.eval_deadline.as_secs_f64()
            ),
        );
    };
    match outcome {
        Ok(Ok((_, out))) => (
            [(header::CONTENT_TYPE, "application/json")],
            out.to_string(),
        )
            .into_response(),
        Ok(Err(e)) => error_response(StatusCode::BAD_REQUEST, e.to_string()),
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the mutation engine panicked on this request".into(),
        ),
    }
}
