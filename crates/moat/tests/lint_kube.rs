//! `moat lint` on Kubernetes manifests through the real binary: files, directories, `List`s, stdin,
//! profiles and versions, exit codes, and `moat admission certs`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(MOAT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moat");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

const PRIVILEGED: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x:1\n    securityContext:\n      privileged: true\n";

#[test]
fn stdin_list_and_profiles() {
    // `helm template ... | moat lint -`: a List with a Deployment, read from stdin.
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: web\n  spec:\n    template:\n      spec:\n        hostNetwork: true\n        containers:\n        - name: web\n          image: web:1\n";
    let o = moat(
        &[
            "lint",
            "-",
            "--profile",
            "pss-baseline",
            "--fail-on",
            "low",
            "--format",
            "json",
        ],
        Some(list),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    let f = &r["findings"][0];
    assert_eq!(f["id"], "hostNamespaces");
    assert_eq!(f["location"]["file"], "-");
    assert_eq!(
        f["location"]["field"],
        "items[0].spec.template.spec.hostNetwork"
    );
    assert_eq!(f["location"]["line"], 11);
    assert_eq!(
        r["findings"].as_array().map(Vec::len),
        Some(1),
        "baseline only: {r}"
    );
    assert_eq!(r["metadata"]["pss_version"], "latest");
    assert_eq!(r["metadata"]["kubernetes_profile"], "pss-baseline");

    // The default profile adds restricted, best practices and RBAC.
    let o = moat(&["lint", "-", "--format", "json"], Some(list));
    assert_eq!(o.status.code(), Some(0), "no --fail-on, no failure");
    let ids: Vec<String> = json(&o)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        ids.contains(&"runAsNonRoot".to_string()) && ids.contains(&"MOAT-K8S-001".to_string()),
        "{ids:?}"
    );
}

#[test]
fn directories_errors_and_versions() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("k8s")).expect("mkdir");
    std::fs::write(dir.path().join("k8s/pod.yaml"), PRIVILEGED).expect("write");
    std::fs::write(dir.path().join("Dockerfile"), "FROM debian:12\nUSER 1000\n").expect("write");
    let d = dir.path().to_string_lossy().to_string();
    let o = moat(
        &["lint", &d, "--profile", "pss-baseline", "--format", "json"],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    assert_eq!(r["target"]["kind"], "dockerfile+kubernetes");
    assert!(r["findings"].as_array().expect("f").iter().any(|f| {
        f["id"] == "privileged"
            && f["location"]["file"]
                .as_str()
                .is_some_and(|p| p.ends_with("k8s/pod.yaml"))
            && f["location"]["line"] == 10
    }));

    // Broken YAML: exit 2 naming the file.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Pod\nspec: [\n").expect("write");
    let o = moat(&["lint", &bad.to_string_lossy()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.yaml"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Bad profile or version: usage errors.
    let pod = dir.path().join("k8s/pod.yaml");
    let pod = pod.to_string_lossy();
    assert_eq!(
        moat(&["lint", &pod, "--pss-version", "v2.0"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        moat(&["lint", &pod, "--profile", "pss-strict"], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn deploy_manifests_pass_the_restricted_profile() {
    // Every part but the eBPF sensor, whose documented exceptions tests/deploy.rs checks one by one.
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let parts = [
        "base/namespace.yaml",
        "base/networkpolicy-default-deny.yaml",
        "base/admission",
        "base/server",
        "overlays/postgres-ha/postgres.yaml",
    ]
    .map(|p| deploy.join(p).to_string_lossy().into_owned());
    let o = moat(
        &[
            "lint",
            &parts[0],
            &parts[1],
            &parts[2],
            &parts[3],
            &parts[4],
            "--profile",
            "pss-restricted",
            "--fail-on",
            "low",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json(&o)["target"]["kind"], "kubernetes");
}

#[test]
fn admission_certs_writes_a_ca_and_serving_pair() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().to_string();
    let o = moat(
        &[
            "admission",
            "certs",
            "--out",
            &d,
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        let text = std::fs::read_to_string(dir.path().join(f)).expect(f);
        assert!(text.starts_with("-----BEGIN "), "{f}");
    }
    // A server with a missing key refuses to start, naming the file (exit 2).
    let o = moat(
        &[
            "admission",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &format!("{d}/tls.crt"),
            "--tls-key",
            &format!("{d}/missing.key"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.key"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn kyverno_pod_security_subrule_with_policy_flag() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/kyverno/pod-security/subrule/restricted");
    if !base.is_dir() {
        eprintln!("SKIPPED: ../shared/data/kyverno pod-security subrules missing");
        return;
    }
    let policy = base.join("restricted-exclude-capabilities/restricted-exclude-capabilities.yaml");
    let good = base.join("restricted-exclude-capabilities/.chainsaw-test/pod-good.yaml");
    let bad = base.join("restricted-exclude-capabilities/.chainsaw-test/pod-bad.yaml");
    let run = |file: &Path| {
        let o = moat(
            &[
                "lint",
                &file.to_string_lossy(),
                "--profile",
                "pss-baseline",
                "--policy",
                &policy.to_string_lossy(),
                "--format",
                "json",
            ],
            None,
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        json(&o)["findings"].as_array().expect("findings").clone()
    };
    // The good pods add capabilities only in excluded images: no policy finding.
    assert!(
        run(&good).iter().all(|f| f["kind"] != "policy"),
        "{:?}",
        run(&good)
    );
    let bad = run(&bad);
    let policy_findings: Vec<&serde_json::Value> =
        bad.iter().filter(|f| f["kind"] == "policy").collect();
    assert!(!policy_findings.is_empty());
    for f in &policy_findings {
        assert_eq!(
            f["id"], "podsecurity-subrule-restricted-capabilities/restricted-exempt-capabilities",
            "{f}"
        );
        assert!(
            f["location"]["line"].as_u64().is_some() && f["location"]["field"].as_str().is_some(),
            "{f}"
        );
    }
    let docs: std::collections::BTreeSet<u64> = policy_findings
        .iter()
        .filter_map(|f| f["location"]["document"].as_u64())
        .collect();
    assert!(docs.len() >= 5, "every bad pod is reported: {docs:?}");
}

/// Objects without `metadata.namespace` (issue 14): moat reads a namespaced object without one as in
/// `default` — what `kubectl apply` without `-n` does, and how checkov, kube-score and `kyverno apply`
/// read it — everywhere: its name in reports (`Deployment/default/web`), relating objects (a
/// NetworkPolicy in `default` selects it), and policies matching or excluding namespaces. Before, the
/// same object was `Deployment/web` in reports and skipped by a policy that matched `default`.
#[test]
fn objects_without_a_namespace_are_in_default() {
    let tmp = tempfile::tempdir().unwrap();
    let deploy = |ns: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{ns}spec:\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: web:1.2\n"
        )
    };
    let netpol = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n  namespace: default\nspec:\n  podSelector:\n    matchLabels:\n      app: web\n  policyTypes: [Ingress]\n";
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get]\n";
    let policy = tmp.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: team-label\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: team-label-in-default\n    match:\n      any:\n      - resources:\n          kinds: [Deployment]\n          namespaces: [default]\n    validate:\n      message: \"workloads in default need a team label\"\n      pattern:\n        metadata:\n          labels:\n            team: \"?*\"\n",
    )
    .unwrap();
    let implicit = tmp.path().join("implicit.yaml");
    let explicit = tmp.path().join("explicit.yaml");
    std::fs::write(&implicit, format!("{}---\n{netpol}---\n{role}", deploy(""))).unwrap();
    std::fs::write(
        &explicit,
        format!(
            "{}---\n{netpol}---\n{role}",
            deploy("  namespace: default\n")
        ),
    )
    .unwrap();
    let lint = |file: &Path| {
        let o = moat(
            &[
                "lint",
                &file.to_string_lossy(),
                "--policy",
                &policy.to_string_lossy(),
                "--format",
                "json",
            ],
            None,
        );
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        json(&o)
    };
    let (ri, re) = (lint(&implicit), lint(&explicit));
    let pairs = |r: &serde_json::Value| -> std::collections::BTreeSet<(String, String)> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap_or("").to_string(),
                    f["location"]["object"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let (pi, pe) = (pairs(&ri), pairs(&re));
    // The same findings about the same objects, whether `default` is written or not.
    assert_eq!(pi, pe);
    let web = "Deployment/default/web".to_string();
    // The policy that matches namespace `default` judges the Deployment without a namespace.
    assert!(
        pi.contains(&("team-label/team-label-in-default".to_string(), web.clone())),
        "{pi:?}"
    );
    // The NetworkPolicy in `default` selects it: no "no NetworkPolicy" finding.
    assert!(
        !pi.iter().any(|(id, o)| id == "MOAT-K8S-012" && *o == web),
        "{pi:?}"
    );
    // A cluster-scoped object has no namespace.
    assert!(pi.iter().any(|(_, o)| o == "ClusterRole/reader"), "{pi:?}");
    assert!(
        !pi.iter().any(|(_, o)| o.contains("ClusterRole/default")),
        "{pi:?}"
    );
    // The default-namespace finding says which of the two it is.
    let msg = |r: &serde_json::Value| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "MOAT-K8S-011" && f["location"]["object"] == web.as_str())
            .map(|f| f["message"].as_str().unwrap_or("").to_string())
            .expect("MOAT-K8S-011 on the Deployment")
    };
    assert!(
        msg(&ri).contains("has no metadata.namespace"),
        "{}",
        msg(&ri)
    );
    assert!(
        msg(&re).contains("is in namespace \"default\""),
        "{}",
        msg(&re)
    );
    // `moat diff` of the two: writing the namespace out changes nothing but that message.
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    std::fs::write(&a, serde_json::to_vec(&ri).unwrap()).unwrap();
    std::fs::write(&b, serde_json::to_vec(&re).unwrap()).unwrap();
    let o = moat(&["diff", &a.to_string_lossy(), &b.to_string_lossy()], None);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("## Fixed (0)") && md.contains("## New (0)"),
        "{md}"
    );
}
