//! Bearer tokens: every route behind [`require_token`] needs `Authorization: Bearer <secret>`; the
//! handler then checks its scope with [`Principal::require`]. Secrets are never logged.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::api::ApiError;
use crate::store::{Scope, TokenInfo};

/// The authenticated caller, put into request extensions by [`require_token`].
#[derive(Debug, Clone)]
pub struct Principal(pub TokenInfo);

impl Principal {
    /// 403 unless the token has `scope` (or admin).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!("this token lacks the {scope} scope"),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))
    }
}

/// The middleware: 401 without a valid token.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let Some(secret) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim)
    }) else {
        return ApiError::unauthorized(
            "missing bearer token: send Authorization: Bearer <token> (moat server token create)",
        )
        .into_response();
    };
    match state.store.verify_token(secret).await {
        Ok(Some(info)) => {
            req.extensions_mut().insert(Principal(info));
            next.run(req).await
        }
        Ok(None) => ApiError::unauthorized("invalid or revoked token").into_response(),
        Err(e) => {
            state.metrics.store_error();
            ApiError::from(e).into_response()
        }
    }
}
