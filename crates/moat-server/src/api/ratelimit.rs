//! Request rate limit per token: a token bucket per authenticated token (`rate` requests per second
//! refilled, up to `burst` at once). A request over the limit gets 429 with `Retry-After` (whole
//! seconds until one request is allowed again) and is counted in `moat_requests_rejected_total`.
//! Configured by `limits:` in the server configuration file; `requests_per_second: 0` turns it off.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::ApiError;
use crate::auth::Principal;
use crate::metrics::Metrics;

/// The limit per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once (the bucket's size).
    pub burst: u32,
}

impl Default for RateLimit {
    /// 1,000 requests/s sustained, 2,000 at once: far above any agent's or CI's need (runtime alerts
    /// come in batches), low enough that one leaked token cannot flood the store.
    fn default() -> Self {
        RateLimit {
            per_second: 1000.0,
            burst: 2000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    requests_per_second: Option<f64>,
    #[serde(default)]
    burst: Option<u32>,
}

impl RateLimit {
    /// The `limits:` section of a configuration file's text: None when `requests_per_second` is 0
    /// (no limit); the default when the section is absent. Errors name the file and line.
    pub fn from_config_text(file: &Path, text: &str) -> Result<Option<RateLimit>, String> {
        #[derive(Deserialize)]
        struct Top {
            #[serde(default)]
            limits: Option<RawLimits>,
        }
        let name = file.display().to_string();
        if text.trim().is_empty() {
            return Ok(Some(RateLimit::default()));
        }
        let top: Top = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{name}:{}:{}", l.line(), l.column()))
                .unwrap_or_else(|| name.clone());
            let msg = e.to_string();
            format!("{at}: limits: {}", msg.lines().next().unwrap_or(&msg))
        })?;
        let Some(raw) = top.limits else {
            return Ok(Some(RateLimit::default()));
        };
        let mut l = RateLimit::default();
        if let Some(r) = raw.requests_per_second {
            if !r.is_finite() || r < 0.0 {
                return Err(format!(
                    "{name}: limits.requests_per_second must be 0 (no limit) or more, not {r}"
                ));
            }
            if r == 0.0 {
                return Ok(None);
            }
            l.per_second = r;
            l.burst = (r.ceil() as u32).max(1);
        }
        if let Some(b) = raw.burst {
            if b == 0 {
                return Err(format!("{name}: limits.burst must be at least 1"));
            }
            l.burst = b;
        }
        Ok(Some(l))
    }
}

/// Buckets per token id.
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Tokens tracked before idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket: Ok, or Err(seconds until one is available).
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let cap = self.limit.burst as f64;
        if b.len() >= MAX_TRACKED && !b.contains_key(key) {
            // A bucket refilled to the brim holds no information: drop those first.
            let full_after = cap / self.limit.per_second;
            b.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() < full_after);
            if b.len() >= MAX_TRACKED {
                b.clear();
            }
        }
        let (tokens, last) = b.entry(key.to_string()).or_insert((cap, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.limit.per_second).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.limit.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// The middleware (runs after the bearer check, so the key is the token's id).
pub async fn limit(
    limiter: Arc<Limiter>,
    metrics: Arc<Metrics>,
    req: Request,
    next: Next,
) -> Response {
    let key = req
        .extensions()
        .get::<Principal>()
        .map(|p| p.0.id.clone())
        .unwrap_or_default();
    match limiter.check(&key, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(secs) => {
            metrics.requests_rejected.fetch_add(1, Ordering::Relaxed);
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit of this token exceeded ({} requests/s, burst {}): retry after {secs} s",
                    limiter.limit.per_second, limiter.limit.burst
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let l = Limiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check("a", t0), Ok(()));
        }
        assert_eq!(l.check("a", t0), Err(1));
        // Another token has its own bucket.
        assert_eq!(l.check("b", t0), Ok(()));
        // Half a second refills one request.
        assert_eq!(l.check("a", t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.check("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn limits_section() {
        let f = Path::new("s.yaml");
        assert_eq!(
            RateLimit::from_config_text(f, "gate: {}\n").unwrap(),
            Some(RateLimit::default())
        );
        assert_eq!(
            RateLimit::from_config_text(f, "limits: {requests_per_second: 0}\n").unwrap(),
            None
        );
        assert_eq!(
            RateLimit::from_config_text(f, "limits: {requests_per_second: 5, burst: 7}\n").unwrap(),
            Some(RateLimit {
                per_second: 5.0,
                burst: 7
            })
        );
        let e = RateLimit::from_config_text(f, "limits:\n  per_second: 5\n").unwrap_err();
        assert!(e.starts_with("s.yaml:2"), "{e}");
    }
}
