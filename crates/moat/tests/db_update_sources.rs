//! Issue 14: `moat db update` fetches the severity sources too — NVD's JSON 2.0 feeds
//! (`nvdcve-2.0-<year>.json.gz`) and the CVE list (a cvelistV5-style `.zip.zip` of CVE JSON 5
//! records) — from a loopback mirror serving the shared NVD / CVE 5 records, packed by this test as
//! NVD and the CVE project publish them. The snapshot must be the one `moat db import` builds from
//! the same records, and a cut feed must leave the database as it was.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

/// ../shared with the OSV and NVD records, or a visible skip (a failure under CI).
fn shared() -> Option<PathBuf> {
    moat_testkit::shared_path("data/osv/Debian")?;
    moat_testkit::shared_path("data/nvd/nvd")?;
    moat_testkit::shared_root()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// moat with no ambient database or mirrors: only what a test passes counts.
fn moat(args: &[&str]) -> Output {
    let out = Command::new(MOAT)
        .args(args)
        .env("MOAT_DB", "/nonexistent/moat-db")
        .env_remove("MOAT_OSV_MIRROR")
        .env_remove("MOAT_NVD_MIRROR")
        .env_remove("MOAT_CVE_MIRROR")
        .env_remove("MOAT_OFFLINE")
        .output()
        .expect("run moat");
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

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("zip").into_inner()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(bytes).expect("gzip");
    w.finish().expect("gzip")
}

/// The year of `CVE-YYYY-NNNN.json`.
fn year(file: &Path) -> String {
    let name = file.file_name().and_then(|n| n.to_str()).expect("name");
    name.split('-').nth(1).expect("year").to_string()
}

/// The mirror's files: OSV's `Debian/all.zip`, NVD's yearly feeds (the API 2.0 envelope NVD's feeds
/// use, each record's text unchanged inside it) and a cvelistV5-release-style nested zip.
fn mirror_files(s: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let debian: Vec<(String, Vec<u8>)> = sorted_files(&s.join("data/osv/Debian"))
        .iter()
        .map(|f| {
            let name = f.file_name().and_then(|n| n.to_str()).expect("name");
            (name.to_string(), std::fs::read(f).expect("read"))
        })
        .collect();
    files.insert("/osv/Debian/all.zip".to_string(), zip_of(&debian));
    let mut by_year: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in sorted_files(&s.join("data/nvd/nvd")) {
        let text = std::fs::read_to_string(&f).expect("read");
        by_year.entry(year(&f)).or_default().push(text);
    }
    for (y, records) in &by_year {
        let feed = format!(
            r#"{{"resultsPerPage":{n},"startIndex":0,"totalResults":{n},"format":"NVD_CVE","version":"2.0","timestamp":"2026-12-02T00:00:00.000","vulnerabilities":[{}]}}"#,
            records
                .iter()
                .map(|r| format!(r#"{{"cve":{r}}}"#))
                .collect::<Vec<_>>()
                .join(","),
            n = records.len()
        );
        files.insert(
            format!("/nvd/nvdcve-2.0-{y}.json.gz"),
            gzip(feed.as_bytes()),
        );
    }
    let cves: Vec<(String, Vec<u8>)> = sorted_files(&s.join("data/nvd/cve5"))
        .iter()
        .map(|f| {
            let name = f.file_name().and_then(|n| n.to_str()).expect("name");
            let num: u64 = name
                .trim_end_matches(".json")
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number");
            (
                format!("cves/{}/{}xxx/{name}", year(f), num / 1000),
                std::fs::read(f).expect("read"),
            )
        })
        .collect();
    let inner = zip_of(&cves);
    files.insert(
        "/cve/2026-12-02_all_CVEs_at_midnight.zip.zip".to_string(),
        zip_of(&[("cves.zip".to_string(), inner)]),
    );
    (files, by_year.into_keys().collect())
}

/// A loopback HTTP/1.1 server: `/<path>` serves the file whole; `/short/<path>` announces its
/// length but closes after half of it; `/cut/<path>` serves a file cut short, with a matching
/// `Content-Length` (a damaged file on the mirror); anything else is 404.
fn serve(files: BTreeMap<String, Vec<u8>>) -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", l.local_addr().expect("addr"));
    let files = Arc::new(files);
    let h = std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            if path == "/quit" {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                break;
            }
            let head = |code: &str, len: usize| {
                format!("HTTP/1.1 {code}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            };
            let (mode, file) = if let Some(rest) = path.strip_prefix("/short") {
                ("short", rest)
            } else if let Some(rest) = path.strip_prefix("/cut") {
                ("cut", rest)
            } else {
                ("whole", path.as_str())
            };
            let _ = match files.get(file) {
                None => s.write_all(head("404 Not Found", 0).as_bytes()),
                Some(body) => match mode {
                    "short" => s
                        .write_all(head("200 OK", body.len()).as_bytes())
                        .and_then(|_| s.write_all(&body[..body.len() / 2])),
                    "cut" => {
                        let cut = &body[..body.len() - body.len() / 3];
                        s.write_all(head("200 OK", cut.len()).as_bytes())
                            .and_then(|_| s.write_all(cut))
                    }
                    _ => s
                        .write_all(head("200 OK", body.len()).as_bytes())
                        .and_then(|_| s.write_all(body)),
                },
            };
        }
    });
    (addr, h)
}

const DPKG: &str = "Package: libssl1.1\nStatus: install ok installed\nSource: openssl\nVersion: 1.1.1k-1\nArchitecture: amd64\n\n\
Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.11.dfsg-2\nArchitecture: amd64\n\n\
Package: gzip\nStatus: install ok installed\nVersion: 1.10-4\nArchitecture: amd64\n\n\
Package: sudo\nStatus: install ok installed\nVersion: 1.9.5p2-3\nArchitecture: amd64\n\n";

/// A Debian 11 rootfs with old OpenSSL, zlib, gzip and sudo.
fn debian_root(dir: &Path) -> PathBuf {
    let root = dir.join("debian-11");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"11\"\nPRETTY_NAME=\"Debian GNU/Linux 11\"\n",
    )
    .expect("os-release");
    std::fs::write(root.join("var/lib/dpkg/status"), DPKG).expect("status");
    root
}

/// Each vulnerability finding's id, package, severity and rating (source, record, vector).
fn rated(db: &Path, target: &str) -> Vec<(String, String, String, Value)> {
    let o = moat(&[
        "scan",
        target,
        "--db",
        p(db),
        "--scanners",
        "vuln",
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut v: Vec<_> = json(&o)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_string(),
                f["package"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
                f["vulnerability"]["rating"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

fn status(db: &Path) -> Value {
    json(&moat(&["db", "status", "--db", p(db), "--format", "json"]))
}

#[test]
fn db_update_fetches_nvd_feeds_and_the_cve_list_like_db_import_and_a_cut_feed_changes_nothing() {
    let Some(s) = shared() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (files, years) = mirror_files(&s);
    let cve_list = "/cve/2026-12-02_all_CVEs_at_midnight.zip.zip";
    let (addr, server) = serve(files);

    // The reference: `moat db import` of the same records.
    let imported = tmp.path().join("imported");
    let o = moat(&[
        "db",
        "import",
        "--db",
        p(&imported),
        p(&s.join("data/osv/Debian")),
        p(&s.join("data/nvd")),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let updated = tmp.path().join("updated");
    let update = |prefix: &str, cve: &str| {
        let mut args: Vec<String> = [
            "db",
            "update",
            "--db",
            p(&updated),
            "--ecosystem",
            "Debian",
            "--mirror",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("{addr}/osv"));
        args.push("--nvd-mirror".into());
        args.push(format!("{addr}{prefix}/nvd"));
        for y in &years {
            args.push("--nvd-feed".into());
            args.push(y.clone());
        }
        args.push("--cve-mirror".into());
        args.push(format!("{addr}{cve}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        moat(&refs)
    };
    let o = update("", cve_list);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("CVE ratings from 3 NVD feed(s) and the CVE list"),
        "{out}"
    );

    let (a, b) = (status(&imported), status(&updated));
    assert_eq!(b["rated_cves"], 40, "{b}");
    assert_eq!(b["cve_ratings"], a["cve_ratings"]);
    assert_eq!(b["records"], a["records"]);
    // The body is a function of the records and ratings alone: the same data, the same digest.
    assert_eq!(b["digest"], a["digest"], "update and import disagree");
    let sources: Vec<&str> = b["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert!(
        sources.contains(&format!("{addr}/nvd/nvdcve-2.0-2022.json.gz").as_str()),
        "{sources:?}"
    );
    assert!(
        sources.contains(&format!("{addr}{cve_list}").as_str()),
        "{sources:?}"
    );

    // Scans rate the same findings from the same sources, NVD's and the CNA's among them.
    let root = debian_root(tmp.path());
    let target = format!("dir:{}", root.display());
    let from_update = rated(&updated, &target);
    let from_import = rated(&imported, &target);
    assert_eq!(from_update, from_import);
    let source_of = |src: &str| from_update.iter().filter(|f| f.3["source"] == src).count();
    assert!(source_of("nvd") >= 6, "{from_update:#?}");
    let f = from_update
        .iter()
        .find(|f| f.0 == "CVE-2022-0778")
        .expect("CVE-2022-0778");
    assert_eq!(f.2, "HIGH");
    assert_eq!(
        f.3["vector"],
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    );
    eprintln!(
        "{} findings: {} rated by nvd, {} by cna, {} by adp",
        from_update.len(),
        source_of("nvd"),
        source_of("cna"),
        source_of("adp")
    );

    // A feed cut in transfer, a feed cut on the mirror, a cut CVE list: exit 2 naming the URL,
    // and the snapshot is the one before.
    let first_feed = format!("nvdcve-2.0-{}.json.gz", years[0]);
    for (what, prefix, cve, url) in [
        (
            "short transfer",
            "/short",
            cve_list.to_string(),
            format!("{addr}/short/nvd/{first_feed}"),
        ),
        (
            "cut gzip",
            "/cut",
            cve_list.to_string(),
            format!("{addr}/cut/nvd/{first_feed}"),
        ),
        (
            "cut CVE list",
            "",
            format!("/cut{cve_list}"),
            format!("{addr}/cut{cve_list}"),
        ),
        (
            "missing feed",
            "/none",
            cve_list.to_string(),
            format!("{addr}/none/nvd/{first_feed}"),
        ),
    ] {
        let o = update(prefix, &cve);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("database unchanged"), "{what}: {err}");
        assert!(err.contains(&url), "{what}: {err} does not name {url}");
        eprintln!("{what}: {}", err.trim());
        assert_eq!(
            status(&updated)["digest"],
            b["digest"],
            "{what} changed the snapshot"
        );
    }

    let _ = std::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .and_then(|mut s| s.write_all(b"GET /quit HTTP/1.1\r\n\r\n"));
    let _ = server.join();
}
