//! Every YAML document under ../shared/data/kyverno, ../shared/data/k8s and ../shared/data/workshop
//! judged by every policy there: real inputs of every shape (tests, chainsaw steps, PSS fixtures,
//! RBAC, NetworkPolicies) must load or fail with a named error, and evaluate without panicking.

use std::path::{Path, PathBuf};

use moat_policy::{AdmissionInput, PolicySet, parse_yaml_documents};

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data/kyverno").exists().then_some(p)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shared_document_against_every_policy() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno is missing");
        return;
    };
    let mut files = Vec::new();
    for d in ["data/kyverno", "data/k8s", "data/workshop"] {
        walk(&shared.join(d), &mut files);
    }
    files.sort();
    let mut docs = Vec::new();
    let mut unparsable = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        match parse_yaml_documents(&text, &f.display().to_string()) {
            Ok(d) => docs.extend(d.into_iter().map(|d| (f.display().to_string(), d))),
            Err(e) => {
                assert!(e.to_string().contains(&f.display().to_string()), "{e}");
                unparsable += 1;
            }
        }
    }
    // Load policies one file at a time so one bad document names itself without hiding the rest.
    let mut policy_docs = Vec::new();
    for (src, d) in &docs {
        match PolicySet::from_documents(vec![(src.clone(), d.clone())]) {
            Ok(s) if !s.is_empty() => policy_docs.push((src.clone(), d.clone())),
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains(src.as_str()), "{e}"),
        }
    }
    let set = PolicySet::from_documents(policy_docs).unwrap();
    let mut outcomes = 0;
    for (i, (_, d)) in docs.iter().enumerate() {
        // Every document as a CREATE; a sample also as UPDATE and DELETE (keeps the debug run short).
        let ops: &[&str] = if i % 25 == 0 {
            &["CREATE", "UPDATE", "DELETE"]
        } else {
            &["CREATE"]
        };
        for &op in ops {
            let mut input = AdmissionInput::create(d.clone());
            input.operation = op.to_string();
            if op == "DELETE" {
                input.old_object = Some(d.clone());
                input.object = serde_json::Value::Null;
            }
            outcomes += set.evaluate(&input).len();
        }
    }
    eprintln!(
        "{} files, {} documents ({unparsable} files unparsable), {} policies, {outcomes} outcomes",
        files.len(),
        docs.len(),
        set.len()
    );
    assert!(set.len() > 50 && outcomes > 1000);
}
