//! Scale-out on one real PostgreSQL: one `moat server --role api` takes the registry's push events and two or
//! three `--role worker` processes share the queue. 200 distinct images (the shared Debian images, each
//! variant given one extra layer so its digest differs) are pushed to a real registry; every image is scanned
//! and judged exactly once, and an alert rule on `image.scanned` is delivered exactly once per image, also when
//! one worker is killed with SIGKILL mid-run; the API answers throughout. Throughput figures are printed (not
//! asserted): bench/scale.sh runs this with 1, 2 and 3 workers and records them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{ADMIN, Receiver, free_port, http, moat, wait_for};
use moat_testkit::postgres::Postgres;
use moat_testkit::registry::Registry;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

fn images() -> usize {
    std::env::var("MOAT_SCALE_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn fixtures() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/moat-fixtures")
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// Monolithic blob upload (POST then PUT with the digest), skipped when the registry has the blob.
fn put_blob(a: &ureq::Agent, reg: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let head = a
        .head(format!("http://{reg}/v2/{repo}/blobs/{digest}"))
        .call()
        .expect("HEAD blob");
    if head.status() == 200 {
        return digest;
    }
    let r = a
        .post(format!("http://{reg}/v2/{repo}/blobs/uploads/"))
        .send_empty()
        .expect("start upload");
    assert_eq!(r.status(), 202, "start upload");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("upload location")
        .to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{reg}{loc}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let r = a
        .put(format!("{url}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .send(bytes)
        .expect("PUT blob");
    assert_eq!(r.status(), 201, "PUT blob {digest}");
    digest
}

fn get_json(a: &ureq::Agent, url: &str, accept: &str) -> Value {
    let mut r = a.get(url).header("Accept", accept).call().expect("GET");
    assert_eq!(r.status(), 200, "GET {url}");
    serde_json::from_slice(&r.body_mut().read_to_vec().expect("body")).expect("JSON")
}

/// One tar layer holding one small file, unique per variant.
fn variant_layer(i: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let content = format!("moat scale-out variant {i}\n");
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/moat-variant", content.as_bytes())
        .expect("tar entry");
    b.into_inner().expect("tar")
}

/// Pushes `n` variants of `base` (already in `repo` as tag `base`) as tags v0..v(n-1): the base's layers plus
/// one new layer, a config with that layer's diff_id, a new manifest. Returns the manifest digests.
fn push_variants(reg: &str, repo: &str, n: usize, offset: usize) -> Vec<String> {
    let a = agent();
    let manifest = get_json(
        &a,
        &format!("http://{reg}/v2/{repo}/manifests/base"),
        OCI_MANIFEST,
    );
    let cfg_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config = get_json(
        &a,
        &format!("http://{reg}/v2/{repo}/blobs/{cfg_digest}"),
        "*/*",
    );
    let mut digests = Vec::with_capacity(n);
    for i in 0..n {
        let layer = variant_layer(offset + i);
        let layer_digest = put_blob(&a, reg, repo, &layer);
        let mut cfg = config.clone();
        cfg["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("diff_ids")
            .push(json!(layer_digest));
        if let Some(h) = cfg["history"].as_array_mut() {
            h.push(json!({"created_by": format!("moat scale-out variant {}", offset + i)}));
        }
        let cfg_bytes = serde_json::to_vec(&cfg).expect("config");
        let cfg_digest = put_blob(&a, reg, repo, &cfg_bytes);
        let mut m = manifest.clone();
        m["config"] =
            json!({"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": cfg_bytes.len()});
        m["layers"]
            .as_array_mut()
            .expect("layers")
            .push(json!({"mediaType": OCI_LAYER_TAR, "digest": layer_digest, "size": layer.len()}));
        let body = serde_json::to_vec(&m).expect("manifest");
        let r = a
            .put(format!("http://{reg}/v2/{repo}/manifests/v{i}"))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body[..])
            .expect("PUT manifest");
        assert_eq!(r.status(), 201, "PUT manifest v{i}");
        digests.push(sha256(&body));
    }
    digests
}

fn psql(pg: &Postgres, sql: &str) -> String {
    let o = Command::new("psql")
        .args(["-X", "-A", "-t", "-q", &pg.url(), "-c", sql])
        .output()
        .expect("psql");
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn count(pg: &Postgres, sql: &str) -> usize {
    psql(pg, sql).parse().unwrap_or(0)
}

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let (u, k): (f64, f64) = (rest.get(11)?.parse().ok()?, rest.get(12)?.parse().ok()?);
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

/// CPU seconds of every process of the `postgres` user (this test's cluster when run alone, as the bench does).
fn postgres_cpu_seconds() -> f64 {
    let o = Command::new("ps")
        .args(["-u", "postgres", "-o", "pid="])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    o.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(cpu_seconds)
        .sum()
}

fn server(role: &str, port: u16, store: &str, db: &Path, config: &Path, dir: &Path) -> Proc {
    let log = dir.join(format!("{role}-{port}.log"));
    let child = Command::new(moat())
        .args([
            "server",
            "--role",
            role,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--store", store, "--db"])
        .arg(db)
        .arg("--config")
        .arg(config)
        .args(["--workers", "1"])
        .env("MOAT_SERVER_TOKEN", ADMIN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("moat server");
    let p = Proc { child, log };
    assert!(
        wait_for(Duration::from_secs(30), || {
            matches!(http(port, "GET", "/healthz", None, b""), Ok((200, _, _)))
        }),
        "{role} on {port} did not start: {}",
        p.log_text()
    );
    p
}

fn osv_db(dir: &Path) -> PathBuf {
    let osv = moat_testkit::shared_path("data/osv").expect("shared OSV data");
    let db = dir.join("db");
    let o = Command::new(moat())
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .output()
        .expect("moat db import");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    db
}

/// Scenarios run one at a time: their figures would be meaningless on 2 shared cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 200 pushes, `workers` worker processes (each one scan at a time), optionally SIGKILL one mid-run.
fn scenario(workers: usize, kill_one: bool) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_) = moat_testkit::shared_path("data/osv") else {
        return;
    };
    let bases = [
        ("bookworm", fixtures().join("bookworm/oci")),
        ("bullseye", fixtures().join("bullseye/oci")),
    ];
    if bases.iter().any(|(_, p)| !p.join("index.json").is_file()) {
        moat_testkit::skip(
            "scale_out: the Debian images (scripts/deps.d/00-images.sh) are missing",
        );
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let store = pg.url();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = osv_db(tmp.path());
    let api_port = free_port();
    let notify = format!("http://127.0.0.1:{api_port}/api/v1/registry/events");
    let Some(reg) = Registry::start_with(Some(&notify), Some(ADMIN)) else {
        return;
    };
    let rx = Receiver::start(|_, _| 200);
    std::fs::write(
        tmp.path().join("rules.yaml"),
        format!(
            "targets:\n  - name: receiver\n    type: webhook\n    url: http://127.0.0.1:{}/hook\n    timeout_seconds: 5\n\
             rules:\n  - id: every-scan\n    description: one alert per scanned image\n    event: image.scanned\n    targets: [receiver]\n",
            rx.port
        ),
    )
    .expect("rules");
    let config = tmp.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules: [rules.yaml]\n  poll_ms: 50\nscan:\n  insecure_registries: [\"{}\"]\n  lease_seconds: 5\n  retry_initial_ms: 200\n  retry_max_ms: 1000\n  max_attempts: 20\n",
            reg.addr()
        ),
    )
    .expect("config");

    // The API alone first (it migrates the store), then the workers.
    let api = server("api", api_port, &store, &db, &config, tmp.path());
    let mut pool: Vec<Proc> = (0..workers)
        .map(|_| server("worker", free_port(), &store, &db, &config, tmp.path()))
        .collect();

    // The API keeps answering: a prober asks health and a verdict every 100 ms for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let (probes, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let prober = {
        let (stop, probes, failures) = (stop.clone(), probes.clone(), failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/healthz", "/api/v1/verdicts/sha256:0000"] {
                    let ok = matches!(
                        http(api_port, "GET", path, Some(ADMIN), b""),
                        Ok((200 | 404, _, _))
                    );
                    probes.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Push the bases (one skopeo copy each), then the variants straight over the registry API.
    let n = images();
    let t_push = Instant::now();
    let mut digests = Vec::new();
    for (k, (name, oci)) in bases.iter().enumerate() {
        let repo = format!("scale/{name}");
        reg.push(
            &format!("oci:{}:{name}", oci.display()),
            &format!("{repo}:base"),
        );
        let share = n / 2 + if k == 0 { n % 2 } else { 0 };
        digests.extend(push_variants(&reg.addr(), &repo, share, k * n));
    }
    let base_digests: Vec<String> = bases
        .iter()
        .map(|(name, _)| reg.digest(&format!("scale/{name}:base")))
        .collect();
    let pushed = t_push.elapsed();
    let mut all: Vec<String> = digests.clone();
    all.extend(base_digests.iter().cloned());
    let total = all.len();
    let list = all
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(",");
    let judged_sql = format!(
        "SELECT count(*) FROM artifact WHERE digest IN ({list}) AND verdict IN ('pass','block','allow','deny')"
    );

    // Mid-run, SIGKILL one worker: its job's lease expires and another worker takes it over.
    let t0 = Instant::now();
    if kill_one {
        assert!(
            wait_for(Duration::from_secs(300), || count(&pg, &judged_sql)
                >= total / 3),
            "no progress before the kill: {}",
            pool[0].log_text()
        );
        let mut victim = pool.remove(0);
        victim.child.kill().expect("kill -9");
        victim.child.wait().expect("wait");
        eprintln!(
            "killed one worker at {} / {total} judged",
            count(&pg, &judged_sql)
        );
    }
    let done = wait_for(Duration::from_secs(900), || {
        count(&pg, &judged_sql) == total
    });
    let elapsed = t0.elapsed();
    let judged = count(&pg, &judged_sql);
    assert!(
        done,
        "{judged}/{total} judged; jobs: {}\napi: {}\nworker: {}",
        psql(
            &pg,
            "SELECT state || ':' || count(*) FROM job GROUP BY state"
        ),
        api.log_text(),
        pool.first().map(Proc::log_text).unwrap_or_default()
    );

    // Exactly once: one image.scanned event per image, every scan job done once, no job left behind.
    let scanned = count(
        &pg,
        &format!(
            "SELECT count(*) FROM outbox WHERE event_type = 'image.scanned' AND subject IN ({list})"
        ),
    );
    let distinct = count(
        &pg,
        &format!(
            "SELECT count(DISTINCT subject) FROM outbox WHERE event_type = 'image.scanned' AND subject IN ({list})"
        ),
    );
    assert_eq!((scanned, distinct), (total, total), "image.scanned events");
    let open_jobs = count(&pg, "SELECT count(*) FROM job WHERE state <> 'done'");
    assert_eq!(
        open_jobs,
        0,
        "{}",
        psql(
            &pg,
            "SELECT state || ':' || count(*) FROM job GROUP BY state"
        )
    );
    let taken_over = count(&pg, "SELECT count(*) FROM job WHERE attempts > 1");

    // One alert per image, whatever the workers did.
    assert!(
        wait_for(Duration::from_secs(120), || rx.accepted_per_key().len()
            >= total),
        "{} of {total} alerts delivered",
        rx.accepted_per_key().len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let per_key = rx.accepted_per_key();
    assert_eq!(per_key.len(), total, "alerts per image");
    let dup: Vec<_> = per_key.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "alerts delivered more than once: {dup:?}");

    stop.store(true, Ordering::Relaxed);
    prober.join().expect("prober");
    let (probes, failures) = (
        probes.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    assert!(probes > 0);
    assert_eq!(failures, 0, "the API failed {failures} of {probes} probes");

    let worker_cpu: f64 = pool.iter().map(|p| cpu_seconds(p.child.id())).sum();
    let api_cpu = cpu_seconds(api.child.id());
    let pg_cpu = postgres_cpu_seconds();
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "SCALE workers={workers} kill_one={kill_one} images={total} pushed_in={:.1}s judged_in={secs:.1}s \
         scans_per_min={:.0} taken_over={taken_over} api_probes={probes} api_failures={failures} \
         cpu_ms_per_scan: workers={:.0} api={:.0} postgres={:.0}",
        pushed.as_secs_f64(),
        total as f64 / secs * 60.0,
        worker_cpu * 1000.0 / total as f64,
        api_cpu * 1000.0 / total as f64,
        pg_cpu * 1000.0 / total as f64,
    );
}

#[test]
fn workers_scan_every_pushed_image_exactly_once() {
    let workers = std::env::var("MOAT_SCALE_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    scenario(workers, false);
}

#[test]
fn three_workers_one_killed_mid_run_still_exactly_once() {
    scenario(3, true);
}
