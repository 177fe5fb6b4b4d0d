//! The gate policy: the configured verdict an image gets from its findings, its configured user and its
//! signature status. One function ([`GatePolicy::judge`]) decides every verdict the server records — on
//! push, on an uploaded report and after a re-evaluation — so a verdict never depends on which path
//! produced it.
//!
//! It fails closed: a signature requirement that could not be checked blocks (with the reason), and
//! an image whose scan did not complete never reaches this function (its verdict stays `pending`).

use std::path::PathBuf;

use moat_model::{Finding, FindingKind, Severity};
use serde::{Deserialize, Serialize};

/// `gate:` in the server configuration. Every field has the workshop's default: block fixable HIGH
/// and CRITICAL vulnerabilities and images that run as root; signatures only when keys are given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// Vulnerabilities at or above this severity block (`null`: no severity gate).
    pub deny_severity: Option<Severity>,
    /// Only vulnerabilities that have a fixed version count against `deny_severity`.
    pub only_fixable: bool,
    /// Images whose configuration runs as root (no `User`, `root`, `0`, `0:...`) block.
    pub deny_root: bool,
    /// cosign public keys (PEM): when any is given, images must be signed by one of them.
    pub trusted_keys: Vec<PathBuf>,
    /// Other finding ids that block whatever their severity (image-config checks like `MOAT-IMG-005`,
    /// an advisory id).
    pub deny_ids: Vec<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            deny_severity: Some(Severity::High),
            only_fixable: true,
            deny_root: true,
            trusted_keys: Vec::new(),
            deny_ids: Vec::new(),
        }
    }
}

/// A verdict's decision, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Block,
    /// Not judged yet (queued, scanning, or the scan is being retried).
    Pending,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Block => "block",
            Decision::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" => Some(Decision::Allow),
            "block" => Some(Decision::Block),
            "pending" => Some(Decision::Pending),
            _ => None,
        }
    }
}

/// What is known about an image's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// No trusted keys are configured, or nobody looked.
    NotChecked,
    /// Signed over this manifest digest by a trusted key.
    Verified,
    /// No valid signature by a trusted key (the reason).
    Unsigned { reason: String },
    /// The check could not be made (registry error); blocks when signatures are required.
    Error { reason: String },
}

/// What the gate judges.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    pub findings: &'a [Finding],
    /// The image configuration's `User` (None: not set, which means root).
    pub user: Option<&'a str>,
    /// False for an SBOM or report upload without an image configuration: the root rule cannot
    /// apply and is reported as not judged rather than guessed.
    pub has_config: bool,
    pub signature: &'a SignatureStatus,
}

/// The recorded verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub decision: Decision,
    /// Every rule that blocked, each naming the finding or field; empty when allowed.
    pub reasons: Vec<String>,
    /// The policy that decided, in one line (stored with the verdict; a change re-judges).
    pub policy: String,
}

/// A loaded gate policy.
#[derive(Debug, Clone)]
pub struct GatePolicy {
    pub config: GateConfig,
    keys: Vec<moat_sign::VerifyingKey>,
}

/// A gate policy that cannot be loaded (a trusted key file); names the file.
#[derive(Debug, thiserror::Error)]
#[error("gate.trusted_keys: {0}")]
pub struct GateError(pub String);

impl GatePolicy {
    /// Loads the trusted keys; a missing or malformed key stops the server from starting.
    pub fn load(config: GateConfig) -> Result<GatePolicy, GateError> {
        let mut keys = Vec::new();
        for p in &config.trusted_keys {
            let bytes = std::fs::read(p)
                .map_err(|e| GateError(format!("cannot read {}: {e}", p.display())))?;
            keys.push(
                moat_sign::load_public_key(&bytes, &p.display().to_string())
                    .map_err(|e| GateError(e.to_string()))?,
            );
        }
        Ok(GatePolicy { config, keys })
    }

    /// The keys images must be signed by (empty: no signature rule).
    pub fn trusted_keys(&self) -> &[moat_sign::VerifyingKey] {
        &self.keys
    }

    /// Whether the signature rule applies.
    pub fn requires_signature(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The policy in one line, e.g. `deny HIGH+ fixable; deny root; signed by 1 key`.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let mut parts = Vec::new();
        if let Some(s) = c.deny_severity {
            parts.push(format!(
                "deny {}+{}",
                s.as_str(),
                if c.only_fixable { " fixable" } else { "" }
            ));
        }
        if c.deny_root {
            parts.push("deny root".to_string());
        }
        if !self.keys.is_empty() {
            parts.push(format!("signed by {} trusted key(s)", self.keys.len()));
        }
        if !c.deny_ids.is_empty() {
            parts.push(format!("deny {}", c.deny_ids.join(",")));
        }
        if parts.is_empty() {
            "allow all".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// Judges one image. Deterministic: the same input gives the same reasons in the same order.
    pub fn judge(&self, input: &GateInput) -> GateVerdict {
        let c = &self.config;
        let mut reasons = Vec::new();
        let live = || input.findings.iter().filter(|f| f.suppressed.is_none());
        if let Some(min) = c.deny_severity {
            let mut hits: Vec<&Finding> = live()
                .filter(|f| f.kind == FindingKind::Vulnerability && f.severity >= min)
                .filter(|f| !c.only_fixable || is_fixable(f))
                .collect();
            hits.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then_with(|| a.id.cmp(&b.id))
                    .then_with(|| package_name(a).cmp(package_name(b)))
            });
            for f in hits {
                let fixed = f
                    .vulnerability
                    .as_ref()
                    .and_then(|v| v.fixed_versions.first())
                    .map(|v| format!(", fixed in {v}"))
                    .unwrap_or_default();
                let pkg = f
                    .package
                    .as_ref()
                    .map(|p| format!(" in {} {}", p.name, p.version))
                    .unwrap_or_default();
                reasons.push(format!(
                    "vulnerability: {} ({}){pkg}{fixed}",
                    f.id,
                    f.severity.as_str()
                ));
            }
        }
        if c.deny_root && input.has_config && runs_as_root(input.user) {
            reasons.push(format!(
                "root: the image runs as {} (set a non-root USER)",
                match input.user {
                    None | Some("") => "root (no User set)".to_string(),
                    Some(u) => format!("{u:?}"),
                }
            ));
        }
        if !c.deny_ids.is_empty() {
            for f in live().filter(|f| c.deny_ids.iter().any(|id| id == &f.id)) {
                reasons.push(format!("denied id: {} ({})", f.id, f.title));
            }
        }
        if self.requires_signature() {
            match input.signature {
                SignatureStatus::Verified => {}
                SignatureStatus::NotChecked => {
                    reasons.push("signature: not verified".to_string());
                }
                SignatureStatus::Unsigned { reason } => {
                    reasons.push(format!(
                        "signature: no valid signature by a trusted key ({reason})"
                    ));
                }
                SignatureStatus::Error { reason } => {
                    reasons.push(format!("signature: could not be verified ({reason})"));
                }
            }
        }
        GateVerdict {
            decision: if reasons.is_empty() {
                Decision::Allow
            } else {
                Decision::Block
            },
            reasons,
            policy: self.describe(),
        }
    }
}

/// A vulnerability with a known fixed version.
pub fn is_fixable(f: &Finding) -> bool {
    f.vulnerability
        .as_ref()
        .is_some_and(|v| !v.fixed_versions.is_empty())
}

fn package_name(f: &Finding) -> &str {
    f.package.as_ref().map_or("", |p| p.name.as_str())
}

/// Whether a configured `User` means uid 0: unset, `root`, `0`, or `0:group` / `root:group`.
pub fn runs_as_root(user: Option<&str>) -> bool {
    let u = user.unwrap_or("").trim();
    let name = u.split(':').next().unwrap_or("");
    name.is_empty() || name == "root" || name == "0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_model::{MatchReason, PackageRef, Vulnerability};

    fn vuln(id: &str, sev: Severity, fixed: &[&str]) -> Finding {
        let mut f = Finding::new(id, FindingKind::Vulnerability, sev, format!("{id} title"));
        f.package = Some(PackageRef {
            name: "lodash".into(),
            version: "4.17.15".into(),
            purl: "pkg:npm/lodash@4.17.15".parse().expect("purl"),
        });
        f.vulnerability = Some(Vulnerability {
            installed_version: "4.17.15".into(),
            ecosystem: "npm".into(),
            fixed_versions: fixed.iter().map(|s| s.to_string()).collect(),
            cvss: vec![],
            severity_source: None,
            published: None,
            modified: None,
            matched: MatchReason {
                ecosystem: "npm".into(),
                queried_name: "lodash".into(),
                by: "range".into(),
                entry: "SEMVER introduced=0".into(),
                comparison: "4.17.15 >= 0".into(),
            },
            records: vec![],
            ..Default::default()
        });
        f
    }

    fn policy(c: GateConfig) -> GatePolicy {
        GatePolicy::load(c).expect("no keys to load")
    }

    #[test]
    fn default_policy_blocks_fixable_high_and_root() {
        let p = policy(GateConfig::default());
        let findings = vec![
            vuln("GHSA-high-fixed", Severity::High, &["4.17.21"]),
            vuln("GHSA-crit-unfixed", Severity::Critical, &[]),
            vuln("GHSA-medium", Severity::Medium, &["4.17.19"]),
        ];
        let v = p.judge(&GateInput {
            findings: &findings,
            user: Some("1000"),
            has_config: true,
            signature: &SignatureStatus::NotChecked,
        });
        assert_eq!(v.decision, Decision::Block);
        assert_eq!(
            v.reasons,
            ["vulnerability: GHSA-high-fixed (HIGH) in lodash 4.17.15, fixed in 4.17.21"]
        );
        assert_eq!(v.policy, "deny HIGH+ fixable; deny root");

        let clean = p.judge(&GateInput {
            findings: &findings[1..],
            user: Some("app:app"),
            has_config: true,
            signature: &SignatureStatus::NotChecked,
        });
        assert_eq!(clean.decision, Decision::Allow, "{:?}", clean.reasons);

        let root = p.judge(&GateInput {
            findings: &[],
            user: None,
            has_config: true,
            signature: &SignatureStatus::NotChecked,
        });
        assert_eq!(root.decision, Decision::Block);
        assert!(root.reasons[0].starts_with("root:"), "{:?}", root.reasons);
        // An uploaded SBOM has no configuration: the root rule is not guessed.
        let sbom = p.judge(&GateInput {
            findings: &[],
            user: None,
            has_config: false,
            signature: &SignatureStatus::NotChecked,
        });
        assert_eq!(sbom.decision, Decision::Allow);
    }

    #[test]
    fn suppressed_findings_do_not_count_and_unfixed_can_be_required() {
        let mut f = vuln("GHSA-1", Severity::Critical, &["1"]);
        f.suppressed = Some("accepted risk".into());
        let p = policy(GateConfig {
            only_fixable: false,
            ..GateConfig::default()
        });
        let input = |fs: &'static [Finding]| GateInput {
            findings: fs,
            user: Some("1"),
            has_config: true,
            signature: &SignatureStatus::NotChecked,
        };
        let one = Box::leak(Box::new(vec![f]));
        assert_eq!(p.judge(&input(one)).decision, Decision::Allow);
        let unfixed = Box::leak(Box::new(vec![vuln("GHSA-2", Severity::High, &[])]));
        assert_eq!(p.judge(&input(unfixed)).decision, Decision::Block);
    }

    #[test]
    fn root_users() {
        for u in [
            None,
            Some(""),
            Some("root"),
            Some("0"),
            Some("0:0"),
            Some("root:wheel"),
        ] {
            assert!(runs_as_root(u), "{u:?}");
        }
        for u in [
            Some("1000"),
            Some("app"),
            Some("nobody:nogroup"),
            Some("65532:65532"),
        ] {
            assert!(!runs_as_root(u), "{u:?}");
        }
    }

    #[test]
    fn a_missing_key_names_the_file_and_unknown_fields_are_refused() {
        let e = GatePolicy::load(GateConfig {
            trusted_keys: vec!["/nonexistent/cosign.pub".into()],
            ..GateConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cosign.pub"), "{e}");
        let bad: Result<GateConfig, _> =
            serde_json::from_str(r#"{"deny_severity": "HIGH", "deny_roots": true}"#);
        assert!(bad.unwrap_err().to_string().contains("deny_roots"));
    }
}
