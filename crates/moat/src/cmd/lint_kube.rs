//! The Kubernetes half of `moat lint`: manifests (YAML/JSON, multi-document, `List`s, directories,
//! stdin) judged by the Pod Security Standards, best practices and RBAC rules (moat-kube), and by
//! Kyverno policies given with `--policy` (moat-policy).

use std::path::{Path, PathBuf};

use moat_kube::{LintOptions, Profile, PssOptions, PssVersion};
use moat_model::Finding;
use moat_report::InputFailure;

use crate::common::InputError;

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
    /// The lint options these flags ask for; a bad profile or version is a usage error (exit 2).
    pub fn options(&self) -> anyhow::Result<LintOptions> {
        let profile = match &self.profile {
            None => Profile::All,
            Some(p) => p.parse::<Profile>().map_err(InputError)?,
        };
        let pss_version = self.pss_version.parse::<PssVersion>().map_err(InputError)?;
        Ok(LintOptions {
            profile,
            pss_version,
            pss: PssOptions::default(),
        })
    }

    /// Checks every flag up front, whatever is being linted (a typo in a CI command line must not
    /// wait for a manifest to show up): the profile, the version, and that each `--policy` path
    /// holds at least one policy (an empty file or directory is never silently "no policy").
    pub fn validate(&self) -> anyhow::Result<()> {
        self.options()?;
        for p in &self.policy {
            let set = moat_policy::PolicySet::load_paths(std::slice::from_ref(p))
                .map_err(|e| InputError(e.to_string()))?;
            if set.is_empty() && set.unsupported().is_empty() {
                return Err(InputError(format!(
                    "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                    p.display()
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// Whether a manifest's text holds nothing but blank lines, comments and document separators: a
/// truncated or empty file, which must not pass as "no findings".
pub fn is_empty_manifest(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Whether an input should be linted as Kubernetes manifests: its text carries `apiVersion:` and
/// `kind:` (YAML) or both keys (JSON), whatever the name (stdin `-`, extensionless files).
pub fn is_kubernetes_input(_name: &str, text: &str) -> bool {
    moat_kube::looks_like_kubernetes(text)
}

/// The manifest files under a directory (sorted, recursive, `.yaml`/`.yml`/`.json`), so that
/// `moat lint deploy/` lints a whole directory deterministically.
pub fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d)
            .map_err(|e| InputError(format!("cannot read directory {}: {e}", d.display())))?;
        for e in rd {
            let e =
                e.map_err(|e| InputError(format!("cannot read directory {}: {e}", d.display())))?;
            let p = e.path();
            let ft = e
                .file_type()
                .map_err(|err| InputError(format!("{}: {err}", p.display())))?;
            if ft.is_dir() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    stack.push(p);
                }
            } else if ft.is_file() {
                let n = p.to_string_lossy().to_ascii_lowercase();
                if n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Facts that pin a Kubernetes verdict, for the report's metadata: the profile, the PSS version, the
/// policies given.
pub fn metadata(args: &KubeArgs) -> Vec<(String, String)> {
    let mut m = vec![
        (
            "kubernetes_profile".to_string(),
            args.profile.clone().unwrap_or_else(|| "all".to_string()),
        ),
        ("pss_version".to_string(), args.pss_version.clone()),
    ];
    if !args.policy.is_empty() {
        let p: Vec<String> = args
            .policy
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        m.push(("policies".to_string(), p.join(",")));
    }
    m
}

/// Lints Kubernetes inputs (name, text) and returns the findings (sorted) and the inputs that could
/// not be parsed (each with the file, line and column the parser names); the others are still judged.
pub fn lint(
    inputs: &[(String, String)],
    args: &KubeArgs,
) -> anyhow::Result<(Vec<Finding>, Vec<InputFailure>)> {
    let opts = args.options()?;
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    for (name, text) in inputs {
        if is_empty_manifest(text) {
            failures.push(InputFailure {
                file: name.clone(),
                line: None,
                column: None,
                message: "no Kubernetes object (empty file)".into(),
            });
            continue;
        }
        match moat_kube::load_str(name, text) {
            Ok((d, warnings)) => {
                for w in warnings {
                    eprintln!("moat: warning: {w}");
                }
                docs.extend(d);
            }
            Err(moat_kube::KubeError::Parse {
                file,
                line,
                column,
                message,
            }) => failures.push(InputFailure {
                file,
                line,
                column,
                message,
            }),
            Err(e @ moat_kube::KubeError::Input(_)) => {
                let text = e.to_string();
                let message = text
                    .strip_prefix(name.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .unwrap_or(&text)
                    .to_string();
                failures.push(InputFailure {
                    file: name.clone(),
                    line: None,
                    column: None,
                    message,
                });
            }
        }
    }
    let mut findings = moat_kube::lint(&docs, &opts);
    if !args.policy.is_empty() {
        findings.extend(policy_findings(&docs, &args.policy)?);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok((findings, failures))
}

/// Kyverno policies judged on every document, as if each were being created.
fn policy_findings(
    docs: &[moat_kube::Document],
    paths: &[PathBuf],
) -> anyhow::Result<Vec<Finding>> {
    let set = moat_policy::PolicySet::load_paths(paths).map_err(|e| InputError(e.to_string()))?;
    for u in set
        .unsupported()
        .iter()
        .filter(|u| !u.reason.contains("validate.podSecurity"))
    {
        eprintln!(
            "moat: warning: policy {} rule {} is not evaluated: {}",
            u.policy, u.rule, u.reason
        );
    }
    let mut out = Vec::new();
    for d in docs {
        let mut input = moat_policy::AdmissionInput::create(d.value.clone());
        // A namespaced object without metadata.namespace is matched as in `default`, as
        // `kyverno apply` and the Kubernetes rules read it (Document::effective_namespace).
        input.namespace = d.effective_namespace().map(str::to_string);
        for o in set.evaluate(&input) {
            if !matches!(
                o.result,
                moat_policy::RuleResult::Fail | moat_policy::RuleResult::Error
            ) {
                continue;
            }
            let mut f = o.to_finding();
            f.location.file = Some(d.file.clone());
            f.location.document = Some(d.index);
            f.location.line = d.line_of("");
            if !d.prefix.is_empty() {
                f.location.field = Some(d.prefix.clone());
            }
            f.location.object = Some(d.object_ref());
            out.push(f);
        }
    }
    // Kyverno `validate.podSecurity` subrules: the same PSS evaluation, with the rule's exclusions.
    let (rules, unsupported) = moat_admission::podsecurity::load(paths);
    for u in unsupported {
        eprintln!("moat: warning: policy rule is not evaluated: {u}");
    }
    for d in docs {
        for r in rules
            .iter()
            .filter(|r| r.applies(d.kind(), d.effective_namespace()))
        {
            for mut f in moat_kube::pss_findings_excluding(
                d,
                r.level,
                r.version,
                PssOptions::default(),
                &r.exclusions,
            ) {
                f.aliases.push(std::mem::replace(
                    &mut f.id,
                    format!("{}/{}", r.policy, r.rule),
                ));
                f.kind = moat_model::FindingKind::Policy;
                out.push(f);
            }
        }
    }
    Ok(out)
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
