//! Issue 14, the vulnerability gate as a new user meets it, end to end with the `moat` binary:
//! severities from NVD / CVE JSON 5 for Debian advisories that carry none, honest coverage (an
//! ecosystem the database lacks, an OS past its end of life, a stale database), one row per
//! (package, vulnerability) with every location and the remediation version, tables at the
//! terminal's width, and the first run that downloads the database itself (loopback mirror).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    if base.join("data/osv").is_dir() && base.join("data/nvd/nvd").is_dir() {
        Some(base)
    } else {
        eprintln!(
            "SKIPPED: {}/data/osv or data/nvd is missing",
            base.display()
        );
        None
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// moat with no ambient database, mirror or offline switch: only what a test passes counts.
fn moat(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(MOAT);
    c.args(args)
        .env("MOAT_DB", "/nonexistent/moat-db")
        .env_remove("MOAT_OSV_MIRROR")
        // The first-run test serves OSV only: never NVD's or the CVE list's real hosts.
        .env("MOAT_NVD_MIRROR", "none")
        .env("MOAT_CVE_MIRROR", "none")
        .env_remove("MOAT_OFFLINE")
        .env_remove("COLUMNS");
    for (k, v) in env {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    let out = c.output().expect("run moat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "moat {args:?} panicked: {err}");
    out
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// The shared OSV data and the shared NVD + CVE JSON 5 records, imported once per test process.
fn db() -> Option<PathBuf> {
    static DB: OnceLock<Option<PathBuf>> = OnceLock::new();
    DB.get_or_init(|| {
        let s = shared()?;
        let db = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scan-trust-db");
        let o = moat(
            &[
                "db",
                "import",
                "--replace",
                "--db",
                p(&db),
                p(&s.join("data/osv")),
                p(&s.join("data/nvd")),
            ],
            &[],
        );
        assert!(
            o.status.success(),
            "import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // `moat db status` shows the severity records beside the advisories.
        let st = json(&moat(
            &["db", "status", "--db", p(&db), "--format", "json"],
            &[],
        ));
        assert_eq!(st["rated_cves"], 40, "{st}");
        assert_eq!(
            st["records"], 21622,
            "the ratings are not advisory records: {st}"
        );
        assert!(
            st["newest"]["Debian:11"]
                .as_str()
                .is_some_and(|d| d.starts_with("2023-"))
        );
        Some(db)
    })
    .clone()
}

const DPKG: &str = "Package: libssl1.1\nStatus: install ok installed\nSource: openssl\nVersion: 1.1.1k-1\nArchitecture: amd64\n\n\
Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.11.dfsg-2\nArchitecture: amd64\n\n\
Package: gzip\nStatus: install ok installed\nVersion: 1.10-4\nArchitecture: amd64\n\n";

/// A Debian rootfs of `version` with old OpenSSL, zlib and gzip installed.
fn debian_root(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join(format!("debian-{version}"));
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(
        root.join("etc/os-release"),
        format!(
            "ID=debian\nVERSION_ID=\"{version}\"\nPRETTY_NAME=\"Debian GNU/Linux {version}\"\n"
        ),
    )
    .expect("os-release");
    std::fs::write(root.join("var/lib/dpkg/status"), DPKG).expect("status");
    root
}

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().expect("findings")
}

#[test]
fn debian_advisories_fail_the_gate_through_nvd_severities() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let root = debian_root(tmp.path(), "11");
    let target = format!("dir:{}", root.display());
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&db),
            "--scanners",
            "vuln",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    let vulns: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .collect();
    // The eight DSAs of the issue, for three binary packages: 5 openssl + 2 zlib + 1 gzip.
    assert_eq!(vulns.len(), 8, "{vulns:#?}");
    // CVE first, the DSA beside it; severity from NVD with its vector.
    let f = vulns
        .iter()
        .find(|f| f["id"] == "CVE-2022-0778")
        .expect("DSA-5103-1 shown as CVE-2022-0778");
    assert!(
        f["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "DSA-5103-1")
    );
    assert_eq!(f["severity"], "HIGH");
    let rating = &f["vulnerability"]["rating"];
    assert_eq!(rating["source"], "nvd");
    assert_eq!(rating["record"], "CVE-2022-0778");
    assert_eq!(
        rating["vector"],
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    );
    assert!(rating["note"].as_str().unwrap().contains("CVE-2021-4160"));
    // One version of openssl clears all five openssl advisories.
    for f in vulns.iter().filter(|f| f["package"]["name"] == "libssl1.1") {
        assert_eq!(
            f["vulnerability"]["remediation"], "1.1.1n-0+deb11u4",
            "{}",
            f["id"]
        );
    }
    // DSA-5111-1's CVE is not in the sample: UNKNOWN, saying so.
    let z = vulns
        .iter()
        .find(|f| f["id"] == "CVE-2018-25032")
        .expect("DSA-5111-1");
    assert_eq!(z["severity"], "UNKNOWN");
    assert_eq!(z["vulnerability"]["rating"]["source"], "none");
    // The gate: HIGH trips, and vulnerabilities rated HIGH or worse by NVD are among the causes.
    assert!(
        vulns
            .iter()
            .filter(|f| f["severity"] == "HIGH" || f["severity"] == "CRITICAL")
            .filter(|f| f["vulnerability"]["rating"]["source"] == "nvd")
            .count()
            >= 6
    );
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&db),
            "--scanners",
            "vuln",
            "--fail-on",
            "high",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let r = json(&o);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("do not trip --fail-on high")),
        "{}",
        r["warnings"]
    );
    // UNKNOWN is gated only with --fail-on-unknown (a --severity filter shows it alone).
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&db),
            "--scanners",
            "vuln",
            "--severity",
            "unknown",
            "--fail-on",
            "critical",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "UNKNOWN does not trip critical by default"
    );
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&db),
            "--scanners",
            "vuln",
            "--severity",
            "unknown",
            "--fail-on",
            "critical",
            "--fail-on-unknown",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "--fail-on-unknown gates it");
    // Debian 11 is past its end of life (2026-08-31) on this machine's clock: its own finding.
    let eol = findings(&r).iter().find(|f| f["id"] == "MOAT-OS-EOL");
    let today = Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .expect("date");
    if String::from_utf8_lossy(&today.stdout).trim() > "2026-08-31" {
        let eol = eol.expect("EOL finding");
        assert_eq!(eol["severity"], "HIGH");
        assert!(eol["message"].as_str().unwrap().contains("2026-08-31"));
    }
    // SARIF carries the source, vector and remediation, and validates.
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&db),
            "--scanners",
            "vuln",
            "--format",
            "sarif",
        ],
        &[],
    );
    let doc = json(&o);
    let res = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "CVE-2022-0778")
        .expect("result");
    assert_eq!(res["properties"]["severitySource"], "nvd");
    assert_eq!(
        res["properties"]["cvssVector"],
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    );
    assert_eq!(res["properties"]["remediation"], "1.1.1n-0+deb11u4");
}

#[test]
fn a_debian_12_image_is_not_reported_clean_by_a_database_without_debian_12() {
    let Some(db) = db() else { return };
    let s = shared().expect("shared");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = debian_root(tmp.path(), "12");
    let target = format!("dir:{}", root.display());
    let o = moat(&["scan", &target, "--db", p(&db), "--format", "json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let r = json(&o);
    assert!(findings(&r).iter().all(|f| f["kind"] != "vulnerability"));
    let cov = r["coverage"].as_array().expect("coverage");
    let deb = cov
        .iter()
        .find(|c| c["ecosystem"] == "Debian:12")
        .expect("Debian:12");
    assert_eq!(deb["covered"], false);
    assert_eq!(deb["records"], 0);
    assert_eq!(deb["packages"], 3);
    let warned = |w: &Value| {
        w.as_array().is_some_and(|ws| {
            ws.iter().any(|w| {
                w.as_str()
                    .is_some_and(|t| t.contains("no Debian:12 records"))
            })
        })
    };
    assert!(warned(&r["warnings"]), "{}", r["warnings"]);
    // The table says it where the user looks, not "No vulnerabilities found.".
    let o = moat(&["scan", &target, "--db", p(&db), "--format", "table"], &[]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("Debian:12: 3 package(s), no records — NOT COVERED"),
        "{t}"
    );
    assert!(!t.contains("No vulnerabilities found.\n"), "{t}");
    assert!(
        t.contains("warning: the vulnerability database has no Debian:12 records"),
        "{t}"
    );
    // SARIF: a notification of a run that succeeded, schema-valid.
    let o = moat(&["scan", &target, "--db", p(&db), "--format", "sarif"], &[]);
    let doc = json(&o);
    let notes = &doc["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert!(
        notes
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["level"] == "warning"
                && n["message"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Debian:12")))),
        "{notes}"
    );
    let schema: Value = serde_json::from_slice(
        &std::fs::read(s.join("data/schemas/sarif/sarif-2.1/sarif-schema-2.1.0.json"))
            .expect("schema"),
    )
    .expect("schema json");
    let v = jsonschema::validator_for(&schema).expect("compiles");
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_stale_database_warns() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    // A copy of the snapshot whose header says it was written 30 days ago (same length, so the
    // header stays consistent; the body and its digest are untouched).
    let snap = std::fs::read(db.join("vulns.moatdb")).expect("snapshot");
    let meta_len = u64::from_le_bytes(snap[8..16].try_into().unwrap()) as usize;
    let meta: Value = serde_json::from_slice(&snap[16..16 + meta_len]).expect("meta");
    let written = meta["created_at"].as_str().expect("created_at").to_string();
    let days = |d: &str| -> i64 {
        let o = Command::new("date")
            .args(["-u", "-d", d, "+%s"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<i64>()
            .expect("epoch")
            / 86400
    };
    let old_day = days(&written) - 30;
    let o = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", old_day * 86400),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .expect("date");
    let old = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(old.len(), written.len());
    let mut bytes = snap.clone();
    let head = String::from_utf8_lossy(&snap[16..16 + meta_len]).replace(&written, &old);
    bytes[16..16 + meta_len].copy_from_slice(head.as_bytes());
    let stale = tmp.path().join("stale.moatdb");
    std::fs::write(&stale, &bytes).expect("write");
    let root = debian_root(tmp.path(), "11");
    let target = format!("dir:{}", root.display());
    let o = moat(
        &["scan", &target, "--db", p(&stale), "--format", "json"],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    let ws = r["warnings"].to_string();
    assert!(
        ws.contains("written 30 days ago") || ws.contains("written 31 days ago"),
        "{ws}"
    );
    // --db-max-age 60 accepts it; the fresh database never warns.
    let o = moat(
        &[
            "scan",
            &target,
            "--db",
            p(&stale),
            "--db-max-age",
            "60",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(!json(&o)["warnings"].to_string().contains("days ago"));
    let o = moat(&["scan", &target, "--db", p(&db), "--format", "json"], &[]);
    assert!(!json(&o)["warnings"].to_string().contains("days ago"));
}

#[test]
fn one_row_per_package_and_vulnerability_with_every_location_and_the_terminal_width() {
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("app");
    for dir in ["srv/a", "srv/b"] {
        let d = root.join(dir).join("node_modules/lodash");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(
            d.join("package.json"),
            r#"{"name":"lodash","version":"4.17.15"}"#,
        )
        .expect("package.json");
    }
    let target = format!("dir:{}", root.display());
    let o = moat(&["scan", &target, "--db", p(&db), "--format", "json"], &[]);
    let r = json(&o);
    let vulns: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .collect();
    assert!(!vulns.is_empty(), "lodash 4.17.15 has advisories");
    let mut ids: Vec<&str> = vulns.iter().map(|f| f["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "one finding per vulnerability: {ids:?}");
    for f in &vulns {
        let locs: Vec<&str> = f["vulnerability"]["locations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["file"].as_str())
            .collect();
        assert_eq!(locs.len(), 2, "{}: {locs:?}", f["id"]);
        // CVE (or GHSA) first when the records name one; the OSV record ids beside it.
        let id = f["id"].as_str().unwrap();
        let named = f["aliases"].as_array().into_iter().flatten().any(|a| {
            a.as_str()
                .is_some_and(|a| a.starts_with("CVE-") || a.starts_with("GHSA-"))
        });
        if named {
            assert!(id.starts_with("CVE-") || id.starts_with("GHSA-"), "{id}");
        }
        assert_eq!(f["vulnerability"]["remediation"], "4.18.0", "{id}");
    }
    // The table at COLUMNS=100: no line wider, the record ids whole.
    let o = moat(
        &["scan", &target, "--db", p(&db), "--format", "table"],
        &[("COLUMNS", "100")],
    );
    let t = String::from_utf8_lossy(&o.stdout);
    for l in t.lines() {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    let o = moat(
        &["scan", &target, "--db", p(&db), "--format", "table"],
        &[("COLUMNS", "220")],
    );
    let wide = String::from_utf8_lossy(&o.stdout);
    assert!(
        wide.lines().any(|l| l.chars().count() > 160),
        "follows a wide terminal too"
    );
    assert!(wide.contains("RETIREJS-lodash-"), "{wide}");
    // JSON does not depend on the width.
    let a = moat(
        &["scan", &target, "--db", p(&db), "--format", "json"],
        &[("COLUMNS", "60")],
    );
    assert_eq!(json(&a)["findings"], r["findings"]);
}

/// A loopback OSV mirror: every `<ecosystem>/all.zip` is the same small Go export; counts requests.
fn mirror(shared: &Path) -> (String, Arc<AtomicUsize>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("data/osv/Go"))
        .expect("Go")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.truncate(50);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(&std::fs::read(f).expect("read"))
            .expect("write");
    }
    let zip = w.finish().expect("zip").into_inner();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", l.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            h.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
                        zip.len()
                    )
                    .as_bytes(),
                )
                .and_then(|_| s.write_all(&zip));
        }
    });
    (addr, hits)
}

#[test]
fn first_run_downloads_the_database_unless_offline_and_says_so_first_when_it_cannot() {
    let Some(s) = shared() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let root = debian_root(tmp.path(), "11");
    let target = format!("dir:{}", root.display());
    let cache = tmp.path().join("cache");
    let cache_s = p(&cache).to_string();
    // The default location: no --db, no MOAT_DB.
    let env_of = |mirror: &str| -> Vec<(&'static str, String)> {
        vec![
            ("MOAT_DB", String::new()),
            ("XDG_CACHE_HOME", cache_s.clone()),
            ("MOAT_OSV_MIRROR", mirror.to_string()),
        ]
    };
    let run = |args: &[&str], env: &[(&'static str, String)]| {
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        moat(args, &e)
    };
    // --offline: no request, the message first, and --fail-on fails closed.
    let (addr, hits) = mirror(&s);
    let o = run(
        &[
            "scan",
            &target,
            "--offline",
            "--fail-on",
            "high",
            "--format",
            "json",
        ],
        &env_of(&addr),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().next().is_some_and(|l| l.contains("offline")),
        "{err}"
    );
    let mut env = env_of(&addr);
    env.push(("MOAT_OFFLINE", "1".into()));
    let o = run(&["scan", &target, "--format", "json"], &env);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "offline: never downloads");
    assert_eq!(json(&o)["metadata"]["vulnerabilities"], "not checked");

    // An unreachable mirror (a closed loopback port): the message comes first, exit 2 with --fail-on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let o = run(
        &["scan", &target, "--fail-on", "high", "--format", "json"],
        &env_of(&closed),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("downloading it first"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("download failed") && l.contains("cannot reach")),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    // A reachable mirror: downloaded into the default location, then scanned with it.
    let o = run(&["scan", &target, "--format", "json"], &env_of(&addr));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(hits.load(Ordering::SeqCst) >= 1);
    let r = json(&o);
    assert!(
        r["metadata"]["db_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{r}"
    );
    assert!(cache.join("moat/db/vulns.moatdb").is_file());
    // Second run: the database exists, no download.
    let before = hits.load(Ordering::SeqCst);
    let o = run(&["scan", &target, "--format", "json"], &env_of(&addr));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(hits.load(Ordering::SeqCst), before);
}
