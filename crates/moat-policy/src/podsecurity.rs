//! Kyverno `validate.podSecurity` subrules: compiled with the rest of a [`crate::PolicySet`] and
//! judged by moat-kube's Pod Security Standards evaluation, with the rule's `exclude` entries
//! applied here. Match is by kinds (and namespaces); a Pod rule also judges pod controllers, as
//! Kyverno's autogen does. A subrule whose match moat cannot honour is a [`PodSecurityGap`] with
//! typed [`PodSecurityProblem`]s, never silently passed.
//!
//! [`crate::PolicySet::evaluate`] does not run these rules: the callers that judge workloads (`moat
//! lint --policy`, the admission webhook) ask [`crate::PolicySet::pod_security`] for them.

use moat_kube::{CheckFailure, Document, Level, PssOptions, PssVersion};
use moat_model::{Finding, FindingKind};
use serde_json::Value;

/// A Kyverno `validate.podSecurity.exclude` entry: a control (by its Pod Security Standards name)
/// exempted for the pod (no `images`), for containers whose image matches one of `images`, and, with
/// `restricted_field`/`values`, only for those values of that field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusion {
    pub control_name: String,
    pub images: Vec<String>,
    pub restricted_field: Option<String>,
    pub values: Vec<String>,
}

/// One `podSecurity` rule of a policy.
#[derive(Debug, Clone)]
pub struct PodSecurityRule {
    pub policy: String,
    pub rule: String,
    pub level: Level,
    pub version: PssVersion,
    pub exclusions: Vec<Exclusion>,
    pub kinds: Vec<String>,
    pub namespaces: Vec<String>,
    pub enforce: bool,
}

/// Why a `podSecurity` subrule is not evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PodSecurityProblem {
    /// `level` is none of `privileged`, `baseline`, `restricted`.
    UnknownLevel(String),
    /// `version` does not parse (the parser's reason).
    Version(String),
    /// An `exclude[].controlName` that names no Pod Security Standards control.
    UnknownControl(String),
    /// A `match.resources` key other than `kinds` and `namespaces`.
    MatchResourcesField(String),
    /// A key of a match block other than `resources` (`subjects`, `roles`, ...).
    MatchField(String),
    /// The rule has `exclude` or `preconditions`.
    ExcludeOrPreconditions,
}

impl std::fmt::Display for PodSecurityProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodSecurityProblem::UnknownLevel(l) => write!(f, "unknown podSecurity level {l:?}"),
            PodSecurityProblem::Version(e) => f.write_str(e),
            PodSecurityProblem::UnknownControl(c) => write!(f, "unknown controlName {c:?}"),
            PodSecurityProblem::MatchResourcesField(k) => {
                write!(
                    f,
                    "match.resources.{k} is not supported for podSecurity rules"
                )
            }
            PodSecurityProblem::MatchField(k) => {
                write!(f, "match {k} is not supported for podSecurity rules")
            }
            PodSecurityProblem::ExcludeOrPreconditions => {
                f.write_str("exclude/preconditions are not supported for podSecurity rules")
            }
        }
    }
}

/// A `podSecurity` subrule moat does not evaluate, and every reason why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSecurityGap {
    pub policy: String,
    pub rule: String,
    pub problems: Vec<PodSecurityProblem>,
}

impl std::fmt::Display for PodSecurityGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}: ", self.policy, self.rule)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The `podSecurity` subrules of a policy set: those judged and those that are not.
#[derive(Debug, Clone, Default)]
pub struct PodSecurity {
    pub rules: Vec<PodSecurityRule>,
    pub gaps: Vec<PodSecurityGap>,
}

impl PodSecurity {
    /// Whether `policy/rule` is a `podSecurity` subrule (judged or not).
    pub fn has_rule(&self, policy: &str, rule: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.policy == policy && r.rule == rule)
            || self
                .gaps
                .iter()
                .any(|g| g.policy == policy && g.rule == rule)
    }
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

const CONTROLLERS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// Compiles the `podSecurity` subrules of one document (a `List`'s items included).
pub(crate) fn compile(doc: &Value, out: &mut PodSecurity) {
    if doc.get("kind").and_then(Value::as_str) == Some("List") {
        for item in doc
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            compile(item, out);
        }
        return;
    }
    let spec = doc.get("spec");
    let policy = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let autogen_off = doc
        .pointer("/metadata/annotations/pod-policies.kyverno.io~1autogen-controllers")
        .and_then(Value::as_str)
        == Some("none");
    let policy_action = spec
        .and_then(|s| s.get("validationFailureAction"))
        .and_then(Value::as_str)
        .unwrap_or("Audit");
    for r in spec
        .and_then(|s| s.get("rules"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(ps) = r.pointer("/validate/podSecurity") else {
            continue;
        };
        let rule = r
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut problems = Vec::new();
        let level = match ps.get("level").and_then(Value::as_str).unwrap_or("") {
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            "privileged" => None,
            other => {
                problems.push(PodSecurityProblem::UnknownLevel(other.to_string()));
                None
            }
        };
        let version = match ps
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("latest")
            .parse::<PssVersion>()
        {
            Ok(v) => v,
            Err(e) => {
                problems.push(PodSecurityProblem::Version(e));
                PssVersion::LATEST
            }
        };
        let mut exclusions = Vec::new();
        for e in ps
            .get("exclude")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let control_name = e
                .get("controlName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if control_checks(&control_name).is_empty() {
                problems.push(PodSecurityProblem::UnknownControl(control_name.clone()));
            }
            exclusions.push(Exclusion {
                control_name,
                images: strs(e.get("images")),
                restricted_field: e
                    .get("restrictedField")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                values: strs(e.get("values")),
            });
        }
        let mut kinds = Vec::new();
        let mut namespaces = Vec::new();
        let m = r.get("match");
        let blocks: Vec<&Value> = ["any", "all"]
            .iter()
            .flat_map(|k| {
                m.and_then(|m| m.get(*k))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .chain(
                m.and_then(|m| m.get("resources"))
                    .map(|_| m.unwrap_or(&Value::Null)),
            )
            .collect();
        for b in blocks {
            let res = b.get("resources").unwrap_or(&Value::Null);
            kinds.extend(strs(res.get("kinds")));
            namespaces.extend(strs(res.get("namespaces")));
            if let Some(o) = res.as_object() {
                for k in o
                    .keys()
                    .filter(|k| !matches!(k.as_str(), "kinds" | "namespaces"))
                {
                    problems.push(PodSecurityProblem::MatchResourcesField(k.clone()));
                }
            }
            if let Some(o) = b.as_object() {
                for k in o.keys().filter(|k| k.as_str() != "resources") {
                    problems.push(PodSecurityProblem::MatchField(k.clone()));
                }
            }
        }
        if r.get("exclude").is_some() || r.get("preconditions").is_some() {
            problems.push(PodSecurityProblem::ExcludeOrPreconditions);
        }
        if kinds.iter().any(|k| k == "Pod") && !autogen_off {
            kinds.extend(CONTROLLERS.iter().map(|s| s.to_string()));
        }
        let action = r
            .pointer("/validate/failureAction")
            .and_then(Value::as_str)
            .unwrap_or(policy_action);
        if !problems.is_empty() {
            out.gaps.push(PodSecurityGap {
                policy: policy.clone(),
                rule,
                problems,
            });
            continue;
        }
        let Some(level) = level else { continue };
        out.rules.push(PodSecurityRule {
            policy: policy.clone(),
            rule,
            level,
            version,
            exclusions,
            kinds,
            namespaces,
            enforce: action.eq_ignore_ascii_case("enforce"),
        });
    }
}

impl PodSecurityRule {
    /// Whether the rule's match (kinds, namespaces) selects an object.
    pub fn applies(&self, kind: &str, namespace: Option<&str>) -> bool {
        self.kinds.iter().any(|k| k == kind || k == "*")
            && (self.namespaces.is_empty()
                || namespace.is_some_and(|n| self.namespaces.iter().any(|x| x == n)))
    }

    /// Judges a workload for admission: None when the rule does not apply or passes, else the
    /// denial message (`policy/rule: violates PodSecurity ...`).
    pub fn judge(&self, kind: &str, namespace: Option<&str>, object: &Value) -> Option<String> {
        if !self.applies(kind, namespace) {
            return None;
        }
        let t = moat_kube::pod_template(object, kind)?;
        let failures = evaluate_with_exclusions(
            t.meta,
            t.spec,
            self.level,
            self.version,
            PssOptions::default(),
            &self.exclusions,
        );
        if failures.is_empty() {
            return None;
        }
        Some(format!(
            "{}/{}: {}",
            self.policy,
            self.rule,
            moat_kube::pss::denial_message(self.level, self.version, &failures)
        ))
    }

    /// The rule's findings on a manifest (none when it does not apply): moat-kube's PSS findings
    /// with the rule's exclusions, as policy findings `policy/rule` (the PSS check id an alias).
    pub fn findings(&self, doc: &Document) -> Vec<Finding> {
        if !self.applies(doc.kind(), doc.effective_namespace()) {
            return Vec::new();
        }
        let exempt = |meta: Option<&Value>, spec: &Value, failures: Vec<CheckFailure>| {
            apply_exclusions(meta, spec, failures, &self.exclusions)
        };
        let mut out = moat_kube::pss_findings_adjusted(
            doc,
            self.level,
            self.version,
            PssOptions::default(),
            &exempt,
        );
        for f in &mut out {
            f.aliases.push(std::mem::replace(
                &mut f.id,
                format!("{}/{}", self.policy, self.rule),
            ));
            f.kind = FindingKind::Policy;
        }
        out
    }
}

/// The PSA check ids behind a Pod Security Standards control name (as Kyverno names controls).
pub fn control_checks(control_name: &str) -> &'static [&'static str] {
    match control_name {
        "HostProcess" => &["windowsHostProcess"],
        "Host Namespaces" => &["hostNamespaces"],
        "Privileged Containers" => &["privileged"],
        "Capabilities" => &["capabilities_baseline", "capabilities_restricted"],
        "HostPath Volumes" => &["hostPathVolumes"],
        "Host Ports" => &["hostPorts"],
        "AppArmor" => &["appArmorProfile"],
        "SELinux" => &["seLinuxOptions"],
        "/proc Mount Type" => &["procMount", "procMount_restricted"],
        "Seccomp" => &["seccompProfile_baseline", "seccompProfile_restricted"],
        "Sysctls" => &["sysctls"],
        "Volume Types" => &["restrictedVolumes"],
        "Privilege Escalation" => &["allowPrivilegeEscalation"],
        "Running as Non-root" => &["runAsNonRoot"],
        "Running as Non-root user" => &["runAsUser"],
        "Host Probes / Lifecycle Hooks" => &["hostProbesAndHostLifecycle"],
        _ => &[],
    }
}

/// `spec.containers[3].securityContext.x` → (`spec.containers[*].securityContext.x`, Some(3)).
fn generic_field(field: &str) -> (String, Option<(String, usize)>) {
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        let prefix = format!("spec.{key}[");
        if let Some(rest) = field.strip_prefix(&prefix)
            && let Some((idx, tail)) = rest.split_once(']')
            && let Ok(i) = idx.parse::<usize>()
        {
            return (format!("spec.{key}[*]{tail}"), Some((key.to_string(), i)));
        }
    }
    (field.to_string(), None)
}

/// The value at a violation's field, as a person wrote it (`Unmasked`, `0`, `true`).
fn field_value(spec: &Value, meta: Option<&Value>, field: &str) -> Option<String> {
    let mut cur = if let Some(r) = field.strip_prefix("spec") {
        (spec, r)
    } else if let Some(r) = field.strip_prefix("metadata") {
        (meta?, r)
    } else {
        return None;
    };
    let mut path = cur.1.trim_start_matches('.').to_string();
    while !path.is_empty() {
        let (seg, rest) = match path.find('.') {
            Some(i) => (path[..i].to_string(), path[i + 1..].to_string()),
            None => (path.clone(), String::new()),
        };
        let (name, idx) = match seg.split_once('[') {
            Some((n, i)) => (n.to_string(), i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg.clone(), None),
        };
        let mut v = cur.0.get(&name)?;
        if let Some(i) = idx {
            v = v.get(i)?;
        }
        cur.0 = v;
        path = rest;
    }
    Some(match cur.0 {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Evaluates like [`moat_kube::pss::evaluate`], then drops the violations the exclusions exempt; a
/// check fails only if a violation remains.
pub fn evaluate_with_exclusions(
    meta: Option<&Value>,
    spec: &Value,
    level: Level,
    version: PssVersion,
    opts: PssOptions,
    exclusions: &[Exclusion],
) -> Vec<CheckFailure> {
    let failures = moat_kube::pss::evaluate(meta, spec, level, version, opts);
    apply_exclusions(meta, spec, failures, exclusions)
}

fn apply_exclusions(
    meta: Option<&Value>,
    spec: &Value,
    failures: Vec<CheckFailure>,
    exclusions: &[Exclusion],
) -> Vec<CheckFailure> {
    let mut out = Vec::new();
    for mut failure in failures {
        let relevant: Vec<&Exclusion> = exclusions
            .iter()
            .filter(|e| control_checks(&e.control_name).contains(&failure.id))
            .collect();
        if relevant.is_empty() {
            out.push(failure);
            continue;
        }
        failure.violations.retain(|v| {
            let (generic, container) = generic_field(&v.field);
            let image = container.as_ref().and_then(|(key, i)| {
                spec.get(key.as_str())
                    .and_then(|a| a.get(*i))
                    .and_then(|c| c.get("image"))
                    .and_then(Value::as_str)
            });
            let exempt = relevant.iter().any(|e| {
                let scope_ok = match (&image, e.images.is_empty()) {
                    // Pod-level fields are exempted by entries without images.
                    (None, true) => true,
                    (None, false) => false,
                    (Some(_), true) => false,
                    // Kyverno matches `exclude.images` with its wildcard (`*`, `?`), as
                    // moat-policy matches every other pattern.
                    (Some(img), false) => e.images.iter().any(|p| crate::cond::wildcard(p, img)),
                };
                let field_ok = match &e.restricted_field {
                    None => true,
                    Some(rf) => {
                        let within = generic == *rf
                            || generic.starts_with(&format!("{rf}."))
                            || generic.starts_with(&format!("{rf}["));
                        within
                            && (e.values.is_empty()
                                || field_value(spec, meta, &v.field)
                                    .is_some_and(|val| e.values.contains(&val)))
                    }
                };
                scope_ok && field_ok
            });
            !exempt
        });
        if !failure.violations.is_empty() {
            out.push(failure);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(policy: &str) -> crate::PolicySet {
        let docs = crate::parse_yaml_documents(policy, "p.yaml").expect("parse");
        crate::PolicySet::from_documents(
            docs.into_iter()
                .map(|d| ("p.yaml#0".to_string(), d))
                .collect(),
        )
        .expect("compile")
    }

    #[test]
    fn compiles_and_judges_a_subrule_with_exclusions() {
        let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: psa\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: restricted\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      podSecurity:\n        level: restricted\n        version: latest\n        exclude:\n        - controlName: Capabilities\n          images: [\"nginx*\"]\n";
        let set = compile(policy);
        let ps = set.pod_security();
        assert!(ps.gaps.is_empty(), "{:?}", ps.gaps);
        assert_eq!(ps.rules.len(), 1);
        let pod = |image: &str| {
            serde_json::json!({"kind": "Pod", "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": image, "securityContext": {"allowPrivilegeEscalation": false}}]}})
        };
        // Capabilities are exempted for nginx images only.
        assert_eq!(ps.rules[0].judge("Pod", None, &pod("nginx:1")), None);
        let msg = ps.rules[0]
            .judge("Pod", None, &pod("redis:7"))
            .expect("denied");
        assert!(
            msg.contains("capabilities_restricted") || msg.contains("unrestricted capabilities"),
            "{msg}"
        );
        // Autogen: the rule written for Pods judges a Deployment's template.
        let deploy =
            serde_json::json!({"kind": "Deployment", "spec": {"template": pod("redis:7")}});
        assert!(ps.rules[0].judge("Deployment", None, &deploy).is_some());
        // The policy engine's own list names the rule, and the typed view leaves it to this module.
        assert!(set.unsupported().iter().any(|u| u.rule == "restricted"));
        assert!(set.not_evaluated().is_empty());
    }

    #[test]
    fn unsupported_match_is_a_typed_gap() {
        let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: psa\nspec:\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n          selector: {}\n    exclude:\n      any: []\n    validate:\n      podSecurity:\n        level: high\n";
        let set = compile(policy);
        let gaps = &set.pod_security().gaps;
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            gaps[0].problems,
            vec![
                PodSecurityProblem::UnknownLevel("high".into()),
                PodSecurityProblem::MatchResourcesField("selector".into()),
                PodSecurityProblem::ExcludeOrPreconditions,
            ]
        );
        assert_eq!(
            gaps[0].to_string(),
            "psa/r: unknown podSecurity level \"high\"; match.resources.selector is not supported for podSecurity rules; exclude/preconditions are not supported for podSecurity rules"
        );
        assert_eq!(
            set.not_evaluated(),
            vec![crate::NotEvaluated::PodSecurity(&gaps[0])]
        );
    }
}
