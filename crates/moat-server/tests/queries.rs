//! The read API of a real `moat server` on loopback, on SQLite and on a real PostgreSQL, over real
//! moat scan reports (tests/data: the bookworm image and the language test image) and a database of
//! real OSV records: GET /api/v1/images (filters, sort, pagination, 400 on a bad parameter),
//! GET /api/v1/images/{digest} (findings, config checks, verdict history, workloads, SBOM), GET
//! /api/v1/advisories/{id} by OSV id and by alias with the workloads running the images, GET
//! /api/v1/images/{digest}/remediation (lodash 4.17.15 → 4.18.0, urllib3 1.24.1 → 1.26.18, each with
//! the layer and file), POST /api/v1/db/reload scopes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::{ADMIN, moat};

/// The shared harness's server (tests/common), with this test's vulnerability database.
fn start(store: &str, db: &Path, dir: &Path) -> common::Server {
    common::start(store, dir, &["--db", &db.display().to_string()])
}

fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    common::http(port, method, path, token, body).map(|(st, _, body)| (st, body))
}

fn get(port: u16, path: &str) -> (u16, Value) {
    let (st, b) = http(port, "GET", path, Some(ADMIN), b"").expect("http");
    (st, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .expect("test data")
}

/// The image digest the server gives a report of a local layout (no digest in the report).
fn digest_of(report: &[u8]) -> String {
    let r: Value = serde_json::from_slice(report).expect("report");
    moat_server::store::content_digest(r["target"]["name"].as_str().expect("target").as_bytes())
}

fn exercise(store_url: &str) {
    let Some(osv) = moat_testkit::shared_path("data/osv") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The server's database: every real lodash and urllib3 record.
    let recs = dir.path().join("records");
    std::fs::create_dir_all(&recs).expect("mkdir");
    for (eco, name) in [("npm", "\"lodash\""), ("PyPI", "\"urllib3\"")] {
        for e in std::fs::read_dir(osv.join(eco)).expect("read osv") {
            let p = e.expect("entry").path();
            if std::fs::read_to_string(&p).is_ok_and(|t| t.contains(name)) {
                std::fs::copy(&p, recs.join(p.file_name().expect("name"))).expect("copy");
            }
        }
    }
    let db = dir.path().join("db");
    let out = Command::new(moat())
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&recs)
        .output()
        .expect("moat db import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = start(store_url, &db, dir.path());
    let p = s.port;
    let lang = data("lang-image.report.json");
    let bookworm = data("bookworm.report.json");
    for body in [&lang, &bookworm] {
        let (st, b) = http(p, "POST", "/api/v1/reports", Some(ADMIN), body).expect("post");
        assert_eq!(st, 201, "{b}");
    }
    let (ld, bd) = (digest_of(&lang), digest_of(&bookworm));
    // Tokens: a read token reads but cannot reload; an ingest token cannot read.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = rt
        .block_on(moat_server::store::Store::connect(store_url))
        .expect("store");
    let read = "queries-read-secret-0123456789";
    let ingest = "queries-ingest-secret-0123456789";
    rt.block_on(store.ensure_token("reader", read, &[moat_server::store::Scope::Read]))
        .expect("token");
    rt.block_on(store.ensure_token("ci", ingest, &[moat_server::store::Scope::Ingest]))
        .expect("token");
    let (st, _) = http(p, "GET", "/api/v1/images", Some(ingest), b"").expect("http");
    assert_eq!(st, 403);
    let (st, _) = http(p, "GET", "/api/v1/images", None, b"").expect("http");
    assert_eq!(st, 401);
    let (st, b) = http(p, "POST", "/api/v1/db/reload", Some(read), b"").expect("http");
    assert_eq!(st, 403, "{b}");

    // A workload runs the language image (as admission and runtime reports record it).
    rt.block_on(
        sqlx::query(
            "INSERT INTO workload_image (cluster, namespace, workload, pod, container, image, digest, source, last_seen_ms) \
             VALUES ('prod', 'payments', 'deployment/api', 'api-7d9c6f7b9-x2l8q', 'api', 'reg.example/lang:1', $1, 'admission', $2)",
        )
        .bind(ld.clone())
        .bind(moat_server::store::now_ms())
        .execute(store.pool()),
    )
    .expect("workload");

    // The list: both images, newest first; filters; pagination; sort.
    let (st, all) = get(p, "/api/v1/images");
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["total"], 2, "{all}");
    let (_, v) = get(p, "/api/v1/images?severity=HIGH");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["images"][0]["digest"], ld.as_str());
    assert!(
        v["images"][0]["vulnerabilities"]["HIGH"]
            .as_i64()
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    let (_, v) = get(p, "/api/v1/images?vuln=CVE-2021-23337");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["images"][0]["digest"], ld.as_str());
    let (_, v) = get(p, "/api/v1/images?tag=bookworm&verdict=pending");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["images"][0]["digest"], bd.as_str());
    let (_, v) = get(p, "/api/v1/images?sort=repository&order=asc&limit=1");
    assert_eq!(v["images"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["next_offset"], 1, "{v}");
    let first = v["images"][0]["digest"].clone();
    let (_, v2) = get(
        p,
        "/api/v1/images?sort=repository&order=asc&limit=1&offset=1",
    );
    assert_ne!(v2["images"][0]["digest"], first, "{v2}");
    assert!(v2.get("next_offset").is_none(), "{v2}");
    for bad in [
        "/api/v1/images?sort=severity",
        "/api/v1/images?limit=0",
        "/api/v1/images?limit=abc",
        "/api/v1/images?colour=red",
        "/api/v1/images?severity=SEVERE",
        "/api/v1/images?verdict=maybe",
    ] {
        let (st, v) = get(p, bad);
        assert_eq!(st, 400, "{bad}: {v}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }

    // One image: findings, config checks, verdict, workloads.
    let (st, img) = get(p, &format!("/api/v1/images/{ld}"));
    assert_eq!(st, 200, "{img}");
    assert_eq!(img["tag"], "lang");
    let findings = img["findings"].as_array().expect("findings");
    assert!(findings.len() > 100, "{}", findings.len());
    assert!(
        findings
            .iter()
            .all(|f| f["finding"]["kind"] == "vulnerability")
    );
    assert!(
        img["config_checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["finding"]["id"] == "MOAT-IMG-001"),
        "{}",
        img["config_checks"]
    );
    assert_eq!(img["verdict"]["decision"], "pending");
    assert_eq!(img["signature"]["status"], "not-checked");
    assert_eq!(
        img["workloads"][0]["namespace"], "payments",
        "{}",
        img["workloads"]
    );
    let (st, _) = get(p, "/api/v1/images/sha256:zz");
    assert_eq!(st, 400);
    let (st, _) = get(p, &format!("/api/v1/images/sha256:{}", "0".repeat(64)));
    assert_eq!(st, 404);

    // The SBOM section and ?package=, when the language image's SBOM is indexed.
    let layout = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/moat-fixtures/lang-image/oci");
    if layout.join("index.json").exists() {
        let out = Command::new(moat())
            .args([
                "sbom",
                &format!("oci:{}:lang", layout.display()),
                "-f",
                "json",
            ])
            .output()
            .expect("moat sbom");
        assert!(out.status.success());
        let inv: moat_model::Inventory = serde_json::from_slice(&out.stdout).expect("inventory");
        rt.block_on(async {
            let mut tx = store.begin().await.expect("tx");
            moat_server::store::query::index_inventory(&mut tx, &ld, &inv)
                .await
                .expect("index");
            tx.commit().await.expect("commit");
        });
        let (_, img) = get(p, &format!("/api/v1/images/{ld}"));
        let pkgs = img["sbom"]["packages"].as_array().expect("sbom packages");
        assert_eq!(pkgs.len() as i64, img["packages"].as_i64().unwrap_or(-1));
        assert!(
            pkgs.iter().any(|p| p["name"] == "urllib3"),
            "{}",
            img["sbom"]
        );
        let (_, v) = get(p, "/api/v1/images?package=urllib3");
        assert_eq!(v["total"], 1, "{v}");
    } else {
        moat_testkit::skip(&format!(
            "{} is missing: SBOM section not checked (scripts/deps.d/40-lang-image.sh)",
            layout.display()
        ));
    }

    // Advisories by OSV id and by alias: the image, its package, and where it runs.
    for id in [
        "RETIREJS-lodash-074d77e9",
        "CVE-2021-23337",
        "RETIREJS-lodash-42b94605",
    ] {
        let (st, a) = get(p, &format!("/api/v1/advisories/{id}"));
        assert_eq!(st, 200, "{id}: {a}");
        assert_eq!(a["image_count"], 1, "{id}: {a}");
        assert_eq!(a["images"][0]["digest"], ld.as_str());
        let pk = &a["images"][0]["packages"][0];
        assert_eq!(pk["name"], "lodash");
        assert_eq!(pk["version"], "4.17.15");
        assert_eq!(pk["purl"], "pkg:npm/lodash@4.17.15", "{pk}");
        assert_eq!(a["workloads"][0]["workload"], "deployment/api", "{a}");
        assert_eq!(a["namespaces"], json!(["payments"]));
    }
    let (st, a) = get(p, "/api/v1/advisories/CVE-1999-0000");
    assert_eq!(st, 404, "{a}");

    // Remediation: the lowest version that clears every finding, per package.
    let (st, plan) = get(p, &format!("/api/v1/images/{ld}/remediation"));
    assert_eq!(st, 200, "{plan}");
    assert!(
        plan["snapshot"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:"))
    );
    let pkg = |name: &str| {
        plan["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in the plan: {plan}"))
    };
    let lodash = pkg("lodash");
    assert_eq!(lodash["target_version"], "4.18.0", "{lodash}");
    assert_eq!(lodash["basis"], "records");
    assert_eq!(lodash["left_open"], json!([]));
    assert_eq!(
        lodash["record_fixes"]["RETIREJS-lodash-074d77e9"],
        "4.17.21"
    );
    assert!(
        lodash["locations"][0]["file"]
            .as_str()
            .is_some_and(|f| f.starts_with("srv/app/")),
        "{lodash}"
    );
    assert!(lodash["locations"][0]["layer"].is_string(), "{lodash}");
    let urllib3 = pkg("urllib3");
    assert_eq!(urllib3["target_version"], "1.26.18", "{urllib3}");
    assert_eq!(urllib3["ordering"], "pep440");
    // Go modules have no records in this server's database: judged on the findings' own fixes.
    let stdlib = pkg("stdlib");
    assert_eq!(stdlib["basis"], "fixed-versions", "{stdlib}");
    let (st, _) = get(
        p,
        &format!("/api/v1/images/sha256:{}/remediation", "1".repeat(64)),
    );
    assert_eq!(st, 404);
    let (st, b) = http(
        p,
        "POST",
        "/api/v1/db/reload?mode=sideways",
        Some(ADMIN),
        b"",
    )
    .expect("http");
    assert_eq!(st, 400, "{b}");
    rt.block_on(store.close());
    drop(s);
}

#[test]
fn queries_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(&format!(
        "sqlite:{}",
        dir.path().join("server.db").display()
    ));
}

#[test]
fn queries_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url());
}
