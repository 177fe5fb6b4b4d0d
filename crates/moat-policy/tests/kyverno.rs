//! Agreement with Kyverno's own test expectations over ../shared/data/kyverno, computed the way
//! `score.py kyverno` does: rows keyed by (policy, rule, resource), one `policy test` per policy folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use moat_policy::test_runner::run_dir;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data/kyverno/expected.json").exists().then_some(p)
}

#[test]
fn kyverno_expected_agreement() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno/expected.json is missing");
        return;
    };
    let data = shared.join("data/kyverno");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("expected.json")).unwrap())
            .unwrap();
    let cases = expected["cases"].as_array().unwrap();
    let dirs: BTreeSet<String> = cases
        .iter()
        .map(|c| {
            let t = c["test_file"].as_str().unwrap();
            let p = std::path::Path::new(t);
            p.parent()
                .and_then(|x| x.parent())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut got: BTreeMap<(String, String, String), String> = BTreeMap::new();
    // Stricter than score.py: pod-security and pod-security-cel share (policy, rule, resource) keys,
    // so also key by test file to judge the CEL variants on their own.
    let mut by_file: BTreeMap<(String, String, String, String), String> = BTreeMap::new();
    let mut unsupported = BTreeSet::new();
    for d in &dirs {
        let report = run_dir(&data.join(d)).unwrap();
        assert!(report.errors.is_empty(), "{d}: {:?}", report.errors);
        for r in report.rows {
            let test = r
                .test_file
                .strip_prefix(&format!("{}/", data.display()))
                .unwrap_or(&r.test_file)
                .to_string();
            by_file.insert(
                (test, r.policy.clone(), r.rule.clone(), r.resource.clone()),
                r.actual.clone(),
            );
            got.insert((r.policy, r.rule, r.resource), r.actual);
        }
        for u in report.unsupported {
            unsupported.insert(format!("{}/{}: {}", u.policy, u.rule, u.reason));
        }
    }
    let mut ok = 0;
    let mut misses = Vec::new();
    for c in cases {
        let key = (
            c["policy"].as_str().unwrap().to_string(),
            c["rule"].as_str().unwrap().to_string(),
            c["resource"].as_str().unwrap().to_string(),
        );
        let want = c["expected"].as_str().unwrap();
        match got.get(&key) {
            Some(a) if a == want => ok += 1,
            other => misses.push(format!(
                "{key:?} expected {want} got {other:?} ({})",
                c["test_file"].as_str().unwrap()
            )),
        }
    }
    let strict_ok = cases
        .iter()
        .filter(|c| {
            let key = (
                c["test_file"].as_str().unwrap().to_string(),
                c["policy"].as_str().unwrap().to_string(),
                c["rule"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap().to_string(),
            );
            by_file.get(&key).map(String::as_str) == c["expected"].as_str()
        })
        .count();
    let strict = strict_ok as f64 / cases.len() as f64;
    eprintln!(
        "Kyverno agreement per test file {strict_ok}/{} = {strict:.3}",
        cases.len()
    );
    assert!(strict >= 0.95, "per-file agreement {strict:.3} below 0.95");
    let rate = ok as f64 / cases.len() as f64;
    eprintln!("Kyverno agreement {ok}/{} = {rate:.3}", cases.len());
    for u in &unsupported {
        eprintln!("unsupported: {u}");
    }
    for m in misses.iter().take(40) {
        eprintln!("miss: {m}");
    }
    assert!(rate >= 0.95, "agreement {rate:.3} below 0.95");
}
