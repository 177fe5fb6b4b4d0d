//! moat server: the security center. One store (SQLite by default, PostgreSQL for many replicas) for
//! scans, SBOMs, verdicts, alerts and jobs; pipelines, alert rules and the dashboard compose it.
#![forbid(unsafe_code)]
pub mod alerts;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod reeval;
pub mod registry;
pub mod store;
pub mod web;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

pub use config::{Role, ServerConfig};
use metrics::Metrics;
use store::Store;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServerConfig>,
}

/// Routes that need a bearer token (each handler checks its scope). Other modules add one line here.
fn protected_routes() -> Router<AppState> {
    api::routes()
}

/// Routes without the bearer layer.
fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    if st.store.ping().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let mut protected = protected_routes();
    // Per-token rate limit: inside the bearer layer, so it keys on the authenticated token.
    if let Some(limit) = state.config.rate_limit {
        let limiter = Arc::new(api::ratelimit::Limiter::new(limit));
        let m = state.metrics.clone();
        protected = protected.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                api::ratelimit::limit(limiter.clone(), m.clone(), req, next)
            },
        ));
    }
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let timeout = state.config.request_timeout;
    Router::new()
        .merge(public_routes())
        .merge(protected)
        // The dashboard does its own (session) auth, outside the bearer layer.
        .merge(web::routes(
            web::WebState::new(
                state.store.pool().clone(),
                state.config.tls.is_some(),
                Arc::new(state.store.clone()),
            )
            .with_db(state.config.db.clone()),
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => api::ApiError::new(StatusCode::REQUEST_TIMEOUT, "request timed out")
                        .into_response(),
                }
            },
        ))
        .with_state(state)
}

/// Opens the store and serves until SIGINT/SIGTERM. `ready` is told the bound address.
pub async fn serve(
    cfg: ServerConfig,
    bootstrap_token: Option<String>,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow_free::Result<()> {
    let mut cfg = cfg;
    // Alert rules are validated before anything starts (errors name file:line).
    cfg.read_config_file().map_err(anyhow_free::Error)?;
    let rules = Arc::new(
        cfg.alerts
            .load_rules()
            .map_err(|e| anyhow_free::Error(e.0))?,
    );
    // `gate:` and `scan:` (scan on push): a bad policy or trusted key stops the start.
    cfg.pipeline = pipeline::settings::PipelineConfig::load(cfg.config_file.as_deref())
        .map_err(anyhow_free::Error)?;
    let scan_pipeline = Arc::new(
        pipeline::scan::Pipeline::new(cfg.pipeline.clone(), cfg.db.clone())
            .map_err(anyhow_free::Error)?,
    );
    let store = Store::connect(&cfg.store_url).await?;
    if let Some(secret) = bootstrap_token {
        store
            .ensure_token(
                "bootstrap",
                &secret,
                &[
                    store::Scope::Admin,
                    store::Scope::Ingest,
                    store::Scope::Read,
                ],
            )
            .await?;
    }
    let state = AppState {
        store,
        metrics: Arc::new(Metrics::default()),
        config: Arc::new(cfg.clone()),
    };
    if cfg.role.runs_workers() {
        // Durable alert delivery: outbox -> rules -> targets (alerts::delivery).
        let d = alerts::delivery::Dispatcher::new(
            state.store.clone(),
            state.metrics.clone(),
            rules,
            cfg.alerts.clone(),
        );
        tokio::spawn(d.run());
    }
    if cfg.role.runs_workers() {
        // Scan on push: a bounded pool of workers over the store's queue (push lane first).
        let n = cfg.workers.unwrap_or(cfg.pipeline.scan.workers);
        let policy = Arc::new(scan_pipeline.policy.clone());
        worker::Pool::new(state.clone(), scan_pipeline, n)
            // Re-evaluation after a DB change: a background lane, claimed after push scans.
            .with_lane(
                store::queue::LANE_REEVAL,
                reeval::handler(cfg.db.clone(), policy),
            )
            .spawn();
        // A changed snapshot (moat db update/import on the server's DB) is noticed at start and
        // every minute.
        reeval::spawn_watcher(
            state.store.clone(),
            cfg.db.clone(),
            std::time::Duration::from_secs(60),
        );
    }
    let router = app(state);
    let handle = axum_server::Handle::new();
    let h2 = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        h2.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let listener = std::net::TcpListener::bind(cfg.listen)
        .map_err(|e| anyhow_free::Error(format!("listen {}: {e}", cfg.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| anyhow_free::Error(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| anyhow_free::Error(e.to_string()))?;
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    match &cfg.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    anyhow_free::Error(format!("TLS {} / {}: {e}", cert.display(), key.display()))
                })?;
            axum_server::from_tcp_rustls(listener, tls)
                .map_err(|e| anyhow_free::Error(e.to_string()))?
                .handle(handle)
                .serve(router.into_make_service())
                .await
                .map_err(|e| anyhow_free::Error(e.to_string()))?;
        }
        None => {
            axum_server::from_tcp(listener)
                .map_err(|e| anyhow_free::Error(e.to_string()))?
                .handle(handle)
                .serve(router.into_make_service())
                .await
                .map_err(|e| anyhow_free::Error(e.to_string()))?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The server's own error type at its edge (the library uses thiserror; no anyhow dependency).
pub mod anyhow_free {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct Error(pub String);

    impl From<crate::store::StoreError> for Error {
        fn from(e: crate::store::StoreError) -> Error {
            Error(e.to_string())
        }
    }

    pub type Result<T> = std::result::Result<T, Error>;
}

/// Runs a future on a fresh multi-threaded runtime (the CLI has no async runtime of its own).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow_free::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow_free::Error(format!("async runtime: {e}")))?;
    Ok(rt.block_on(f))
}
