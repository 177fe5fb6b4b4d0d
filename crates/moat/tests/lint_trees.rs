//! Issue 14, "Linting whole trees": one unparseable file never hides the others' findings, and the
//! Kubernetes defects found on third-party manifests.

use std::path::Path;
use std::process::{Command, Output};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str]) -> Output {
    Command::new(MOAT)
        .args(args)
        .env("HOME", "/nonexistent/moat-home")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run moat")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("json report")
}

fn tree(dir: &Path) {
    std::fs::write(dir.join("Dockerfile"), "FROM debian:12\nRUN echo hi\n").unwrap();
    // What trees of real Dockerfiles hold beside them: a jq template and a one-line pointer file.
    std::fs::write(dir.join("tmpl.Dockerfile"), "{{ .jq }} | . as $x\n").unwrap();
    std::fs::write(dir.join("Dockerfile.pointer"), "ref: ../Dockerfile\n").unwrap();
}

#[test]
fn unparseable_files_are_error_entries_and_every_other_file_is_linted() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path());
    let dir = d.path().to_string_lossy().into_owned();

    let o = moat(&["lint", &dir, "-f", "json"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "exit 2 at the end, because of the errors"
    );
    let r = json(&o);
    let errors = r["errors"].as_array().expect("errors");
    let named: Vec<(String, u64, u64)> = errors
        .iter()
        .map(|e| {
            let file = e["file"].as_str().unwrap_or("");
            let file = Path::new(file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                file,
                e["line"].as_u64().unwrap_or(0),
                e["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("Dockerfile.pointer".to_string(), 1, 1),
            ("tmpl.Dockerfile".to_string(), 1, 1)
        ],
        "{r}"
    );
    let findings = r["findings"].as_array().expect("findings");
    assert!(
        !findings.is_empty(),
        "the good Dockerfile is still reported: {r}"
    );
    assert!(
        findings.iter().all(|f| f["location"]["file"]
            .as_str()
            .unwrap_or("")
            .ends_with("/Dockerfile")),
        "{r}"
    );

    let o = moat(&["lint", &dir, "-f", "sarif"]);
    assert_eq!(o.status.code(), Some(2));
    let s = json(&o);
    let inv = &s["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"]
        .as_array()
        .expect("notifications");
    assert_eq!(notes.len(), 2, "{inv}");
    assert!(notes.iter().all(|n| n["level"] == "error"));
    assert!(!s["runs"][0]["results"].as_array().unwrap().is_empty());

    let o = moat(&["lint", &dir, "-f", "table"]);
    assert_eq!(o.status.code(), Some(2));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("tmpl.Dockerfile:1:1"), "{table}");
}

#[test]
fn a_broken_manifest_in_a_folder_does_not_hide_the_others() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: x\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n",
    )
    .unwrap();
    let o = moat(&["lint", &d.path().to_string_lossy(), "-f", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let r = json(&o);
    let errors = r["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{r}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("broken.yaml"));
    let findings = r["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["location"]["object"] == "Pod/x/p"),
        "{r}"
    );
}

#[test]
fn kubernetes_rules_on_third_party_manifests() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("k.yaml");
    std::fs::write(
        &f,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: everyone\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\n\
subjects:\n- kind: Group\n  name: system:authenticated\n  apiGroup: rbac.authorization.k8s.io\n---\n\
apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: x\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n",
    )
    .unwrap();
    let o = moat(&["lint", &f.to_string_lossy(), "-f", "json"]);
    let r = json(&o);
    let ids: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["location"]["object"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // A binding to every authenticated user is flagged.
    assert!(
        ids.contains(&("MOAT-K8S-107", "ClusterRoleBinding/everyone")),
        "{r}"
    );
    // No imagePullPolicy: Kubernetes defaults it from the tag, and the rule judges that default.
    assert!(ids.contains(&("MOAT-K8S-006", "Pod/x/p")), "{r}");
}
