//! `moat policy test`: unsupported features are named on stderr (`unsupported: <feature>:
//! <policy>/<rule>`), counted as skipped-unsupported in the summary, and `--fail-on-unsupported`
//! turns them into exit 2; mutations are compared with `patchedResources`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    base.join("data").is_dir().then_some(base)
}

fn moat(args: &[&str]) -> Output {
    let out = Command::new(MOAT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run moat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "moat {args:?} panicked: {err}");
    out
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

const POLICY: &str = r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: registry-allowlist
spec:
  validationFailureAction: Enforce
  rules:
  - name: from-configmap
    match:
      any:
      - resources:
          kinds: [Pod]
    context:
    - name: allowed
      apiCall:
        urlPath: /api/v1/namespaces/default/configmaps/allowed
        jmesPath: data.registries
    validate:
      message: image from an unlisted registry
      deny:
        conditions:
          any:
          - key: "{{ request.object.spec.containers[0].image }}"
            operator: NotIn
            value: "{{ allowed }}"
  - name: has-team
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: a team label is required
      pattern:
        metadata:
          labels:
            team: "?*"
"#;

const RESOURCE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {team: a}
spec:
  containers:
  - name: web
    image: nginx
"#;

const TEST: &str = r#"apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: t
policies: [policy.yaml]
resources: [resource.yaml]
results:
- policy: registry-allowlist
  rule: has-team
  resources: [web]
  kind: Pod
  result: pass
- policy: registry-allowlist
  rule: from-configmap
  resources: [web]
  kind: Pod
  result: skip
"#;

#[test]
fn unsupported_features_are_named_counted_and_can_fail_the_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    write(d, "policy.yaml", POLICY);
    write(d, "resource.yaml", RESOURCE);
    write(d, "kyverno-test.yaml", TEST);
    let dir = d.to_str().expect("utf-8");

    let o = moat(&["policy", "test", dir, "--format", "table"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("unsupported: context entry `allowed` uses apiCall")
            && stderr.contains("registry-allowlist/from-configmap"),
        "{stderr}"
    );
    assert!(
        stdout.contains("2 results, 2 as expected, 0 mismatched, 1 skipped-unsupported"),
        "{stdout}"
    );

    // JSON: the row says it was not evaluated; the summary goes to stderr.
    let o = moat(&["policy", "test", dir, "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json rows");
    let skipped: Vec<&serde_json::Value> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["unsupported"] == true)
        .collect();
    assert_eq!(skipped.len(), 1, "{rows}");
    assert_eq!(skipped[0]["rule"], "from-configmap");
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 skipped-unsupported"));

    let o = moat(&["policy", "test", dir, "--fail-on-unsupported"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--fail-on-unsupported")
            && stderr.contains("1 results skipped-unsupported"),
        "{stderr}"
    );
}

#[test]
fn mutating_policy_tests_compare_patched_resources() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno-policies missing");
        return;
    };
    let folder = shared.join("data/kyverno-policies/other-mpol/prepend-image-registry");
    let o = moat(&[
        "policy",
        "test",
        folder.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "{rows}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["actual"] == "pass")
    );

    // A patched resource that disagrees with the mutation makes the row fail.
    let tmp = tempfile::tempdir().expect("tmp");
    let copy = tmp.path().join("prepend-image-registry");
    std::fs::create_dir_all(copy.join(".kyverno-test")).expect("mkdir");
    std::fs::copy(
        folder.join("prepend-image-registry.yaml"),
        copy.join("prepend-image-registry.yaml"),
    )
    .expect("copy policy");
    for e in std::fs::read_dir(folder.join(".kyverno-test")).expect("dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), copy.join(".kyverno-test").join(e.file_name())).expect("copy");
    }
    let pr = copy.join(".kyverno-test/patchedResource.yaml");
    let text = std::fs::read_to_string(&pr).expect("patched");
    assert!(text.contains("registry.io/"), "{text}");
    std::fs::write(&pr, text.replacen("registry.io/", "other.io/", 1)).expect("write");
    let o = moat(&[
        "policy",
        "test",
        copy.to_str().expect("utf-8"),
        "--format",
        "table",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("patched resource differs at"), "{stdout}");
}
