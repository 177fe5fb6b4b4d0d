//! `.hadolint.yaml` compatibility: `ignored`, `override` (error/warning/info/style), `trustedRegistries`,
//! `failure-threshold`, `disable-ignore-pragma`, `label-schema`/`strict-labels` are read so hadolint
//! users keep their configuration. Unknown keys are ignored like hadolint does.

use std::collections::BTreeMap;

use moat_model::Severity;
use serde::Deserialize;

use crate::LintError;
use crate::catalog::severity_of_level;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawOverride {
    error: Vec<String>,
    warning: Vec<String>,
    info: Vec<String>,
    style: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct RawConfig {
    ignored: Vec<String>,
    #[serde(rename = "override")]
    overrides: RawOverride,
    #[serde(alias = "trustedRegistries")]
    trusted_registries: Vec<String>,
    #[serde(alias = "failureThreshold")]
    failure_threshold: Option<String>,
    #[serde(alias = "disableIgnorePragma")]
    disable_ignore_pragma: bool,
    #[serde(alias = "labelSchema")]
    label_schema: BTreeMap<String, String>,
    #[serde(alias = "strictLabels")]
    strict_labels: bool,
    #[serde(alias = "noFail")]
    no_fail: bool,
}

/// Lint configuration (defaults = hadolint's defaults).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Rule ids never reported.
    pub ignored: Vec<String>,
    /// Per-rule severity overrides.
    pub overrides: BTreeMap<String, Severity>,
    /// When non-empty, base images must come from one of these registries (`*` and `*.domain` allowed).
    pub trusted_registries: Vec<String>,
    /// hadolint's failure-threshold, already mapped to a moat severity (`None` inside = never fail).
    pub failure_threshold: Option<Option<Severity>>,
    pub disable_ignore_pragma: bool,
    /// Required labels and their type (`text`, `url`, `semver`, `hash`, `rfc3339`, `spdx`, `email`).
    pub label_schema: BTreeMap<String, String>,
    pub strict_labels: bool,
}

impl Config {
    /// Parses `.hadolint.yaml` text; `name` is used in error messages.
    pub fn from_yaml(name: &str, text: &str) -> Result<Config, LintError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            LintError::Input(format!("{name}: invalid hadolint configuration: {e}"))
        })?;
        let mut c = Config {
            ignored: raw
                .ignored
                .iter()
                .map(|s| s.trim().to_ascii_uppercase())
                .collect(),
            trusted_registries: raw.trusted_registries,
            disable_ignore_pragma: raw.disable_ignore_pragma,
            label_schema: raw.label_schema,
            strict_labels: raw.strict_labels,
            ..Default::default()
        };
        for (lvl, ids) in [
            ("style", &raw.overrides.style),
            ("info", &raw.overrides.info),
            ("warning", &raw.overrides.warning),
            ("error", &raw.overrides.error),
        ] {
            for id in ids {
                if let Some(s) = severity_of_level(lvl) {
                    c.overrides.insert(id.trim().to_ascii_uppercase(), s);
                }
            }
        }
        if raw.no_fail {
            c.failure_threshold = Some(None);
        } else if let Some(t) = raw.failure_threshold {
            let t = t.trim().to_ascii_lowercase();
            c.failure_threshold = match t.as_str() {
                "none" | "ignore" => Some(None),
                other => match severity_of_level(other) {
                    Some(s) => Some(Some(s)),
                    None => {
                        return Err(LintError::Input(format!(
                            "{name}: failure-threshold {t:?}: expected error, warning, info, style or none"
                        )));
                    }
                },
            };
        }
        Ok(c)
    }

    pub fn is_ignored(&self, id: &str) -> bool {
        self.ignored.iter().any(|i| i.eq_ignore_ascii_case(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hadolint_yaml() {
        let c = Config::from_yaml(
            ".hadolint.yaml",
            "ignored:\n  - DL3008\noverride:\n  error:\n    - DL3015\n  info: [DL3059]\ntrustedRegistries:\n  - docker.io\n  - \"*.corp.example\"\nfailure-threshold: warning\n",
        )
        .unwrap();
        assert!(c.is_ignored("dl3008"));
        assert_eq!(c.overrides.get("DL3015"), Some(&Severity::High));
        assert_eq!(c.overrides.get("DL3059"), Some(&Severity::Low));
        assert_eq!(c.trusted_registries.len(), 2);
        assert_eq!(c.failure_threshold, Some(Some(Severity::Medium)));
        assert!(Config::from_yaml("x.yaml", "failure-threshold: loud\n").is_err());
        assert!(
            Config::from_yaml("x.yaml", "ignored: [\n")
                .unwrap_err()
                .to_string()
                .contains("x.yaml")
        );
    }
}
