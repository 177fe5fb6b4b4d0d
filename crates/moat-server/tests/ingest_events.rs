//! Runtime alert and admission decision ingest with the real `moat server` binary, on SQLite and on a
//! real PostgreSQL: moat's and Falco's alert JSON as an array, NDJSON and one object; idempotent per
//! content digest; `runtime_alert` + `workload_image` + outbox `runtime.alert` in one transaction
//! (an image's digest resolved through the tags the server knows); AdmissionReview pairs and moat
//! decision records → `admission_decision`, workloads for admitted pods, `admission.denied` events;
//! 400 naming the item and field, 401, 413, and nothing stored on any error; 10,000 alerts in 10
//! requests with none lost; the per-token rate limit (429 + Retry-After).

mod common;

use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::{Value, json};
use sqlx::Row;

const WEB_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const API_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn report(target: &str) -> String {
    json!({
        "schema": "moat.report/v1",
        "moat_version": "0.1.0",
        "target": {"name": target, "kind": "registry"},
        "metadata": {},
        "summary": {"total": 0, "by_severity": {}, "suppressed": 0},
        "findings": []
    })
    .to_string()
}

/// `moat runtime watch --format json` shape (crates/moat-runtime `rules::Alert`).
fn moat_alert(n: usize, image: &str, pod: &str) -> Value {
    json!({
        "time": format!("2026-08-22T13:00:{:02}.{n:03}Z", n % 60),
        "rule": "Write below etc",
        "priority": "Error",
        "output": format!("File below /etc opened for writing (file=/etc/x{n} command=sh)"),
        "output_fields": {"fd.name": format!("/etc/x{n}"), "proc.name": "sh", "proc.cmdline": "sh -c touch"},
        "tags": ["filesystem"],
        "source": "syscall",
        "hostname": "node-1",
        "container": {"id": format!("{n:012x}"), "runtime": "podman", "name": "app", "image": image,
                      "k8s_ns": "shop", "k8s_pod": pod, "start_ts": 0},
        "mitre": ["T1543"]
    })
}

struct Db {
    rt: tokio::runtime::Runtime,
    store: moat_server::store::Store,
}

impl Db {
    fn open(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = rt
            .block_on(moat_server::store::Store::connect(url))
            .expect("store");
        Db { rt, store }
    }

    fn count(&self, sql: &str) -> i64 {
        self.rt
            .block_on(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM {sql}"
                )))
                .fetch_one(self.store.pool()),
            )
            .expect("count")
            .try_get(0)
            .expect("count")
    }

    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.rt
            .block_on(
                sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(self.store.pool()),
            )
            .expect("rows")
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .map(|s| s.unwrap_or_default())
                            .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()))
                            .expect("column")
                    })
                    .collect()
            })
            .collect()
    }
}

fn exercise(store: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(store, dir.path(), &["--max-body-bytes", "4194304"]);
    let p = s.port;
    // The server knows two tags (from reports), so alerts naming only the tag find the digest.
    for t in [
        format!("registry:reg.example/shop/web:1.0@{WEB_DIGEST}"),
        format!("registry:reg.example/shop/api:2@{API_DIGEST}"),
    ] {
        let (st, v) = post(p, "/api/v1/reports", report(&t).as_bytes());
        assert_eq!(st, 201, "{v}");
    }
    let db = Db::open(store);

    // moat alerts as an array.
    let arr = json!([
        moat_alert(1, "reg.example/shop/web:1.0", "web-1"),
        moat_alert(2, "reg.example/shop/web:1.0", "web-2")
    ]);
    let (st, v) = post(p, "/api/v1/runtime/alerts", arr.to_string().as_bytes());
    assert_eq!(st, 202, "{v}");
    assert_eq!(v, json!({"accepted": 2, "duplicates": 0}));
    // Falco alerts as NDJSON, one with the digest in output_fields, one repeated inside the body.
    let mut f1 = falco_alert(7, "Terminal shell in container", "prod");
    f1["output_fields"]["container.image.digest"] = json!(API_DIGEST);
    let f2 = falco_alert(8, "Terminal shell in container", "prod");
    let nd = format!("{f1}\n{f2}\n{f2}\n");
    let (st, v) = post(p, "/api/v1/runtime/alerts?cluster=eu-1", nd.as_bytes());
    assert_eq!(st, 202, "{v}");
    assert_eq!(v, json!({"accepted": 2, "duplicates": 1}));
    // The same alerts again, keys reordered: duplicates.
    let (st, v) = post(p, "/api/v1/runtime/alerts", f1.to_string().as_bytes());
    assert_eq!(st, 202);
    assert_eq!(v, json!({"accepted": 0, "duplicates": 1}));

    assert_eq!(db.count("runtime_alert"), 4);
    assert_eq!(
        db.count("outbox WHERE event_type = 'runtime.alert'"),
        4,
        "one event per new alert"
    );
    let rows = db.rows(
        "SELECT rule, priority, namespace, pod, digest, source FROM runtime_alert ORDER BY ts_ms",
    );
    assert_eq!(
        rows[0],
        [
            "Terminal shell in container",
            "Warning",
            "prod",
            "payments-7d9c6f7b9-7",
            API_DIGEST,
            "syscall"
        ]
    );
    let web: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "Write below etc").collect();
    assert_eq!(web.len(), 2);
    assert!(
        web.iter()
            .all(|r| r[1] == "Error" && r[2] == "shop" && r[4] == WEB_DIGEST),
        "{web:?}"
    );
    // Where the images run.
    let wl = db.rows(
        "SELECT cluster, namespace, workload, pod, container, digest, source FROM workload_image \
         ORDER BY cluster, pod",
    );
    assert_eq!(
        wl,
        [
            vec![
                "default",
                "shop",
                "Pod/web-1",
                "web-1",
                "app",
                WEB_DIGEST,
                "runtime"
            ],
            vec![
                "default",
                "shop",
                "Pod/web-2",
                "web-2",
                "app",
                WEB_DIGEST,
                "runtime"
            ],
            vec![
                "eu-1",
                "prod",
                "Pod/payments-7d9c6f7b9-7",
                "payments-7d9c6f7b9-7",
                "000000000007",
                API_DIGEST,
                "runtime"
            ],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .collect::<Vec<_>>(),
        "the Falco alert without a digest or tag has no workload row"
    );
    let ev = db.rows("SELECT payload FROM outbox WHERE event_type = 'runtime.alert'");
    let payloads: Vec<Value> = ev
        .iter()
        .map(|r| serde_json::from_str(&r[0]).expect("payload"))
        .collect();
    let e = payloads
        .iter()
        .find(|e| e["sender"] == "moat")
        .expect("moat event");
    assert_eq!(e["severity"], "HIGH");
    assert_eq!(e["repository"], "reg.example/shop/web");
    assert_eq!(e["digest"], WEB_DIGEST);
    assert!(
        payloads
            .iter()
            .any(|e| e["sender"] == "falco" && e["severity"] == "MEDIUM")
    );

    // Errors: 400 naming the item and field, 401, 413; nothing stored by any of them.
    let mut bad = falco_alert(9, "r", "prod");
    bad["priority"] = json!("Severe");
    let body = json!([
        falco_alert(10, "r", "prod"),
        falco_alert(11, "r", "prod"),
        bad
    ])
    .to_string();
    let (st, v) = post(p, "/api/v1/runtime/alerts", body.as_bytes());
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("item 2: field `priority` is \"Severe\""),
        "{v}"
    );
    let (st, v) = post(p, "/api/v1/runtime/alerts", b"[{\"rule\": \"r\",");
    assert_eq!(st, 400);
    assert!(
        v["error"].as_str().expect("error").contains("line 1"),
        "{v}"
    );
    let nd = format!(
        "{}\n{{\"rule\": \"x\", \"priority\": \"Warning\"}}\n",
        falco_alert(12, "r", "p")
    );
    let (st, v) = post(p, "/api/v1/runtime/alerts", nd.as_bytes());
    assert_eq!(st, 400);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("line 2: field `output` is missing"),
        "{v}"
    );
    let (st, v) = post(p, "/api/v1/runtime/alerts", b"{\"hello\": 1}");
    assert_eq!(st, 400);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("`rule` is missing"),
        "{v}"
    );
    let (st, _, b) = http(
        p,
        "POST",
        "/api/v1/runtime/alerts",
        Some("moat_wrong"),
        arr.to_string().as_bytes(),
    )
    .expect("post");
    assert_eq!(st, 401, "{b}");
    let big: Vec<Value> = (0..20_000)
        .map(|i| falco_alert(1000 + i, "r", "prod"))
        .collect();
    let (st, _) = post(
        p,
        "/api/v1/runtime/alerts",
        serde_json::to_string(&big).expect("json").as_bytes(),
    );
    assert_eq!(st, 413, "a body above --max-body-bytes");
    assert_eq!(db.count("runtime_alert"), 4, "errors stored nothing");
    assert_eq!(db.count("outbox WHERE event_type = 'runtime.alert'"), 4);

    // Admission: an AdmissionReview the webhook denied, and a moat decision record it allowed.
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "7f0c", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop",
            "operation": "CREATE", "name": "web-3",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-3", "namespace": "shop"},
                "spec": {"containers": [{"name": "app", "image": "reg.example/shop/web:1.0"}]}}},
        "response": {"uid": "7f0c", "allowed": false, "status": {"code": 403,
            "message": "moat denied the request: image-scanned: moat server verdict for sha256:1111 is block; require-non-root: container app runs as root"}}
    });
    let record = json!({
        "time": "2026-08-22T13:05:00Z", "allowed": true, "operation": "CREATE", "namespace": "shop",
        "kind": "Deployment", "name": "api",
        "containers": [{"name": "api", "image": "reg.example/shop/api:2"}], "reasons": []
    });
    let (st, v) = post(
        p,
        "/api/v1/admission/decisions",
        json!([review, record]).to_string().as_bytes(),
    );
    assert_eq!(st, 202, "{v}");
    assert_eq!(v, json!({"accepted": 2, "duplicates": 0}));
    let (st, v) = post(
        p,
        "/api/v1/admission/decisions",
        review.to_string().as_bytes(),
    );
    assert_eq!(st, 202);
    assert_eq!(v, json!({"accepted": 0, "duplicates": 1}));
    let ad = db.rows(
        "SELECT allowed, namespace, kind, name, images, reasons FROM admission_decision ORDER BY allowed",
    );
    assert_eq!(ad[0][..4], ["0", "shop", "Pod", "web-3"]);
    assert_eq!(ad[0][4], "[\"reg.example/shop/web:1.0\"]");
    let reasons: Vec<String> = serde_json::from_str(&ad[0][5]).expect("reasons");
    assert_eq!(
        reasons,
        [
            "image-scanned: moat server verdict for sha256:1111 is block",
            "require-non-root: container app runs as root"
        ]
    );
    assert_eq!(ad[1][..4], ["1", "shop", "Deployment", "api"]);
    let denied =
        db.rows("SELECT subject, payload FROM outbox WHERE event_type = 'admission.denied'");
    assert_eq!(
        denied.len(),
        1,
        "one event for the denial, none for the admission"
    );
    let pl: Value = serde_json::from_str(&denied[0][1]).expect("payload");
    assert_eq!(pl["namespace"], "shop");
    assert_eq!(pl["containers"][0]["digest"], WEB_DIGEST);
    assert_eq!(
        db.rows(
            "SELECT workload, pod, container, digest FROM workload_image WHERE source = 'admission'"
        ),
        [vec![
            "Deployment/api".to_string(),
            String::new(),
            "api".into(),
            API_DIGEST.into()
        ]],
        "only the admitted workload runs"
    );
    let (st, v) = post(
        p,
        "/api/v1/admission/decisions",
        json!({"allowed": "no", "kind": "Pod"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(st, 400);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("item 0: field `allowed` must be a boolean"),
        "{v}"
    );
    let (st, v) = post(
        p,
        "/api/v1/admission/decisions",
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x"}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(st, 400);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("no `response`"),
        "{v}"
    );
    assert_eq!(db.count("admission_decision"), 2);

    // Volume: 10,000 alerts in 10 requests, one transaction each; none lost.
    let before = db.count("runtime_alert");
    let t = Instant::now();
    for b in 0..10 {
        let batch: Vec<Value> = (0..1000)
            .map(|i| {
                falco_alert(
                    100_000 + b * 2000 + i,
                    "Terminal shell in container",
                    "load",
                )
            })
            .collect();
        let (st, v) = post(
            p,
            "/api/v1/runtime/alerts",
            serde_json::to_string(&batch).expect("json").as_bytes(),
        );
        assert_eq!(st, 202, "{v}");
        assert_eq!(v["accepted"], 1000);
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "runtime alert ingest ({}): 10000 alerts in {secs:.2} s = {:.0} alerts/s",
        if store.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        },
        10000.0 / secs
    );
    assert_eq!(db.count("runtime_alert") - before, 10_000, "none lost");
    assert_eq!(
        db.count("outbox WHERE event_type = 'runtime.alert'"),
        4 + 10_000
    );
    db.rt.block_on(db.store.close());
}

#[test]
fn ingest_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    exercise(&format!("sqlite:{}", dir.path().join("s.db").display()));
}

#[test]
fn ingest_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url());
}

#[test]
fn rate_limit_per_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = format!("sqlite:{}", dir.path().join("s.db").display());
    let cfg = dir.path().join("server.yaml");
    std::fs::write(&cfg, "limits:\n  requests_per_second: 0.5\n  burst: 3\n").expect("config");
    let s = start(
        &store,
        dir.path(),
        &["--config", cfg.to_str().expect("utf8")],
    );
    let p = s.port;
    let out = Command::new(moat())
        .args([
            "server", "token", "create", "--scope", "read", "--store", &store,
        ])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    for i in 0..3 {
        let (st, _, b) =
            http(p, "GET", "/api/v1/alerts/deliveries", Some(ADMIN), b"").expect("get");
        assert_eq!(st, 200, "request {i}: {b}");
    }
    let (st, head, b) = http(p, "GET", "/api/v1/alerts/deliveries", Some(ADMIN), b"").expect("get");
    assert_eq!(st, 429, "{b}");
    assert!(b.contains("rate limit"), "{b}");
    let retry = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    assert_eq!(retry, "2", "one request per 2 s");
    // Another token has its own bucket; the refusal was counted; /healthz is not limited.
    let (st, _, b) = http(p, "GET", "/metrics", Some(&read), b"").expect("metrics");
    assert_eq!(st, 200, "{b}");
    assert!(b.contains("moat_requests_rejected_total 1"), "{b}");
    for _ in 0..10 {
        assert_eq!(
            http(p, "GET", "/healthz", None, b"").expect("healthz").0,
            200
        );
    }
    // A wrong token is 401 before any limit.
    assert_eq!(
        http(p, "GET", "/metrics", Some("moat_x"), b"")
            .expect("get")
            .0,
        401
    );
    // After the wait, the first token is served again.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (st, _, b) = http(p, "GET", "/api/v1/alerts/deliveries", Some(ADMIN), b"").expect("get");
    assert_eq!(st, 200, "{b}");
}

/// `moat scan … --server URL --token-file F` against a real server: the report it made is stored
/// (and a repeat is a duplicate); a wrong token, an unreachable server or a missing token file is
/// exit 2 with a message saying so (fail closed).
#[test]
fn scan_uploads_its_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = format!("sqlite:{}", dir.path().join("s.db").display());
    let s = start(&store, dir.path(), &[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let out = Command::new(moat())
        .args([
            "server", "token", "create", "--scope", "ingest", "--store", &store,
        ])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = dir.path().join("ingest.token");
    std::fs::write(&token, &out.stdout).expect("token file");
    // A small project: an npm lockfile with one package, matched against an empty database dir.
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(&proj).expect("proj");
    std::fs::write(
        proj.join("package-lock.json"),
        r#"{"name": "app", "lockfileVersion": 3, "packages": {"": {"name": "app"}, "node_modules/lodash": {"version": "4.17.15"}}}"#,
    )
    .expect("lockfile");
    let db = dir.path().join("db");
    let scan = |server: &str, token: &std::path::Path| {
        Command::new(moat())
            .args([
                "scan",
                &format!("dir:{}", proj.display()),
                "--format",
                "table",
                "--db",
            ])
            .arg(&db)
            .args(["--server", server, "--token-file"])
            .arg(token)
            .output()
            .expect("moat scan")
    };
    let o = scan(&url, &token);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("report stored to {url}")), "{err}");
    let digest = err
        .split("(sha256:")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .map(|h| format!("sha256:{h}"))
        .unwrap_or_else(|| panic!("no digest in {err}"));
    let db_store = Db::open(&store);
    assert!(
        db_store
            .rt
            .block_on(db_store.store.report_exists(&digest))
            .expect("exists"),
        "the uploaded report is stored"
    );
    // The table went to stdout; the upload is the JSON report.
    assert!(!o.stdout.is_empty());
    let n = db_store.count("report");
    let o = scan(&url, &token);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A rescan makes a new report (its scan time differs) or the same one (a duplicate): never lost.
    assert!(db_store.count("report") >= n);

    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "moat_0000\n").expect("wrong token");
    let o = scan(&url, &wrong);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("upload failed") && err.contains("HTTP 401"),
        "{err}"
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    let o = scan(&closed, &token);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot reach moat server"), "{err}");
    let o = scan(&url, &dir.path().join("missing.token"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--token-file"));
    let o = Command::new(moat())
        .args(["scan", &format!("dir:{}", proj.display()), "--server", &url])
        .output()
        .expect("moat scan");
    assert_eq!(o.status.code(), Some(2), "--server needs --token-file");
    db_store.rt.block_on(db_store.store.close());
}

/// A database of ../shared's npm advisories, built once per test binary (None: skipped visibly).
fn npm_db() -> Option<&'static std::path::PathBuf> {
    static DB: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DB.get_or_init(|| {
        let osv = moat_testkit::shared_path("data/osv")?;
        let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ingest-events-npm-db");
        let _ = std::fs::remove_dir_all(&db);
        let o = Command::new(moat())
            .args(["db", "import", "--db"])
            .arg(&db)
            .arg(osv.join("npm"))
            .output()
            .expect("moat db import");
        assert!(
            o.status.success(),
            "moat db import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Some(db)
    })
    .as_ref()
}

const LODASH_CDX: &str = r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
  "metadata": {"component": {"type": "container", "name": "reg.example/shop/web"}},
  "components": [{"type": "library", "name": "lodash", "version": "4.17.15", "purl": "pkg:npm/lodash@4.17.15"}]}"#;

const LODASH_SPDX: &str = r#"{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
  "name": "api", "documentNamespace": "https://moat.example/spdx/api",
  "creationInfo": {"created": "2026-08-22T12:00:00Z", "creators": ["Tool: test"]},
  "packages": [{"SPDXID": "SPDXRef-Package-lodash", "name": "lodash", "versionInfo": "4.17.20", "downloadLocation": "NOASSERTION",
    "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:npm/lodash@4.17.20"}]}]}"#;

fn sbom_ingest(store: &str) {
    let Some(db) = npm_db() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let s = start(store, dir.path(), &["--db", db.to_str().expect("utf8")]);
    let p = s.port;
    let dbs = Db::open(store);
    let q = format!("/api/v1/sboms?digest={WEB_DIGEST}&repository=reg.example/shop/web&tag=1.0");
    let (st, v) = post(p, &q, LODASH_CDX.as_bytes());
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["digest"], WEB_DIGEST);
    assert_eq!(v["packages"], 1);
    assert!(
        v["findings"].as_u64().expect("findings") >= 1,
        "lodash 4.17.15 has advisories: {v}"
    );
    assert_eq!(
        v["verdict"], "block",
        "a fixable HIGH blocks under the default gate: {v}"
    );
    // The same upload again: a duplicate, nothing new.
    let (st, v2) = post(p, &q, LODASH_CDX.as_bytes());
    assert_eq!(st, 200, "{v2}");
    assert_eq!(v2["duplicate"], true);
    assert_eq!(v2["verdict"], "block");
    let (st, b) = get(p, &format!("/api/v1/verdicts/{WEB_DIGEST}"));
    assert_eq!(st, 200);
    assert!(b.contains("\"block\""), "{b}");
    assert_eq!(
        dbs.count(&format!(
            "finding WHERE digest = '{WEB_DIGEST}' AND source = 'server' AND resolved_ms IS NULL"
        )),
        v["findings"].as_i64().expect("n"),
        "every finding stored"
    );
    assert_eq!(
        dbs.count(&format!(
            "outbox WHERE event_type = 'image.scanned' AND subject = '{WEB_DIGEST}'"
        )),
        1
    );
    assert_eq!(dbs.count(&format!("sbom WHERE digest = '{WEB_DIGEST}'")), 1);
    // SPDX, for another image.
    let (st, v) = post(
        p,
        &format!("/api/v1/sboms?digest={API_DIGEST}&repository=reg.example/shop/api"),
        LODASH_SPDX.as_bytes(),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["packages"], 1);
    // Errors: 400 naming what is wrong; nothing stored.
    let reports = dbs.count("report");
    let outbox = dbs.count("outbox");
    for (query, body, want) in [
        (q.as_str(), &b"{\"bomFormat\": "[..], "line"),
        (q.as_str(), &b"{\"hello\": 1}"[..], "sbom"),
        (
            "/api/v1/sboms?digest=sha256:abc",
            LODASH_CDX.as_bytes(),
            "digest",
        ),
        (
            "/api/v1/sboms?digest=sha256:abc&colour=red",
            LODASH_CDX.as_bytes(),
            "colour",
        ),
    ] {
        let (st, v) = post(p, query, body);
        assert_eq!(st, 400, "{query}: {v}");
        let e = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        assert!(e.contains(want), "{query}: {e}");
    }
    assert_eq!(dbs.count("report"), reports, "errors stored nothing");
    assert_eq!(dbs.count("outbox"), outbox);
    drop(s);
    // A server without a vulnerability database refuses to judge an SBOM (503), storing nothing.
    let s = start(
        store,
        dir.path(),
        &["--db", dir.path().join("no-db").to_str().expect("utf8")],
    );
    let (st, v) = post(
        s.port,
        &format!("/api/v1/sboms?digest=sha256:{}", "3".repeat(64)),
        LODASH_CDX.as_bytes(),
    );
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("no vulnerability database"),
        "{v}"
    );
    assert_eq!(dbs.count("report"), reports);
    dbs.rt.block_on(dbs.store.close());
}

#[test]
fn sbom_ingest_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    sbom_ingest(&format!("sqlite:{}", dir.path().join("s.db").display()));
}

#[test]
fn sbom_ingest_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    sbom_ingest(&pg.url());
}
