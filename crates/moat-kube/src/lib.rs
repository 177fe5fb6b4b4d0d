//! Kubernetes manifest hardening: loads manifests with source positions, finds the pod template of
//! every workload kind, and judges it against the Pod Security Standards (exactly as Pod Security
//! Admission does, version-aware), best practices beyond PSS, and RBAC least privilege.
//!
//! The same PSS evaluation serves `moat lint` and the admission webhook, so what CI says, admission
//! enforces.
#![forbid(unsafe_code)]

mod load;
mod psp;
pub mod pss;
mod rules;
mod workload;

use moat_model::{Finding, FindingKind, Location, Severity};

pub use load::{Document, MAX_MANIFEST_BYTES, load_str, looks_like_kubernetes, parent_path};
pub use pss::{CheckFailure, Level, PssOptions, PssVersion, Violation};
pub use rules::{RuleInfo, rule_table};
pub use workload::{PodTemplate, get_path, pod_paths, pod_template};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The input is not a readable manifest; the message names the file and, where known, the line.
    #[error("{0}")]
    Input(String),
    /// The text is not YAML/JSON; where the parser stopped, when it says.
    #[error("{}: {message}", position(file, *line, *column))]
    Parse {
        file: String,
        line: Option<u32>,
        column: Option<u32>,
        message: String,
    },
}

fn position(file: &str, line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

/// What `moat lint` judges Kubernetes objects against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Exactly the PSS baseline checks, nothing else.
    PssBaseline,
    /// Exactly the PSS restricted checks, nothing else.
    PssRestricted,
    /// PSS restricted, best practices and RBAC (the default).
    All,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pss-baseline" => Ok(Profile::PssBaseline),
            "pss-restricted" => Ok(Profile::PssRestricted),
            "all" | "default" => Ok(Profile::All),
            _ => Err(format!(
                "unknown profile {s:?} (expected pss-baseline, pss-restricted or all)"
            )),
        }
    }
}

/// Settings for one lint run.
#[derive(Debug, Clone, Copy)]
pub struct LintOptions {
    pub profile: Profile,
    pub pss_version: PssVersion,
    pub pss: PssOptions,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            profile: Profile::All,
            pss_version: PssVersion::LATEST,
            pss: PssOptions::default(),
        }
    }
}

const PSS_REFERENCE: &str = "https://kubernetes.io/docs/concepts/security/pod-security-standards/";

/// Severity, title, why and fix for each PSS check.
/// One Pod Security Standards check, for `--list-rules`: its id (what findings carry), the level
/// it belongs to and the first policy version (`v1.N`) it applies from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PssRuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub pss_level: &'static str,
    pub since: String,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

/// Every Pod Security Standards check, in the order they are evaluated.
pub fn pss_rule_table() -> Vec<PssRuleInfo> {
    pss::check_ids()
        .into_iter()
        .map(|(id, level, since)| {
            let (severity, title, why, fix) = pss_info(id);
            PssRuleInfo {
                id,
                severity,
                pss_level: level.as_str(),
                since: format!("v1.{since}"),
                title,
                why,
                fix,
            }
        })
        .collect()
}

fn pss_info(id: &str) -> (Severity, &'static str, &'static str, &'static str) {
    match id {
        "privileged" => (
            Severity::Critical,
            "Privileged container",
            "A privileged container has every capability and all host devices: it is root on the node.",
            "Remove securityContext.privileged or set it to false.",
        ),
        "hostNamespaces" => (
            Severity::High,
            "Pod shares host namespaces",
            "hostNetwork, hostPID or hostIPC let the pod see and reach the node's network, processes or IPC.",
            "Remove hostNetwork, hostPID and hostIPC (or set them to false).",
        ),
        "hostPathVolumes" => (
            Severity::High,
            "hostPath volume",
            "A hostPath volume exposes the node's filesystem to the pod, a common escape route.",
            "Use emptyDir, configMap, secret or a PersistentVolumeClaim instead of hostPath.",
        ),
        "hostPorts" => (
            Severity::Medium,
            "Container binds a host port",
            "hostPort binds directly on the node, bypassing network policy and limiting scheduling.",
            "Remove hostPort and expose the port with a Service.",
        ),
        "capabilities_baseline" => (
            Severity::High,
            "Container adds non-default capabilities",
            "Capabilities beyond the runtime default set (e.g. SYS_ADMIN, NET_ADMIN) grant root-like powers.",
            "Remove the capability from securityContext.capabilities.add.",
        ),
        "appArmorProfile" => (
            Severity::Medium,
            "AppArmor disabled or overridden",
            "An unconfined AppArmor profile removes a kernel confinement layer.",
            "Use appArmorProfile.type RuntimeDefault or Localhost (or leave it unset).",
        ),
        "seLinuxOptions" => (
            Severity::Medium,
            "Custom SELinux options",
            "A custom SELinux type, user or role can lift the container out of its confinement.",
            "Remove seLinuxOptions.user/role and use type container_t, container_init_t or container_kvm_t.",
        ),
        "procMount" | "procMount_restricted" => (
            Severity::Medium,
            "Unmasked /proc",
            "procMount Unmasked exposes kernel interfaces in /proc that the default mask hides.",
            "Remove securityContext.procMount or set it to Default.",
        ),
        "seccompProfile_baseline" => (
            Severity::Medium,
            "Seccomp disabled",
            "An Unconfined seccomp profile gives the container the full syscall surface of the kernel.",
            "Set seccompProfile.type to RuntimeDefault or Localhost.",
        ),
        "sysctls" => (
            Severity::Medium,
            "Unsafe sysctl",
            "Sysctls outside the safe set can affect the whole node or disable security mechanisms.",
            "Remove the sysctl or move the workload to a dedicated node with a node-level setting.",
        ),
        "windowsHostProcess" => (
            Severity::Critical,
            "Windows HostProcess container",
            "A HostProcess container runs as a process on the Windows node with host access.",
            "Remove windowsOptions.hostProcess.",
        ),
        "hostProbesAndHostLifecycle" => (
            Severity::Medium,
            "Probe or lifecycle handler targets another host",
            "A host in an httpGet/tcpSocket probe or hook makes the kubelet connect to an arbitrary address (SSRF).",
            "Remove the host field so the kubelet probes the pod's own IP.",
        ),
        "restrictedVolumes" => (
            Severity::Medium,
            "Volume type not allowed by restricted",
            "Only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret volumes are allowed; others reach node or network storage directly.",
            "Use a PersistentVolumeClaim for storage instead of an inline volume source.",
        ),
        "allowPrivilegeEscalation" => (
            Severity::Medium,
            "Privilege escalation allowed",
            "Without allowPrivilegeEscalation=false a process can gain privileges through setuid binaries.",
            "Set securityContext.allowPrivilegeEscalation: false on every container.",
        ),
        "runAsNonRoot" => (
            Severity::Medium,
            "Container may run as root",
            "Without runAsNonRoot=true the container runs as whatever user the image says, often root.",
            "Set securityContext.runAsNonRoot: true on the pod (or every container) and a non-zero runAsUser.",
        ),
        "runAsUser" => (
            Severity::High,
            "Container runs as UID 0",
            "runAsUser: 0 runs the container as root.",
            "Set runAsUser to a non-zero UID.",
        ),
        "seccompProfile_restricted" => (
            Severity::Low,
            "Seccomp profile not set",
            "Restricted requires an explicit RuntimeDefault or Localhost seccomp profile.",
            "Set spec.securityContext.seccompProfile.type: RuntimeDefault.",
        ),
        "capabilities_restricted" => (
            Severity::Medium,
            "Capabilities not dropped",
            "Restricted requires dropping ALL capabilities and adding back at most NET_BIND_SERVICE.",
            "Set securityContext.capabilities.drop: [\"ALL\"] and add only NET_BIND_SERVICE if needed.",
        ),
        _ => (Severity::Medium, "Pod Security Standards violation", "", ""),
    }
}

/// Builds a finding located at `path` (relative to the object) in a document.
pub(crate) fn finding_at(
    doc: &Document,
    id: &str,
    kind: FindingKind,
    severity: Severity,
    title: &str,
    path: &str,
) -> Finding {
    let mut f = Finding::new(id, kind, severity, title);
    f.location = Location {
        file: Some(doc.file.clone()),
        line: doc.line_of(path),
        document: Some(doc.index),
        field: Some(doc.display_path(path)),
        object: Some(doc.object_ref()),
        ..Location::default()
    };
    f
}

/// Maps a pod-relative path (`spec.x`, `metadata.y`) onto the workload's own path.
fn workload_path(t: &PodTemplate, rel: &str) -> String {
    if let Some(r) = rel.strip_prefix("spec") {
        format!("{}{}", t.spec_path, r)
    } else if let Some(r) = rel.strip_prefix("metadata") {
        format!("{}{}", t.meta_path, r)
    } else {
        rel.to_string()
    }
}

/// PSS findings for one document (empty when the kind runs no pod).
pub fn pss_findings(
    doc: &Document,
    level: Level,
    version: PssVersion,
    opts: PssOptions,
) -> Vec<Finding> {
    pss_findings_adjusted(doc, level, version, opts, &|_, _, f| f)
}

/// Rewrites the failed checks of one pod (its metadata, its spec): Kyverno-style exemptions.
pub type AdjustFailures<'a> = dyn Fn(Option<&serde_json::Value>, &serde_json::Value, Vec<CheckFailure>) -> Vec<CheckFailure>
    + 'a;

/// Like [`pss_findings`], with the failures passed through `adjust` (given the pod's metadata and
/// spec) first: moat-policy drops the violations a Kyverno `podSecurity.exclude` exempts.
pub fn pss_findings_adjusted(
    doc: &Document,
    level: Level,
    version: PssVersion,
    opts: PssOptions,
    adjust: &AdjustFailures<'_>,
) -> Vec<Finding> {
    let Some(t) = pod_template(&doc.value, doc.kind()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let failures = adjust(
        t.meta,
        t.spec,
        pss::evaluate(t.meta, t.spec, level, version, opts),
    );
    for failure in failures {
        let (sev, title, why, fix) = pss_info(failure.id);
        for v in &failure.violations {
            let path = workload_path(&t, &v.field);
            let mut f = finding_at(doc, failure.id, FindingKind::Kubernetes, sev, title, &path);
            f.message = v.message.clone();
            f.why = Some(format!(
                "{why} Pod Security Standards {} check `{}` at {}: {}.",
                failure.level.as_str(),
                failure.id,
                version,
                failure.detail
            ));
            f.fix = Some(fix.to_string());
            f.references = vec![PSS_REFERENCE.to_string()];
            out.push(f);
        }
    }
    out
}

/// Lints loaded documents with a profile. Without a PSS-only profile, best practices and RBAC
/// rules run too; some of them look across documents (NetworkPolicy selection).
pub fn lint(docs: &[Document], opts: &LintOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let level = match opts.profile {
        Profile::PssBaseline => Level::Baseline,
        Profile::PssRestricted | Profile::All => Level::Restricted,
    };
    for d in docs {
        out.extend(pss_findings(d, level, opts.pss_version, opts.pss));
        // A PodSecurityPolicy is judged by what it admits, with the same checks.
        out.extend(psp::judge(d, level, opts.pss_version));
    }
    if opts.profile == Profile::All {
        out.extend(rules::best_practices(docs));
        out.extend(rules::rbac(docs));
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}
