//! Falco 0.34.1's k8s-audit regression cases (../shared/data/falco/k8saudit-legacy): for each case,
//! the rule files it names are loaded in order, its audit input is evaluated, and the outcome is
//! compared with the expected detection, level and per-rule counts. Prints the agreement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use moat_runtime::Loader;
use moat_runtime::rules::k8saudit;
use serde_json::Value;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    if p.join("data/falco/k8saudit-legacy/expected.json").exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/data/falco/k8saudit-legacy not found");
        None
    }
}

/// The case's rule file names mapped to files here, as `_meta.paths` of expected.json says.
fn rule_path(falco: &Path, name: &str) -> PathBuf {
    let legacy = falco.join("k8saudit-legacy");
    if name.starts_with("BUILD_DIR/") && name.ends_with("/falco_rules.yaml") {
        falco.join("rules/rules/falco_rules.yaml")
    } else if name.starts_with("BUILD_DIR/") && name.ends_with("/k8s_audit_rules.yaml") {
        falco.join("plugins-rules/plugins/k8saudit/rules/k8s_audit_rules.yaml")
    } else {
        legacy.join(name.trim_start_matches("./"))
    }
}

struct Outcome {
    alerts: Vec<(String, String)>,
    stderr: String,
    /// The rule files were refused (as Falco refuses them): no event was evaluated.
    refused: bool,
}

fn run_case(falco: &Path, case: &Value) -> Result<Outcome, String> {
    let mut l = Loader::new();
    for f in case["rules_files"].as_array().into_iter().flatten() {
        let p = rule_path(falco, f.as_str().unwrap_or_default());
        l.add_file(&p).map_err(|e| e.to_string())?;
    }
    if !l.invalid_appends().is_empty() {
        return Ok(Outcome {
            alerts: vec![],
            stderr: l.invalid_appends().join("\n"),
            refused: true,
        });
    }
    let engine = l.build_k8saudit();
    let input = falco
        .join("k8saudit-legacy")
        .join(case["input"].as_str().unwrap_or_default());
    let text = std::fs::read_to_string(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let (events, errors) = k8saudit::parse_events(&input.display().to_string(), &text);
    let mut alerts = Vec::new();
    for ev in &events {
        for a in engine.process(ev) {
            alerts.push((a.rule, a.priority.as_str().to_ascii_uppercase()));
        }
    }
    let mut stderr: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    stderr.extend(engine.warnings.iter().cloned());
    stderr.extend(
        engine
            .skipped
            .iter()
            .map(|s| format!("rule skipped: {}: {}", s.rule, s.reason)),
    );
    Ok(Outcome {
        alerts,
        stderr: stderr.join("\n"),
        refused: false,
    })
}

/// Falco's spelling of a priority in the expected file (`INFO`) against moat's (`INFORMATIONAL`).
fn same_level(expected: &str, got: &str) -> bool {
    let norm = |s: &str| match s {
        "INFO" => "INFORMATIONAL".to_string(),
        "WARN" => "WARNING".to_string(),
        s => s.to_string(),
    };
    norm(&expected.to_ascii_uppercase()) == norm(got)
}

/// Rules of the 0.34-era k8saudit rules file that today's file (the one `_meta.paths` names) splits
/// under new names: upstream falcosecurity/plugins renamed them, the conditions are the same per kind.
const RENAMED: &[(&str, &[&str])] = &[
    (
        "K8s Role/Clusterrole Created",
        &["K8s Role Created", "K8s ClusterRole Created"],
    ),
    (
        "K8s Role/Clusterrole Deleted",
        &["K8s Role Deleted", "K8s ClusterRole Deleted"],
    ),
    (
        "K8s Role/Clusterrolebinding Created",
        &["K8s RoleBinding Created", "K8s ClusterRoleBinding Created"],
    ),
    (
        "K8s Role/Clusterrolebinding Deleted",
        &["K8s RoleBinding Deleted", "K8s ClusterRoleBinding Deleted"],
    ),
];

/// Why the case disagrees, or None when it agrees. With `renames`, an expected count for a rule the
/// current rules file renamed is compared with the alerts of its successors.
fn judge(case: &Value, o: &Outcome, renames: bool) -> Option<String> {
    let mut why = Vec::new();
    let detect = case["detect"].as_bool().unwrap_or(false);
    if detect == o.alerts.is_empty() {
        why.push(format!(
            "detect: expected {detect}, got {} alerts {:?}",
            o.alerts.len(),
            o.alerts.iter().map(|a| &a.0).collect::<Vec<_>>()
        ));
    }
    if let Some(level) = case["detect_level"].as_str()
        && !o.alerts.iter().any(|(_, p)| same_level(level, p))
    {
        why.push(format!("no alert at level {level}"));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (r, _) in &o.alerts {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    for m in case["detect_counts"].as_array().into_iter().flatten() {
        for (rule, n) in m.as_object().into_iter().flatten() {
            let want = n.as_u64().unwrap_or(0) as usize;
            let mut got = counts.get(rule.as_str()).copied().unwrap_or(0);
            if renames && let Some((_, new)) = RENAMED.iter().find(|(old, _)| old == rule) {
                got += new
                    .iter()
                    .map(|n| counts.get(n).copied().unwrap_or(0))
                    .sum::<usize>();
            }
            if want != got {
                why.push(format!("'{rule}': expected {want} alerts, got {got}"));
            }
        }
    }
    if let Some(s) = case["stderr_contains"].as_str()
        && !o.stderr.contains(s)
    {
        why.push(format!("stderr lacks '{s}'"));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[test]
fn falco_k8s_audit_regression_cases() {
    let Some(sh) = shared() else { return };
    let falco = sh.join("data/falco");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(falco.join("k8saudit-legacy/expected.json")).unwrap(),
    )
    .unwrap();
    let cases = expected["tests"].as_array().unwrap();
    let (mut agree, mut agree_renamed, mut refused) = (0, 0, 0);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["test"].as_str().unwrap_or("?");
        if c["input_available"] == Value::Bool(false) {
            eprintln!("SKIPPED: {name}: input not included");
            continue;
        }
        let (strict, lenient, was_refused) = match run_case(&falco, c) {
            Ok(o) => (judge(c, &o, false), judge(c, &o, true), o.refused),
            Err(e) => (
                Some(format!("error: {e}")),
                Some(format!("error: {e}")),
                false,
            ),
        };
        let note = if was_refused {
            refused += 1;
            " (rule files refused: an append to a list the current k8saudit file no longer defines)"
        } else {
            ""
        };
        match (strict, lenient) {
            (None, _) => {
                agree += 1;
                agree_renamed += 1;
                println!("ok    {name}{note}");
            }
            (Some(why), None) => {
                agree_renamed += 1;
                println!(
                    "ok    {name} (counted under the current file's rule names; strictly: {why})"
                );
            }
            (Some(_), Some(why)) => {
                println!("FAIL  {name}: {why}");
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    let total = agree_renamed + failures.len();
    let pct = |n: usize| 100.0 * n as f64 / total.max(1) as f64;
    println!(
        "k8saudit agreement: {agree}/{total} ({:.1}%) by the expected rule names; {agree_renamed}/{total} \
         ({:.1}%) counting renamed rules under their current names; {refused} cases agree because the \
         combined rule files are refused",
        pct(agree),
        pct(agree_renamed)
    );
    assert!(
        total >= 37,
        "expected the 37 cases of expected.json, ran {total}"
    );
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
    // Only the renamed rules may differ by name: a new strict disagreement is a regression.
    assert!(
        total - agree <= RENAMED.len(),
        "{} cases disagree by name, more than the {} renamed rules",
        total - agree,
        RENAMED.len()
    );
}
