//! AdmissionReview v1 and v1beta1: reading a request body and writing the response. A body that is not
//! a usable AdmissionReview is a [`ReviewError`] that the server turns into an HTTP 400 naming what
//! was wrong; everything else gets an AdmissionReview response echoing the request's `uid`.

use serde_json::{Value, json};

use crate::engine::{Decision, Engine, Request};

pub const V1: &str = "admission.k8s.io/v1";
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not JSON: {0}")]
    Json(String),
    #[error(
        "unsupported apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
    )]
    ApiVersion(String),
    #[error("kind is {0:?}, expected AdmissionReview")]
    Kind(String),
    #[error("AdmissionReview has no request (or request.uid is missing)")]
    NoRequest,
}

/// A parsed review: its apiVersion (echoed in the response), the uid and the request.
#[derive(Debug, Clone)]
pub struct Review {
    pub api_version: String,
    pub uid: String,
    pub request: Request,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ReviewError::Json(format!("line {}, column {}: {e}", e.line(), e.column())))?;
    let api_version = s(&v, "apiVersion");
    if api_version != V1 && api_version != V1BETA1 {
        return Err(ReviewError::ApiVersion(api_version));
    }
    let kind = s(&v, "kind");
    if kind != "AdmissionReview" {
        return Err(ReviewError::Kind(kind));
    }
    let Some(r) = v.get("request").filter(|r| r.is_object()) else {
        return Err(ReviewError::NoRequest);
    };
    let uid = s(r, "uid");
    if uid.is_empty() {
        return Err(ReviewError::NoRequest);
    }
    let request = Request {
        operation: s(r, "operation"),
        kind: r
            .pointer("/kind/kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        namespace: r
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        sub_resource: s(r, "subResource"),
        object: r.get("object").cloned().unwrap_or(Value::Null),
        old_object: r.get("oldObject").filter(|o| !o.is_null()).cloned(),
        user_info: r.get("userInfo").cloned().unwrap_or(Value::Null),
    };
    Ok(Review {
        api_version,
        uid,
        request,
    })
}

/// How the webhook treats its own errors (a policy that cannot be evaluated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Deny on internal errors (the safe default).
    #[default]
    Closed,
    /// Allow on internal errors, with a warning.
    Open,
}

/// Builds the AdmissionReview response for a decision.
pub fn respond(review: &Review, mut d: Decision, failure: FailurePolicy) -> (Decision, Value) {
    if !d.errors.is_empty() {
        match failure {
            FailurePolicy::Closed => {
                d.denials.extend(
                    d.errors
                        .iter()
                        .map(|e| format!("internal error (fail-closed): {e}")),
                );
                d.allowed = false;
            }
            FailurePolicy::Open => d.warnings.extend(
                d.errors
                    .iter()
                    .map(|e| format!("internal error (fail-open): {e}")),
            ),
        }
    }
    let mut resp = json!({"uid": review.uid, "allowed": d.allowed});
    if !d.allowed {
        resp["status"] = json!({
            "code": 403,
            "status": "Failure",
            "reason": "Forbidden",
            "message": format!("moat denied the request: {}", d.denials.join("; ")),
        });
    }
    if !d.warnings.is_empty() {
        resp["warnings"] = json!(d.warnings);
    }
    let out =
        json!({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": resp});
    (d, out)
}

/// Parses, decides and answers in one step.
pub fn review(
    body: &[u8],
    engine: &Engine,
    failure: FailurePolicy,
) -> Result<(Decision, Value), ReviewError> {
    let r = parse(body)?;
    let d = engine.decide(&r.request);
    Ok(respond(&r, d, failure))
}
