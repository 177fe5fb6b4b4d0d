//! Real-world-style Dockerfiles (tests/corpus, written for moat) lint without error, every finding has a
//! file, line and column, and the SARIF rendering of the findings is valid SARIF 2.1.0 with regions.

use moat_lint::Config;
use moat_model::TargetInfo;
use moat_report::Report;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn corpus_lints_with_positions() {
    let files = corpus();
    assert!(files.len() >= 12, "corpus too small");
    for (name, bytes) in &files {
        let fs = moat_lint::lint_dockerfile(name, bytes, &Config::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for f in &fs {
            assert_eq!(f.location.file.as_deref(), Some(name.as_str()));
            assert!(
                f.location.line.is_some_and(|l| l >= 1)
                    && f.location.column.is_some_and(|c| c >= 1),
                "{name}: {f:?}"
            );
            assert!(f.why.is_some() && f.fix.is_some(), "{}: no why/fix", f.id);
        }
    }
    // Spot checks that show the front-end understood each style.
    let get = |n: &str| {
        moat_lint::lint_dockerfile(
            n,
            &files.iter().find(|f| f.0 == n).unwrap().1,
            &Config::default(),
        )
        .unwrap()
    };
    let ids = |n: &str| {
        get(n)
            .into_iter()
            .map(|f| (f.id, f.location.line.unwrap_or(0)))
            .collect::<Vec<_>>()
    };
    // Windows escape: the backtick continuation joins lines; no DL3025 on the JSON CMD with backslashes.
    let w = ids("windows.Dockerfile");
    assert!(!w.iter().any(|(id, _)| id == "DL3025"), "{w:?}");
    // Heredocs: the python heredoc is not shell; the cache-mounted make RUN is lines 8-12.
    let h = get("heredoc.Dockerfile");
    assert!(!h.iter().any(|f| f.id == "DL3059"), "{h:?}");
    // Official style: clean apt usage, no DL3009/DL3015; gosu is not sudo.
    let d = ids("debian-official.Dockerfile");
    assert!(
        !d.iter()
            .any(|(id, _)| id == "DL3009" || id == "DL3015" || id == "DL3004"),
        "{d:?}"
    );
    // The legacy file trips moat's own rules at the right lines.
    let l = ids("legacy-bad.Dockerfile");
    for (id, line) in [
        ("DL4000", 2),
        ("MOAT-DF-006", 5),
        ("MOAT-DF-005", 7),
        ("DL3004", 8),
        ("MOAT-DF-002", 8),
        ("MOAT-DF-003", 9),
        ("MOAT-DF-003", 10),
        ("MOAT-DF-004", 11),
        ("MOAT-DF-004", 12),
        ("MOAT-DF-010", 13),
        ("DL3003", 14),
        ("DL3025", 15),
    ] {
        assert!(
            l.contains(&(id.to_string(), line)),
            "{id} at line {line} missing: {l:?}"
        );
    }
    // Continuations with blank and comment lines inside: one RUN, positioned at its first line.
    let e = get("empty-continuation.Dockerfile");
    assert!(
        e.iter()
            .all(|f| f.location.line != Some(5) && f.location.line != Some(6)),
        "{e:?}"
    );
    // CRLF line endings parse like LF.
    assert!(ids("crlf.Dockerfile").iter().all(|(id, _)| id != "DL3061"));
}

#[test]
fn sarif_of_lint_findings_is_valid() {
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/schemas/sarif/sarif-2.1/sarif-schema-2.1.0.json"
    );
    let Ok(schema_text) = std::fs::read_to_string(schema_path) else {
        eprintln!("SKIPPED: {schema_path} missing (../shared not beside the checkout)");
        return;
    };
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut all = Vec::new();
    for (name, bytes) in corpus() {
        all.extend(moat_lint::lint_dockerfile(&name, &bytes, &Config::default()).expect("lints"));
    }
    let n = all.len();
    assert!(n > 40, "expected many findings over the corpus, got {n}");
    let report = Report::new(
        TargetInfo {
            name: "corpus".into(),
            kind: "dockerfile".into(),
        },
        all,
    );
    let doc: serde_json::Value =
        serde_json::from_str(&moat_report::to_sarif(&report)).expect("SARIF is JSON");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:?}");
    let results = doc["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), n);
    assert!(results.iter().all(|r| {
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .is_some_and(|l| l >= 1)
    }));
}
