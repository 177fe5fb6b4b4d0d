//! The HTTPS server: `/validate` (and `/`) for AdmissionReviews, `/healthz`, `/readyz`, Prometheus
//! `/metrics`. Certificates and policies are reloaded when their files change; bodies are bounded in
//! size and time; a panic or internal error is decided by the fail-open/fail-closed setting; shutdown
//! is graceful.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::json;

use crate::AdmissionError;
use crate::engine::{Engine, EngineConfig};
use crate::review::{self, FailurePolicy};

/// Everything `moat admission serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub engine: EngineConfig,
    pub failure: FailurePolicy,
    /// Largest request body accepted (HTTP 413 beyond). The API server caps objects near 3 MiB.
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers, and separately its body (HTTP 408 beyond).
    pub request_timeout: Duration,
    /// How often certificate and policy files are checked for changes.
    pub reload_interval: Duration,
    /// "Images must be signed": trusted cosign keys (none: no signature check).
    pub signatures: crate::signatures::SignatureConfig,
    /// "Image must be scanned and passed" from moat server's verdict by digest (empty server: off).
    pub verdicts: crate::verdicts::VerdictConfig,
}

impl ServeConfig {
    pub fn new(listen: SocketAddr, tls_cert: PathBuf, tls_key: PathBuf) -> Self {
        ServeConfig {
            listen,
            tls_cert,
            tls_key,
            engine: EngineConfig::default(),
            failure: FailurePolicy::Closed,
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(2),
            signatures: Default::default(),
            verdicts: Default::default(),
        }
    }
}

/// Installs ring as rustls' process-wide crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Default)]
struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    reloads: AtomicU64,
}

impl Metrics {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, policies: usize) -> String {
        let mut s = String::new();
        s.push_str("# HELP moat_admission_decisions_total Admission decisions by result.\n");
        s.push_str("# TYPE moat_admission_decisions_total counter\n");
        for (k, v) in [
            ("allowed", &self.allowed),
            ("denied", &self.denied),
            ("error", &self.errors),
            ("rejected", &self.rejected),
        ] {
            s.push_str(&format!(
                "moat_admission_decisions_total{{result=\"{k}\"}} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        s.push_str(
            "# HELP moat_admission_request_duration_seconds Time to decide an AdmissionReview.\n",
        );
        s.push_str("# TYPE moat_admission_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            s.push_str(&format!(
                "moat_admission_request_duration_seconds_bucket{{le=\"{b}\"}} {}\n",
                self.buckets[i].load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        s.push_str(&format!(
            "moat_admission_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        s.push_str(&format!(
            "moat_admission_request_duration_seconds_sum {}\n",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        s.push_str(&format!(
            "moat_admission_request_duration_seconds_count {count}\n"
        ));
        s.push_str("# HELP moat_admission_policies Kyverno policies loaded.\n# TYPE moat_admission_policies gauge\n");
        s.push_str(&format!("moat_admission_policies {policies}\n"));
        s.push_str("# HELP moat_admission_reloads_total Certificate and policy reloads.\n# TYPE moat_admission_reloads_total counter\n");
        s.push_str(&format!(
            "moat_admission_reloads_total {}\n",
            self.reloads.load(Ordering::Relaxed)
        ));
        s
    }
}

pub(crate) struct AppState {
    engine: RwLock<Arc<Engine>>,
    metrics: Metrics,
    pub(crate) failure: FailurePolicy,
    pub(crate) max_body: usize,
    pub(crate) timeout: Duration,
    ready: AtomicBool,
    signatures: Option<Arc<crate::signatures::SignatureCheck>>,
    verdicts: Option<Arc<crate::verdicts::VerdictCheck>>,
}

impl AppState {
    pub(crate) fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

fn error_response(code: StatusCode, msg: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": msg}).to_string(),
    )
        .into_response()
}

async fn validate(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let start = Instant::now();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body as u64) {
        st.metrics.rejected.fetch_add(1, Ordering::Relaxed);
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {} bytes exceeds the {} byte limit",
                declared.unwrap_or(0),
                st.max_body
            ),
        );
    }
    let body = match tokio::time::timeout(
        st.timeout,
        axum::body::to_bytes(req.into_body(), st.max_body),
    )
    .await
    {
        Err(_) => {
            st.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s",
                    st.timeout.as_secs_f64()
                ),
            );
        }
        Ok(Err(e)) => {
            st.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            return if too_large {
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeds the {} byte limit", st.max_body),
                )
            } else {
                error_response(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read request body: {e}"),
                )
            };
        }
        Ok(Ok(b)) => b,
    };
    let parsed = match review::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            st.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return error_response(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let engine = st.engine();
    // A panic while judging is an internal error like any other: decided by the failure policy.
    let decision = std::panic::catch_unwind(AssertUnwindSafe(|| engine.decide(&parsed.request)))
        .unwrap_or_else(|_| crate::engine::Decision {
            allowed: true,
            errors: vec!["the engine panicked on this object".into()],
            ..Default::default()
        });
    let mut decision = decision;
    if let Some(check) = st.signatures.clone() {
        let images = crate::signatures::new_images(&parsed.request);
        if !images.is_empty() {
            // Registry round trips: off the async workers.
            match tokio::task::spawn_blocking(move || check.judge(&images)).await {
                Ok(o) => {
                    if !o.denials.is_empty() {
                        decision.allowed = false;
                        decision.denials.extend(o.denials);
                    }
                    decision.errors.extend(o.errors);
                }
                Err(e) => decision
                    .errors
                    .push(format!("image-signed: verification failed: {e}")),
            }
        }
    }
    if let Some(check) = st.verdicts.clone() {
        let images = crate::signatures::new_images(&parsed.request);
        if !images.is_empty() {
            match tokio::task::spawn_blocking(move || check.judge(&images)).await {
                Ok(o) => {
                    if !o.denials.is_empty() {
                        decision.allowed = false;
                        decision.denials.extend(o.denials);
                    }
                    decision.errors.extend(o.errors);
                }
                Err(e) => decision
                    .errors
                    .push(format!("image-scanned: verdict lookup failed: {e}")),
            }
        }
    }
    let (d, out) = review::respond(&parsed, decision, st.failure);
    if !d.errors.is_empty() {
        st.metrics.errors.fetch_add(1, Ordering::Relaxed);
    }
    if d.allowed {
        st.metrics.allowed.fetch_add(1, Ordering::Relaxed);
    } else {
        st.metrics.denied.fetch_add(1, Ordering::Relaxed);
    }
    st.metrics.observe(start.elapsed());
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let policies = st.engine().policy_count();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(policies),
    )
        .into_response()
}

/// Files whose change triggers a reload, with modification time and size.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, Option<SystemTime>, u64)>, depth: usize) {
        let Ok(md) = std::fs::metadata(p) else {
            out.push((p.to_path_buf(), None, 0));
            return;
        };
        if md.is_dir() {
            if depth > 16 {
                return;
            }
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), out, depth + 1);
                }
            }
        } else {
            out.push((p.to_path_buf(), md.modified().ok(), md.len()));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out, 0);
    }
    out.sort();
    out
}

/// A running webhook.
pub struct Server {
    pub addr: SocketAddr,
    handle: Handle<SocketAddr>,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    reloader: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Loads certificates and policies, binds and starts serving. Fails (without serving) on a bad
    /// certificate, key or policy.
    pub async fn start(cfg: ServeConfig) -> Result<Server, AdmissionError> {
        install_crypto_provider();
        let tls = RustlsConfig::from_pem_file(&cfg.tls_cert, &cfg.tls_key)
            .await
            .map_err(|e| {
                AdmissionError::Config(format!(
                    "cannot load TLS certificate {} / key {}: {e}",
                    cfg.tls_cert.display(),
                    cfg.tls_key.display()
                ))
            })?;
        let engine = Engine::new(cfg.engine.clone())?;
        let signatures = if cfg.signatures.keys.is_empty() {
            None
        } else {
            Some(Arc::new(crate::signatures::SignatureCheck::load(
                &cfg.signatures,
            )?))
        };
        let verdicts = if cfg.verdicts.server.is_empty() {
            None
        } else {
            Some(Arc::new(crate::verdicts::VerdictCheck::new(
                cfg.verdicts.clone(),
            )?))
        };
        for u in &engine.unsupported {
            eprintln!("moat admission: warning: not evaluated: {u}");
        }
        let state = Arc::new(AppState {
            engine: RwLock::new(Arc::new(engine)),
            metrics: Metrics::default(),
            failure: cfg.failure,
            max_body: cfg.max_body_bytes,
            timeout: cfg.request_timeout,
            ready: AtomicBool::new(true),
            signatures,
            verdicts,
        });
        let app = Router::new()
            .route("/", post(validate))
            .route("/validate", post(validate))
            .route("/mutate", post(crate::mutate::handler))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            // The handler enforces its own limit (with a clear 413); axum's default 2 MB must not interfere.
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());

        let listener = std::net::TcpListener::bind(cfg.listen)
            .map_err(|e| AdmissionError::Config(format!("cannot listen on {}: {e}", cfg.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| AdmissionError::Config(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AdmissionError::Config(e.to_string()))?;
        let handle: Handle<SocketAddr> = Handle::new();
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls.clone())
            .handshake_timeout(cfg.request_timeout);
        let mut server = axum_server::from_tcp(listener)
            .map_err(|e| AdmissionError::Config(e.to_string()))?
            .acceptor(acceptor)
            .handle(handle.clone());
        server
            .http_builder()
            .http1()
            .header_read_timeout(Some(cfg.request_timeout));
        let task = tokio::spawn(server.serve(app.into_make_service()));

        // Reload certificates and policies when their files change; keep the old ones on error.
        let reload_state = state.clone();
        let cert_files = vec![cfg.tls_cert.clone(), cfg.tls_key.clone()];
        let policy_files = cfg.engine.policies.clone();
        let engine_cfg = cfg.engine.clone();
        let interval = cfg.reload_interval;
        let reloader = tokio::spawn(async move {
            let mut certs = fingerprint(&cert_files);
            let mut pols = fingerprint(&policy_files);
            loop {
                tokio::time::sleep(interval).await;
                let c = fingerprint(&cert_files);
                if c != certs {
                    match tls
                        .reload_from_pem_file(&cert_files[0], &cert_files[1])
                        .await
                    {
                        Ok(()) => {
                            reload_state.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                            eprintln!("moat admission: reloaded TLS certificate");
                        }
                        Err(e) => eprintln!(
                            "moat admission: keeping the old certificate, reload failed: {e}"
                        ),
                    }
                    certs = c;
                }
                let p = fingerprint(&policy_files);
                if p != pols && !policy_files.is_empty() {
                    let ec = engine_cfg.clone();
                    match tokio::task::spawn_blocking(move || Engine::new(ec)).await {
                        Ok(Ok(e)) => {
                            if let Ok(mut g) = reload_state.engine.write() {
                                *g = Arc::new(e);
                            }
                            reload_state.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                            eprintln!("moat admission: reloaded policies");
                        }
                        Ok(Err(e)) => eprintln!(
                            "moat admission: keeping the old policies, reload failed: {e}"
                        ),
                        Err(e) => eprintln!(
                            "moat admission: keeping the old policies, reload failed: {e}"
                        ),
                    }
                    pols = p;
                }
            }
        });
        Ok(Server {
            addr,
            handle,
            state,
            task,
            reloader,
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace`), then stops.
    pub async fn shutdown(self, grace: Duration) -> Result<(), AdmissionError> {
        self.state.ready.store(false, Ordering::Relaxed);
        self.reloader.abort();
        self.handle.graceful_shutdown(Some(grace));
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AdmissionError::Serve(e.to_string())),
            Err(e) => Err(AdmissionError::Serve(e.to_string())),
        }
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), AdmissionError> {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| AdmissionError::Serve(e.to_string()))?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        eprintln!("moat admission: shutting down");
        self.shutdown(Duration::from_secs(10)).await
    }
}

/// Runs the webhook on a new multi-threaded runtime until a signal arrives (the CLI entry point).
pub fn serve_blocking(cfg: ServeConfig) -> Result<(), AdmissionError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| AdmissionError::Serve(e.to_string()))?;
    rt.block_on(async move {
        let server = Server::start(cfg).await?;
        eprintln!("moat admission: serving on https://{}", server.addr);
        server.run_until_signal().await
    })
}
