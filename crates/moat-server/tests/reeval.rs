//! Continuous re-evaluation with real parts, on SQLite and on a real PostgreSQL: the language test
//! image is scanned by the real `moat` CLI against a database built from real OSV records WITHOUT
//! one advisory (PYSEC-2023-192, HIGH, fixed in urllib3 1.26.17); the report goes to a real `moat
//! server` with POST /api/v1/reports and its SBOM into the package index; the server judges it
//! `allow`. A MEDIUM lodash record imported and reloaded first is `finding.new` without a verdict
//! change. Then the advisory is imported into the server's database with `moat db import` and
//! POST /api/v1/db/reload: the server records `finding.new` for that image with the new snapshot
//! digest, flips its verdict to `block` with an `image.verdict.changed` event, and the advisory is
//! answered by alias (CVE-2023-43804). No registry is involved at all: the image is never pulled
//! again (the only image read is the CLI's scan of the local OCI layout before the server starts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{ADMIN, moat};

/// The shared harness's server (tests/common), with this test's vulnerability database.
fn start(store: &str, db: &Path, dir: &Path) -> common::Server {
    common::start(store, dir, &["--db", &db.display().to_string()])
}

fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    common::http(port, method, path, Some(ADMIN), body).map(|(st, _, body)| (st, body))
}

fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (st, b) = http(port, "GET", path, b"").expect("http");
    (st, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run moat");
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Waits until `n` re-evaluation runs are recorded; returns the last one.
fn wait_runs(port: u16, n: usize, log: &Path) -> Value {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let (st, v) = get_json(port, "/api/v1/db/reevaluations");
        assert_eq!(st, 200, "{v}");
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= n {
            return runs[0].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "fewer than {n} re-evaluation runs after 60 s; server log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

const ADVISORY: &str = "PYSEC-2023-192";

fn exercise(store_url: &str) {
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let layout = home.join(".cache/moat-fixtures/lang-image/oci");
    if !layout.join("index.json").exists() {
        moat_testkit::skip(&format!(
            "{} is missing (scripts/deps.d/40-lang-image.sh builds it)",
            layout.display()
        ));
        return;
    }
    let Some(pypi) = moat_testkit::shared_path("data/osv/PyPI") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The database WITHOUT the advisory: every real urllib3 record but PYSEC-2023-192.
    let recs = dir.path().join("records");
    std::fs::create_dir_all(&recs).expect("mkdir");
    let mut n = 0;
    for e in std::fs::read_dir(&pypi).expect("read PyPI") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("read record");
        if text.contains("\"urllib3\"") && !p.ends_with(format!("{ADVISORY}.json")) {
            std::fs::copy(&p, recs.join(p.file_name().expect("name"))).expect("copy");
            n += 1;
        }
    }
    assert!(n >= 5, "urllib3 records: {n}");
    let db = dir.path().join("db");
    run(Command::new(moat())
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&recs));
    // The real CLI's report and SBOM of the language test image, against that database.
    let target = format!("oci:{}:lang", layout.display());
    let report = run(Command::new(moat())
        .args(["scan", &target, "-f", "json", "--db"])
        .arg(&db));
    let r: Value = serde_json::from_str(&report).expect("report JSON");
    let ids: Vec<String> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .flat_map(|f| {
            std::iter::once(f["id"].as_str().unwrap_or("").to_string()).chain(
                f["aliases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a.as_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    assert!(!ids.is_empty(), "the scan found urllib3's other advisories");
    assert!(
        !ids.iter().any(|i| i == ADVISORY || i == "CVE-2023-43804"),
        "the report must not know {ADVISORY}: {ids:?}"
    );
    let inventory: moat_model::Inventory = serde_json::from_str(&run(
        Command::new(moat()).args(["sbom", &target, "-f", "json"])
    ))
    .expect("inventory JSON");

    let s = start(store_url, &db, dir.path());
    let log = s.log.clone();
    let p = s.port;
    // The snapshot seen at start is the baseline (no SBOM stored yet).
    let first = wait_runs(p, 1, &log);
    assert_eq!(first["images"], 0, "{first}");
    let (st, b) = http(p, "POST", "/api/v1/reports", report.as_bytes()).expect("post");
    assert_eq!(st, 201, "{b}");
    let (st, page) = get_json(p, "/api/v1/images?tag=lang");
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["total"], 1, "{page}");
    let digest = page["images"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    // The SBOM goes into the package -> image index, as the push pipeline and SBOM ingest store it.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt
        .block_on(moat_server::store::Store::connect(store_url))
        .expect("store");
    rt.block_on(async {
        let mut tx = store.begin().await.expect("tx");
        moat_server::store::query::index_inventory(&mut tx, &digest, &inventory)
            .await
            .expect("index");
        tx.commit().await.expect("commit");
    });
    // A full re-match judges the uploaded image against the server's snapshot: nothing HIGH.
    let (st, b) = http(p, "POST", "/api/v1/db/reload?mode=full", b"").expect("reload");
    assert_eq!(st, 202, "{b}");
    let full = wait_runs(p, 2, &log);
    assert_eq!(full["mode"], "full", "{full}");
    assert_eq!(full["images"], 1, "{full}");
    let (_, v) = get_json(p, &format!("/api/v1/verdicts/{digest}"));
    assert_eq!(v["decision"], "allow", "{v}");
    let outbox = |ty: &str| -> Vec<Value> {
        rt.block_on(
            sqlx::query("SELECT payload FROM outbox WHERE event_type = $1 AND subject = $2")
                .bind(ty.to_string())
                .bind(digest.clone())
                .fetch_all(store.pool()),
        )
        .expect("outbox")
        .iter()
        .map(|r| {
            let t: String = sqlx::Row::try_get(r, 0).expect("payload");
            serde_json::from_str(&t).expect("json")
        })
        .collect()
    };
    assert!(
        outbox("finding.new").is_empty(),
        "a first judgement is not news"
    );
    let before = get_json(p, &format!("/api/v1/advisories/{ADVISORY}"));
    assert_eq!(before.0, 404, "{}", before.1);

    // First a MEDIUM lodash record arrives (npm: an ecosystem the database did not cover): news for
    // the image, but nothing the gate blocks on, so the verdict stays.
    let import = |file: PathBuf| {
        run(Command::new(moat())
            .args(["db", "import", "--db"])
            .arg(&db)
            .arg(file));
    };
    import(pypi.join("../npm/RETIREJS-lodash-8486bc60.json"));
    let (st, b) = http(p, "POST", "/api/v1/db/reload", b"").expect("reload");
    assert_eq!(st, 202, "{b}");
    let medium = wait_runs(p, 3, &log);
    assert_eq!(medium["changed_keys"], 1, "{medium}");
    assert_eq!(medium["verdicts_changed"], 0, "{medium}");
    let news = outbox("finding.new");
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0]["finding"]["package"], "lodash", "{news:?}");
    assert_eq!(news[0]["finding"]["severity"], "MEDIUM", "{news:?}");
    let (_, v) = get_json(p, &format!("/api/v1/verdicts/{digest}"));
    assert_eq!(v["decision"], "allow", "{v}");

    // The advisory arrives: `moat db import` into the server's database, then reload.
    let old_snapshot = medium["snapshot"].as_str().expect("snapshot").to_string();
    import(pypi.join(format!("{ADVISORY}.json")));
    let (st, b) = http(p, "POST", "/api/v1/db/reload", b"").expect("reload");
    assert_eq!(st, 202, "{b}");
    let delta = wait_runs(p, 4, &log);
    assert_eq!(delta["mode"], "delta", "{delta}");
    let new_snapshot = delta["snapshot"].as_str().expect("snapshot").to_string();
    assert_ne!(new_snapshot, old_snapshot);
    // Delta: only the one changed key (PyPI urllib3) and the one image holding it.
    assert_eq!(delta["changed_keys"], 1, "{delta}");
    assert_eq!(delta["images"], 1, "{delta}");
    assert_eq!(delta["new_findings"], 1, "{delta}");
    assert_eq!(delta["verdicts_changed"], 1, "{delta}");

    let news: Vec<Value> = outbox("finding.new")
        .into_iter()
        .filter(|n| n["finding"]["package"] == "urllib3")
        .collect();
    assert_eq!(news.len(), 1, "{news:?}");
    let f = &news[0]["finding"];
    assert!(
        f["id"] == ADVISORY
            || f["aliases"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == ADVISORY)),
        "{f}"
    );
    assert_eq!(f["severity"], "HIGH", "{f}");
    assert_eq!(f["package"], "urllib3");
    assert_eq!(news[0]["snapshot"], new_snapshot.as_str());
    let flips = outbox("image.verdict.changed");
    let last = flips.last().expect("a verdict change");
    assert_eq!(
        (&last["from"], &last["to"]),
        (&Value::from("allow"), &Value::from("block"))
    );
    let (_, v) = get_json(p, &format!("/api/v1/verdicts/{digest}"));
    assert_eq!(v["decision"], "block", "{v}");
    assert_eq!(v["snapshot"], new_snapshot.as_str(), "{v}");
    assert!(
        v["reasons"][0].as_str().unwrap_or("").contains("urllib3"),
        "{v}"
    );
    // The new finding carries the snapshot that produced it; by alias, the advisory finds the image.
    let (st, adv) = get_json(p, "/api/v1/advisories/CVE-2023-43804");
    assert_eq!(st, 200, "{adv}");
    assert_eq!(adv["images"][0]["digest"], digest.as_str(), "{adv}");
    assert_eq!(
        adv["images"][0]["packages"][0]["snapshot"],
        new_snapshot.as_str()
    );
    let (_, img) = get_json(p, &format!("/api/v1/images/{digest}"));
    let hist = img["verdict_history"].as_array().expect("history");
    assert!(hist.len() >= 2, "{hist:?}");
    assert_eq!(hist[0]["decision"], "block");
    // A second reload of the same snapshot changes nothing and alerts nothing again.
    let (st, _) = http(p, "POST", "/api/v1/db/reload", b"").expect("reload");
    assert_eq!(st, 202);
    let again = wait_runs(p, 5, &log);
    assert_eq!(again["changed_keys"], 0, "{again}");
    assert_eq!(outbox("finding.new").len(), 2);
    rt.block_on(store.close());
    drop(s);
}

#[test]
fn reevaluation_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(&format!(
        "sqlite:{}",
        dir.path().join("server.db").display()
    ));
}

#[test]
fn reevaluation_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url());
}
