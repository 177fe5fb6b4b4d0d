//! Pod Security Standards, exactly as Pod Security Admission evaluates them.
//!
//! Every check carries the upstream check id and the policy versions at which its behaviour
//! changed, so `--pss-version v1.N` gives the verdict a cluster enforcing `level:v1.N` would. Versions
//! newer than the newest change evaluate as the newest ("latest"). The restricted level runs every
//! baseline check except those a restricted check overrides at that version, as upstream does.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// The newest minor version at which any check changed; `latest` means this.
pub const LATEST_MINOR: u32 = 37;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(format!(
                "unknown Pod Security level {s:?} (expected baseline or restricted)"
            )),
        }
    }
}

/// A policy version: `v1.N` or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PssVersion {
    /// None = latest.
    pub minor: Option<u32>,
}

impl PssVersion {
    pub const LATEST: PssVersion = PssVersion { minor: None };

    /// The minor version the checks are evaluated at.
    pub fn effective_minor(self) -> u32 {
        self.minor.map_or(LATEST_MINOR, |m| m.min(LATEST_MINOR))
    }
}

impl fmt::Display for PssVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            None => f.write_str("latest"),
            Some(m) => write!(f, "v1.{m}"),
        }
    }
}

impl FromStr for PssVersion {
    type Err = String;
    /// Accepts `latest`, `v1.N` and `1.N`, like Pod Security Admission's version labels.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(PssVersion::LATEST);
        }
        let bad =
            || format!("invalid Pod Security version {s:?} (expected latest or v1.N, e.g. v1.30)");
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (major, minor) = rest.split_once('.').ok_or_else(bad)?;
        if major != "1"
            || minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || minor.len() > 4
        {
            return Err(bad());
        }
        let minor: u32 = minor.parse().map_err(|_| bad())?;
        Ok(PssVersion { minor: Some(minor) })
    }
}

/// Options that a cluster can turn on and that change verdicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct PssOptions {
    /// Pod Security Admission's `RelaxPolicyForUserNamespacePods`: runAsNonRoot and runAsUser are
    /// not required of pods with `hostUsers: false`. Off by default, as upstream.
    pub relax_for_user_namespace_pods: bool,
}

/// One offending (or missing) field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path relative to the pod: `spec.containers[0].securityContext.privileged`,
    /// `metadata.annotations.<key>`.
    pub field: String,
    pub message: String,
}

/// A failed check, with upstream's reason and detail strings and every field involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    pub id: &'static str,
    pub level: Level,
    pub reason: String,
    pub detail: String,
    pub violations: Vec<Violation>,
}

struct Ctx<'a> {
    meta: Option<&'a Value>,
    spec: &'a Value,
    minor: u32,
    opts: PssOptions,
}

type CheckFn = fn(&Ctx) -> Option<CheckFailure>;

struct Check {
    id: &'static str,
    level: Level,
    since: u32,
    /// Baseline checks this restricted check replaces while it applies.
    overrides: &'static [&'static str],
    f: CheckFn,
}

const CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: app_armor_profile,
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: capabilities_baseline,
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: host_namespaces,
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: host_path_volumes,
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: host_ports,
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        since: 34,
        overrides: &[],
        f: host_probes_and_lifecycle,
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: privileged,
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: proc_mount_baseline,
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: se_linux_options,
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: seccomp_baseline,
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: sysctls,
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        since: 0,
        overrides: &[],
        f: windows_host_process,
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        since: 8,
        overrides: &[],
        f: allow_privilege_escalation,
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        since: 22,
        overrides: &["capabilities_baseline"],
        f: capabilities_restricted,
    },
    Check {
        id: "procMount_restricted",
        level: Level::Restricted,
        since: 35,
        overrides: &["procMount"],
        f: proc_mount_restricted,
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        since: 0,
        overrides: &[],
        f: restricted_volumes,
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        since: 0,
        overrides: &[],
        f: run_as_non_root,
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        since: 23,
        overrides: &[],
        f: run_as_user,
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        since: 19,
        overrides: &["seccompProfile_baseline"],
        f: seccomp_restricted,
    },
];

/// Every check id with its level, for listing rules.
pub fn check_ids() -> Vec<(&'static str, Level, u32)> {
    CHECKS.iter().map(|c| (c.id, c.level, c.since)).collect()
}

/// The check ids that apply at a level and version (after overrides).
pub fn active_checks(level: Level, version: PssVersion) -> Vec<&'static str> {
    active(level, version.effective_minor())
        .iter()
        .map(|c| c.id)
        .collect()
}

fn active(level: Level, minor: u32) -> Vec<&'static Check> {
    let applies = |c: &&Check| c.since <= minor && c.level <= level;
    let overridden: BTreeSet<&str> = CHECKS
        .iter()
        .filter(applies)
        .filter(|c| c.level == level)
        .flat_map(|c| c.overrides.iter().copied())
        .collect();
    CHECKS
        .iter()
        .filter(applies)
        .filter(|c| {
            !(c.level == Level::Baseline && level == Level::Restricted && overridden.contains(c.id))
        })
        .collect()
}

/// Evaluates a pod (its metadata and spec) against a level at a version. An empty result means
/// Pod Security Admission would admit the pod.
pub fn evaluate(
    meta: Option<&Value>,
    spec: &Value,
    level: Level,
    version: PssVersion,
    opts: PssOptions,
) -> Vec<CheckFailure> {
    let ctx = Ctx {
        meta,
        spec,
        minor: version.effective_minor(),
        opts,
    };
    active(level, ctx.minor)
        .into_iter()
        .filter_map(|c| (c.f)(&ctx))
        .collect()
}

/// The message Pod Security Admission puts in a denial:
/// `violates PodSecurity "restricted:latest": privileged (container "x" must not set ...), ...`.
pub fn denial_message(level: Level, version: PssVersion, failures: &[CheckFailure]) -> String {
    let parts: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.detail)
            }
        })
        .collect();
    format!(
        "violates PodSecurity \"{}:{}\": {}",
        level.as_str(),
        version,
        parts.join(", ")
    )
}

// ---- helpers -------------------------------------------------------------------------------------

/// A present, non-null field (Go's nil pointer and a YAML `~` are the same to the API server).
fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

struct Container<'a> {
    c: &'a Value,
    path: String,
    name: String,
}

impl<'a> Container<'a> {
    fn sc(&self) -> Option<&'a Value> {
        field(self.c, "securityContext")
    }
    fn sc_field(&self, k: &str) -> Option<&'a Value> {
        self.sc().and_then(|s| field(s, k))
    }
    fn sc_path(&self, k: &str) -> String {
        format!("{}.securityContext.{k}", self.path)
    }
}

/// Init containers, containers and ephemeral containers, in upstream's order.
fn containers<'a>(spec: &'a Value) -> Vec<Container<'a>> {
    let mut out = Vec::new();
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(arr) = field(spec, key).and_then(Value::as_array) {
            for (i, c) in arr.iter().enumerate() {
                out.push(Container {
                    c,
                    path: format!("spec.{key}[{i}]"),
                    name: str_of(c.get("name")).to_string(),
                });
            }
        }
    }
    out
}

fn pod_sc(spec: &Value) -> Option<&Value> {
    field(spec, "securityContext")
}

fn pod_sc_field<'a>(spec: &'a Value, k: &str) -> Option<&'a Value> {
    pod_sc(spec).and_then(|s| field(s, k))
}

fn annotations(meta: Option<&Value>) -> Vec<(&str, &Value)> {
    meta.and_then(|m| field(m, "annotations"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn annotation<'a>(meta: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    meta.and_then(|m| field(m, "annotations"))
        .and_then(|a| a.get(key))
}

fn join_quote(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("\"{}\"", items.join("\", \""))
}

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 { one } else { many }
}

fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn is_windows(spec: &Value) -> bool {
    field(spec, "os").map(|o| str_of(o.get("name"))) == Some("windows")
}

fn user_namespace_pod(ctx: &Ctx) -> bool {
    field(ctx.spec, "hostUsers").and_then(Value::as_bool) == Some(false)
}

fn fail(
    id: &'static str,
    level: Level,
    reason: impl Into<String>,
    detail: impl Into<String>,
    v: Vec<Violation>,
) -> Option<CheckFailure> {
    Some(CheckFailure {
        id,
        level,
        reason: reason.into(),
        detail: detail.into(),
        violations: v,
    })
}

/// Who set a `securityContext.<field>.type` (the pod, containers) to a type `allowed` rejects, the
/// rejected types, and a violation for each: appArmorProfile and seccompProfile are judged alike.
struct ProfileTypes {
    setters: Vec<String>,
    bad: BTreeSet<String>,
    v: Vec<Violation>,
}

fn disallowed_profile_types(
    ctx: &Ctx,
    field: &str,
    to: &str,
    allowed: &dyn Fn(&str) -> bool,
) -> ProfileTypes {
    let mut out = ProfileTypes {
        setters: Vec::new(),
        bad: BTreeSet::new(),
        v: Vec::new(),
    };
    if let Some(p) = pod_sc_field(ctx.spec, field) {
        let t = str_of(p.get("type"));
        if !allowed(t) {
            out.setters.push("pod".to_string());
            out.bad.insert(t.to_string());
            out.v.push(viol(
                format!("spec.securityContext.{field}.type"),
                format!("pod must not set {field}.type {to}{t:?}"),
            ));
        }
    }
    let mut names = Vec::new();
    for c in containers(ctx.spec) {
        if let Some(p) = c.sc_field(field) {
            let t = str_of(p.get("type"));
            if !allowed(t) {
                out.bad.insert(t.to_string());
                out.v.push(viol(
                    c.sc_path(&format!("{field}.type")),
                    format!("container {:?} must not set {field}.type {to}{t:?}", c.name),
                ));
                names.push(c.name);
            }
        }
    }
    if !names.is_empty() {
        out.setters.push(containers_phrase(&names));
    }
    out
}

fn viol(field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        message: message.into(),
    }
}

/// Renders a JSON value the way a person wrote it (`Unmasked`, `0`, `true`).
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---- baseline ------------------------------------------------------------------------------------

fn host_namespaces(ctx: &Ctx) -> Option<CheckFailure> {
    let mut set = Vec::new();
    let mut v = Vec::new();
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        if is_true(field(ctx.spec, k)) {
            set.push(format!("{k}=true"));
            v.push(viol(
                format!("spec.{k}"),
                format!("pod must not set {k}=true"),
            ));
        }
    }
    if set.is_empty() {
        return None;
    }
    fail(
        "hostNamespaces",
        Level::Baseline,
        "host namespaces",
        set.join(", "),
        v,
    )
}

fn privileged(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names = Vec::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        if is_true(c.sc_field("privileged")) {
            v.push(viol(
                c.sc_path("privileged"),
                format!(
                    "container {:?} must not set securityContext.privileged=true",
                    c.name
                ),
            ));
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} must not set securityContext.privileged=true",
        containers_phrase(&names)
    );
    fail("privileged", Level::Baseline, "privileged", detail, v)
}

pub(crate) const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_caps<'a>(c: &Container<'a>) -> Vec<(usize, String)> {
    c.sc_field("capabilities")
        .and_then(|caps| field(caps, "add"))
        .and_then(Value::as_array)
        .map(|a| a.iter().enumerate().map(|(i, x)| (i, show(x))).collect())
        .unwrap_or_default()
}

fn capabilities_baseline(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names = Vec::new();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        let mut any = false;
        for (i, cap) in added_caps(&c) {
            if !BASELINE_CAPS.contains(&cap.as_str()) {
                any = true;
                v.push(viol(
                    format!("{}.securityContext.capabilities.add[{i}]", c.path),
                    format!("container {:?} must not add capability {cap:?}", c.name),
                ));
                bad.insert(cap);
            }
        }
        if any {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let bad: Vec<String> = bad.into_iter().collect();
    let detail = format!(
        "{} must not include {} in securityContext.capabilities.add",
        containers_phrase(&names),
        join_quote(&bad)
    );
    fail(
        "capabilities_baseline",
        Level::Baseline,
        "non-default capabilities",
        detail,
        v,
    )
}

fn host_path_volumes(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names = Vec::new();
    let mut v = Vec::new();
    if let Some(vols) = field(ctx.spec, "volumes").and_then(Value::as_array) {
        for (i, vol) in vols.iter().enumerate() {
            if field(vol, "hostPath").is_some() {
                let n = str_of(vol.get("name")).to_string();
                v.push(viol(
                    format!("spec.volumes[{i}].hostPath"),
                    format!("volume {n:?} must not use hostPath"),
                ));
                names.push(n);
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} {}",
        pluralize("volume", "volumes", names.len()),
        join_quote(&names)
    );
    fail(
        "hostPathVolumes",
        Level::Baseline,
        "hostPath volumes",
        detail,
        v,
    )
}

fn host_ports(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names = Vec::new();
    let mut ports = Vec::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        let mut any = false;
        if let Some(ps) = field(c.c, "ports").and_then(Value::as_array) {
            for (i, p) in ps.iter().enumerate() {
                let hp = field(p, "hostPort");
                let nonzero = match hp {
                    None => false,
                    Some(Value::Number(n)) => n.as_f64() != Some(0.0),
                    Some(_) => true,
                };
                if nonzero {
                    any = true;
                    let shown = hp.map(show).unwrap_or_default();
                    v.push(viol(
                        format!("{}.ports[{i}].hostPort", c.path),
                        format!("container {:?} uses hostPort {shown}", c.name),
                    ));
                    ports.push(shown);
                }
            }
        }
        if any {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} {} {} {}",
        containers_phrase(&names),
        pluralize("uses", "use", names.len()),
        pluralize("hostPort", "hostPorts", ports.len()),
        ports.join(", ")
    );
    fail("hostPorts", Level::Baseline, "hostPort", detail, v)
}

fn app_armor_profile(ctx: &Ctx) -> Option<CheckFailure> {
    const PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let ProfileTypes {
        mut setters,
        bad: mut bad_values,
        mut v,
    } = disallowed_profile_types(ctx, "appArmorProfile", "", &allowed_type);
    let mut bad_annotations = Vec::new();
    for (k, val) in annotations(ctx.meta) {
        if let Some(_container) = k.strip_prefix(PREFIX) {
            let s = val
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| show(val));
            let ok = s.is_empty() || s == "runtime/default" || s.starts_with("localhost/");
            if !ok {
                bad_values.insert(s.clone());
                v.push(viol(
                    format!("metadata.annotations.{k}"),
                    format!("annotation {k}={s:?} is not runtime/default or localhost/*"),
                ));
                bad_annotations.push(format!("{k}={s:?}"));
            }
        }
    }
    if !bad_annotations.is_empty() {
        bad_annotations.sort();
        setters.push(format!(
            "{} {}",
            pluralize("annotation", "annotations", bad_annotations.len()),
            bad_annotations.join(", ")
        ));
    }
    if setters.is_empty() {
        return None;
    }
    let bad: Vec<String> = bad_values.into_iter().collect();
    let detail = format!(
        "{} must not set AppArmor profile type to {}",
        setters.join(" and "),
        join_quote(&bad)
    );
    fail(
        "appArmorProfile",
        Level::Baseline,
        "forbidden AppArmor profile",
        detail,
        v,
    )
}

fn se_linux_options(ctx: &Ctx) -> Option<CheckFailure> {
    let allowed = |t: &str| {
        matches!(
            t,
            "" | "container_t" | "container_init_t" | "container_kvm_t"
        ) || (ctx.minor >= 31 && t == "container_engine_t")
    };
    let mut bad_types: BTreeSet<String> = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut v = Vec::new();
    let mut check = |opts: &Value, base: &str, who: &str, v: &mut Vec<Violation>| -> bool {
        let mut ok = true;
        let t = str_of(opts.get("type"));
        if !allowed(t) {
            ok = false;
            bad_types.insert(t.to_string());
            v.push(viol(
                format!("{base}.type"),
                format!("{who} must not set seLinuxOptions.type {t:?}"),
            ));
        }
        if !str_of(opts.get("user")).is_empty() {
            ok = false;
            set_user = true;
            v.push(viol(
                format!("{base}.user"),
                format!("{who} must not set seLinuxOptions.user"),
            ));
        }
        if !str_of(opts.get("role")).is_empty() {
            ok = false;
            set_role = true;
            v.push(viol(
                format!("{base}.role"),
                format!("{who} must not set seLinuxOptions.role"),
            ));
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(o) = pod_sc_field(ctx.spec, "seLinuxOptions")
        && !check(o, "spec.securityContext.seLinuxOptions", "pod", &mut v)
    {
        setters.push("pod".to_string());
    }
    let mut names = Vec::new();
    for c in containers(ctx.spec) {
        if let Some(o) = c.sc_field("seLinuxOptions")
            && !check(
                o,
                &c.sc_path("seLinuxOptions"),
                &format!("container {:?}", c.name),
                &mut v,
            )
        {
            names.push(c.name);
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let t: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", t.len()),
            join_quote(&t)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    let detail = format!(
        "{} set forbidden securityContext.seLinuxOptions: {}",
        setters.join(" and "),
        data.join("; ")
    );
    fail(
        "seLinuxOptions",
        Level::Baseline,
        "seLinuxOptions",
        detail,
        v,
    )
}

fn proc_mount_check(ctx: &Ctx, id: &'static str, level: Level) -> Option<CheckFailure> {
    let mut names = Vec::new();
    let mut types: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        if let Some(pm) = c.sc_field("procMount") {
            let s = show(pm);
            if s != "Default" {
                v.push(viol(
                    c.sc_path("procMount"),
                    format!(
                        "container {:?} must not set securityContext.procMount to {s:?}",
                        c.name
                    ),
                ));
                types.insert(s);
                names.push(c.name);
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let t: Vec<String> = types.into_iter().collect();
    let detail = format!(
        "{} must not set securityContext.procMount to {}",
        containers_phrase(&names),
        join_quote(&t)
    );
    fail(id, level, "procMount", detail, v)
}

/// Since v1.35 any procMount is allowed at baseline for pods in a user namespace (`hostUsers: false`).
fn proc_mount_baseline(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.minor >= 35 && user_namespace_pod(ctx) {
        return None;
    }
    proc_mount_check(ctx, "procMount", Level::Baseline)
}

fn proc_mount_restricted(ctx: &Ctx) -> Option<CheckFailure> {
    proc_mount_check(ctx, "procMount_restricted", Level::Restricted)
}

fn valid_seccomp_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn seccomp_baseline(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.minor < 19 {
        const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
        const CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
        let valid = |s: &str| {
            s == "runtime/default" || s == "docker/default" || s.starts_with("localhost/")
        };
        let mut forbidden: BTreeSet<String> = BTreeSet::new();
        let mut v = Vec::new();
        let mut look = |key: String, v: &mut Vec<Violation>| {
            if let Some(val) = annotation(ctx.meta, &key) {
                let s = val
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| show(val));
                if !valid(&s) {
                    v.push(viol(
                        format!("metadata.annotations.{key}"),
                        format!("annotation {key}={s:?} is forbidden"),
                    ));
                    forbidden.insert(format!("{key}={s:?}"));
                }
            }
        };
        look(POD.to_string(), &mut v);
        for c in containers(ctx.spec) {
            look(format!("{CONTAINER}{}", c.name), &mut v);
        }
        if forbidden.is_empty() {
            return None;
        }
        let f: Vec<String> = forbidden.into_iter().collect();
        let detail = format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", f.len()),
            f.join(", ")
        );
        return fail(
            "seccompProfile_baseline",
            Level::Baseline,
            "seccompProfile",
            detail,
            v,
        );
    }
    let ProfileTypes { setters, bad, v } =
        disallowed_profile_types(ctx, "seccompProfile", "to ", &valid_seccomp_type);
    if setters.is_empty() {
        return None;
    }
    let b: Vec<String> = bad.into_iter().collect();
    let detail = format!(
        "{} must not set securityContext.seccompProfile.type to {}",
        setters.join(" and "),
        join_quote(&b)
    );
    fail(
        "seccompProfile_baseline",
        Level::Baseline,
        "seccompProfile",
        detail,
        v,
    )
}

pub(crate) fn allowed_sysctl(name: &str, minor: u32) -> bool {
    const V1_0: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    const V1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
    const V1_29: &[&str] = &[
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    const V1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
    const V1_37: &[&str] = &[
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    ];
    V1_0.contains(&name)
        || (minor >= 27 && V1_27.contains(&name))
        || (minor >= 29 && V1_29.contains(&name))
        || (minor >= 32 && V1_32.contains(&name))
        || (minor >= 37 && V1_37.contains(&name))
}

fn sysctls(ctx: &Ctx) -> Option<CheckFailure> {
    let mut bad = Vec::new();
    let mut v = Vec::new();
    if let Some(list) = pod_sc_field(ctx.spec, "sysctls").and_then(Value::as_array) {
        for (i, s) in list.iter().enumerate() {
            let name = str_of(s.get("name"));
            if !allowed_sysctl(name, ctx.minor) {
                v.push(viol(
                    format!("spec.securityContext.sysctls[{i}].name"),
                    format!("sysctl {name:?} is not in the safe set"),
                ));
                bad.push(name.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    fail(
        "sysctls",
        Level::Baseline,
        "forbidden sysctls",
        bad.join(", "),
        v,
    )
}

fn windows_host_process(ctx: &Ctx) -> Option<CheckFailure> {
    let mut v = Vec::new();
    let mut names = Vec::new();
    let pod =
        is_true(pod_sc_field(ctx.spec, "windowsOptions").and_then(|w| field(w, "hostProcess")));
    if pod {
        v.push(viol(
            "spec.securityContext.windowsOptions.hostProcess",
            "pod must not set windowsOptions.hostProcess=true",
        ));
    }
    for c in containers(ctx.spec) {
        if is_true(
            c.sc_field("windowsOptions")
                .and_then(|w| field(w, "hostProcess")),
        ) {
            v.push(viol(
                c.sc_path("windowsOptions.hostProcess"),
                format!(
                    "container {:?} must not set windowsOptions.hostProcess=true",
                    c.name
                ),
            ));
            names.push(c.name);
        }
    }
    if !pod && names.is_empty() {
        return None;
    }
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    let detail = format!(
        "{} must not set securityContext.windowsOptions.hostProcess=true",
        setters.join(" and ")
    );
    fail(
        "windowsHostProcess",
        Level::Baseline,
        "hostProcess",
        detail,
        v,
    )
}

fn host_probes_and_lifecycle(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        let mut handlers: Vec<(String, &Value)> = Vec::new();
        for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(h) = field(c.c, p) {
                handlers.push((format!("{}.{p}", c.path), h));
            }
        }
        if let Some(lc) = field(c.c, "lifecycle") {
            for p in ["postStart", "preStop"] {
                if let Some(h) = field(lc, p) {
                    handlers.push((format!("{}.lifecycle.{p}", c.path), h));
                }
            }
        }
        for (path, h) in handlers {
            for kind in ["httpGet", "tcpSocket"] {
                let host = field(h, kind).map(|x| str_of(x.get("host"))).unwrap_or("");
                if !host.is_empty() {
                    v.push(viol(
                        format!("{path}.{kind}.host"),
                        format!("container {:?} must not set {kind}.host {host:?}", c.name),
                    ));
                    hosts.insert(host.to_string());
                    names.insert(c.name.clone());
                }
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let n: Vec<String> = names.into_iter().collect();
    let h: Vec<String> = hosts.into_iter().collect();
    let detail = format!(
        "{} {} {} {}",
        containers_phrase(&n),
        pluralize("uses", "use", n.len()),
        pluralize(
            "probe or lifecycle host",
            "probe or lifecycle hosts",
            h.len()
        ),
        join_quote(&h)
    );
    fail(
        "hostProbesAndHostLifecycle",
        Level::Baseline,
        "probe or lifecycle host",
        detail,
        v,
    )
}

// ---- restricted ----------------------------------------------------------------------------------

pub(crate) const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(ctx: &Ctx) -> Option<CheckFailure> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    if let Some(vols) = field(ctx.spec, "volumes").and_then(Value::as_array) {
        for (i, vol) in vols.iter().enumerate() {
            if ALLOWED_VOLUME_SOURCES
                .iter()
                .any(|k| field(vol, k).is_some())
            {
                continue;
            }
            let n = str_of(vol.get("name")).to_string();
            let source = vol.as_object().and_then(|m| {
                m.iter()
                    .find(|(k, x)| k.as_str() != "name" && !x.is_null())
                    .map(|(k, _)| k.clone())
            });
            // The API server defaults a volume without a source to emptyDir before admission runs.
            if source.is_none() {
                continue;
            }
            let path = match &source {
                Some(s) => format!("spec.volumes[{i}].{s}"),
                None => format!("spec.volumes[{i}]"),
            };
            v.push(viol(
                path,
                format!(
                    "volume {n:?} uses a restricted volume type{}",
                    source.map(|s| format!(" ({s})")).unwrap_or_default()
                ),
            ));
            names.insert(n);
        }
    }
    if names.is_empty() {
        return None;
    }
    let n: Vec<String> = names.into_iter().collect();
    let detail = format!(
        "volumes [{}] have restricted types",
        n.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    fail(
        "restrictedVolumes",
        Level::Restricted,
        "restricted volume types",
        detail,
        v,
    )
}

fn allow_privilege_escalation(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.minor >= 25 && is_windows(ctx.spec) {
        return None;
    }
    let mut names = Vec::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        if c.sc_field("allowPrivilegeEscalation")
            .and_then(Value::as_bool)
            != Some(false)
        {
            v.push(viol(
                c.sc_path("allowPrivilegeEscalation"),
                format!(
                    "container {:?} must set securityContext.allowPrivilegeEscalation=false",
                    c.name
                ),
            ));
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    let detail = format!(
        "{} must set securityContext.allowPrivilegeEscalation=false",
        containers_phrase(&names)
    );
    fail(
        "allowPrivilegeEscalation",
        Level::Restricted,
        "allowPrivilegeEscalation != false",
        detail,
        v,
    )
}

fn run_as_non_root(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.opts.relax_for_user_namespace_pods && user_namespace_pod(ctx) {
        return None;
    }
    let mut setters = Vec::new();
    let mut v = Vec::new();
    let mut pod_true = false;
    match pod_sc_field(ctx.spec, "runAsNonRoot").and_then(Value::as_bool) {
        Some(false) => {
            setters.push("pod".to_string());
            v.push(viol(
                "spec.securityContext.runAsNonRoot",
                "pod must not set securityContext.runAsNonRoot=false",
            ));
        }
        Some(true) => pod_true = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    let mut implicit_v = Vec::new();
    for c in containers(ctx.spec) {
        match c.sc_field("runAsNonRoot") {
            Some(x) => {
                if x.as_bool() != Some(true) {
                    v.push(viol(
                        c.sc_path("runAsNonRoot"),
                        format!(
                            "container {:?} must not set securityContext.runAsNonRoot=false",
                            c.name
                        ),
                    ));
                    explicit.push(c.name);
                }
            }
            None => {
                if !pod_true {
                    implicit_v.push(viol(
                        c.sc_path("runAsNonRoot"),
                        format!(
                            "pod or container {:?} must set securityContext.runAsNonRoot=true",
                            c.name
                        ),
                    ));
                    implicit.push(c.name);
                }
            }
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let detail = format!(
            "{} must not set securityContext.runAsNonRoot=false",
            setters.join(" and ")
        );
        return fail(
            "runAsNonRoot",
            Level::Restricted,
            "runAsNonRoot != true",
            detail,
            v,
        );
    }
    if !implicit.is_empty() {
        let detail = format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        );
        return fail(
            "runAsNonRoot",
            Level::Restricted,
            "runAsNonRoot != true",
            detail,
            implicit_v,
        );
    }
    None
}

fn is_zero(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Number(n)) if n.as_f64() == Some(0.0))
}

fn run_as_user(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.opts.relax_for_user_namespace_pods && user_namespace_pod(ctx) {
        return None;
    }
    let mut setters = Vec::new();
    let mut v = Vec::new();
    if is_zero(pod_sc_field(ctx.spec, "runAsUser")) {
        setters.push("pod".to_string());
        v.push(viol(
            "spec.securityContext.runAsUser",
            "pod must not set runAsUser=0",
        ));
    }
    let mut names = Vec::new();
    for c in containers(ctx.spec) {
        if is_zero(c.sc_field("runAsUser")) {
            v.push(viol(
                c.sc_path("runAsUser"),
                format!("container {:?} must not set runAsUser=0", c.name),
            ));
            names.push(c.name);
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    let detail = format!("{} must not set runAsUser=0", setters.join(" and "));
    fail("runAsUser", Level::Restricted, "runAsUser=0", detail, v)
}

fn seccomp_restricted(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.minor >= 25 && is_windows(ctx.spec) {
        return None;
    }
    let mut setters = Vec::new();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    let mut pod_set = false;
    if let Some(p) = pod_sc_field(ctx.spec, "seccompProfile") {
        let t = str_of(p.get("type"));
        if valid_seccomp_type(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            bad.insert(t.to_string());
            v.push(viol(
                "spec.securityContext.seccompProfile.type",
                format!("pod must not set seccompProfile.type to {t:?}"),
            ));
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    let mut implicit_v = Vec::new();
    for c in containers(ctx.spec) {
        match c.sc_field("seccompProfile") {
            Some(p) => {
                let t = str_of(p.get("type"));
                if !valid_seccomp_type(t) {
                    bad.insert(t.to_string());
                    v.push(viol(
                        c.sc_path("seccompProfile.type"),
                        format!(
                            "container {:?} must not set seccompProfile.type to {t:?}",
                            c.name
                        ),
                    ));
                    explicit.push(c.name);
                }
            }
            None => {
                if !pod_set {
                    implicit_v.push(viol(
                        c.sc_path("seccompProfile"),
                        format!("pod or container {:?} must set securityContext.seccompProfile.type to RuntimeDefault or Localhost", c.name),
                    ));
                    implicit.push(c.name);
                }
            }
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let b: Vec<String> = bad.into_iter().collect();
        let detail = format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&b)
        );
        return fail(
            "seccompProfile_restricted",
            Level::Restricted,
            "seccompProfile",
            detail,
            v,
        );
    }
    if !implicit.is_empty() {
        let detail = format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        );
        return fail(
            "seccompProfile_restricted",
            Level::Restricted,
            "seccompProfile",
            detail,
            implicit_v,
        );
    }
    None
}

fn capabilities_restricted(ctx: &Ctx) -> Option<CheckFailure> {
    if ctx.minor >= 25 && is_windows(ctx.spec) {
        return None;
    }
    let mut missing = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden: BTreeSet<String> = BTreeSet::new();
    let mut v = Vec::new();
    for c in containers(ctx.spec) {
        let Some(caps) = c.sc_field("capabilities") else {
            v.push(viol(
                c.sc_path("capabilities.drop"),
                format!(
                    "container {:?} must set securityContext.capabilities.drop=[\"ALL\"]",
                    c.name
                ),
            ));
            missing.push(c.name);
            continue;
        };
        let dropped_all = field(caps, "drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
        if !dropped_all {
            v.push(viol(
                c.sc_path("capabilities.drop"),
                format!(
                    "container {:?} must set securityContext.capabilities.drop=[\"ALL\"]",
                    c.name
                ),
            ));
            missing.push(c.name.clone());
        }
        let mut any = false;
        for (i, cap) in added_caps(&c) {
            if cap != "NET_BIND_SERVICE" {
                any = true;
                v.push(viol(
                    format!("{}.securityContext.capabilities.add[{i}]", c.path),
                    format!("container {:?} must not add capability {cap:?}", c.name),
                ));
                forbidden.insert(cap);
            }
        }
        if any {
            adding.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing)
        ));
    }
    if !adding.is_empty() {
        let f: Vec<String> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&f)
        ));
    }
    if details.is_empty() {
        return None;
    }
    fail(
        "capabilities_restricted",
        Level::Restricted,
        "unrestricted capabilities",
        details.join("; "),
        v,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_and_clamp() {
        assert_eq!("latest".parse::<PssVersion>(), Ok(PssVersion::LATEST));
        assert_eq!(
            "v1.25".parse::<PssVersion>().map(|v| v.effective_minor()),
            Ok(25)
        );
        assert_eq!(
            "v1.99".parse::<PssVersion>().map(|v| v.effective_minor()),
            Ok(LATEST_MINOR)
        );
        assert!("v2.1".parse::<PssVersion>().is_err());
        assert!("v1.".parse::<PssVersion>().is_err());
    }

    #[test]
    fn restricted_overrides_baseline_checks_only_when_active() {
        let at = |m| active_checks(Level::Restricted, PssVersion { minor: Some(m) });
        assert!(at(21).contains(&"capabilities_baseline"));
        assert!(!at(22).contains(&"capabilities_baseline"));
        assert!(at(34).contains(&"procMount"));
        assert!(at(35).contains(&"procMount_restricted") && !at(35).contains(&"procMount"));
        assert!(!active_checks(Level::Baseline, PssVersion::LATEST).contains(&"runAsNonRoot"));
    }

    #[test]
    fn message_and_fields_for_privileged() {
        let spec = json!({"containers": [{"name": "a", "securityContext": {"privileged": true}}]});
        let f = evaluate(
            None,
            &spec,
            Level::Baseline,
            PssVersion::LATEST,
            PssOptions::default(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].violations[0].field,
            "spec.containers[0].securityContext.privileged"
        );
        assert_eq!(
            denial_message(Level::Baseline, PssVersion::LATEST, &f),
            "violates PodSecurity \"baseline:latest\": privileged (container \"a\" must not set securityContext.privileged=true)"
        );
    }
}
