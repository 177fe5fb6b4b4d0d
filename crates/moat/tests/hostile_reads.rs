//! Issue 17: nested ONBUILD, a `--policy` directory holding a link to /dev/zero, a kyverno-test.yaml
//! naming a host file, a test file of the wrong shape, and a policy whose CEL variables double 45
//! times: each is exit 2 (or a rule error) naming the input and the limit, with a bounded peak RSS
//! and nothing written.

mod hostile;

use hostile::{moat_in, tree};

#[test]
fn thousands_of_nested_onbuild_are_refused_at_the_depth_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let df = format!("FROM alpine:3.20\n{}RUN true\n", "ONBUILD ".repeat(5000));
    std::fs::write(dir.path().join("Dockerfile"), df).expect("write");
    let before = tree(dir.path());
    let run = moat_in(dir.path(), &["lint", "Dockerfile", "--format", "json"], &[]);
    run.assert_input_error(&[
        "Dockerfile:2:1",
        "nested more than 8 deep",
        "nesting depth limit",
    ]);
    run.assert_peak_below_mib(64);
    assert_eq!(tree(dir.path()), before);
}

fn pv(dir: &std::path::Path) {
    std::fs::write(
        dir.join("pv.yaml"),
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: a}\nspec: {hostPath: {path: /etc}}\n",
    )
    .expect("pv");
}

#[test]
fn a_policy_directory_link_to_dev_zero_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let pol = dir.path().join("pol");
    std::fs::create_dir(&pol).expect("dir");
    std::fs::write(
        pol.join("p.yaml"),
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [PersistentVolume]}}]}\n    validate:\n      cel: {expressions: [{expression: \"!has(object.spec.hostPath)\"}]}\n",
    )
    .expect("policy");
    std::os::unix::fs::symlink("/dev/zero", pol.join("zero.yaml")).expect("link");
    pv(dir.path());
    let before = tree(dir.path());
    let run = moat_in(
        dir.path(),
        &["lint", "--policy", "pol", "pv.yaml", "--format", "json"],
        &[],
    );
    run.assert_input_error(&["zero.yaml"]);
    run.assert_peak_below_mib(96);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn kyverno_test_files_read_only_beside_themselves_and_must_be_tests() {
    let dir = tempfile::tempdir().expect("tmp");
    let t = dir.path().join("suite/t");
    std::fs::create_dir_all(&t).expect("dir");
    std::fs::write(
        t.join("p.yaml"),
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      cel: {expressions: [{expression: \"true\"}]}\n",
    )
    .expect("policy");
    std::fs::write(
        t.join("kyverno-test.yaml"),
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\npolicies: [p.yaml]\nresources: [/etc/passwd]\nresults: [{policy: p, rule: r, resources: [x], kind: Pod, result: pass}]\n",
    )
    .expect("test");
    let before = tree(dir.path());
    let run = moat_in(dir.path(), &["policy", "test", "suite"], &[]);
    run.assert_input_error(&[
        "/etc/passwd",
        "outside the test's directory tree",
        "not read",
    ]);
    assert!(
        !run.stderr().contains("root:"),
        "no line of the host file: {}",
        run.stderr()
    );
    assert!(
        !run.stdout().contains("root:"),
        "no line of the host file: {}",
        run.stdout()
    );
    // A link out of the tree is refused the same way.
    std::os::unix::fs::symlink("/etc/passwd", t.join("r.yaml")).expect("link");
    std::fs::write(
        t.join("kyverno-test.yaml"),
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\npolicies: [p.yaml]\nresources: [r.yaml]\nresults: [{policy: p, rule: r, resources: [x], kind: Pod, result: pass}]\n",
    )
    .expect("test");
    let run = moat_in(dir.path(), &["policy", "test", "suite"], &[]);
    run.assert_input_error(&["r.yaml", "outside the test's directory tree"]);
    // Wrong-typed results: exit 2, not an empty list.
    std::fs::write(
        t.join("kyverno-test.yaml"),
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\npolicies: [p.yaml]\nresults: 5\n",
    )
    .expect("test");
    let run = moat_in(dir.path(), &["policy", "test", "suite"], &[]);
    run.assert_input_error(&["kyverno-test.yaml", "results", "expected a list"]);
    assert!(!run.stdout().trim().starts_with("[]"), "{}", run.stdout());
    let mut after = tree(dir.path());
    after.remove(std::path::Path::new("suite/t/r.yaml"));
    assert_eq!(after, before, "moat wrote nothing");
}

#[test]
fn cel_variables_doubling_45_times_are_refused_by_the_cost_budget() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut p = String::from(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: doubling}\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [PersistentVolume]}}]}\n    validate:\n      cel:\n        variables:\n        - name: v0\n          expression: \"['aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaa']\"\n",
    );
    for i in 1..=45 {
        p.push_str(&format!(
            "        - name: v{i}\n          expression: \"variables.v{q} + variables.v{q}\"\n",
            q = i - 1
        ));
    }
    p.push_str("        expressions:\n        - expression: \"size(variables.v45) > 0\"\n");
    std::fs::write(dir.path().join("p.yaml"), p).expect("policy");
    pv(dir.path());
    let before = tree(dir.path());
    let run = moat_in(
        dir.path(),
        &["lint", "--policy", "p.yaml", "pv.yaml", "--format", "json"],
        &[],
    );
    let all = run.stdout() + &run.stderr();
    assert!(
        all.contains("MOAT_CEL_SIZE_LIMIT") || all.contains("MOAT_CEL_COST_LIMIT"),
        "the rule's error names the limit: {all}"
    );
    assert!(all.contains("not evaluated"), "{all}");
    assert!(
        all.contains("size(variables.v45)"),
        "and the expression: {all}"
    );
    run.assert_peak_below_mib(160);
    assert!(run.elapsed.as_secs() < 30, "{:?}", run.elapsed);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn wrong_typed_osv_fields_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let osv = dir.path().join("osv");
    std::fs::create_dir(&osv).expect("dir");
    std::fs::write(
        osv.join("a.json"),
        r#"{"id":"GHSA-xxxx-xxxx-xxxx","modified":"2024-01-01T00:00:00Z","affected":5}"#,
    )
    .expect("record");
    std::fs::write(
        osv.join("b.json"),
        r#"{"id":"GHSA-yyyy-yyyy-yyyy","modified":"2024-01-01T00:00:00Z","aliases":"CVE-1"}"#,
    )
    .expect("record");
    let run = moat_in(dir.path(), &["db", "import", "osv", "--db", "db"], &[]);
    run.assert_input_error(&["a.json", "field `affected`", "b.json", "field `aliases`"]);
}
