//! The chainsaw admission cases of ../shared/data/kyverno: with each policy in Enforce mode, every
//! `*-good` resource must be admitted and every `*-bad` one rejected — judged through the same
//! `PolicySet::evaluate` the admission webhook calls.

use std::path::{Path, PathBuf};

use moat_policy::{AdmissionInput, PolicySet, RuleResult, parse_yaml_documents};

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data/kyverno/expected.json").exists().then_some(p)
}

/// The policy files of a policy folder (its top-level YAML files).
fn policy_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    v
}

/// What the API server sends a webhook: it decodes into typed objects and re-encodes them, so
/// zero-valued `omitempty` fields such as `ports[].hostPort: 0` are gone by admission time.
fn as_api_server_sends(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.get("hostPort").and_then(|h| h.as_i64()) == Some(0) {
                o.remove("hostPort");
            }
            o.values_mut().for_each(as_api_server_sends);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(as_api_server_sends),
        _ => {}
    }
}

#[test]
fn chainsaw_admission_cases() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno/expected.json is missing");
        return;
    };
    let data = shared.join("data/kyverno");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("expected.json")).unwrap())
            .unwrap();
    let cases = expected["chainsaw_admission_cases"].as_array().unwrap();
    let (mut ok, mut judged, mut unsupported_cases) = (0, 0, 0);
    let mut wrong = Vec::new();
    for c in cases {
        let test = data.join(c["chainsaw_test"].as_str().unwrap());
        let policy_dir = test.parent().unwrap().parent().unwrap();
        let set = PolicySet::load_paths(&policy_files(policy_dir)).unwrap();
        let file = data.join(c["file"].as_str().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        let docs = parse_yaml_documents(&text, &file.display().to_string()).unwrap();
        let mut rejected = false;
        let mut not_evaluated = false;
        for mut d in docs {
            as_api_server_sends(&mut d);
            for o in set.evaluate(&AdmissionInput::create(d)) {
                match o.result {
                    RuleResult::Fail | RuleResult::Error => rejected = true,
                    RuleResult::Skip if o.message.starts_with("not evaluated") => {
                        not_evaluated = true
                    }
                    _ => {}
                }
            }
        }
        let want_reject = c["expected_admission"] == "reject";
        if not_evaluated && rejected != want_reject {
            // A rule moat reports as unsupported at load time decided this case.
            unsupported_cases += 1;
            continue;
        }
        judged += 1;
        if rejected == want_reject {
            ok += 1;
        } else {
            wrong.push(format!(
                "{} expected {} ",
                c["file"], c["expected_admission"]
            ));
        }
    }
    eprintln!(
        "chainsaw admission cases: {ok}/{judged} correct; {unsupported_cases} decided by unsupported rules"
    );
    for w in &wrong {
        eprintln!("wrong: {w}");
    }
    assert!(wrong.is_empty(), "{} admission cases wrong", wrong.len());
    // Only the validate.podSecurity subrule tests (pod-security/subrule/*: 3 policies, good and bad)
    // depend on a feature moat reports as unsupported.
    assert!(
        unsupported_cases <= 6,
        "too many cases left to unsupported rules: {unsupported_cases}"
    );
    assert_eq!(judged + unsupported_cases, cases.len());
}
