//! The workshop's Kubernetes files (../shared/data/workshop): the runtime collector DaemonSet is itself
//! a hardening finding (privileged, host mounts, the Docker socket); its least-privilege RBAC and its
//! NetworkPolicy pass, and the NetworkPolicy selects a matching workload in the same input.

use std::path::PathBuf;

use moat_kube::{LintOptions, Profile, PssVersion, lint, load_str};
use moat_model::{Finding, Severity};

fn workshop(file: &str) -> Option<(String, String)> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let p = base.join("data/workshop").join(file);
    let text = std::fs::read_to_string(&p).ok()?;
    Some((file.to_string(), text))
}

fn lint_texts(inputs: &[(String, String)], profile: Profile) -> Vec<Finding> {
    let mut docs = Vec::new();
    for (name, text) in inputs {
        docs.extend(load_str(name, text).expect("parses").0);
    }
    lint(
        &docs,
        &LintOptions {
            profile,
            ..LintOptions::default()
        },
    )
}

fn find<'a>(fs: &'a [Finding], id: &str, field: &str) -> &'a Finding {
    fs.iter()
        .find(|f| f.id == id && f.location.field.as_deref() == Some(field))
        .unwrap_or_else(|| {
            panic!(
                "no {id} at {field}: {:#?}",
                fs.iter()
                    .map(|f| (&f.id, &f.location.field))
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn collector_daemonset_is_a_hardening_finding() {
    let Some(input) = workshop("collector-daemonset.yaml") else {
        eprintln!("SKIPPED: ../shared/data/workshop/collector-daemonset.yaml missing");
        return;
    };
    let text = input.1.clone();
    let fs = lint_texts(&[input], Profile::All);
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
    };

    let p = find(
        &fs,
        "privileged",
        "spec.template.spec.containers[0].securityContext.privileged",
    );
    assert_eq!(p.severity, Severity::Critical);
    assert_eq!(p.location.line, line_of("privileged: true"));
    assert_eq!(p.location.document, Some(0));
    assert_eq!(
        p.location.object.as_deref(),
        Some("DaemonSet/microsoft-defender/microsoft-defender-collector")
    );
    assert!(p.why.as_deref().is_some_and(|w| w.contains("privileged")) && p.fix.is_some());

    for (i, path) in ["/var/run/docker.sock", "/proc", "/sys"].iter().enumerate() {
        let h = find(
            &fs,
            "hostPathVolumes",
            &format!("spec.template.spec.volumes[{i}].hostPath"),
        );
        assert_eq!(h.severity, Severity::High);
        let id = if *path == "/var/run/docker.sock" {
            "MOAT-K8S-009"
        } else {
            "MOAT-K8S-010"
        };
        let m = find(
            &fs,
            id,
            &format!("spec.template.spec.volumes[{i}].hostPath.path"),
        );
        assert_eq!(
            m.location.line,
            line_of(&format!("path: {path}")),
            "{id} {path}"
        );
    }
    find(
        &fs,
        "MOAT-K8S-005",
        "spec.template.spec.containers[0].image",
    );
    find(
        &fs,
        "runAsNonRoot",
        "spec.template.spec.containers[0].securityContext.runAsNonRoot",
    );

    // --profile pss-baseline runs exactly baseline: privileged and hostPath, no restricted or best practice.
    let base = lint_texts(
        &[workshop("collector-daemonset.yaml").expect("file")],
        Profile::PssBaseline,
    );
    let mut ids: Vec<&str> = base.iter().map(|f| f.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["hostPathVolumes", "privileged"]);
}

#[test]
fn least_privilege_rbac_and_network_policy_pass() {
    let (Some(rbac), Some(netpol)) = (workshop("rbac.yaml"), workshop("network-policy.yaml"))
    else {
        eprintln!("SKIPPED: ../shared/data/workshop rbac.yaml / network-policy.yaml missing");
        return;
    };
    // Issue 14: the RBAC is least-privilege; the NetworkPolicy's two peers `namespaceSelector` and
    // `podSelector` (ingress from, and egress to kube-dns) are alternatives, which is now a finding.
    let fs = lint_texts(&[rbac.clone(), netpol.clone()], Profile::All);
    let got: Vec<(&str, Option<&str>)> = fs
        .iter()
        .map(|f| (f.id.as_str(), f.location.field.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("MOAT-K8S-016", Some("spec.ingress[0].from[1]")),
            ("MOAT-K8S-016", Some("spec.egress[1].to[1]")),
        ],
        "{fs:#?}"
    );

    // A workload labelled app=secure-app in namespace production is selected by the workshop policy;
    // the same workload with another label is not.
    let deploy = |label: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: production\nspec:\n  template:\n    metadata:\n      labels:\n        app: {label}\n    spec:\n      containers:\n      - name: web\n        image: registry.example.com/web:1.0\n"
        )
    };
    let fs = lint_texts(
        &[netpol.clone(), ("d.yaml".into(), deploy("secure-app"))],
        Profile::All,
    );
    assert!(!fs.iter().any(|f| f.id == "MOAT-K8S-012"), "{fs:#?}");
    let fs = lint_texts(
        &[netpol.clone(), ("d.yaml".into(), deploy("other"))],
        Profile::All,
    );
    assert!(fs.iter().any(|f| f.id == "MOAT-K8S-012"));
    // The token rule honours the ServiceAccount's automountServiceAccountToken: false in the same input.
    assert!(fs.iter().any(|f| f.id == "MOAT-K8S-008"));
    let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: production\nautomountServiceAccountToken: false\n";
    let fs = lint_texts(
        &[
            netpol,
            ("d.yaml".into(), deploy("other")),
            ("sa.yaml".into(), sa.into()),
        ],
        Profile::All,
    );
    assert!(!fs.iter().any(|f| f.id == "MOAT-K8S-008"), "{fs:#?}");

    // Over-broad RBAC: every rule fires, at its line.
    let bad = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: too-much\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n- apiGroups: [\"\"]\n  resources: [\"secrets\", \"pods/exec\"]\n  verbs: [\"get\", \"create\"]\n- apiGroups: [\"rbac.authorization.k8s.io\"]\n  resources: [\"clusterroles\"]\n  verbs: [\"bind\", \"escalate\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ci-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: ci\n  namespace: ci\n";
    let fs = lint_texts(&[("rbac-bad.yaml".into(), bad.into())], Profile::All);
    for (id, field, line) in [
        ("MOAT-K8S-101", "rules[0].verbs", 8),
        ("MOAT-K8S-102", "rules[0].resources", 7),
        ("MOAT-K8S-103", "rules[1].resources", 10),
        ("MOAT-K8S-105", "rules[1].resources", 10),
        ("MOAT-K8S-104", "rules[2].verbs", 14),
        ("MOAT-K8S-106", "roleRef.name", 23),
    ] {
        let f = find(&fs, id, field);
        assert_eq!(f.location.line, Some(line), "{id}");
    }
    assert_eq!(
        fs.iter()
            .find(|f| f.id == "MOAT-K8S-106")
            .and_then(|f| f.location.document),
        Some(1)
    );
}

#[test]
fn pss_version_changes_the_verdict() {
    // runAsUser=0 is only a restricted violation from v1.23, and a safe sysctl list grows over versions.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 0\n    seccompProfile:\n      type: RuntimeDefault\n  containers:\n  - name: c\n    image: x:1\n    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities:\n        drop: [ALL]\n";
    let (docs, _) = load_str("p.yaml", pod).expect("parses");
    let at = |v: &str| {
        let opts = LintOptions {
            profile: Profile::PssRestricted,
            pss_version: v.parse::<PssVersion>().expect("v"),
            ..LintOptions::default()
        };
        lint(&docs, &opts)
            .into_iter()
            .map(|f| f.id)
            .collect::<Vec<_>>()
    };
    assert!(at("v1.22").is_empty());
    assert_eq!(at("v1.23"), ["runAsUser"]);
    assert_eq!(at("latest"), ["runAsUser"]);
}
