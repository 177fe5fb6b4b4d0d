//! The Kubernetes API server's audit webhook as a listener (`moat runtime k8saudit --listen ADDR`):
//! the API server POSTs `audit.k8s.io/v1` `EventList` batches (its `--audit-webhook-config-file`
//! names this URL and a bearer token); each event is evaluated against Falco's `k8s_audit` rules as
//! the file mode does, and the alerts go to the caller's sink as they fire.
//!
//! A bearer token is always required (the audit stream is sensitive: it names users, secrets and
//! pods). TLS (rustls) is optional for a listener behind a TLS-terminating proxy or on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::rules::Alert;
use crate::rules::k8saudit::{self, K8sEngine};

/// Largest webhook request body accepted (16 MiB): the API server's batches default to 400 events
/// (`--audit-webhook-batch-max-size`), a few MiB at most.
pub const MAX_BODY: usize = 16 << 20;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub listen: String,
    /// The bearer token every request must carry (`Authorization: Bearer TOKEN`).
    pub token: String,
    /// PEM certificate chain and key: serve HTTPS instead of plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_body: usize,
    /// Written with the bound address once listening (for scripts and tests).
    pub ready_file: Option<PathBuf>,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
}

/// What the listener saw until it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenStats {
    pub requests: u64,
    pub events: u64,
    pub alerts: u64,
    /// Requests refused: missing or wrong token.
    pub unauthorized: u64,
    /// Requests or documents that were not audit events.
    pub not_audit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot load TLS certificate {cert} / key {key}: {why}")]
    Tls {
        cert: String,
        key: String,
        why: String,
    },
    #[error("the bearer token is empty")]
    EmptyToken,
    #[error("{0}")]
    Serve(String),
}

/// Where alerts go: called from the listener's threads, once per request that raised any.
pub type AlertSink = Arc<dyn Fn(&[Alert]) + Send + Sync>;

struct AppState {
    engine: Arc<K8sEngine>,
    token: String,
    sink: AlertSink,
    requests: AtomicU64,
    events: AtomicU64,
    alerts: AtomicU64,
    unauthorized: AtomicU64,
    not_audit: AtomicU64,
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
fn same_token(given: &[u8], want: &[u8]) -> bool {
    let mut diff = given.len() ^ want.len();
    for (i, w) in want.iter().enumerate() {
        diff |= (*given.get(i).unwrap_or(&0) ^ w) as usize;
    }
    diff == 0
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|t| same_token(t.trim().as_bytes(), token.as_bytes()))
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string() + "\n",
    )
        .into_response()
}

async fn receive(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    if !authorized(&headers, &st.token) {
        st.unauthorized.fetch_add(1, Ordering::Relaxed);
        let mut r = reply(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "a valid bearer token is required"}),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        return r;
    }
    let st2 = st.clone();
    // Evaluation is CPU work: off the async workers, so a large batch does not stall other requests.
    let done = tokio::task::spawn_blocking(move || {
        let text = match std::str::from_utf8(&body) {
            Ok(t) => t,
            Err(e) => {
                return Err(format!(
                    "request body: not UTF-8 text (byte {})",
                    e.valid_up_to()
                ));
            }
        };
        let (events, errors) = k8saudit::parse_events("webhook request", text);
        let mut alerts = Vec::new();
        for ev in &events {
            alerts.extend(st2.engine.process(ev));
        }
        if !alerts.is_empty() {
            (st2.sink)(&alerts);
        }
        st2.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        st2.alerts.fetch_add(alerts.len() as u64, Ordering::Relaxed);
        st2.not_audit
            .fetch_add(errors.len() as u64, Ordering::Relaxed);
        for e in &errors {
            eprintln!("moat: {e}");
        }
        if events.is_empty() && !errors.is_empty() {
            return Err(errors[0].to_string());
        }
        Ok((events.len(), alerts.len(), errors.len()))
    })
    .await;
    match done {
        Ok(Ok((events, alerts, skipped))) => reply(
            StatusCode::OK,
            serde_json::json!({"events": events, "alerts": alerts, "not_audit": skipped}),
        ),
        // Nothing in it was an audit event: a client error, not one the API server should retry.
        Ok(Err(why)) => reply(StatusCode::BAD_REQUEST, serde_json::json!({"error": why})),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": e.to_string()}),
        ),
    }
}

/// Serves the webhook until SIGINT/SIGTERM (or `cfg.duration`), evaluating every received event
/// with `engine` and handing alerts to `sink`.
pub fn serve(
    cfg: ListenConfig,
    engine: K8sEngine,
    sink: AlertSink,
) -> Result<ListenStats, ListenError> {
    if cfg.token.trim().is_empty() {
        return Err(ListenError::EmptyToken);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ListenError::Serve(e.to_string()))?;
    rt.block_on(serve_async(cfg, engine, sink))
}

async fn serve_async(
    cfg: ListenConfig,
    engine: K8sEngine,
    sink: AlertSink,
) -> Result<ListenStats, ListenError> {
    let state = Arc::new(AppState {
        engine: Arc::new(engine),
        token: cfg.token.trim().to_string(),
        sink,
        requests: AtomicU64::new(0),
        events: AtomicU64::new(0),
        alerts: AtomicU64::new(0),
        unauthorized: AtomicU64::new(0),
        not_audit: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/", post(receive))
        // Falco's k8saudit plugin path, so an existing webhook configuration can point here.
        .route("/k8s-audit", post(receive))
        .route("/k8s_audit", post(receive))
        .layer(DefaultBodyLimit::max(cfg.max_body))
        .with_state(state.clone());
    let listener = std::net::TcpListener::bind(&cfg.listen)
        .map_err(|e| ListenError::Bind(cfg.listen.clone(), e))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| ListenError::Bind(cfg.listen.clone(), e))?;
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let task = match &cfg.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| ListenError::Tls {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                    why: e.to_string(),
                })?;
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls)
                .map_err(|e| ListenError::Bind(cfg.listen.clone(), e))?
                .handle(handle.clone());
            tokio::spawn(server.serve(app.into_make_service()))
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|e| ListenError::Bind(cfg.listen.clone(), e))?
                .handle(handle.clone());
            tokio::spawn(server.serve(app.into_make_service()))
        }
    };
    if let Some(p) = &cfg.ready_file {
        let _ = std::fs::write(p, format!("{addr}\n"));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ListenError::Serve(e.to_string()))?;
    let until = async {
        match cfg.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = until => {}
    }
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ListenError::Serve(e.to_string())),
        Err(e) => return Err(ListenError::Serve(e.to_string())),
    }
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(ListenStats {
        requests: g(&state.requests),
        events: g(&state.events),
        alerts: g(&state.alerts),
        unauthorized: g(&state.unauthorized),
        not_audit: g(&state.not_audit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"s3cret", b"s3cret"));
        assert!(!same_token(b"s3cre", b"s3cret"));
        assert!(!same_token(b"s3cretX", b"s3cret"));
        assert!(!same_token(b"", b"s3cret"));
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "t"));
        h.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        assert!(authorized(&h, "t"));
        h.insert(header::AUTHORIZATION, "Basic dDp0".parse().unwrap());
        assert!(!authorized(&h, "t"));
    }
}
