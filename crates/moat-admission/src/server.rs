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
    /// Most open connections (TLS HTTP/1.1 and HTTP/2 together); one more is closed on accept, so a
    /// flood of idle connections cannot take the file descriptors `/healthz` needs.
    pub max_connections: usize,
    /// A connection with no byte read or written for this long is closed (HTTP/1.1 keep-alive and
    /// idle HTTP/2 connections alike).
    pub idle_timeout: Duration,
    /// Policy evaluations running at once, on blocking threads off the async workers.
    pub eval_workers: usize,
    /// Time one request's evaluation may take (waiting for a worker included); past it the request
    /// is answered as the failure policy says.
    pub eval_deadline: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
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
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            eval_workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            eval_deadline: Duration::from_secs(8),
            max_streams_per_connection: 32,
        }
    }
}

/// A connection counted against [`ServeConfig::max_connections`] and closed when idle.
pub(crate) struct Limited<I> {
    inner: I,
    _permit: tokio::sync::OwnedSemaphorePermit,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<I> Limited<I> {
    fn touch(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

use std::future::Future as _;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle too long")
}

impl<I: AsyncRead + Unpin> AsyncRead for Limited<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Limited<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, buf) {
            // Only the client's bytes count as activity (a server PING or a slow reader does not).
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The innermost acceptor: takes a connection slot (or closes the connection at once) and arms the
/// idle timer; TLS runs on top of it.
#[derive(Clone)]
pub(crate) struct LimitAcceptor {
    slots: Arc<tokio::sync::Semaphore>,
    idle: Duration,
    refused: Arc<AtomicU64>,
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for LimitAcceptor {
    type Stream = Limited<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            // Dropping the stream closes the connection.
            return std::future::ready(Err(std::io::Error::other("connection limit reached")));
        };
        let _ = stream.set_nodelay(true);
        let deadline = Box::pin(tokio::time::sleep(self.idle));
        std::future::ready(Ok((
            Limited {
                inner: stream,
                _permit: permit,
                idle: self.idle,
                deadline,
            },
            service,
        )))
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
    /// Connections closed on accept because `max_connections` were open.
    refused_connections: Arc<AtomicU64>,
    /// Evaluations that passed the per-request deadline.
    deadline_exceeded: AtomicU64,
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
        s.push_str("# HELP moat_admission_refused_connections_total Connections closed at the connection limit.\n# TYPE moat_admission_refused_connections_total counter\n");
        s.push_str(&format!(
            "moat_admission_refused_connections_total {}\n",
            self.refused_connections.load(Ordering::Relaxed)
        ));
        s.push_str("# HELP moat_admission_deadline_exceeded_total Evaluations past the per-request deadline.\n# TYPE moat_admission_deadline_exceeded_total counter\n");
        s.push_str(&format!(
            "moat_admission_deadline_exceeded_total {}\n",
            self.deadline_exceeded.load(Ordering::Relaxed)
        ));
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
    /// Slots of the bounded evaluation pool.
    eval_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) eval_deadline: Duration,
}

impl AppState {
    /// Runs `f` (a policy evaluation) on a blocking thread of the bounded pool, within the
    /// per-request deadline; `None` when the deadline passed (waiting for a slot included). A
    /// runaway evaluation keeps its slot until it ends, so at most `eval_workers` run at once and
    /// the async workers (`/healthz`, other requests) are never blocked by one.
    pub(crate) async fn evaluate<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let slots = self.eval_slots.clone();
        let run = async move {
            let permit = slots.acquire_owned().await.ok()?;
            tokio::task::spawn_blocking(move || {
                let out = f();
                drop(permit);
                out
            })
            .await
            .ok()
        };
        match tokio::time::timeout(self.eval_deadline, run).await {
            Ok(out) => out,
            Err(_) => {
                self.metrics
                    .deadline_exceeded
                    .fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

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
    // Off the async workers, on the bounded pool, within the deadline. A panic or a deadline
    // passed is an internal error like any other: decided by the failure policy.
    let request = parsed.request.clone();
    let deadline = st.eval_deadline;
    let decision = st
        .evaluate(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| engine.decide(&request))).unwrap_or_else(
                |_| crate::engine::Decision {
                    allowed: true,
                    errors: vec!["the engine panicked on this object".into()],
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap_or_else(|| crate::engine::Decision {
            allowed: true,
            errors: vec![format!(
                "policy evaluation did not finish within the {} s deadline (eval_deadline)",
                deadline.as_secs_f64()
            )],
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
        let refused = Arc::new(AtomicU64::new(0));
        let state = Arc::new(AppState {
            engine: RwLock::new(Arc::new(engine)),
            metrics: Metrics {
                refused_connections: refused.clone(),
                ..Metrics::default()
            },
            eval_slots: Arc::new(tokio::sync::Semaphore::new(cfg.eval_workers.max(1))),
            eval_deadline: cfg.eval_deadline,
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
            .handshake_timeout(cfg.request_timeout)
            .acceptor(LimitAcceptor {
                slots: Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1))),
                // Never shorter than a request may legitimately take (its body, then its evaluation):
                // the timer only sees the client's bytes.
                idle: cfg
                    .idle_timeout
                    .max(cfg.request_timeout + cfg.eval_deadline),
                refused,
            });
        let mut server = axum_server::from_tcp(listener)
            .map_err(|e| AdmissionError::Config(e.to_string()))?
            .acceptor(acceptor)
            .handle(handle.clone());
        server
            .http_builder()
            .http1()
            .header_read_timeout(Some(cfg.request_timeout));
        server
            .http_builder()
            .http2()
            .max_concurrent_streams(cfg.max_streams_per_connection)
            .max_pending_accept_reset_streams(Some(20));
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
