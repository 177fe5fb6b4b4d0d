//! Scan on push with real parts, on SQLite and on a real PostgreSQL: a real registry (distribution,
//! `../shared/scripts/registry.sh`) sends its notifications to a real `moat server` on loopback.
//!
//! - The vulnerable language image pushed with skopeo is pulled, scanned against the server's
//!   database, stored and blocked; a loopback webhook receiver gets the workshop's exercise-2 alert
//!   (the shipped rule file), once.
//! - A clean non-root image (bookworm with `User 65532`) is allowed, and no alert is sent for it.
//! - `moat admission serve --server` denies the first digest and admits the second.
//! - A registry that is down during the pull: the push is acknowledged, survives a `kill -9` of the
//!   server, is retried with backoff and stays pending (never passed) until the registry is back, then
//!   is judged.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use moat_testkit::registry::{Registry, free_port, have};
use serde_json::{Value, json};

const ADMIN: &str = "bootstrap-secret-registry-push-0123456789";
const RULE_ID: &str = "workshop-exercise-2-high-vulnerability-pushed";

mod common;

use common::moat;

fn p(x: &Path) -> String {
    x.display().to_string()
}

/// A child process killed (SIGKILL) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request with the given token: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    common::http(port, method, path, token, body).map(|(status, _, body)| (status, body))
}

/// A loopback webhook receiver that records every POST body and answers 200.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Value>>>,
}

fn receiver() -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = l.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head_end, len) = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            if head_end == 0 {
                continue;
            }
            while buf.len() < head_end + len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = &buf[head_end..(head_end + len).min(buf.len())];
            if let Ok(v) = serde_json::from_slice::<Value>(body) {
                g.lock().unwrap().push(v);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    Receiver { port, got }
}

struct Fixtures {
    lang: String,
    clean: String,
    down: String,
    /// An OCI index: bookworm (root, blocked) as linux/amd64 and `clean` as linux/arm64.
    multi: String,
    multi_digest: String,
    db: PathBuf,
}

/// Adds an image index to an OCI layout naming two of its manifests as platforms; its digest.
fn add_index(layout: &Path, tag: &str, platforms: &[(&str, &str)]) -> String {
    use sha2::Digest;
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let by_tag = |t: &str| -> Value {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t} in {}", index_path.display()))
    };
    let manifests: Vec<Value> = platforms
        .iter()
        .map(|(t, arch)| {
            let m = by_tag(t);
            json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                   "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let doc = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}))
    .unwrap();
    let hex = hex::encode(sha2::Sha256::digest(&doc));
    std::fs::write(layout.join("blobs/sha256").join(&hex), &doc).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{hex}"), "size": doc.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    format!("sha256:{hex}")
}

/// The language image (scripts/deps.d/40-lang-image.sh), two non-root variants of the bookworm image
/// made with umoci, and a database of the npm, PyPI and Go advisories of ../shared.
fn fixtures() -> Option<&'static Fixtures> {
    static F: OnceLock<Option<Fixtures>> = OnceLock::new();
    F.get_or_init(|| {
        let osv = moat_testkit::shared_path("data/osv")?;
        if !have("umoci") {
            moat_testkit::skip("umoci is not installed (../shared/scripts/apt-tools.sh)");
            return None;
        }
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
        let lang = std::env::var_os("MOAT_LANG_IMAGE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache/moat-fixtures/lang-image"))
            .join("oci");
        let bookworm = home.join(".cache/moat-fixtures/bookworm/oci");
        if !lang.join("index.json").is_file() || !bookworm.join("index.json").is_file() {
            moat_testkit::skip(&format!(
                "{} or {} is missing (scripts/deps.d/00-images.sh and 40-lang-image.sh)",
                lang.display(),
                bookworm.display()
            ));
            return None;
        }
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("registry-push");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let base = tmp.join("base");
        let st = Command::new("cp")
            .args(["-a", &p(&bookworm), &p(&base)])
            .status()
            .unwrap();
        assert!(st.success(), "cp bookworm layout");
        for (tag, extra) in [
            ("clean", vec![]),
            (
                "down",
                vec!["--config.label", "dev.moat.test=registry-down"],
            ),
        ] {
            let o = Command::new("umoci")
                .args(["config", "--image", &format!("{}:bookworm", p(&base))])
                .args(["--tag", tag, "--config.user", "65532:65532"])
                .args(extra)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "umoci config {tag}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let multi_digest = add_index(&base, "multi", &[("bookworm", "amd64"), ("clean", "arm64")]);
        let db = tmp.join("db");
        let o = Command::new(moat())
            .args(["db", "import", "--db", &p(&db)])
            .args(["npm", "PyPI", "Go"].map(|e| p(&osv.join(e))))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "moat db import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Some(Fixtures {
            lang: format!("oci:{}:lang", p(&lang)),
            clean: format!("oci:{}:clean", p(&base)),
            down: format!("oci:{}:down", p(&base)),
            multi: format!("oci:{}:multi", p(&base)),
            multi_digest,
            db,
        })
    })
    .as_ref()
}

/// `moat server token create --scope SCOPE` on the store: the secret.
fn token(store: &str, scope: &str) -> String {
    let o = Command::new(moat())
        .args([
            "server", "token", "create", "--scope", scope, "--name", scope,
        ])
        .args(["--store", store])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

struct Server {
    proc: Proc,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn start_server(store: &str, port: u16, db: &Path, config: &Path, log: &Path) -> Server {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(moat())
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--store", store, "--db", &p(db), "--config", &p(config)])
        .args(["--workers", "2"])
        .env("MOAT_SERVER_TOKEN", ADMIN)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("moat server");
    let s = Server {
        proc: Proc(child),
        port,
        log: log.to_path_buf(),
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _)) = http(port, "GET", "/healthz", None, b"") {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moat server did not start on {port}: {}", s.log());
}

fn verdict(port: u16, digest: &str) -> Option<Value> {
    let (st, b) = http(
        port,
        "GET",
        &format!("/api/v1/verdicts/{digest}"),
        Some(ADMIN),
        b"",
    )
    .ok()?;
    (st == 200).then(|| serde_json::from_str(&b).expect("verdict JSON"))
}

/// Polls the verdict until its decision is `want`.
fn wait_decision(s: &Server, digest: &str, want: &str, within: Duration) -> Value {
    let t = Instant::now();
    let mut last = None;
    while t.elapsed() < within {
        if let Some(v) = verdict(s.port, digest) {
            if v["decision"] == want {
                return v;
            }
            // A pending verdict may carry a retry reason; any other decision is final and wrong.
            assert!(
                v["decision"] == "pending",
                "{digest}: expected {want}, got {v}\nserver log:\n{}",
                s.log()
            );
            last = Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{digest}: no {want} verdict within {within:?} (last {last:?})\nserver log:\n{}",
        s.log()
    );
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < within {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {within:?}");
}

/// (state, attempts, last_error) of the scan job of `digest`, and the state of its `image.scanned`
/// outbox event, read from the store itself.
type JobRow = (String, i64, Option<String>);

fn job_and_event(store: &str, digest: &str) -> (Option<JobRow>, Option<String>) {
    use sqlx::Row;
    moat_server::block_on(async {
        let st = moat_server::store::Store::connect(store).await.expect("store");
        let job = sqlx::query(
            "SELECT state, attempts, last_error FROM job WHERE concurrency_key = $1 ORDER BY created_ms DESC LIMIT 1",
        )
        .bind(digest)
        .fetch_optional(st.pool())
        .await
        .expect("job query")
        .map(|r| (r.get(0), r.get(1), r.get(2)));
        let ev = sqlx::query(
            "SELECT state FROM outbox WHERE event_type = 'image.scanned' AND subject = $1",
        )
        .bind(digest)
        .fetch_optional(st.pool())
        .await
        .expect("outbox query")
        .map(|r| r.get(0));
        st.close().await;
        (job, ev)
    })
    .expect("runtime")
}

/// The payload of the `image.scanned` event of `digest`.
fn scanned_payload(store: &str, digest: &str) -> Value {
    use sqlx::Row;
    moat_server::block_on(async {
        let st = moat_server::store::Store::connect(store)
            .await
            .expect("store");
        let body: String = sqlx::query(
            "SELECT payload FROM outbox WHERE event_type = 'image.scanned' AND subject = $1",
        )
        .bind(digest)
        .fetch_one(st.pool())
        .await
        .expect("image.scanned event")
        .get(0);
        st.close().await;
        serde_json::from_str(&body).expect("payload JSON")
    })
    .expect("runtime")
}

/// `moat scan TARGET --format json` with the test database (no server, no layer cache).
fn cli_scan(target: &str, db: &Path) -> Value {
    let o = Command::new(moat())
        .args(["scan", target, "--db", &p(db), "--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "moat scan {target} ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// Sorted (id, package) of a report's or an event's findings.
fn finding_keys(findings: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = findings
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let pkg = f["package"]
                .as_str()
                .map(str::to_string)
                .or_else(|| f["package"]["name"].as_str().map(str::to_string))
                .unwrap_or_default();
            (f["id"].as_str().unwrap_or("").to_string(), pkg)
        })
        .collect();
    v.sort();
    v
}

fn review(uid: &str, image: &str) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "production",
            "operation": "CREATE",
            "userInfo": {"username": "developer"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": uid, "namespace": "production",
                             "annotations": {"moat.dev/scan-status": "passed"}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
    .to_string()
}

fn admission_post(port: u16, ca: &Path, uid: &str, image: &str) -> Value {
    let mut c = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            &p(ca),
            "-H",
            "Content-Type: application/json",
        ])
        .args(["--data-binary", "@-"])
        .arg(format!("https://127.0.0.1:{port}/validate"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    c.stdin
        .take()
        .unwrap()
        .write_all(review(uid, image).as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not an AdmissionReview ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn alerts_for(r: &Receiver, digest: &str) -> Vec<Value> {
    r.got
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a["subject"] == digest)
        .cloned()
        .collect()
}

fn exercise(store: &str) {
    let Some(fx) = fixtures() else { return };
    if !have("curl") {
        moat_testkit::skip("curl is not installed");
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let sport = free_port();
    let ingest = token(store, "ingest");
    let read = token(store, "read");
    let notify = format!("http://127.0.0.1:{sport}/api/v1/registry/events");
    let Some(reg) = Registry::start_with(Some(&notify), Some(&ingest)) else {
        return;
    };
    // A second registry without notifications: it is down while the server pulls from it.
    let Some(reg2) = Registry::start() else {
        return;
    };

    // The shipped exercise-2 rule file, pointed at the loopback receiver.
    let rx = receiver();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/alert-rules/exercise-2.yaml"),
    )
    .unwrap();
    assert!(shipped.contains("http://127.0.0.1:9099/moat-alerts"));
    let rules = tmp.path().join("exercise-2.yaml");
    std::fs::write(
        &rules,
        shipped.replace(
            "http://127.0.0.1:9099/moat-alerts",
            &format!("http://127.0.0.1:{}/moat-alerts", rx.port),
        ),
    )
    .unwrap();
    let config = tmp.path().join("moat-server.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules: [{}]\nscan:\n  insecure_registries: [\"{}\", \"{}\"]\n  retry_initial_ms: 200\n  retry_max_ms: 800\n  max_attempts: 100\n  lease_seconds: 5\n",
            p(&rules),
            reg.addr(),
            reg2.addr()
        ),
    )
    .unwrap();
    let log = tmp.path().join("server.log");
    let server = start_server(store, sport, &fx.db, &config, &log);

    // 1. The vulnerable language image: pushed, scanned on the registry's event, blocked.
    reg.push(&fx.lang, "moat/lang:1");
    let lang = reg.digest("moat/lang:1");
    let v = wait_decision(&server, &lang, "block", Duration::from_secs(60));
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("vulnerability:"), "{v}");
    assert!(reasons.contains("(HIGH)"), "{v}");
    assert!(reasons.contains("root:"), "{v}");
    assert_eq!(v["policy"], "deny HIGH+ fixable; deny root");
    assert!(
        v["snapshot"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")),
        "{v}"
    );
    // The exercise-2 alert reaches the receiver.
    wait_until(
        "exercise-2 alert for the language image",
        Duration::from_secs(30),
        || !alerts_for(&rx, &lang).is_empty(),
    );
    let a = &alerts_for(&rx, &lang)[0];
    assert_eq!(a["rule"]["id"], RULE_ID, "{a}");
    assert_eq!(a["event"], "image.scanned", "{a}");
    let matched = a["matched"].as_array().expect("matched findings");
    assert!(
        matched
            .iter()
            .all(|f| ["HIGH", "CRITICAL"].contains(&f["severity"].as_str().unwrap_or(""))),
        "{a}"
    );
    assert!(
        matched
            .iter()
            .any(|f| f["kind"] == "vulnerability" && f["fixable"] == true),
        "{a}"
    );

    // 2. A clean non-root image: allowed, its event handled, and no alert for it.
    reg.push(&fx.clean, "moat/clean:1");
    let clean = reg.digest("moat/clean:1");
    let v = wait_decision(&server, &clean, "allow", Duration::from_secs(60));
    assert_eq!(v["reasons"], json!([]), "{v}");
    wait_until(
        "the clean image's image.scanned event handled",
        Duration::from_secs(30),
        || job_and_event(store, &clean).1.as_deref() == Some("done"),
    );
    assert!(
        alerts_for(&rx, &clean).is_empty(),
        "alert for a clean image"
    );
    // The layer cache: the language image's layers were all read; the clean image shares its only
    // layer (bookworm's) with it, so nothing was read for it, and the replayed layer judges exactly as
    // a full read does (the CLI, which has no cache).
    let lp = scanned_payload(store, &lang);
    assert_eq!(lp["layers"]["from_cache"], 0, "{}", lp["layers"]);
    assert!(lp["layers"]["read"].as_u64() >= Some(3), "{}", lp["layers"]);
    let cp = scanned_payload(store, &clean);
    assert_eq!(cp["layers"]["total"], 1, "{}", cp["layers"]);
    assert_eq!(cp["layers"]["from_cache"], 1, "{}", cp["layers"]);
    assert_eq!(cp["layers"]["read"], 0, "{}", cp["layers"]);
    let full = cli_scan(&fx.clean, &fx.db);
    assert_eq!(
        cp["packages"].as_u64().map(|n| n.to_string()),
        full["metadata"]["packages"].as_str().map(str::to_string),
        "packages of the cached scan"
    );
    assert_eq!(
        finding_keys(&cp["findings"]),
        finding_keys(&full["findings"])
    );
    assert_eq!(alerts_for(&rx, &lang).len(), 1, "the alert is sent once");
    // A second push of the same digest (a new tag) is not a second scan.
    reg.push(&fx.lang, "moat/lang:again");
    std::thread::sleep(Duration::from_millis(500));
    let (job, _) = job_and_event(store, &lang);
    assert_eq!(job.as_ref().map(|j| j.0.as_str()), Some("done"));
    assert_eq!(
        job.as_ref().map(|j| j.1),
        Some(1),
        "scanned once per digest"
    );

    // An index: one scan per platform (the clean one is already judged), the index gets the worst.
    moat_testkit::registry::push(
        &fx.multi,
        &format!("{}/moat/multi:1", reg.addr()),
        &["--all"],
    );
    let v = wait_decision(&server, &fx.multi_digest, "block", Duration::from_secs(60));
    assert!(
        v["reasons"].to_string().contains("platform linux/amd64"),
        "{v}"
    );
    assert!(!v["reasons"].to_string().contains("linux/arm64"), "{v}");

    // 3. The admission webhook asks the server: the first digest is denied (the annotation alone no
    //    longer admits), the second admitted.
    let certs = tmp.path().join("certs");
    let o = Command::new(moat())
        .args([
            "admission",
            "certs",
            "--out",
            &p(&certs),
            "--name",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tf = tmp.path().join("read.token");
    std::fs::write(&tf, &read).unwrap();
    let aport = free_port();
    let _adm = Proc(
        Command::new(moat())
            .args([
                "admission",
                "serve",
                "--listen",
                &format!("127.0.0.1:{aport}"),
            ])
            .args(["--tls-cert", &p(&certs.join("tls.crt"))])
            .args(["--tls-key", &p(&certs.join("tls.key"))])
            .args(["--server", &format!("http://127.0.0.1:{sport}")])
            .args(["--token-file", &p(&tf)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moat admission serve"),
    );
    let ca = certs.join("ca.crt");
    wait_until("admission webhook up", Duration::from_secs(20), || {
        Command::new("curl")
            .args(["-sf", "--cacert", &p(&ca)])
            .arg(format!("https://127.0.0.1:{aport}/healthz"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let deny = admission_post(
        aport,
        &ca,
        "lang",
        &format!("{}/moat/lang@{lang}", reg.addr()),
    );
    assert_eq!(deny["response"]["allowed"], false, "{deny}");
    let msg = deny["response"]["status"]["message"].to_string();
    assert!(
        msg.contains("vulnerability") || msg.contains("block"),
        "{deny}"
    );
    let admit = admission_post(
        aport,
        &ca,
        "clean",
        &format!("{}/moat/clean@{clean}", reg.addr()),
    );
    assert_eq!(admit["response"]["allowed"], true, "{admit}");

    // 4. The registry is down during the pull: the push is acknowledged (202) and survives kill -9.
    reg2.push(&fx.down, "moat/down:1");
    let down = reg2.digest("moat/down:1");
    reg2.stop();
    let envelope = json!({"events": [{
        "id": "registry-down-1",
        "timestamp": "2026-12-02T14:44:26.402973972Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": down, "size": 1, "length": 1,
            "repository": "moat/down",
            "url": format!("http://{}/v2/moat/down/manifests/{down}", reg2.addr()),
            "tag": "1"
        },
        "request": {"id": "r1", "addr": "127.0.0.1:1", "host": reg2.addr(), "method": "PUT", "useragent": "skopeo"},
        "actor": {}, "source": {"addr": "reg2", "instanceID": "x"}
    }]})
    .to_string();
    let (st, b) = http(
        sport,
        "POST",
        "/api/v1/registry/events",
        Some(&read),
        envelope.as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 403, "a read token cannot ingest: {b}");
    let (st, b) = http(
        sport,
        "POST",
        "/api/v1/registry/events",
        Some(&ingest),
        envelope.as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 202, "{b}");
    let ack: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(ack["queued"], 1, "{ack}");
    let mut server = server;
    let _ = server.proc.0.kill(); // SIGKILL
    let _ = server.proc.0.wait();
    let server = start_server(store, sport, &fx.db, &config, &log);
    let (job, _) = job_and_event(store, &down);
    assert!(job.is_some(), "the acknowledged push was lost by kill -9");
    // A worker killed with the job leased: the lease (5 s here) runs out and the job is taken again.
    wait_until(
        "retries of the pull from the stopped registry",
        Duration::from_secs(40),
        || {
            job_and_event(store, &down)
                .0
                .is_some_and(|j| j.1 >= 3 && j.0 == "queued")
        },
    );
    let (job, _) = job_and_event(store, &down);
    let err = job.and_then(|j| j.2).unwrap_or_default();
    assert!(
        err.contains(&reg2.addr()),
        "the error names the registry: {err}"
    );
    let v = verdict(server.port, &down).expect("verdict of the pending image");
    assert_eq!(
        v["decision"], "pending",
        "never passed while the registry is down: {v}"
    );
    assert!(v["reasons"].to_string().contains("scan attempt"), "{v}");
    // The registry is back: the retry succeeds and the image is judged.
    reg2.restart();
    let v = wait_decision(&server, &down, "allow", Duration::from_secs(30));
    assert_eq!(v["reasons"], json!([]), "{v}");
    let (job, _) = job_and_event(store, &down);
    assert_eq!(job.map(|j| j.0), Some("done".to_string()));

    // The server's log holds no secret.
    let log = server.log();
    for secret in [ADMIN, ingest.as_str(), read.as_str()] {
        assert!(!log.contains(secret), "a token secret in the server log");
    }
    for l in log.lines().filter(|l| l.contains("after the push event")) {
        eprintln!("{l}");
    }
    eprintln!(
        "registry_push on {}: {:?}",
        store.split(':').next().unwrap_or(""),
        started.elapsed()
    );
}

#[test]
fn scan_on_push_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!(
        "sqlite:{}",
        dir.path().join("server.db").display()
    ));
}

#[test]
fn scan_on_push_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url());
}
