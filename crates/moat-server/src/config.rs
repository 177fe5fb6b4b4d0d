//! How `moat server` is configured (CLI flags; the YAML file's sections are parsed by their owners).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which parts this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
    All,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "api" => Some(Role::Api),
            "worker" => Some(Role::Worker),
            "all" => Some(Role::All),
            _ => None,
        }
    }
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub store_url: String,
    /// The vulnerability database directory (moat db) the server matches SBOMs against.
    pub db: PathBuf,
    pub role: Role,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The YAML config file (`--config`), if any.
    pub config_file: Option<PathBuf>,
    /// `alerts:` of the config file: rule files, retry policy (see [`ServerConfig::read_config_file`]).
    pub alerts: crate::alerts::delivery::AlertsConfig,
    /// `limits:` of the config file: requests per token (None: no limit).
    pub rate_limit: Option<crate::api::ratelimit::RateLimit>,
    /// `gate:` and `scan:` of the config file (read by [`crate::serve`]).
    pub pipeline: crate::pipeline::settings::PipelineConfig,
    /// `--workers`: scan workers in this process (overrides `scan.workers`).
    pub workers: Option<usize>,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, store_url: String, db: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            store_url,
            db,
            role: Role::All,
            tls: None,
            max_body_bytes: 64 << 20,
            request_timeout: Duration::from_secs(60),
            config_file: None,
            alerts: crate::alerts::delivery::AlertsConfig::new(),
            rate_limit: Some(crate::api::ratelimit::RateLimit::default()),
            pipeline: crate::pipeline::settings::PipelineConfig::default(),
            workers: None,
        }
    }

    /// Reads the `alerts:` and `limits:` sections of `config_file` (other sections are read by their
    /// owners; the rule files named are loaded by [`crate::serve`]). Errors name the file and line.
    pub fn read_config_file(&mut self) -> Result<(), String> {
        let Some(path) = self.config_file.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        self.alerts = crate::alerts::delivery::AlertsConfig::from_config_text(&path, &text)
            .map_err(|e| e.to_string())?;
        self.rate_limit = crate::api::ratelimit::RateLimit::from_config_text(&path, &text)?;
        Ok(())
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }
}
