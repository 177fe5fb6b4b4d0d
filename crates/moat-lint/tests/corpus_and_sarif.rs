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

/// Hostile and huge inputs: every prefix of every corpus file and byte-flipped variants either lint or
/// fail with an error naming the file (never a panic), and a very large generated Dockerfile (pragmas,
/// stages, long RUNs, deep substitutions) is linted in one pass.
#[test]
fn hostile_and_huge_inputs_do_not_panic() {
    let cfg = Config::default();
    for (name, bytes) in corpus() {
        let step = (bytes.len() / 40).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            match moat_lint::lint_dockerfile(&name, &bytes[..cut], &cfg) {
                Ok(_) => {}
                Err(e) => assert!(e.to_string().contains(&name), "{e}"),
            }
            let mut flipped = bytes.clone();
            for k in (cut..flipped.len()).step_by(97) {
                flipped[k] = b"\\`\"'$(){}<|&;#\n\t\xc3"[k % 16];
            }
            if let Err(e) = moat_lint::lint_dockerfile(&name, &flipped, &cfg) {
                assert!(e.to_string().contains(&name), "{e}");
            }
        }
    }
    let mut big = String::new();
    for s in 0..200 {
        big.push_str(&format!(
            "# moat stage ignore=MOAT-DF-009\nFROM debian:12 AS s{s}\n"
        ));
        for k in 0..100 {
            big.push_str(&format!("# hadolint ignore=DL3008,DL3059\nRUN apt-get install -y p{k} && pip install q{k} && echo $(echo $(echo $(uname))) \\\n  && dnf install -y r-${{V{k}}}\nENV V{k}=1 PIP_NO_CACHE_DIR=1\n"));
        }
    }
    let deep = format!(
        "# moat ignore=MOAT-DF-009\nFROM a:1\nRUN {}x{}\n",
        "$(".repeat(5000),
        ")".repeat(5000)
    );
    big.push_str(&deep);
    let fs =
        moat_lint::lint_dockerfile("big.Dockerfile", big.as_bytes(), &cfg).expect("big file lints");
    // The first RUN of each stage comes before its ENV PIP_NO_CACHE_DIR: one DL3042 per stage.
    assert_eq!(fs.iter().filter(|f| f.id == "DL3042").count(), 200);
    assert!(fs.iter().any(|f| f.id == "DL3015"));
    let bad: Vec<_> = fs
        .iter()
        .filter(|f| f.id == "DL3008" || f.id == "DL3059" || f.id == "MOAT-DF-009")
        .map(|f| (f.id.clone(), f.location.line))
        .collect();
    // Stage pragmas count stages as hadolint does: a FROM line belongs to the stage before it, so the
    // first FROM (line 2) is not covered and every later one is.
    assert_eq!(bad, vec![("MOAT-DF-009".to_string(), Some(2))]);
}
