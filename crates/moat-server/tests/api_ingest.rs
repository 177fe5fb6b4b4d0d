//! The real `moat server` binary on loopback, on SQLite and on a real PostgreSQL: tokens (401/403),
//! report ingest (201, duplicate 200), malformed JSON / unknown schema 400 naming the field, a 1 GB
//! body refused with 413 while streamed, nothing stored on error; verdict 404/pending; /healthz without
//! a token; every route in the OpenAPI document; kill -9 mid-ingest keeps every acknowledged report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{ADMIN, moat};

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

fn report(name: &str, id: &str) -> String {
    serde_json::json!({
        "schema": "moat.report/v1",
        "moat_version": "0.1.0",
        "target": {"name": name, "kind": "registry"},
        "metadata": {"db_digest": "sha256:00"},
        "summary": {"total": 1, "by_severity": {"HIGH": 1}, "suppressed": 0},
        "findings": [{
            "id": id, "kind": "vulnerability", "severity": "HIGH", "title": "t",
            "package": {"name": "openssl", "version": "3.0.1", "purl": "pkg:deb/debian/openssl@3.0.1"}
        }]
    })
    .to_string()
}

fn exercise(store: &str) {
    let logs = tempfile::tempdir().unwrap();
    let start = |store: &str, extra: &[&str]| common::start(store, logs.path(), extra);
    let s = start(store, &["--max-body-bytes", "1048576"]);
    let p = s.port;
    // Tokens: none -> 401, wrong -> 401, read-only can't ingest -> 403.
    let body = report("registry:reg.example/app:1@sha256:aaaa", "CVE-2024-0001");
    let (st, b) = http(p, "POST", "/api/v1/reports", None, body.as_bytes()).unwrap();
    assert_eq!(st, 401, "{b}");
    assert!(b.contains("bearer token"), "{b}");
    let (st, b) = http(
        p,
        "POST",
        "/api/v1/reports",
        Some("moat_nope"),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 401, "{b}");
    let out = Command::new(moat())
        .args([
            "server", "token", "create", "--scope", "read", "--store", store,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (st, b) = http(p, "POST", "/api/v1/reports", Some(&read), body.as_bytes()).unwrap();
    assert_eq!(st, 403, "{b}");
    assert!(b.contains("ingest"), "{b}");

    // Ingest: 201 then a duplicate 200 with the same id.
    let (st, b) = http(p, "POST", "/api/v1/reports", Some(ADMIN), body.as_bytes()).unwrap();
    assert_eq!(st, 201, "{b}");
    let first: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(first["duplicate"], false);
    let (st, b) = http(p, "POST", "/api/v1/reports", Some(ADMIN), body.as_bytes()).unwrap();
    assert_eq!(st, 200, "{b}");
    let again: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);

    // Errors store nothing.
    let (st, b) = http(p, "POST", "/api/v1/reports", Some(ADMIN), b"{\"schema\": ").unwrap();
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("report"), "{b}");
    let wrong = body.replace("moat.report/v1", "other/v9");
    let (st, b) = http(p, "POST", "/api/v1/reports", Some(ADMIN), wrong.as_bytes()).unwrap();
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("schema"), "{b}");
    let missing = serde_json::json!({"schema": "moat.report/v1"}).to_string();
    let (st, b) = http(
        p,
        "POST",
        "/api/v1/reports",
        Some(ADMIN),
        missing.as_bytes(),
    )
    .unwrap();
    assert_eq!(st, 400, "{b}");
    assert!(
        b.contains("moat_version") || b.contains("missing field"),
        "{b}"
    );

    // 1 GB announced and streamed: refused with 413 long before the end, nothing allocated or stored.
    {
        let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(c, "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 1u64 << 30).unwrap();
        let chunk = vec![b' '; 1 << 16];
        let mut sent = 0u64;
        while sent < (1u64 << 30) {
            if c.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        assert!(sent < (1u64 << 30), "the server read the whole gigabyte");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }

    // Verdicts: pending for a stored image, 404 for an unknown one.
    let (st, b) = http(p, "GET", "/api/v1/verdicts/sha256:aaaa", Some(&read), b"").unwrap();
    assert_eq!(st, 200, "{b}");
    assert!(b.contains("\"pending\""), "{b}");
    let (st, b) = http(p, "GET", "/api/v1/verdicts/sha256:ffff", Some(&read), b"").unwrap();
    assert_eq!(st, 404, "{b}");
    assert!(b.contains("error"), "{b}");
    let (st, b) = http(p, "GET", "/metrics", Some(&read), b"").unwrap();
    assert_eq!(st, 200);
    assert!(b.contains("moat_reports_ingested_total 1"), "{b}");
    let (st, b) = http(p, "GET", "/api/v1/openapi.json", Some(&read), b"").unwrap();
    assert_eq!(st, 200);
    let doc: serde_json::Value = serde_json::from_str(&b).unwrap();
    for route in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/reports",
        "/api/v1/verdicts/{digest}",
    ] {
        assert!(
            doc["paths"].get(route).is_some(),
            "{route} missing from openapi.json"
        );
    }
    drop(s);

    // kill -9 in the middle of many ingests: every report acknowledged before the kill is there after restart.
    let s = start(store, &[]);
    let port = s.port;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for t in 0..4 {
        let acked = acked.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..10_000 {
                let body = report(
                    &format!("registry:r/app{t}:{i}@sha256:{t}{i:06}"),
                    &format!("CVE-2024-{t}{i:04}"),
                );
                match http(
                    port,
                    "POST",
                    "/api/v1/reports",
                    Some(ADMIN),
                    body.as_bytes(),
                ) {
                    Ok((201, b)) => {
                        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["digest"].as_str().unwrap().to_string());
                    }
                    _ => break,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut s = s;
    // SIGKILL: no graceful shutdown.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few reports acknowledged before the kill: {}",
        acked.len()
    );
    let s2 = start(store, &[]);
    // Re-sending an acknowledged report is a duplicate: it was committed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let st = rt
        .block_on(moat_server::store::Store::connect(store))
        .unwrap();
    for d in &acked {
        assert!(
            rt.block_on(st.report_exists(d)).unwrap(),
            "acknowledged report {d} lost"
        );
    }
    rt.block_on(st.close());
    drop(s2);
}

#[test]
fn api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!(
        "sqlite:{}",
        dir.path().join("server.db").display()
    ));
}

#[test]
fn api_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url());
}
