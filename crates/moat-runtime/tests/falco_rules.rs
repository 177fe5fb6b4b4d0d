//! Loads Falco's own rule files from ../shared and checks what moat evaluates.

use std::path::PathBuf;

use moat_runtime::Engine;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    if p.join("data/falco/rules/rules/falco_rules.yaml").exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/data/falco/rules not found");
        None
    }
}

#[test]
fn stable_rules_are_all_evaluable() {
    let Some(sh) = shared() else { return };
    let f = sh.join("data/falco/rules/rules/falco_rules.yaml");
    let e = Engine::from_files(&[&f]).unwrap();
    let s = e.summary();
    let text = std::fs::read_to_string(&f).unwrap();
    let declared = text.lines().filter(|l| l.starts_with("- rule:")).count();
    eprintln!("skipped: {:#?}\nwarnings: {:#?}", s.skipped, s.warnings);
    assert_eq!(s.rules, declared);
    assert_eq!(s.evaluable, declared, "skipped: {:?}", s.skipped);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn incubating_and_sandbox_rules_load_and_report_skips() {
    let Some(sh) = shared() else { return };
    for name in ["falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"] {
        let stable = sh.join("data/falco/rules/rules/falco_rules.yaml");
        let f = sh.join("data/falco/rules/rules").join(name);
        let e = Engine::from_files(&[&stable, &f]).unwrap();
        let s = e.summary();
        eprintln!(
            "{name}: {} rules, {} evaluable; skipped: {:#?}; warnings {:#?}",
            s.rules, s.evaluable, s.skipped, s.warnings
        );
        assert_eq!(s.rules, s.evaluable + s.skipped.len());
        assert!(s.evaluable > 0);
        for sk in &s.skipped {
            assert!(!sk.reason.is_empty());
        }
    }
}
