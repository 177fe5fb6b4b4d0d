//! PodSecurityPolicy (`policy/v1beta1`, removed in Kubernetes v1.25) judged as what it admits: each
//! field that lets a pod through which a Pod Security Standards check would refuse is a finding with
//! that check's id, located at the PSP field. What a PSP allows is what pods under it may do, so a
//! permissive field is reported even when no pod in the input uses it.

use serde_json::Value;

use moat_model::{Finding, FindingKind};

use crate::pss::{self, ALLOWED_VOLUME_SOURCES, BASELINE_CAPS, Level, PssVersion};
use crate::{Document, PSS_REFERENCE, finding_at, pss_info};

const PSP_REFERENCE: &str = "https://kubernetes.io/docs/concepts/security/pod-security-policy/";

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// One permissive field: the PSS check it maps to, the PSP field, and what it lets pods do.
struct Gap {
    check: &'static str,
    path: String,
    message: String,
}

/// The annotation PSP used for allowed seccomp profiles (`*` = any, `runtime/default`...).
const SECCOMP_ALLOWED: &str = "seccomp.security.alpha.kubernetes.io/allowedProfileNames";
const SECCOMP_DEFAULT: &str = "seccomp.security.alpha.kubernetes.io/defaultProfileName";
const APPARMOR_ALLOWED: &str = "apparmor.security.beta.kubernetes.io/allowedProfileNames";
/// SELinux types Pod Security Standards baseline allows (container_engine_t from v1.31).
const SELINUX_TYPES: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];

fn gaps(doc: &Document, minor: u32) -> Vec<Gap> {
    let spec = doc.value.get("spec").unwrap_or(&Value::Null);
    let annotations = doc.value.pointer("/metadata/annotations");
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    let truthy = |k: &str| spec.get(k).and_then(Value::as_bool) == Some(true);
    let mut g = Vec::new();
    let mut gap = |check: &'static str, path: &str, message: String| {
        g.push(Gap {
            check,
            path: path.to_string(),
            message,
        })
    };

    if truthy("privileged") {
        gap(
            "privileged",
            "spec.privileged",
            "privileged: true admits privileged containers".into(),
        );
    }
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(k) {
            gap(
                "hostNamespaces",
                &format!("spec.{k}"),
                format!("{k}: true admits pods sharing the host's namespace"),
            );
        }
    }
    if spec
        .get("hostPorts")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        gap(
            "hostPorts",
            "spec.hostPorts",
            "hostPorts admits containers binding ports on the node".into(),
        );
    }

    // Capabilities: what may be added, and what must be dropped.
    let mut added: Vec<(String, &str)> = Vec::new();
    for key in ["allowedCapabilities", "defaultAddCapabilities"] {
        for c in strings(spec.get(key)) {
            added.push((c.to_ascii_uppercase(), key));
        }
    }
    for (cap, key) in &added {
        let name = cap.strip_prefix("CAP_").unwrap_or(cap);
        if name == "*" || !BASELINE_CAPS.contains(&name) {
            gap(
                "capabilities_baseline",
                &format!("spec.{key}"),
                format!("{key} admits capability {cap}"),
            );
        }
    }
    let drops_all = strings(spec.get("requiredDropCapabilities"))
        .iter()
        .any(|c| c.eq_ignore_ascii_case("ALL"));
    if !drops_all {
        gap(
            "capabilities_restricted",
            "spec.requiredDropCapabilities",
            "requiredDropCapabilities does not include ALL".into(),
        );
    }
    for (cap, key) in &added {
        let name = cap.strip_prefix("CAP_").unwrap_or(cap);
        if name != "NET_BIND_SERVICE" {
            gap(
                "capabilities_restricted",
                &format!("spec.{key}"),
                format!("{key} admits capability {cap} (restricted allows only NET_BIND_SERVICE)"),
            );
        }
    }

    // Volumes: a PSP lists the volume types pods may use (`*` = all); absent means none.
    let volumes = strings(spec.get("volumes"));
    if volumes.iter().any(|v| *v == "*" || *v == "hostPath") {
        gap(
            "hostPathVolumes",
            "spec.volumes",
            "volumes admits hostPath".into(),
        );
    }
    for v in &volumes {
        if !ALLOWED_VOLUME_SOURCES.contains(v) {
            gap(
                "restrictedVolumes",
                "spec.volumes",
                format!("volumes admits {v:?}"),
            );
        }
    }

    if strings(spec.get("allowedProcMountTypes")).contains(&"Unmasked") {
        gap(
            "procMount",
            "spec.allowedProcMountTypes",
            "allowedProcMountTypes admits Unmasked".into(),
        );
        gap(
            "procMount_restricted",
            "spec.allowedProcMountTypes",
            "allowedProcMountTypes admits Unmasked".into(),
        );
    }
    for s in strings(spec.get("allowedUnsafeSysctls")) {
        if s.contains('*') || !pss::allowed_sysctl(s, minor) {
            gap(
                "sysctls",
                "spec.allowedUnsafeSysctls",
                format!("allowedUnsafeSysctls admits {s}"),
            );
        }
    }

    // SELinux: RunAsAny lets a pod set any user, role and type.
    match spec.pointer("/seLinux/rule").and_then(Value::as_str) {
        Some("MustRunAs") => {
            let o = spec.pointer("/seLinux/seLinuxOptions");
            let t = o
                .and_then(|o| o.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let type_ok = SELINUX_TYPES.contains(&t) || (minor >= 31 && t == "container_engine_t");
            let custom = ["user", "role"]
                .iter()
                .any(|k| o.and_then(|o| o.get(*k)).and_then(Value::as_str).is_some());
            if !type_ok || custom {
                gap(
                    "seLinuxOptions",
                    "spec.seLinux.seLinuxOptions",
                    "seLinux MustRunAs sets a custom SELinux user, role or type".into(),
                );
            }
        }
        _ => gap(
            "seLinuxOptions",
            "spec.seLinux.rule",
            "seLinux rule RunAsAny admits any SELinux user, role and type".into(),
        ),
    }

    // Seccomp and AppArmor were annotations on the PSP.
    let seccomp_allowed: Vec<&str> = annotation(SECCOMP_ALLOWED)
        .map(|a| a.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if seccomp_allowed
        .iter()
        .any(|p| *p == "*" || *p == "unconfined")
    {
        gap(
            "seccompProfile_baseline",
            "metadata.annotations",
            format!("{SECCOMP_ALLOWED} admits unconfined seccomp"),
        );
    }
    let confined =
        |p: &str| matches!(p, "runtime/default" | "docker/default") || p.starts_with("localhost/");
    match annotation(SECCOMP_DEFAULT) {
        Some(p) if confined(p) => {
            if seccomp_allowed.iter().any(|p| !confined(p)) {
                gap(
                    "seccompProfile_restricted",
                    "metadata.annotations",
                    format!(
                        "{SECCOMP_ALLOWED} admits profiles other than RuntimeDefault or Localhost"
                    ),
                );
            }
        }
        _ => gap(
            "seccompProfile_restricted",
            "metadata.annotations",
            format!("no {SECCOMP_DEFAULT} of runtime/default: pods run without a seccomp profile"),
        ),
    }
    if annotation(APPARMOR_ALLOWED)
        .is_some_and(|a| a.split(',').any(|p| matches!(p.trim(), "*" | "unconfined")))
    {
        gap(
            "appArmorProfile",
            "metadata.annotations",
            format!("{APPARMOR_ALLOWED} admits unconfined AppArmor"),
        );
    }

    // Restricted: privilege escalation and users. PSP defaults allowPrivilegeEscalation to true.
    if spec
        .get("allowPrivilegeEscalation")
        .and_then(Value::as_bool)
        != Some(false)
    {
        gap(
            "allowPrivilegeEscalation",
            "spec.allowPrivilegeEscalation",
            "allowPrivilegeEscalation is not false".into(),
        );
    }
    match spec.pointer("/runAsUser/rule").and_then(Value::as_str) {
        Some("MustRunAsNonRoot") => {}
        Some("MustRunAs") => {
            let ranges = spec
                .pointer("/runAsUser/ranges")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if ranges
                .iter()
                .any(|r| r.get("min").and_then(Value::as_u64) == Some(0))
            {
                gap(
                    "runAsUser",
                    "spec.runAsUser.ranges",
                    "runAsUser ranges admit UID 0".into(),
                );
            }
        }
        _ => gap(
            "runAsNonRoot",
            "spec.runAsUser.rule",
            "runAsUser rule RunAsAny admits containers running as root".into(),
        ),
    }
    g
}

/// Findings for one PodSecurityPolicy at a Pod Security Standards level and version: only the checks
/// that level and version apply (after the restricted overrides), as for a pod.
pub(crate) fn judge(doc: &Document, level: Level, version: PssVersion) -> Vec<Finding> {
    if doc.kind() != "PodSecurityPolicy" {
        return Vec::new();
    }
    let active = pss::active_checks(level, version);
    let mut out = Vec::new();
    for gap in gaps(doc, version.effective_minor()) {
        if !active.contains(&gap.check) {
            continue;
        }
        let (sev, title, why, fix) = pss_info(gap.check);
        let mut f = finding_at(
            doc,
            gap.check,
            FindingKind::Kubernetes,
            sev,
            title,
            &gap.path,
        );
        f.message = format!(
            "{}: {} (Pod Security Standards {} check `{}`)",
            doc.object_ref(),
            gap.message,
            pss_level(gap.check),
            gap.check
        );
        f.why = Some(format!(
            "{why} This PodSecurityPolicy admits pods that fail this check at {version}; PodSecurityPolicy itself was removed in Kubernetes v1.25."
        ));
        f.fix = Some(format!(
            "{fix} Enforce it with Pod Security Admission (namespace label pod-security.kubernetes.io/enforce) rather than a PodSecurityPolicy."
        ));
        f.references = vec![PSS_REFERENCE.to_string(), PSP_REFERENCE.to_string()];
        out.push(f);
    }
    out
}

fn pss_level(check: &str) -> &'static str {
    pss::check_ids()
        .into_iter()
        .find(|(id, _, _)| *id == check)
        .map_or("", |(_, l, _)| l.as_str())
}
