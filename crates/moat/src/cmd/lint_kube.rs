//! The Kubernetes flags of `moat lint` and the Kubernetes rules in `--list-rules`. Manifests are
//! judged by `moat_engine::lint` (Pod Security Standards, best practices and RBAC from moat-kube,
//! Kyverno policies from moat-policy).

use std::path::PathBuf;

use moat_engine::lint::KubeRequest;

/// Flags for Kubernetes manifests.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Kubernetes checks to run: `pss-baseline` or `pss-restricted` (exactly that Pod Security
    /// Standards level, nothing else), or `all` (default: PSS restricted, best practices and RBAC).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Pod Security Standards policy version, like a namespace's `pod-security.kubernetes.io/enforce-version`:
    /// `v1.N` or `latest`.
    #[arg(long = "pss-version", value_name = "VERSION", default_value = "latest")]
    pub pss_version: String,
    /// Kyverno policies (ClusterPolicy/Policy/ValidatingAdmissionPolicy files or directories) to judge
    /// the manifests with, in addition to the profile.
    #[arg(long = "policy", value_name = "PATH")]
    pub policy: Vec<PathBuf>,
}

impl KubeArgs {
    /// The engine's request for these flags.
    pub fn request(&self) -> KubeRequest {
        KubeRequest {
            profile: self.profile.clone(),
            pss_version: self.pss_version.clone(),
            policies: self.policy.clone(),
        }
    }
}

/// The Kubernetes rules for `moat lint --list-rules --format json`, in the same shape as the
/// Dockerfile rules (`id`, `severity`, `scope`, `title`, `why`, `fix`); PSS checks add their
/// `pss_level` and the version they apply `since`.
pub fn rules_json() -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for r in moat_kube::rule_table() {
        let mut v = serde_json::to_value(&r)?;
        v["scope"] = "kubernetes".into();
        out.push(v);
    }
    for r in moat_kube::pss_rule_table() {
        let mut v = serde_json::to_value(&r)?;
        v["scope"] = "kubernetes-pss".into();
        out.push(v);
    }
    Ok(out)
}

/// The same rules as text, for `moat lint --list-rules`.
pub fn rules_text() -> String {
    let mut s = String::new();
    for r in moat_kube::rule_table() {
        s.push_str(&format!(
            "{} [{}] {}\n    why: {}\n    fix: {}\n",
            r.id, r.severity, r.title, r.why, r.fix
        ));
    }
    for r in moat_kube::pss_rule_table() {
        s.push_str(&format!(
            "{} [{}] (Pod Security Standards {}, since {}) {}\n    why: {}\n    fix: {}\n",
            r.id, r.severity, r.pss_level, r.since, r.title, r.why, r.fix
        ));
    }
    s
}
