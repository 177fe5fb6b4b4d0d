//! Policy evaluation per AdmissionReview: 20 Kyverno ValidatingPolicies (CEL) against the same 20
//! policies as classic ClusterPolicies (JMESPath patterns), from ../shared/data/kyverno-policies.
//! `vpol_vs_classic SHARED_DIR [ITERATIONS]`: picks the first 20 folders of the `-vpol` families whose
//! classic counterpart exists and which load with nothing unsupported, builds one AdmissionReview per
//! resource of the classic tests, then per request decodes the review JSON, builds the
//! AdmissionInput and evaluates it, on one thread, alternating the two sets.

use std::path::{Path, PathBuf};
use std::time::Instant;

use moat_policy::{AdmissionInput, PolicySet, parse_yaml_documents};
use serde_json::{Value, json};

fn dirs(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn policy_files(folder: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shared = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("../shared"));
    let iterations: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let lib = shared.join("data/kyverno-policies");
    let mut pairs = Vec::new();
    for fam in [
        "pod-security-vpol/baseline",
        "best-practices-vpol",
        "other-vpol",
    ] {
        for v in dirs(&lib.join(fam)) {
            let rel = v
                .strip_prefix(&lib)
                .unwrap()
                .to_string_lossy()
                .replace("-vpol", "");
            let c = lib.join(rel);
            if !c.is_dir() {
                continue;
            }
            let (Ok(vs), Ok(cs)) = (
                PolicySet::load_paths(&policy_files(&v)),
                PolicySet::load_paths(&policy_files(&c)),
            ) else {
                continue;
            };
            if vs.is_empty()
                || cs.is_empty()
                || !vs.unsupported().is_empty()
                || !cs.unsupported().is_empty()
            {
                continue;
            }
            pairs.push((v, c));
            if pairs.len() == 20 {
                break;
            }
        }
    }
    assert_eq!(
        pairs.len(),
        20,
        "need 20 policy pairs, found {}",
        pairs.len()
    );
    let t = Instant::now();
    let vpol = PolicySet::load_paths(
        &pairs
            .iter()
            .flat_map(|(v, _)| policy_files(v))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let load_v = t.elapsed();
    let t = Instant::now();
    let classic = PolicySet::load_paths(
        &pairs
            .iter()
            .flat_map(|(_, c)| policy_files(c))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let load_c = t.elapsed();
    // Resources: every document of the classic tests' resource files.
    let mut reviews: Vec<Vec<u8>> = Vec::new();
    for (_, c) in &pairs {
        let tdir = c.join(".kyverno-test");
        let Ok(text) = std::fs::read_to_string(tdir.join("kyverno-test.yaml")) else {
            continue;
        };
        let test = parse_yaml_documents(&text, "test").unwrap().remove(0);
        for r in test["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let Ok(t) = std::fs::read_to_string(tdir.join(r)) else {
                continue;
            };
            for (i, d) in parse_yaml_documents(&t, r)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                if !d.is_object() {
                    continue;
                }
                let kind = d["kind"].as_str().unwrap_or("").to_string();
                let ns = d
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string();
                reviews.push(serde_json::to_vec(&json!({
                    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "request": {"uid": format!("u{i}"), "kind": {"kind": kind}, "operation": "CREATE",
                        "namespace": ns, "userInfo": {"username": "bench"}, "object": d}
                })).unwrap());
            }
        }
    }
    let judge = |set: &PolicySet, body: &[u8]| -> usize {
        let v: Value = serde_json::from_slice(body).unwrap();
        let r = &v["request"];
        let input = AdmissionInput {
            object: r["object"].clone(),
            operation: r["operation"].as_str().unwrap_or("").to_string(),
            namespace: r["namespace"].as_str().map(str::to_string),
            user_info: r["userInfo"].clone(),
            ..Default::default()
        };
        set.evaluate(&input).len()
    };
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut outcomes = [0usize; 2];
    let mut total = [0f64; 2];
    for _ in 0..iterations {
        for body in &reviews {
            for (k, set) in [&vpol, &classic].into_iter().enumerate() {
                let t = Instant::now();
                outcomes[k] += judge(set, body);
                let e = t.elapsed().as_secs_f64();
                times[k].push(e);
                total[k] += e;
            }
        }
    }
    println!(
        "20 policy pairs ({} ValidatingPolicies, {} ClusterPolicies; load {:.1} ms / {:.1} ms), {} AdmissionReviews x {iterations}",
        vpol.len(),
        classic.len(),
        load_v.as_secs_f64() * 1e3,
        load_c.as_secs_f64() * 1e3,
        reviews.len()
    );
    for (k, name) in ["ValidatingPolicy (CEL)", "ClusterPolicy (classic)"]
        .iter()
        .enumerate()
    {
        let mut s = times[k].clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "| {name} | {:.0} | {:.1} µs | {:.1} µs | {:.1} µs | {} |",
            s.len() as f64 / total[k],
            pct(&s, 0.5) * 1e6,
            pct(&s, 0.99) * 1e6,
            s.iter().sum::<f64>() / s.len() as f64 * 1e6,
            outcomes[k] / iterations.max(1)
        );
    }
    let names: Vec<String> = pairs
        .iter()
        .map(|(v, _)| v.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    println!("policies: {}", names.join(", "));
}
