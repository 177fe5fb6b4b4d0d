//! `gate:` and `scan:` of the server configuration file: the gate policy and how pushed images are
//! pulled and scanned (worker count, which registries, retries). Other sections belong to their owners
//! and are ignored here; unknown keys inside these two are refused (a typo never turns a rule off).
//!
//! ```yaml
//! gate: {deny_severity: HIGH, only_fixable: true, deny_root: true}
//! scan:
//!   workers: 2                      # scans at once in this process (`--workers` overrides)
//!   registries: []                  # hosts a push may name (empty: any)
//!   insecure_registries: []         # hosts pulled over plain HTTP (loopback test registries)
//!   default_registry: null          # host for events that do not name one
//!   retry_initial_ms: 2000          # first retry after a failed pull, doubled each time ...
//!   retry_max_ms: 300000            # ... up to this
//!   max_attempts: 8                 # then the job is dead and the verdict stays pending
//!   lease_seconds: 120              # a job whose worker stops heartbeating is taken over after this
//!   registry_timeout_seconds: 30
//!   platforms: [linux/amd64, linux/arm64]   # platforms of a pushed index that are scanned (empty: all)
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::gate::GateConfig;

/// `scan:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanSettings {
    pub workers: usize,
    pub registries: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub default_registry: Option<String>,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub max_attempts: i64,
    pub lease_seconds: u64,
    pub registry_timeout_seconds: u64,
    pub platforms: Vec<String>,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            workers: 2,
            registries: Vec::new(),
            insecure_registries: Vec::new(),
            default_registry: None,
            retry_initial_ms: 2_000,
            retry_max_ms: 300_000,
            max_attempts: 8,
            lease_seconds: 120,
            registry_timeout_seconds: 30,
            platforms: Vec::new(),
        }
    }
}

impl ScanSettings {
    /// Delay before attempt `attempts + 1` after `attempts` failed ones: initial × 2^(n-1), capped.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let n = attempts.clamp(1, 30) as u32 - 1;
        let ms = self
            .retry_initial_ms
            .max(1)
            .saturating_mul(1u64 << n.min(20))
            .min(self.retry_max_ms.max(1));
        Duration::from_millis(ms)
    }

    /// Whether pushes may name `host`.
    pub fn allows(&self, host: &str) -> bool {
        self.registries.is_empty() || self.registries.iter().any(|h| h == host)
    }

    /// Whether `host` is pulled over plain HTTP.
    pub fn insecure(&self, host: &str) -> bool {
        self.insecure_registries.iter().any(|h| h == host)
    }

    /// Whether a platform (`os/arch[/variant]`) of an index is scanned.
    pub fn wants_platform(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.iter().any(|p| p == platform)
    }

    fn check(&self, name: &str) -> Result<(), String> {
        if self.workers == 0 || self.workers > 256 {
            return Err(format!(
                "{name}: scan.workers must be between 1 and 256, not {}",
                self.workers
            ));
        }
        if self.max_attempts < 1 {
            return Err(format!("{name}: scan.max_attempts must be at least 1"));
        }
        if self.lease_seconds < 5 {
            return Err(format!("{name}: scan.lease_seconds must be at least 5"));
        }
        if self.registry_timeout_seconds == 0 {
            return Err(format!(
                "{name}: scan.registry_timeout_seconds must be at least 1"
            ));
        }
        Ok(())
    }
}

/// What the pipeline reads of the configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineConfig {
    pub gate: GateConfig,
    pub scan: ScanSettings,
}

impl PipelineConfig {
    /// Reads `gate:` and `scan:` of a configuration text; errors start with `file:line:col:`.
    pub fn from_config_text(file: &Path, text: &str) -> Result<PipelineConfig, String> {
        #[derive(Deserialize)]
        struct Top {
            #[serde(default)]
            gate: Option<GateConfig>,
            #[serde(default)]
            scan: Option<ScanSettings>,
        }
        let name = file.display().to_string();
        if text.trim().is_empty() {
            return Ok(PipelineConfig::default());
        }
        let top: Top = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{name}:{}:{}", l.line(), l.column()))
                .unwrap_or_else(|| name.clone());
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or(&msg).to_string();
            format!("{at}: {first}")
        })?;
        let mut gate = top.gate.unwrap_or_default();
        let base = file.parent().unwrap_or(Path::new("."));
        for k in &mut gate.trusted_keys {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        let c = PipelineConfig {
            gate,
            scan: top.scan.unwrap_or_default(),
        };
        c.scan.check(&name)?;
        Ok(c)
    }

    /// Reads the file when one is given; the defaults otherwise.
    pub fn load(file: Option<&Path>) -> Result<PipelineConfig, String> {
        match file {
            None => Ok(PipelineConfig::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
                PipelineConfig::from_config_text(p, &text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_read_and_others_ignored() {
        let c = PipelineConfig::from_config_text(
            Path::new("/etc/moat/server.yaml"),
            "alerts: {rules: [a.yaml]}\ngate:\n  deny_root: false\nscan:\n  workers: 3\n  insecure_registries: [\"127.0.0.1:5000\"]\n",
        )
        .expect("valid");
        assert!(!c.gate.deny_root);
        assert_eq!(c.scan.workers, 3);
        assert!(c.scan.insecure("127.0.0.1:5000"));
        assert!(!c.scan.insecure("registry.example"));
        assert!(c.scan.allows("anything.example"));
    }

    #[test]
    fn typos_and_bad_values_name_the_file_and_line() {
        let e = PipelineConfig::from_config_text(
            Path::new("s.yaml"),
            "scan:\n  workers: 2\n  insecure_registry: [x]\n",
        )
        .unwrap_err();
        assert!(e.starts_with("s.yaml:3:"), "{e}");
        assert!(e.contains("insecure_registry"), "{e}");
        let e = PipelineConfig::from_config_text(Path::new("s.yaml"), "scan: {workers: 0}\n")
            .unwrap_err();
        assert!(e.contains("scan.workers"), "{e}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = ScanSettings {
            retry_initial_ms: 100,
            retry_max_ms: 1000,
            ..ScanSettings::default()
        };
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(2), Duration::from_millis(200));
        assert_eq!(s.backoff(4), Duration::from_millis(800));
        assert_eq!(s.backoff(5), Duration::from_millis(1000));
        assert_eq!(s.backoff(60), Duration::from_millis(1000));
    }
}
