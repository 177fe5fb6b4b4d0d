//! `moat admission serve|certs`: the validating admission webhook and the certificates it serves with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use moat_admission::{EngineConfig, FailurePolicy, ServeConfig};
use moat_kube::{Level, PssVersion};
use moat_report::Verdict;

use crate::common::InputError;

/// Largest `--max-body-bytes` accepted (the API server itself caps objects near 3 MiB).
const MAX_BODY_LIMIT: usize = 256 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

// Parsed once per run: the size of the serve arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Serve the validating webhook over HTTPS (AdmissionReview v1 and v1beta1) until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Write a CA (ca.crt) and a serving certificate and key (tls.crt, tls.key) for the webhook Service.
    Certs(CertsArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate (PEM, chain allowed); reloaded when the file changes.
    #[arg(long = "tls-cert", value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// Serving key (PEM); reloaded when the file changes.
    #[arg(long = "tls-key", value_name = "FILE")]
    pub tls_key: PathBuf,
    /// Kyverno policies (files or directories, repeatable); reloaded when they change.
    #[arg(long = "policies", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Enforce a Pod Security Standards level: pss-baseline or pss-restricted.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Pod Security Standards version (`v1.N` or `latest`).
    #[arg(long = "pss-version", value_name = "VERSION", default_value = "latest")]
    pub pss_version: String,
    /// Only admit images matching PATTERN (`registry.example.com/*`; repeatable).
    #[arg(long = "trusted-registry", value_name = "PATTERN")]
    pub trusted_registry: Vec<String>,
    /// Require the pod annotation moat.dev/scan-status: passed.
    #[arg(long)]
    pub require_scan: bool,
    /// Deny containers that may run as root (runAsNonRoot/runAsUser), with or without a PSS profile.
    #[arg(long)]
    pub require_non_root: bool,
    /// Only admit images with a cosign signature by this public key (PEM; repeatable: any of them).
    /// Registry errors follow --fail-open.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_key: Vec<PathBuf>,
    /// moat server URL: images are admitted only when the server's verdict for their digest (tags
    /// resolved through the registry) is allow; the scan-status annotation no longer admits. Server
    /// errors follow --fail-open.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// File holding the bearer token (read scope) for --server; default: $MOAT_TOKEN.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds a server verdict (and a tag's digest) is cached.
    #[arg(
        long = "verdict-cache-seconds",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub verdict_cache_seconds: u64,
    /// Plain HTTP to registries when verifying signatures (a loopback test registry only).
    #[arg(long = "insecure-registry")]
    pub insecure_registry: bool,
    /// On internal errors (a policy that cannot be evaluated) admit with a warning instead of denying.
    #[arg(long)]
    pub fail_open: bool,
    /// Largest AdmissionReview accepted, in bytes.
    #[arg(long = "max-body-bytes", value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's headers, and then its body.
    #[arg(long = "request-timeout", value_name = "SECONDS", default_value_t = 10)]
    pub request_timeout: u64,
    /// Most open connections (HTTP/1.1 and HTTP/2); one more is closed at once.
    #[arg(long = "max-connections", value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds without a byte from the client after which a connection is closed (never shorter
    /// than --request-timeout plus --eval-deadline).
    #[arg(long = "idle-timeout", value_name = "SECONDS", default_value_t = 30)]
    pub idle_timeout: u64,
    /// Policy evaluations run at once, off the async workers (default: the number of CPUs, at least 2).
    #[arg(long = "eval-workers", value_name = "N")]
    pub eval_workers: Option<usize>,
    /// Seconds one request's evaluation may take; past it the failure policy answers.
    #[arg(long = "eval-deadline", value_name = "SECONDS", default_value_t = 8)]
    pub eval_deadline: u64,
}

#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// DNS names or IPs of the serving certificate (repeatable).
    #[arg(
        long = "name",
        value_name = "NAME",
        default_values_t = [
            "moat-admission.moat-system.svc".to_string(),
            "moat-admission.moat-system.svc.cluster.local".to_string(),
        ]
    )]
    pub names: Vec<String>,
    /// Validity in years.
    #[arg(long, default_value_t = 1)]
    pub years: i32,
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    match a.command {
        Sub::Serve(s) => serve(s),
        Sub::Certs(c) => {
            let bundle = moat_admission::certs::generate(&c.names, c.years)
                .map_err(|e| InputError(e.to_string()))?;
            moat_admission::certs::write(&bundle, &c.out).map_err(|e| InputError(e.to_string()))?;
            eprintln!(
                "moat: wrote {0}/ca.crt, {0}/tls.crt, {0}/tls.key for {1}",
                c.out.display(),
                c.names.join(", ")
            );
            Ok(Verdict::Pass)
        }
    }
}

fn serve(s: ServeArgs) -> anyhow::Result<Verdict> {
    let pss_level = match s.profile.as_deref() {
        None => None,
        Some("pss-baseline") => Some(Level::Baseline),
        Some("pss-restricted") => Some(Level::Restricted),
        Some(other) => {
            return Err(InputError(format!(
                "unknown profile {other:?} (expected pss-baseline or pss-restricted)"
            ))
            .into());
        }
    };
    let pss_version = s.pss_version.parse::<PssVersion>().map_err(InputError)?;
    if !(1..=MAX_BODY_LIMIT).contains(&s.max_body_bytes) {
        return Err(InputError(format!(
            "--max-body-bytes must be between 1 and {MAX_BODY_LIMIT}, not {}",
            s.max_body_bytes
        ))
        .into());
    }
    if !(1..=600).contains(&s.request_timeout) {
        return Err(InputError(format!(
            "--request-timeout must be between 1 and 600 seconds, not {}",
            s.request_timeout
        ))
        .into());
    }
    let mut cfg = ServeConfig::new(s.listen, s.tls_cert, s.tls_key);
    cfg.engine = EngineConfig {
        pss_level,
        pss_version,
        policies: s.policies,
        trusted_registries: s.trusted_registry,
        require_scan: s.require_scan,
        require_non_root: s.require_non_root,
    };
    cfg.failure = if s.fail_open {
        FailurePolicy::Open
    } else {
        FailurePolicy::Closed
    };
    cfg.signatures = moat_admission::SignatureConfig {
        keys: s.trusted_key,
        insecure_registry: s.insecure_registry,
    };
    if let Some(server) = &s.server {
        let token = match &s.token_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| InputError(format!("--token-file {}: {e}", f.display())))?,
            None => std::env::var("MOAT_TOKEN")
                .map_err(|_| InputError("--server needs --token-file FILE or MOAT_TOKEN".into()))?,
        };
        // The server's verdict replaces the annotation: an annotation alone never admits.
        cfg.engine.require_scan = false;
        cfg.verdicts = moat_admission::verdicts::VerdictConfig {
            server: server.clone(),
            token: token.trim().to_string(),
            insecure_registry: s.insecure_registry,
            cache_ttl: Duration::from_secs(s.verdict_cache_seconds.min(3600)),
        };
    } else if s.token_file.is_some() {
        return Err(InputError("--token-file is only used with --server".into()).into());
    }
    cfg.max_body_bytes = s.max_body_bytes;
    cfg.request_timeout = Duration::from_secs(s.request_timeout.max(1));
    cfg.max_connections = s.max_connections.max(1);
    cfg.idle_timeout = Duration::from_secs(s.idle_timeout.max(1));
    if let Some(n) = s.eval_workers {
        cfg.eval_workers = n.max(1);
    }
    cfg.eval_deadline = Duration::from_secs(s.eval_deadline.max(1));
    moat_admission::serve_blocking(cfg).map_err(|e| match e {
        moat_admission::AdmissionError::Config(m) => InputError(m).into(),
        other => anyhow::anyhow!(other),
    })?;
    Ok(Verdict::Pass)
}
