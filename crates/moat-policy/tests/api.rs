//! The public API the admission webhook and `moat lint` use: loading, evaluation, findings, and
//! hostile policies/resources (clear errors naming file and field, no panic, bounded depth).

use std::path::PathBuf;

use moat_model::{FindingKind, Severity};
use moat_policy::{AdmissionInput, PolicyError, PolicySet, RuleResult};
use serde_json::json;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data/workshop/image-security-policy.yaml")
        .exists()
        .then_some(p)
}

fn pod(annotations: serde_json::Value, image: &str, non_root: bool) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": image, "securityContext": {"runAsNonRoot": non_root}}]}
    })
}

#[test]
fn workshop_policy_under_its_own_kind() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/workshop is missing");
        return;
    };
    let set =
        PolicySet::load_paths(&[shared.join("data/workshop/image-security-policy.yaml")]).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.unsupported().is_empty(), "{:?}", set.unsupported());
    let good = pod(
        json!({"defender.security.microsoft.com/scan-status": "passed"}),
        "myregistry.azurecr.io/web:1.0",
        true,
    );
    let out = set.evaluate(&AdmissionInput::create(good));
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.result == RuleResult::Pass), "{out:?}");

    let bad = pod(json!({}), "docker.io/web:1.0", false);
    let out = set.evaluate(&AdmissionInput::create(bad));
    let failed: Vec<&str> = out
        .iter()
        .filter(|o| o.result == RuleResult::Fail)
        .map(|o| o.rule.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "no-root-user",
            "require-image-scanning",
            "trusted-registries"
        ]
    );
    let f = out[0].to_finding();
    assert_eq!(f.kind, FindingKind::Policy);
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.id, "production-image-policy/no-root-user");
    assert!(
        f.message.contains("Containers must not run as root"),
        "{}",
        f.message
    );
    assert_eq!(f.location.object.as_deref(), Some("Pod/shop/web"));

    // Autogen: the same Pod rules judge a Deployment through its pod template.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"metadata": {"annotations": {"defender.security.microsoft.com/scan-status": "passed"}},
                 "spec": {"containers": [{"name": "web", "image": "docker.io/web:1", "securityContext": {"runAsNonRoot": true}}]}}}});
    let out = set.evaluate(&AdmissionInput::create(deploy));
    let failed: Vec<&str> = out
        .iter()
        .filter(|o| o.result == RuleResult::Fail)
        .map(|o| o.rule.as_str())
        .collect();
    assert_eq!(failed, ["trusted-registries"]);
}

fn docs(yaml: &str) -> Vec<(String, serde_json::Value)> {
    moat_policy::parse_yaml_documents(yaml, "inline.yaml")
        .unwrap()
        .into_iter()
        .map(|d| ("inline.yaml".to_string(), d))
        .collect()
}

#[test]
fn enforce_severity_match_exclude_operations_and_messages() {
    let set = PolicySet::from_documents(docs(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
  annotations:
    policies.kyverno.io/severity: high
spec:
  validationFailureAction: Enforce
  rules:
  - name: team-label
    match:
      any:
      - resources:
          kinds: ["apps/v1/Deployment"]
          operations: [CREATE]
          namespaceSelector:
            matchLabels: {env: prod}
    exclude:
      any:
      - resources:
          names: ["legacy-*"]
    validate:
      message: "{{ request.object.metadata.name }} in {{ request.namespace }} needs a team label"
      pattern:
        metadata:
          labels:
            team: "?*"
"#,
    ))
    .unwrap();
    let d = |name: &str| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"}});
    let mut input = AdmissionInput::create(d("web"));
    input.namespace_labels.insert("env".into(), "prod".into());
    let out = set.evaluate(&input);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, RuleResult::Fail);
    assert!(out[0].enforce);
    assert!(
        out[0].message.starts_with("web in shop needs a team label"),
        "{}",
        out[0].message
    );
    assert_eq!(out[0].to_finding().severity, Severity::High);

    let mut excluded = input.clone();
    excluded.object = d("legacy-web");
    assert!(set.evaluate(&excluded).is_empty());
    let mut update = input.clone();
    update.operation = "UPDATE".into();
    assert!(set.evaluate(&update).is_empty());
    let mut dev = input.clone();
    dev.namespace_labels.insert("env".into(), "dev".into());
    assert!(set.evaluate(&dev).is_empty());
}

#[test]
fn validating_admission_policy_with_binding() {
    let set = PolicySet::from_documents(docs(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replica-limit
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  variables:
  - name: replicas
    expression: "object.spec.?replicas.orValue(1)"
  validations:
  - expression: "variables.replicas <= 5"
    messageExpression: "'replicas ' + string(variables.replicas) + ' > 5'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: replica-limit-binding
spec:
  policyName: replica-limit
  validationActions: [Warn, Audit]
"#,
    ))
    .unwrap();
    let d = |n: i64| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": n}});
    let out = set.evaluate(&AdmissionInput::create(d(9)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, RuleResult::Fail);
    assert_eq!(out[0].message, "replicas 9 > 5");
    assert!(!out[0].enforce, "binding says Warn/Audit only");
    assert_eq!(
        set.evaluate(&AdmissionInput::create(d(2)))[0].result,
        RuleResult::Pass
    );
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
    assert!(set.evaluate(&AdmissionInput::create(svc)).is_empty());
}

#[test]
fn unsupported_features_are_listed_with_reasons() {
    let set = PolicySet::from_documents(docs(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: mixed}
spec:
  rules:
  - name: from-configmap
    match: {any: [{resources: {kinds: [Pod]}}]}
    context:
    - name: cm
      configMap: {name: allowed, namespace: default}
    validate:
      deny:
        conditions:
          any:
          - key: "{{ cm.data.x }}"
            operator: Equals
            value: "y"
  - name: sign
    match: {any: [{resources: {kinds: [Pod]}}]}
    verifyImages:
    - imageReferences: ["*"]
"#,
    ))
    .unwrap();
    let reasons: Vec<String> = set
        .unsupported()
        .iter()
        .map(|u| format!("{}: {}", u.rule, u.reason))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("from-configmap: context entry `cm` uses configMap"),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("sign: verifyImages"), "{reasons:?}");
    // Never silently passed: a matching request reports them as not evaluated.
    let out = set.evaluate(&AdmissionInput::create(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
    ));
    assert!(
        out.iter()
            .all(|o| o.result == RuleResult::Skip && o.message.starts_with("not evaluated")),
        "{out:?}"
    );
}

fn invalid(yaml: &str) -> String {
    match PolicySet::from_documents(docs(yaml)) {
        Err(e @ PolicyError::Invalid { .. }) => e.to_string(),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn hostile_policies_name_file_and_field() {
    let e = invalid(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      deny:\n        conditions:\n          all:\n          - {key: a, operator: Frobnicates, value: b}\n",
    );
    assert!(
        e.contains("inline.yaml")
            && e.contains("spec.rules[0].validate.deny.conditions.all[0].operator"),
        "{e}"
    );
    let e = invalid(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      cel:\n        expressions:\n        - expression: 'object.spec.(('\n",
    );
    assert!(
        e.contains("spec.rules[0].validate.cel.expressions[0].expression") && e.contains("CEL"),
        "{e}"
    );
    let e = invalid(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      pattern:\n        spec:\n          containers: []\n",
    );
    assert!(
        e.contains("spec.rules[0].validate.pattern.spec.containers") && e.contains("empty list"),
        "{e}"
    );
    let e = invalid(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: 7\n    validate: {pattern: {a: b}}\n",
    );
    assert!(e.contains("spec.rules[0].match"), "{e}");
    let e = invalid(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      foreach:\n      - list: 'request.object.spec.[containers'\n        deny: {conditions: []}\n",
    );
    assert!(
        e.contains("spec.rules[0].validate.foreach[0].list") && e.contains("JMESPath"),
        "{e}"
    );
}

#[test]
fn hostile_documents_are_bounded() {
    // 200 levels of YAML nesting: a parse error naming the file, not a stack overflow.
    let deep = format!(
        "kind: ClusterPolicy\nspec: {}1{}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    let err = moat_policy::parse_yaml_documents(&deep, "deep.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("deep.yaml"), "{err}");
    let deep_json = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let err = moat_policy::parse_yaml_documents(&deep_json, "deep.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("deep.json") && err.contains("nesting"),
        "{err}"
    );

    // A deeply nested object at admission: every matching rule reports an error, nothing panics.
    let set = PolicySet::from_documents(docs(
        "kind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate: {pattern: {spec: {=(hostPID): 'false'}}}\n",
    ))
    .unwrap();
    let mut v = json!(1);
    for _ in 0..100 {
        v = json!({"x": v});
    }
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": v});
    let out = set.evaluate(&AdmissionInput::create(obj));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, RuleResult::Error);

    // Wrong types in the resource: a failure, not a panic.
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": ["not", "a", "map"]});
    assert_eq!(
        set.evaluate(&AdmissionInput::create(obj))[0].result,
        RuleResult::Fail
    );

    // A missing file names the path.
    let err = PolicySet::load_paths(&[PathBuf::from("/nonexistent/policies")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/policies"), "{err}");
}

#[test]
fn action_overrides_scored_and_apply_one() {
    let set = PolicySet::from_documents(docs(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: tags
  annotations:
    policies.kyverno.io/scored: "false"
spec:
  validationFailureAction: Audit
  validationFailureActionOverrides:
  - action: Enforce
    namespaces: ["prod-*"]
  applyRules: One
  rules:
  - name: no-latest
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "no latest"
      foreach:
      - list: request.object.spec.containers
        pattern:
          image: "!*:latest"
  - name: never-reached
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      deny: {}
"#,
    ))
    .unwrap();
    let p = |ns: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
        "spec": {"containers": [{"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "nginx:latest"}]}})
    };
    let out = set.evaluate(&AdmissionInput::create(p("prod-eu")));
    assert_eq!(
        out.len(),
        1,
        "applyRules: One stops after the first rule that applies: {out:?}"
    );
    assert_eq!(
        out[0].result,
        RuleResult::Warn,
        "scored: false reports failures as warnings"
    );
    assert!(out[0].enforce);
    assert!(
        out[0].message.contains("foreach element 1"),
        "{}",
        out[0].message
    );
    let out = set.evaluate(&AdmissionInput::create(p("dev")));
    assert!(!out[0].enforce);
}

#[test]
fn images_variable_for_registry_rules() {
    let set = PolicySet::from_documents(docs(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: registries}
spec:
  validationFailureAction: Enforce
  rules:
  - name: trusted
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "untrusted registry in {{ images.containers.*.registry | join(', ', @) }}"
      deny:
        conditions:
          any:
          - key: "{{ images.containers.*.registry }}"
            operator: AnyNotIn
            value: ["myregistry.azurecr.io", "ghcr.io"]
"#,
    ))
    .unwrap();
    let p = |img: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "ghcr.io/x/a:1"}, {"name": "b", "image": img}]}})
    };
    let out = set.evaluate(&AdmissionInput::create(p("nginx:1.25")));
    assert_eq!(out[0].result, RuleResult::Fail);
    assert!(out[0].message.contains("docker.io"), "{}", out[0].message);
    // Autogen: the Deployment's template containers.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "myregistry.azurecr.io/web:2"}]}}}});
    assert_eq!(
        set.evaluate(&AdmissionInput::create(d))[0].result,
        RuleResult::Pass
    );
    assert_eq!(
        set.evaluate(&AdmissionInput::create(p("ghcr.io/y/b:2")))[0].result,
        RuleResult::Pass
    );
}
