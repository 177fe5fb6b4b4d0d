//! Evaluation latency of a policy set: `eval_bench SHARED_DIR [ITERATIONS]`.
//! Loads 20 Kyverno policies from ../shared/data/kyverno (13 pod-security, 7 best-practices), then
//! judges every resource of their tests (Pods, Deployments, CronJobs, Services, Ingresses) in a loop,
//! timing `PolicySet::evaluate` per request (and JSON decode + evaluate, as a webhook does).

use std::path::{Path, PathBuf};
use std::time::Instant;

use moat_policy::{AdmissionInput, PolicySet, parse_yaml_documents};

fn yamls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("artifacthub-pkg.yml")
        })
        .collect();
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
    let data = shared.join("data/kyverno");
    let mut policy_dirs = Vec::new();
    for group in ["pod-security/baseline", "pod-security/restricted"] {
        let mut d: Vec<PathBuf> = std::fs::read_dir(data.join(group))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        d.sort();
        policy_dirs.extend(d);
    }
    for bp in [
        "disallow-latest-tag",
        "require-ro-rootfs",
        "disallow-helm-tiller",
        "require-drop-all",
        "disallow-cri-sock-mount",
        "restrict-node-port",
        "restrict-service-external-ips",
    ] {
        policy_dirs.push(data.join("best-practices").join(bp));
    }
    let files: Vec<PathBuf> = policy_dirs.iter().flat_map(|d| yamls(d)).collect();
    let t = Instant::now();
    let set = PolicySet::load_paths(&files).unwrap();
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut requests = Vec::new();
    for d in &policy_dirs {
        for f in yamls(&d.join(".kyverno-test")) {
            let text = std::fs::read_to_string(&f).unwrap();
            for doc in parse_yaml_documents(&text, &f.display().to_string()).unwrap() {
                if doc
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .is_some_and(|k| k != "Test")
                {
                    requests.push(serde_json::to_vec(&doc).unwrap());
                }
            }
        }
    }
    if let Ok(only) = std::env::var("BENCH_ONE") {
        requests.retain(|b| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["metadata"]["name"]
                == only.as_str()
        });
    }
    let mut eval_us = Vec::new();
    let mut full_us = Vec::new();
    let mut outcomes = 0usize;
    let mut per_request = vec![0f64; requests.len()];
    let start = Instant::now();
    for _ in 0..iterations {
        for (ri, body) in requests.iter().enumerate() {
            let t0 = Instant::now();
            let obj: serde_json::Value = serde_json::from_slice(body).unwrap();
            let input = AdmissionInput::create(obj);
            let t1 = Instant::now();
            let out = set.evaluate(&input);
            let t2 = Instant::now();
            outcomes += out.len();
            eval_us.push((t2 - t1).as_secs_f64() * 1e6);
            per_request[ri] += (t2 - t1).as_secs_f64() * 1e6 / iterations as f64;
            full_us.push((t2 - t0).as_secs_f64() * 1e6);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    eval_us.sort_by(f64::total_cmp);
    full_us.sort_by(f64::total_cmp);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_default();
    println!(
        "policies {} (rules evaluated per request up to {}), unsupported {}",
        set.len(),
        outcomes / eval_us.len().max(1),
        set.unsupported().len()
    );
    println!(
        "load {load_ms:.1} ms; {} requests x {iterations} = {} evaluations in {wall:.2} s ({:.0}/s on one thread)",
        requests.len(),
        eval_us.len(),
        eval_us.len() as f64 / wall
    );
    println!(
        "evaluate: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        pct(&eval_us, 0.5),
        pct(&eval_us, 0.99),
        pct(&eval_us, 1.0)
    );
    println!(
        "decode+evaluate: p50 {:.1} us, p99 {:.1} us",
        pct(&full_us, 0.5),
        pct(&full_us, 0.99)
    );
    println!("peak RSS {rss} kB");
    if std::env::var_os("BENCH_SLOWEST").is_some() {
        let mut idx: Vec<usize> = (0..requests.len()).collect();
        idx.sort_by(|a, b| per_request[*b].total_cmp(&per_request[*a]));
        for i in idx.into_iter().take(8) {
            let v: serde_json::Value = serde_json::from_slice(&requests[i]).unwrap();
            println!(
                "slow: {:.0} us {} {}",
                per_request[i], v["kind"], v["metadata"]["name"]
            );
        }
    }
}
