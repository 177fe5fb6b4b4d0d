//! Kyverno `validate.podSecurity` subrules, judged by moat-kube's Pod Security Standards evaluation
//! (the policy engine leaves them to the PSS implementation). Match is by kinds (and namespaces); a
//! Pod rule also judges pod controllers, as Kyverno's autogen does. A subrule whose match moat cannot
//! honour is listed as unsupported, never silently passed.

use std::path::{Path, PathBuf};

use moat_kube::pss::Exclusion;
use moat_kube::{Level, PssOptions, PssVersion};
use serde_json::Value;

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

fn files(p: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if p.is_dir() {
        if depth > 16 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(p) else { return };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            files(&e, out, depth + 1);
        }
    } else {
        let n = p.to_string_lossy().to_ascii_lowercase();
        if n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json") {
            out.push(p.to_path_buf());
        }
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

/// Loads every podSecurity subrule under `paths`; returns the rules and the unsupported ones (with why).
pub fn load(paths: &[PathBuf]) -> (Vec<PodSecurityRule>, Vec<String>) {
    let mut all = Vec::new();
    for p in paths {
        files(p, &mut all, 0);
    }
    let mut rules = Vec::new();
    let mut unsupported = Vec::new();
    for f in all {
        // Opened without blocking, regular files only, bounded like the policy loader (a link to
        // /dev/zero is refused, not read until memory runs out; the engine names it).
        let Ok(file) = moat_fsio::open_regular(&f, moat_fsio::Follow::Always) else {
            continue;
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 << 20), &mut bytes).is_err()
        {
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        // Unreadable documents are the policy engine's to report; here only podSecurity rules matter.
        let Ok((docs, _)) = moat_kube::load_str(&f.display().to_string(), &text) else {
            continue;
        };
        for d in docs {
            let spec = d.value.get("spec");
            let policy = d.name().to_string();
            let autogen_off = d
                .value
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
                let mut why = Vec::new();
                let level = match ps.get("level").and_then(Value::as_str).unwrap_or("") {
                    "baseline" => Some(Level::Baseline),
                    "restricted" => Some(Level::Restricted),
                    "privileged" => None,
                    other => {
                        why.push(format!("unknown podSecurity level {other:?}"));
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
                        why.push(e);
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
                    if moat_kube::pss::control_checks(&control_name).is_empty() {
                        why.push(format!("unknown controlName {control_name:?}"));
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
                            why.push(format!(
                                "match.resources.{k} is not supported for podSecurity rules"
                            ));
                        }
                    }
                    if let Some(o) = b.as_object() {
                        for k in o.keys().filter(|k| k.as_str() != "resources") {
                            why.push(format!("match {k} is not supported for podSecurity rules"));
                        }
                    }
                }
                if r.get("exclude").is_some() || r.get("preconditions").is_some() {
                    why.push(
                        "exclude/preconditions are not supported for podSecurity rules".into(),
                    );
                }
                if kinds.iter().any(|k| k == "Pod") && !autogen_off {
                    kinds.extend(CONTROLLERS.iter().map(|s| s.to_string()));
                }
                let action = r
                    .pointer("/validate/failureAction")
                    .and_then(Value::as_str)
                    .unwrap_or(policy_action);
                if !why.is_empty() {
                    unsupported.push(format!("{policy}/{rule}: {}", why.join("; ")));
                    continue;
                }
                let Some(level) = level else { continue };
                rules.push(PodSecurityRule {
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
    }
    (rules, unsupported)
}

impl PodSecurityRule {
    /// Judges a workload: None when the rule does not apply or passes, else the failure message.
    /// Whether the rule's match (kinds, namespaces) selects an object.
    pub fn applies(&self, kind: &str, namespace: Option<&str>) -> bool {
        self.kinds.iter().any(|k| k == kind || k == "*")
            && (self.namespaces.is_empty()
                || namespace.is_some_and(|n| self.namespaces.iter().any(|x| x == n)))
    }

    pub fn judge(&self, kind: &str, namespace: Option<&str>, object: &Value) -> Option<String> {
        if !self.applies(kind, namespace) {
            return None;
        }
        let t = moat_kube::pod_template(object, kind)?;
        let failures = moat_kube::pss::evaluate_with_exclusions(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_judges_a_subrule_with_exclusions() {
        let dir = std::env::temp_dir().join(format!("moat-ps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: psa\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: restricted\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      podSecurity:\n        level: restricted\n        version: latest\n        exclude:\n        - controlName: Capabilities\n          images: [\"nginx*\"]\n";
        std::fs::write(dir.join("p.yaml"), policy).expect("write");
        let (rules, unsupported) = load(std::slice::from_ref(&dir));
        assert!(unsupported.is_empty(), "{unsupported:?}");
        assert_eq!(rules.len(), 1);
        let pod = |image: &str| {
            serde_json::json!({"kind": "Pod", "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": image, "securityContext": {"allowPrivilegeEscalation": false}}]}})
        };
        // Capabilities are exempted for nginx images only.
        assert_eq!(rules[0].judge("Pod", None, &pod("nginx:1")), None);
        let msg = rules[0]
            .judge("Pod", None, &pod("redis:7"))
            .expect("denied");
        assert!(
            msg.contains("capabilities_restricted") || msg.contains("unrestricted capabilities"),
            "{msg}"
        );
        // Autogen: the rule written for Pods judges a Deployment's template.
        let deploy =
            serde_json::json!({"kind": "Deployment", "spec": {"template": pod("redis:7")}});
        assert!(rules[0].judge("Deployment", None, &deploy).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
