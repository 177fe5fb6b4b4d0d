//! The decision: one admission request in, allowed or denied with every reason, plus warnings.
//! Pure and synchronous so the same logic is testable without a server.

use std::collections::BTreeMap;
use std::path::PathBuf;

use moat_kube::{Level, PssOptions, PssVersion};
use serde_json::Value;

use crate::AdmissionError;

/// The annotation the workshop's pipeline sets once an image was scanned and passed.
pub const SCAN_STATUS_ANNOTATION: &str = "moat.dev/scan-status";

/// What the webhook enforces.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Pod Security Standards level to enforce (None: no PSS).
    pub pss_level: Option<Level>,
    pub pss_version: PssVersion,
    /// Kyverno policy files or directories.
    pub policies: Vec<PathBuf>,
    /// Image patterns (`registry.example.com/*`, `ghcr.io/org/*`): when non-empty, every container
    /// image must match one.
    pub trusted_registries: Vec<String>,
    /// Require `moat.dev/scan-status: passed` on pods and pod templates.
    pub require_scan: bool,
    /// Require non-root containers (the PSS `runAsNonRoot` and `runAsUser` checks) even without a
    /// PSS profile: the workshop's "no root" rule.
    pub require_non_root: bool,
}

/// A compiled engine; rebuilt when policies change.
pub struct Engine {
    pub config: EngineConfig,
    policies: Option<moat_policy::PolicySet>,
    /// Kyverno `validate.podSecurity` subrules of the policies, judged with moat-kube's PSS.
    pod_security: Vec<moat_policy::podsecurity::PodSecurityRule>,
    /// Rules of the loaded policies moat does not evaluate, reported at start-up.
    pub unsupported: Vec<String>,
    /// moat-sign's verifier for `verifyImages` rules and ImageValidatingPolicies.
    verifier: std::sync::Arc<dyn moat_policy::ImageVerifier>,
}

/// What the engine decided for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Every failed enforcing check, as a sentence.
    pub denials: Vec<String>,
    /// Audit failures and notes, returned as AdmissionReview warnings.
    pub warnings: Vec<String>,
    /// Internal errors (a policy that could not be evaluated); decided by fail-open/closed.
    pub errors: Vec<String>,
}

/// The parts of an AdmissionRequest the engine reads.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub operation: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub sub_resource: String,
    pub object: Value,
    pub old_object: Option<Value>,
    pub user_info: Value,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Engine, AdmissionError> {
        let (policies, pod_security, unsupported) = if config.policies.is_empty() {
            (None, Vec::new(), Vec::new())
        } else {
            let set = moat_policy::PolicySet::load_paths(&config.policies)
                .map_err(|e| AdmissionError::Config(format!("cannot load policies: {e}")))?;
            // A truncated ConfigMap or an empty directory must not turn the webhook into
            // admit-everything: each path must hold at least one policy.
            for p in &config.policies {
                let one = moat_policy::PolicySet::load_paths(std::slice::from_ref(p))
                    .map_err(|e| AdmissionError::Config(format!("cannot load policies: {e}")))?;
                if one.is_empty() && one.unsupported().is_empty() {
                    return Err(AdmissionError::Config(format!(
                        "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                        p.display()
                    )));
                }
            }
            // podSecurity subrules the policy engine leaves out are judged here (`decide`): what
            // nothing evaluates is what is reported.
            let unsupported = set
                .not_evaluated()
                .into_iter()
                .map(|n| match n {
                    moat_policy::NotEvaluated::Rule(u) => {
                        format!("{}/{}: {}", u.policy, u.rule, u.reason)
                    }
                    moat_policy::NotEvaluated::PodSecurity(g) => g.to_string(),
                })
                .collect();
            let pod_security = set.pod_security().rules.clone();
            (Some(set), pod_security, unsupported)
        };
        Ok(Engine {
            config,
            policies,
            pod_security,
            unsupported,
            verifier: std::sync::Arc::new(crate::imageverify::CosignVerifier::default()),
        })
    }

    /// Number of Kyverno policies loaded.
    pub fn policy_count(&self) -> usize {
        self.policies.as_ref().map_or(0, |p| p.len())
    }

    pub fn decide(&self, req: &Request) -> Decision {
        let mut d = Decision {
            allowed: true,
            ..Decision::default()
        };
        // Deletions and CONNECTs carry no object to judge.
        if !matches!(req.operation.as_str(), "CREATE" | "UPDATE") || !req.object.is_object() {
            return d;
        }
        let kind = if req.kind.is_empty() {
            req.object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        } else {
            req.kind.clone()
        };
        // Status and other subresources do not change the pod spec (ephemeralcontainers does).
        let judge_pod = req.sub_resource.is_empty() || req.sub_resource == "ephemeralcontainers";
        // As Pod Security Admission: a pod update that changes no image, no seccomp annotation and adds no
        // container is not judged again (the rest of a pod spec is immutable).
        let insignificant_update = req.operation == "UPDATE"
            && kind == "Pod"
            && req
                .old_object
                .as_ref()
                .is_some_and(|old| !significant_pod_update(&req.object, old));
        if let Some(t) = moat_kube::pod_template(&req.object, &kind)
            .filter(|_| judge_pod && !insignificant_update)
        {
            if let Some(level) = self.config.pss_level {
                let failures = moat_kube::pss::evaluate(
                    t.meta,
                    t.spec,
                    level,
                    self.config.pss_version,
                    PssOptions::default(),
                );
                if !failures.is_empty() {
                    d.denials.push(moat_kube::pss::denial_message(
                        level,
                        self.config.pss_version,
                        &failures,
                    ));
                }
            }
            self.builtin(t.meta, t.spec, &mut d);
        }
        if judge_pod {
            for r in &self.pod_security {
                if let Some(msg) = r.judge(&kind, req.namespace.as_deref(), &req.object) {
                    if r.enforce {
                        d.denials.push(msg);
                    } else {
                        d.warnings.push(msg);
                    }
                }
            }
        }
        if let Some(set) = &self.policies {
            let input = moat_policy::AdmissionInput {
                object: req.object.clone(),
                old_object: req.old_object.clone(),
                operation: req.operation.clone(),
                namespace: req.namespace.clone(),
                user_info: req.user_info.clone(),
                // A webhook sees no namespace labels without API access; namespaceSelector matches none.
                namespace_labels: BTreeMap::new(),
                image_verifier: Some(std::sync::Arc::clone(&self.verifier)),
                ..Default::default()
            };
            for o in set.evaluate(&input) {
                let text = format!("{}/{}: {}", o.policy, o.rule, o.message);
                match o.result {
                    moat_policy::RuleResult::Fail if o.enforce => d.denials.push(text),
                    moat_policy::RuleResult::Fail | moat_policy::RuleResult::Warn => {
                        d.warnings.push(text)
                    }
                    moat_policy::RuleResult::Error => d.errors.push(text),
                    _ => {}
                }
            }
        }
        d.allowed = d.denials.is_empty();
        d
    }

    /// Applies the loaded mutate rules and MutatingPolicies to a CREATE or UPDATE: the JSON patch
    /// to return, the mutations applied, and the ones that failed.
    pub fn mutate(&self, req: &Request) -> crate::mutate::MutationDecision {
        let mut m = crate::mutate::MutationDecision::default();
        let Some(set) = &self.policies else {
            return m;
        };
        if !matches!(req.operation.as_str(), "CREATE" | "UPDATE") || !req.object.is_object() {
            return m;
        }
        let input = moat_policy::AdmissionInput {
            object: req.object.clone(),
            old_object: req.old_object.clone(),
            operation: req.operation.clone(),
            namespace: req.namespace.clone(),
            user_info: req.user_info.clone(),
            namespace_labels: BTreeMap::new(),
            image_verifier: Some(std::sync::Arc::clone(&self.verifier)),
            ..Default::default()
        };
        let out = set.mutate(&input);
        for o in &out.outcomes {
            match o.result {
                moat_policy::RuleResult::Pass => m.applied.push(format!("{}/{}", o.policy, o.rule)),
                moat_policy::RuleResult::Error => m
                    .errors
                    .push(format!("{}/{}: {}", o.policy, o.rule, o.message)),
                _ => {}
            }
        }
        m.patch = out.patch;
        m
    }

    /// The workshop's built-in checks: images only from trusted registries, images scanned.
    fn builtin(&self, meta: Option<&Value>, spec: &Value, d: &mut Decision) {
        if self.config.require_non_root {
            let failures: Vec<_> = moat_kube::pss::evaluate(
                meta,
                spec,
                Level::Restricted,
                self.config.pss_version,
                PssOptions::default(),
            )
            .into_iter()
            .filter(|f| matches!(f.id, "runAsNonRoot" | "runAsUser"))
            .collect();
            for f in failures {
                d.denials
                    .push(format!("no-root: {} ({})", f.reason, f.detail));
            }
        }
        if !self.config.trusted_registries.is_empty() {
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                for c in spec
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                    if !self
                        .config
                        .trusted_registries
                        .iter()
                        .any(|p| image_matches(p, image))
                    {
                        d.denials.push(format!(
                            "trusted-registry: container {:?} image {image:?} is not from a trusted registry ({})",
                            c.get("name").and_then(Value::as_str).unwrap_or(""),
                            self.config.trusted_registries.join(", ")
                        ));
                    }
                }
            }
        }
        if self.config.require_scan {
            let status = meta
                .and_then(|m| m.pointer("/annotations"))
                .and_then(|a| a.get(SCAN_STATUS_ANNOTATION))
                .and_then(Value::as_str);
            if status != Some("passed") {
                d.denials.push(format!(
                    "image-scanned: annotation {SCAN_STATUS_ANNOTATION} is {} (must be \"passed\")",
                    status.map_or("missing".to_string(), |s| format!("{s:?}"))
                ));
            }
        }
    }
}

/// Pod Security Admission's test for a pod update worth judging: a changed image or seccomp annotation,
/// a different number of containers, or a new ephemeral container.
pub fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    const POD_SECCOMP: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const CONTAINER_SECCOMP: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let ann = |p: &Value, k: &str| {
        p.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .cloned()
    };
    if ann(pod, POD_SECCOMP) != ann(old, POD_SECCOMP) {
        return true;
    }
    let list = |p: &Value, k: &str| {
        p.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let changed = |c: &Value, o: &Value| {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let key = format!("{CONTAINER_SECCOMP}{name}");
        c.get("image") != o.get("image") || ann(pod, &key) != ann(old, &key)
    };
    for k in ["containers", "initContainers"] {
        let (new, prev) = (list(pod, k), list(old, k));
        if new.len() != prev.len() || new.iter().zip(prev.iter()).any(|(c, o)| changed(c, o)) {
            return true;
        }
    }
    let prev = list(old, "ephemeralContainers");
    list(pod, "ephemeralContainers").iter().any(|c| {
        match prev.iter().find(|o| o.get("name") == c.get("name")) {
            None => true,
            Some(o) => changed(c, o),
        }
    })
}

/// Glob match for image patterns: `*` matches any run of characters. A pattern without `*` matches
/// the image exactly or as a registry/repository prefix (`ghcr.io/org` matches `ghcr.io/org/app:1`).
pub fn image_matches(pattern: &str, image: &str) -> bool {
    if !pattern.contains('*') {
        let p = pattern.trim_end_matches('/');
        return image == p || image.starts_with(&format!("{p}/"));
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = image;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_patterns() {
        assert!(image_matches(
            "registry.example.com/*",
            "registry.example.com/app:1"
        ));
        assert!(!image_matches(
            "registry.example.com/*",
            "docker.io/library/nginx"
        ));
        assert!(image_matches("ghcr.io/org", "ghcr.io/org/app@sha256:abc"));
        assert!(!image_matches("ghcr.io/org", "ghcr.io/organisation/app"));
        assert!(image_matches("*.example.com/*:v*", "r.example.com/a:v1"));
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str, annotations: Value) -> Request {
        Request {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: json!({"kind": "Pod", "metadata": {"annotations": annotations},
                "spec": {"securityContext": {"runAsNonRoot": true},
                    "containers": [{"name": "app", "image": image}]}}),
            ..Request::default()
        }
    }

    #[test]
    fn trusted_registries_and_scan_status() {
        let e = Engine::new(EngineConfig {
            trusted_registries: vec!["myregistry.azurecr.io/*".into()],
            require_scan: true,
            require_non_root: true,
            ..EngineConfig::default()
        })
        .expect("engine");
        let ok = e.decide(&pod(
            "myregistry.azurecr.io/app:1.0",
            json!({SCAN_STATUS_ANNOTATION: "passed"}),
        ));
        assert!(ok.allowed, "{ok:?}");
        let bad = e.decide(&pod(
            "docker.io/library/nginx:1.25",
            json!({SCAN_STATUS_ANNOTATION: "failed"}),
        ));
        assert!(!bad.allowed);
        assert_eq!(bad.denials.len(), 2, "{bad:?}");
        assert!(
            bad.denials[0].contains("docker.io/library/nginx:1.25")
                && bad.denials[1].contains("\"failed\"")
        );
        // A root container is denied by the no-root built-in.
        let mut root = pod(
            "myregistry.azurecr.io/app:1.0",
            json!({SCAN_STATUS_ANNOTATION: "passed"}),
        );
        root.object["spec"]["containers"][0]["securityContext"] = json!({"runAsUser": 0});
        let r = e.decide(&root);
        assert!(
            !r.allowed
                && r.denials
                    .iter()
                    .any(|m| m.starts_with("no-root: runAsUser=0")),
            "{r:?}"
        );
        // DELETE carries no object to judge.
        let mut del = pod("docker.io/x", json!({}));
        del.operation = "DELETE".into();
        assert!(e.decide(&del).allowed);
    }

    #[test]
    fn insignificant_pod_updates_are_not_judged_again() {
        let e = Engine::new(EngineConfig {
            pss_level: Some(Level::Baseline),
            ..EngineConfig::default()
        })
        .expect("engine");
        let old = json!({"kind": "Pod", "metadata": {"labels": {"a": "1"}},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x:1"}]}});
        let mut relabel = old.clone();
        relabel["metadata"]["labels"]["a"] = json!("2");
        let req = |object: Value| Request {
            operation: "UPDATE".into(),
            kind: "Pod".into(),
            object,
            old_object: Some(old.clone()),
            ..Request::default()
        };
        assert!(
            e.decide(&req(relabel)).allowed,
            "a label change on an existing pod is not re-judged"
        );
        let mut reimage = old.clone();
        reimage["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(
            !e.decide(&req(reimage)).allowed,
            "an image change is judged"
        );
        let mut debug = old.clone();
        debug["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]);
        assert!(
            !e.decide(&req(debug)).allowed,
            "a new ephemeral container is judged"
        );
    }

    #[test]
    fn internal_errors_follow_the_failure_policy() {
        let review = crate::review::Review {
            api_version: crate::review::V1.into(),
            uid: "u".into(),
            request: Request::default(),
        };
        let d = Decision {
            allowed: true,
            errors: vec!["policy x: cannot evaluate".into()],
            ..Decision::default()
        };
        let (closed, v) =
            crate::review::respond(&review, d.clone(), crate::review::FailurePolicy::Closed);
        assert!(!closed.allowed);
        assert!(
            v["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("fail-closed"))
        );
        let (open, v) = crate::review::respond(&review, d, crate::review::FailurePolicy::Open);
        assert!(open.allowed);
        assert!(
            v["response"]["warnings"][0]
                .as_str()
                .is_some_and(|m| m.contains("fail-open"))
        );
    }
}
