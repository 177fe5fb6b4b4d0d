//! `moat scan`, `moat db` and `moat explain` end to end, with the real shared OSV data, a loopback
//! HTTP server for `db update`, and a package list from a real (old) system.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    if base.join("data/osv").is_dir() {
        Some(base)
    } else {
        eprintln!("SKIPPED: {}/data/osv is missing", base.display());
        None
    }
}

fn moat(args: &[&str], db: Option<&Path>) -> Output {
    let mut c = Command::new(MOAT);
    c.args(args)
        .env_remove("MOAT_DB")
        .env_remove("MOAT_OSV_MIRROR")
        // Only the OSV mirror these tests serve: never NVD's or the CVE list's real hosts.
        .env("MOAT_NVD_MIRROR", "none")
        .env("MOAT_CVE_MIRROR", "none");
    if let Some(d) = db {
        c.env("MOAT_DB", d);
    } else {
        c.env("MOAT_DB", "/nonexistent/moat-db");
    }
    c.output().expect("run moat")
}

/// One import of all of data/osv per test process.
fn db() -> Option<PathBuf> {
    static DB: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    DB.get_or_init(|| {
        let s = shared()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        let osv = s.join("data/osv");
        let o = moat(
            &[
                "db",
                "import",
                "--db",
                db.to_str().expect("utf8"),
                osv.to_str().expect("utf8"),
            ],
            None,
        );
        assert!(
            o.status.success(),
            "import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim());
        Some((dir, db))
    })
    .as_ref()
    .map(|(_, p)| p.clone())
}

fn write_sbom(dir: &Path, purls: &[&str]) -> PathBuf {
    let comps: Vec<Value> = purls
        .iter()
        .map(|p| {
            let (head, _) = p.split_once('?').unwrap_or((p, ""));
            let (path, version) = head.rsplit_once('@').expect("version");
            let name = path.rsplit('/').next().expect("name");
            json!({"type": "library", "bom-ref": p, "name": name, "version": version, "purl": p})
        })
        .collect();
    let path = dir.join("in.cdx.json");
    std::fs::write(&path, serde_json::to_string(&json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": comps})).expect("json"))
        .expect("write sbom");
    path
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings array")
}

const PURLS: &[&str] = &[
    "pkg:pypi/urllib3@1.24.3",
    "pkg:pypi/Django@2.2.0",
    "pkg:deb/debian/libxml2@2.9.4%2Bdfsg1-2.2%2Bdeb9u6?distro=debian-9",
    "pkg:golang/golang.org/x/net@v0.0.0-20220101000000-aaaaaaaaaaaa",
    "pkg:cargo/smallvec@1.6.0",
    "pkg:npm/lodash@4.17.15",
    "pkg:golang/github.com/gin-gonic/gin@v1.9.1",
];

#[test]
fn scan_sbom_reports_every_record_with_why() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(tmp.path(), PURLS);
    let out = tmp.path().join("r.json");
    let o = moat(
        &[
            "scan",
            &format!("sbom:{}", sbom.display()),
            "--format",
            "json",
            "-o",
            out.to_str().expect("utf8"),
        ],
        Some(&db),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    let status: Value =
        serde_json::from_slice(&moat(&["db", "status", "--json"], Some(&db)).stdout)
            .expect("status json");
    assert_eq!(r["metadata"]["db_digest"], status["digest"]);
    let fs = findings(&r);
    assert!(!fs.is_empty());
    let mut by_pkg: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The OS past its end of life (debian 9 here) is its own finding, without package fields.
    assert!(fs.iter().any(|f| f["id"] == "MOAT-OS-EOL"));
    for f in fs.iter().filter(|f| f["kind"] == "vulnerability") {
        let v = &f["vulnerability"];
        for k in [
            "installed_version",
            "ecosystem",
            "fixed_versions",
            "matched",
        ] {
            assert!(!v[k].is_null(), "{k} missing in {f}");
        }
        assert!(
            v["matched"]["comparison"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        let purl = f["package"]["purl"].as_str().expect("purl").to_string();
        for rec in v["records"].as_array().expect("records") {
            by_pkg
                .entry(purl.clone())
                .or_default()
                .insert(rec["id"].as_str().expect("id").to_string());
        }
    }
    let urllib3 = &by_pkg["pkg:pypi/urllib3@1.24.3"];
    assert!(
        urllib3.contains("PYSEC-2021-108") && urllib3.contains("PYSEC-2023-192"),
        "{urllib3:?}"
    );
    assert!(
        by_pkg["pkg:deb/debian/libxml2@2.9.4%2Bdfsg1-2.2%2Bdeb9u6?distro=debian-9"]
            .contains("DLA-3012-1")
    );
    // One finding per alias group: no id appears as two findings of one package.
    let mut seen = BTreeSet::new();
    for f in fs {
        assert!(
            seen.insert((f["package"]["purl"].to_string(), f["id"].to_string())),
            "duplicate finding {}",
            f["id"]
        );
    }
    // Two runs give the same bytes.
    let out2 = tmp.path().join("r2.json");
    moat(
        &[
            "scan",
            &format!("sbom:{}", sbom.display()),
            "--format",
            "json",
            "-o",
            out2.to_str().expect("utf8"),
        ],
        Some(&db),
    );
    assert_eq!(
        std::fs::read(&out).expect("a"),
        std::fs::read(&out2).expect("b")
    );
}

#[test]
fn eight_scans_at_once_on_one_db() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(tmp.path(), PURLS);
    let target = format!("sbom:{}", sbom.display());
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(MOAT)
                .args(["scan", &target, "--format", "json"])
                .env("MOAT_DB", &db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for o in &outs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, outs[0].stdout);
    }
    assert!(findings(&serde_json::from_slice(&outs[0].stdout).expect("json")).len() > 5);
    eprintln!("8 concurrent scans: all exit 0 with identical reports");
}

#[test]
fn scans_during_an_import_see_a_whole_snapshot() {
    let Some(shared) = shared() else { return };
    let Some(full) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("db");
    std::fs::create_dir_all(&db).expect("mkdir");
    std::fs::copy(full.join("vulns.moatdb"), db.join("vulns.moatdb")).expect("copy");
    let before: Value =
        serde_json::from_slice(&moat(&["db", "status", "--json"], Some(&db)).stdout)
            .expect("status");
    let sbom = write_sbom(tmp.path(), PURLS);
    let target = format!("sbom:{}", sbom.display());
    // Replace the snapshot with the Go records only while scans run.
    let go = shared.join("data/osv/Go");
    let importer = Command::new(MOAT)
        .args([
            "db",
            "import",
            "--replace",
            "--db",
            db.to_str().expect("utf8"),
            go.to_str().expect("utf8"),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn import");
    let scans: Vec<_> = (0..6)
        .map(|_| {
            Command::new(MOAT)
                .args(["scan", &target, "--format", "json"])
                .env("MOAT_DB", &db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn scan")
        })
        .collect();
    let outs: Vec<Output> = scans
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    assert!(
        importer
            .wait_with_output()
            .expect("import")
            .status
            .success()
    );
    let after: Value = serde_json::from_slice(&moat(&["db", "status", "--json"], Some(&db)).stdout)
        .expect("status");
    assert_ne!(before["digest"], after["digest"]);
    for o in &outs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).expect("json");
        let d = &r["metadata"]["db_digest"];
        assert!(
            d == &before["digest"] || d == &after["digest"],
            "scan saw digest {d}"
        );
    }
}

#[test]
fn without_a_db_the_scan_runs_and_says_how_to_get_one() {
    let Some(_) = shared() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(tmp.path(), PURLS);
    let o = moat(
        &[
            "scan",
            &format!("sbom:{}", sbom.display()),
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("moat db update") && err.contains("moat db import"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let r: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(findings(&r).iter().all(|f| f["kind"] != "vulnerability"));
}

/// Issue 14, "fails open without a database": `--fail-on high` with no DB (or a `--db` path that
/// does not exist) exited 0. Now exit 2, saying why and how to get the DB; `--scanners config` is
/// the explicit config-only gate.
#[test]
fn fail_on_without_a_db_fails_closed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(tmp.path(), &["pkg:pypi/urllib3@1.24.3"]);
    let t = format!("sbom:{}", sbom.display());
    let missing = tmp.path().join("no-such-db");
    for args in [
        vec!["scan", t.as_str(), "--format", "json", "--fail-on", "high"],
        vec![
            "scan",
            t.as_str(),
            "--format",
            "json",
            "--fail-on",
            "high",
            "--db",
            missing.to_str().expect("utf8"),
        ],
    ] {
        let o = moat(&args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot be checked")
                && err.contains("moat db update")
                && err.contains("--scanners config"),
            "{err}"
        );
        assert!(
            o.stdout.is_empty(),
            "no report that could pass for a verdict"
        );
    }
    let o = moat(
        &[
            "scan",
            &t,
            "--format",
            "json",
            "--fail-on",
            "high",
            "--scanners",
            "config",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn gates_filters_ignores_and_vex() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(tmp.path(), &["pkg:pypi/urllib3@1.24.3"]);
    let t = format!("sbom:{}", sbom.display());
    let run = |extra: &[&str]| {
        let mut a = vec!["scan", t.as_str(), "--format", "json"];
        a.extend_from_slice(extra);
        let o = moat(&a, Some(&db));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (
            o.status.code(),
            r,
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, all, _) = run(&[]);
    assert_eq!(code, Some(0));
    let n = findings(&all).len();
    assert!(n >= 3);
    let (code, _, _) = run(&["--fail-on", "high"]);
    assert_eq!(code, Some(1), "urllib3 1.24.3 has HIGH advisories");
    let (_, high, _) = run(&["--severity", "high,critical"]);
    assert!(
        findings(&high)
            .iter()
            .all(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
    );
    assert!(findings(&high).len() < n);
    // .moatignore: an active entry suppresses (and no longer trips the gate), an expired one does not.
    let first = findings(&all)
        .iter()
        .find(|f| f["severity"] == "HIGH")
        .expect("a HIGH finding");
    let id = first["id"].as_str().expect("id");
    let alias = first["vulnerability"]["records"][0]["id"]
        .as_str()
        .expect("record id");
    let ig = tmp.path().join("ignore.yaml");
    std::fs::write(&ig, format!("- id: {alias}\n  package: urllib3\n  reason: accepted for the test\n  expires: 2999-01-01\n- id: {id}\n  reason: old exception\n  expires: 2001-01-01\n")).expect("write");
    let (_, r, err) = run(&["--ignorefile", ig.to_str().expect("utf8")]);
    let f = findings(&r)
        .iter()
        .find(|f| f["id"] == id)
        .expect("still reported");
    assert!(
        f["suppressed"]
            .as_str()
            .is_some_and(|s| s.contains("accepted for the test")),
        "{f}"
    );
    assert!(err.contains("expired on 2001-01-01"), "{err}");
    assert!(
        r["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("expired")))
    );
    // VEX not_affected suppresses; affected does not.
    let vex = tmp.path().join("v.json");
    std::fs::write(
        &vex,
        json!({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "t", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
               "statements": [{"vulnerability": {"name": id}, "products": [{"@id": "pkg:pypi/urllib3"}], "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]})
        .to_string(),
    )
    .expect("write");
    let (_, r, _) = run(&["--vex", vex.to_str().expect("utf8")]);
    let f = findings(&r)
        .iter()
        .find(|f| f["id"] == id)
        .expect("reported");
    assert!(
        f["suppressed"]
            .as_str()
            .is_some_and(|s| s.contains("not_affected")),
        "{f}"
    );
    // --ignore-unfixed keeps only fixable findings.
    let (_, r, _) = run(&["--ignore-unfixed"]);
    assert!(findings(&r).iter().all(|f| {
        !f["vulnerability"]["fixed_versions"]
            .as_array()
            .expect("fixed")
            .is_empty()
    }));
    // A broken ignore file is a usage error naming the file.
    std::fs::write(&ig, "- id: X\n  expires: tomorrow\n").expect("write");
    let (code, _, err) = run(&["--ignorefile", ig.to_str().expect("utf8")]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("ignore.yaml") && err.contains("expires"),
        "{err}"
    );
    // SARIF: one rule per advisory.
    let o = moat(&["scan", &t, "--format", "sarif"], Some(&db));
    let s: Value = serde_json::from_slice(&o.stdout).expect("sarif json");
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(
        s["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules")
            .len(),
        n
    );
}

#[test]
fn explain_says_why_and_why_not() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sbom = write_sbom(
        tmp.path(),
        &[
            "pkg:pypi/urllib3@1.24.3",
            "pkg:pypi/urllib3@1.26.5",
            "pkg:pypi/requests@2.0.0",
        ],
    );
    let t = format!("sbom:{}", sbom.display());
    let o = moat(&["explain", "CVE-2021-33503", &t, "-f", "text"], Some(&db));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    eprintln!("{text}");
    assert!(text.contains("PYSEC-2021-108"));
    assert!(
        text.contains("MATCH") && text.contains("1.24.3 < 1.26.5 (fixed)"),
        "{text}"
    );
    assert!(
        text.contains("no match") && text.contains("1.26.5 >= 1.26.5 (fixed)"),
        "{text}"
    );
    assert!(text.contains("1 other package(s)"), "{text}");
    // By an upstream CVE: the Debian advisories that fix it, checked against a Debian 9 and a Debian 11 package.
    let sbom = write_sbom(
        tmp.path(),
        &[
            "pkg:deb/debian/libxml2@2.9.4%2Bdfsg1-2.2%2Bdeb9u6?distro=debian-9",
            "pkg:deb/debian/libxml2@2.9.10%2Bdfsg-6.7%2Bdeb11u2?distro=debian-11",
        ],
    );
    let o = moat(
        &[
            "explain",
            "CVE-2022-29824",
            &format!("sbom:{}", sbom.display()),
            "-f",
            "text",
        ],
        Some(&db),
    );
    let text = String::from_utf8_lossy(&o.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("DLA-3012-1") && text.contains("DSA-5142-1"),
        "{text}"
    );
    assert!(
        text.contains("MATCH    pkg:deb/debian/libxml2@2.9.4"),
        "{text}"
    );
    assert!(
        text.contains("no match pkg:deb/debian/libxml2@2.9.10") && text.contains("(fixed)"),
        "{text}"
    );
    assert!(
        text.contains("not checked pkg:deb/debian/libxml2@2.9.4")
            && text.contains("names only Debian:10/libxml2"),
        "{text}"
    );
    let o = moat(&["explain", "NOPE-1", &t], Some(&db));
    assert_eq!(o.status.code(), Some(2));
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving one zip under several behaviours.
fn serve(zip: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", l.local_addr().expect("addr"));
    let h = std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            if path.starts_with("/quit") {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                break;
            }
            let head = |code: &str, len: usize| {
                format!(
                    "HTTP/1.1 {code}\r\nContent-Length: {len}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n"
                )
            };
            let _ = if path.starts_with("/good/") {
                s.write_all(head("200 OK", zip.len()).as_bytes())
                    .and_then(|_| s.write_all(&zip))
            } else if path.starts_with("/trunc/") {
                s.write_all(head("200 OK", zip.len()).as_bytes())
                    .and_then(|_| s.write_all(&zip[..zip.len() / 2]))
            } else if path.starts_with("/corrupt/") {
                let junk: Vec<u8> = zip
                    .iter()
                    .map(|b| b.wrapping_mul(31).wrapping_add(7))
                    .collect();
                s.write_all(head("200 OK", junk.len()).as_bytes())
                    .and_then(|_| s.write_all(&junk))
            } else {
                s.write_all(head("500 Internal Server Error", 0).as_bytes())
            };
        }
    });
    (addr, h)
}

fn go_zip(shared: &Path) -> (Vec<u8>, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("data/osv/Go"))
        .expect("Go")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.truncate(400);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(&std::fs::read(f).expect("read"))
            .expect("write");
    }
    (w.finish().expect("finish").into_inner(), files.len())
}

#[test]
fn db_update_from_a_loopback_mirror_keeps_the_old_snapshot_on_failure() {
    let Some(shared) = shared() else { return };
    let (zip, n) = go_zip(&shared);
    let (addr, server) = serve(zip);
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("db");
    let dbs = db.to_str().expect("utf8");
    let status = |db: &Path| -> Value {
        serde_json::from_slice(&moat(&["db", "status", "--json"], Some(db)).stdout)
            .unwrap_or(Value::Null)
    };
    let o = moat(
        &[
            "db",
            "update",
            "--db",
            dbs,
            "--ecosystem",
            "Go",
            "--mirror",
            &format!("{addr}/good"),
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let good = status(&db);
    assert_eq!(good["records"].as_u64(), Some(n as u64));
    assert_eq!(
        good["sources"][0]["source"],
        format!("{addr}/good/Go/all.zip")
    );
    for (what, path) in [
        ("truncated", "trunc"),
        ("corrupt", "corrupt"),
        ("HTTP 500", "err"),
    ] {
        let o = moat(
            &[
                "db",
                "update",
                "--db",
                dbs,
                "--ecosystem",
                "Go",
                "--mirror",
                &format!("{addr}/{path}"),
            ],
            None,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("database unchanged"), "{what}: {err}");
        eprintln!("{what}: {}", err.trim());
        assert_eq!(
            status(&db)["digest"],
            good["digest"],
            "{what} changed the snapshot"
        );
    }
    // The old snapshot still answers scans.
    let sbom = write_sbom(tmp.path(), &["pkg:golang/stdlib@v1.0.0"]);
    let o = moat(
        &[
            "scan",
            &format!("sbom:{}", sbom.display()),
            "--format",
            "json",
        ],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!findings(&serde_json::from_slice(&o.stdout).expect("json")).is_empty());
    let _ = std::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .and_then(|mut s| s.write_all(b"GET /quit HTTP/1.1\r\n\r\n"));
    let _ = server.join();
    // Offline: nothing listens there any more; the failure is quick and says what to do.
    let t = std::time::Instant::now();
    let o = moat(
        &[
            "db",
            "update",
            "--db",
            dbs,
            "--ecosystem",
            "Go",
            "--mirror",
            &addr,
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("cannot reach") && err.contains("moat db import"),
        "{err}"
    );
    eprintln!("offline failure after {:.2?}: {}", t.elapsed(), err.trim());
    assert_eq!(status(&db)["digest"], good["digest"]);
}

/// Writes `root` as a one-layer `docker save` archive (manifest.json, config, layer tar).
fn docker_archive(root: &Path, out: &Path) {
    use sha2::{Digest, Sha256};
    let mut layer = tar::Builder::new(Vec::new());
    layer.append_dir_all(".", root).expect("layer");
    let layer = layer.into_inner().expect("layer bytes");
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                        "history": [{"created_by": "test: old dpkg status over Debian 10"}]})
    .to_string();
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config.as_bytes())));
    let manifest = json!([{"Config": config_name, "RepoTags": ["moat-test/old:1"], "Layers": ["layer/layer.tar"]}]).to_string();
    let mut t = tar::Builder::new(std::fs::File::create(out).expect("create"));
    for (name, bytes) in [
        ("manifest.json", manifest.as_bytes()),
        (config_name.as_str(), config.as_bytes()),
        ("layer/layer.tar", layer.as_slice()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, bytes).expect("append");
    }
    t.finish().expect("finish");
}

/// Versions compared by the real dpkg, as the oracle for the end-to-end test.
fn dpkg_lt(a: &str, b: &str) -> Option<bool> {
    let o = Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .output()
        .ok()?;
    Some(o.status.success())
}

#[test]
fn old_dpkg_status_over_debian_10_finds_what_the_dsa_dla_data_says() {
    let Some(shared) = shared() else { return };
    let Some(db) = db() else { return };
    if dpkg_lt("1", "2").is_none() {
        eprintln!("SKIPPED: dpkg not installed (the version oracle)");
        return;
    }
    // The dpkg status of a real Ubuntu 18.04 system (Trivy's fixture), as an old package list.
    let txtar = std::fs::read_to_string(
        shared.join("data/golden/trivy/pkg/fanal/analyzer/pkg/dpkg/testdata/valid.txtar"),
    )
    .expect("txtar");
    let status = txtar
        .split("-- var/lib/dpkg/status --\n")
        .nth(1)
        .expect("status section")
        .split("\n-- ")
        .next()
        .expect("status");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(root.join("var/lib/dpkg/status"), status).expect("status");
    std::fs::write(root.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 10 (buster)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"10\"\nVERSION=\"10 (buster)\"\nVERSION_CODENAME=buster\nID=debian\n").expect("os-release");
    // Expected, independently: every Debian:10 DSA/DLA naming a package's source, decided by dpkg.
    let mut records: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    for e in std::fs::read_dir(shared.join("data/osv/Debian"))
        .expect("Debian")
        .flatten()
    {
        let v: Value =
            serde_json::from_slice(&std::fs::read(e.path()).expect("read")).expect("json");
        if v.get("withdrawn").is_some() {
            continue;
        }
        for a in v["affected"].as_array().into_iter().flatten() {
            if a["package"]["ecosystem"] == "Debian:10" {
                let name = a["package"]["name"].as_str().expect("name").to_string();
                records.entry(name).or_default().push((
                    v["id"].as_str().expect("id").to_string(),
                    a["ranges"].as_array().cloned().unwrap_or_default(),
                ));
            }
        }
    }
    let mut want: BTreeSet<(String, String, String)> = BTreeSet::new();
    for stanza in status.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .map(str::trim)
        };
        let (Some(pkg), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let (src, src_version) = match field("Source") {
            Some(s) => match s.split_once(" (") {
                Some((n, v)) => (n.to_string(), v.trim_end_matches(')').to_string()),
                None => (s.to_string(), version.to_string()),
            },
            None => (pkg.to_string(), version.to_string()),
        };
        for (id, ranges) in records.get(&src).into_iter().flatten() {
            for r in ranges {
                let events = r["events"].as_array().expect("events");
                let fixed = events.iter().find_map(|e| e["fixed"].as_str());
                let hit = match fixed {
                    Some(f) => dpkg_lt(&src_version, f).expect("dpkg"),
                    None => true,
                };
                if hit {
                    want.insert((pkg.to_string(), id.clone(), fixed.unwrap_or("").to_string()));
                }
            }
        }
    }
    assert!(
        want.len() > 20,
        "the fixture should be vulnerable: {}",
        want.len()
    );
    // Vulnerabilities only: a dir: tree has no image config, so the config checks would differ.
    let scan_vulns = |target: String| -> Value {
        let o = moat(
            &["scan", &target, "--format", "json", "--scanners", "vuln"],
            Some(&db),
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("json")
    };
    let r = scan_vulns(format!("dir:{}", root.display()));
    // The same tree as a one-layer docker-archive image, built here: same findings, with the layer.
    let image = tmp.path().join("old.docker.tar");
    docker_archive(&root, &image);
    let ri = scan_vulns(format!("docker-archive:{}", image.display()));
    let ids = |r: &Value| -> Vec<(String, String)> {
        findings(r)
            .iter()
            .map(|f| (f["package"]["purl"].to_string(), f["id"].to_string()))
            .collect()
    };
    assert_eq!(
        ids(&r),
        ids(&ri),
        "dir: and docker-archive: of the same tree differ"
    );
    assert!(findings(&ri).iter().all(|f| {
        f["kind"] != "vulnerability"
            || f["location"]["layer"]
                .as_str()
                .is_some_and(|l| l.starts_with("sha256:"))
    }));
    let mut got: BTreeSet<(String, String, String)> = BTreeSet::new();
    for f in findings(&r).iter().filter(|f| f["kind"] == "vulnerability") {
        let pkg = f["package"]["name"].as_str().expect("name").to_string();
        for rec in f["vulnerability"]["records"].as_array().expect("records") {
            let fixed = rec["fixed_versions"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            got.insert((
                pkg.clone(),
                rec["id"].as_str().expect("id").to_string(),
                fixed,
            ));
        }
    }
    let missing: Vec<_> = want.difference(&got).take(10).collect();
    let extra: Vec<_> = got.difference(&want).take(10).collect();
    eprintln!(
        "Ubuntu 18.04 package list over Debian 10: {} (package, advisory, fixed version) triples expected by dpkg, {} found",
        want.len(),
        got.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
}
