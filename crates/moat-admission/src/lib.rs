//! moat's validating admission webhook: AdmissionReview v1 and v1beta1 over HTTPS (rustls with the
//! ring provider), judged by the same Pod Security Standards evaluation as `moat lint`, Kyverno
//! policies (moat-policy), and the workshop's built-in checks (trusted registries, scanned images).
//! Enforce failures deny with every failed rule's message; Audit failures come back as warnings.
#![forbid(unsafe_code)]

pub mod certs;
pub mod engine;
pub mod imageverify;
pub mod mutate;
pub mod review;
pub mod server;
pub mod signatures;
pub mod verdicts;

pub use engine::{Decision, Engine, EngineConfig, Request, SCAN_STATUS_ANNOTATION, image_matches};
pub use review::{FailurePolicy, ReviewError};
pub use server::{ServeConfig, Server, install_crypto_provider, serve_blocking};
pub use signatures::SignatureConfig;

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// A bad certificate, key, policy or address: the server does not start.
    #[error("{0}")]
    Config(String),
    /// The server failed while running.
    #[error("admission server: {0}")]
    Serve(String),
}
