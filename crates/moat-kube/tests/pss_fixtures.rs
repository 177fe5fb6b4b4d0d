//! Every Pod Security Standards fixture of kubernetes/pod-security-admission (../shared/data/k8s/pss):
//! moat must admit or deny exactly as Pod Security Admission does, at every level and version listed.

use std::path::PathBuf;

use moat_kube::{Level, PssOptions, PssVersion, load_str, pss_findings};

fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    base.join("data/k8s/pss/expected.json")
        .exists()
        .then_some(base)
}

#[test]
fn all_pss_fixtures_agree_with_pod_security_admission() {
    let Some(base) = shared() else {
        eprintln!("SKIPPED: ../shared/data/k8s/pss/expected.json missing");
        return;
    };
    let dir = base.join("data/k8s/pss");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("read"))
            .expect("json");
    let cases = expected["cases"].as_array().expect("cases");
    assert!(
        cases.len() > 2000,
        "expected the full fixture set, got {}",
        cases.len()
    );
    let mut wrong = Vec::new();
    for c in cases {
        let file = c["file"].as_str().expect("file");
        let level: Level = c["level"].as_str().expect("level").parse().expect("level");
        let version: PssVersion = format!("v{}", c["version"].as_str().expect("version"))
            .parse()
            .expect("version");
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
        let (docs, _) = load_str(file, &text).expect("fixture parses");
        assert_eq!(docs.len(), 1, "{file}");
        let findings = pss_findings(&docs[0], level, version, PssOptions::default());
        let denied = !findings.is_empty();
        if denied != (c["expected"] == "fail") {
            wrong.push(format!(
                "{file} [{}:{version}] expected {} got {:?}",
                level.as_str(),
                c["expected"],
                findings.iter().map(|f| &f.id).collect::<Vec<_>>()
            ));
        }
        // Every failing fixture's finding names a field and a line in the file.
        for f in &findings {
            assert!(
                f.location
                    .field
                    .as_deref()
                    .is_some_and(|p| p.starts_with("spec") || p.starts_with("metadata")),
                "{file}: {f:?}"
            );
            assert!(f.location.line.is_some(), "{file}: {f:?}");
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} disagree:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
