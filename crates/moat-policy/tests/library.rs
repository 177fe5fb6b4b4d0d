//! Agreement with Kyverno's policy library (`../shared/data/kyverno-policies`, half of kyverno/policies):
//! every expected result of every `.kyverno-test/kyverno-test.yaml`, judged per test file, overall and
//! per family (the folder suffix: classic, cel, vpol, ivpol, mpol, gpol, dpol). A result moat does not
//! produce counts as wrong; a test file moat cannot run counts all its results as wrong (a crash).

use std::collections::BTreeMap;
use std::path::Path;

use moat_policy::test_runner::{find_test_files, run_test_file};
use serde_json::Value;

/// (policy, rule, resource, kind) of one expected result.
type Key = (String, String, String, String);

const FAMILIES: [&str; 7] = ["classic", "cel", "vpol", "ivpol", "mpol", "gpol", "dpol"];

fn family(rel: &str) -> &'static str {
    let top = rel.split('/').next().unwrap_or("");
    FAMILIES[1..]
        .iter()
        .find(|f| top.ends_with(&format!("-{f}")))
        .copied()
        .unwrap_or("classic")
}

/// The expected rows of a test file, read independently of the engine: (policy, rule, resource, kind, result).
fn expected_rows(path: &Path) -> Vec<(String, String, String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = moat_policy::parse_yaml_documents(&text, &path.display().to_string()).unwrap();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Vec::new();
    for r in docs[0]["results"].as_array().into_iter().flatten() {
        let mut names: Vec<String> = r["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        if let Some(n) = r["resource"].as_str() {
            names.push(n.to_string());
        }
        let result = r
            .get("result")
            .or_else(|| r.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        for n in names {
            out.push((
                s(r, "policy"),
                s(r, "rule"),
                n,
                s(r, "kind"),
                result.clone(),
            ));
        }
    }
    out
}

#[test]
fn kyverno_policy_library_agreement() {
    let Some(data) = moat_testkit::shared_path("data/kyverno-policies") else {
        return;
    };
    let mut total: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ok: BTreeMap<&str, usize> = BTreeMap::new();
    let mut crashes = Vec::new();
    let mut misses = Vec::new();
    let mut unsupported = std::collections::BTreeSet::new();
    for tf in find_test_files(&data).unwrap() {
        let rel = tf
            .strip_prefix(&data)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let fam = family(&rel);
        let expected = expected_rows(&tf);
        *total.entry(fam).or_default() += expected.len();
        let rows = match std::panic::catch_unwind(|| run_test_file(&tf)) {
            Ok(Ok((rows, unsup))) => {
                for u in unsup {
                    unsupported.insert(format!("{}: {}/{}", u.reason, u.policy, u.rule));
                }
                rows
            }
            Ok(Err(e)) => {
                crashes.push(format!("{rel}: {e}"));
                continue;
            }
            Err(_) => {
                crashes.push(format!("{rel}: panic"));
                continue;
            }
        };
        // Rows come back in the order of the expected results; match them by key all the same.
        let mut got: BTreeMap<Key, Vec<(String, String)>> = BTreeMap::new();
        for r in rows {
            got.entry((r.policy, r.rule, r.resource, r.kind))
                .or_default()
                .push((r.actual, r.message));
        }
        for (p, rule, res, kind, want) in expected {
            let key = (p, rule, res, kind);
            let actual = got.get_mut(&key).and_then(|v| {
                if v.is_empty() {
                    None
                } else {
                    Some(v.remove(0))
                }
            });
            match actual {
                Some((a, _)) if a == want => *ok.entry(fam).or_default() += 1,
                other => misses.push(format!(
                    "{fam} {rel} {key:?}: expected {want}, got {other:?}"
                )),
            }
        }
    }
    let (t, o): (usize, usize) = (total.values().sum(), ok.values().sum());
    for f in FAMILIES {
        let (ft, fo) = (
            total.get(f).copied().unwrap_or(0),
            ok.get(f).copied().unwrap_or(0),
        );
        if ft > 0 {
            eprintln!("family {f:8} {fo}/{ft} = {:.3}", fo as f64 / ft as f64);
        } else {
            eprintln!("family {f:8} no test results in this half");
        }
    }
    eprintln!("crashes: {}", crashes.len());
    for c in &crashes {
        eprintln!("crash: {c}");
    }
    for u in &unsupported {
        eprintln!("unsupported: {u}");
    }
    for m in &misses {
        eprintln!("miss: {m}");
    }
    let rate = o as f64 / t as f64;
    eprintln!("Kyverno policy library agreement {o}/{t} = {rate:.3}");
    assert!(
        crashes.is_empty(),
        "{} test files could not be run",
        crashes.len()
    );
    // The goal is 0.98; 0.984 is reached with mutation (classic and MutatingPolicy) applied and
    // compared with `patchedResources`. Every remaining shortfall (podSecurity subrules,
    // cluster-only context entries, ...) is listed with its count in docs/policy.md. This floor
    // keeps what is reached from regressing.
    assert!(rate >= 0.984, "agreement {rate:.3} below the 0.984 reached");
}
