//! The Harbor Scanner Adapter API v1.2 served by a real `moat server`, scanning from a real registry
//! (distribution, `../shared/scripts/registry.sh`) as Harbor would ask it to: metadata and its
//! capabilities, an asynchronous scan (202 + id), the report polled (302 + Refresh-After, then 200) in
//! both vulnerability report types and as a CycloneDX SBOM report, and the errors the spec names
//! (400, 404, 422, 501; 500 once a scan failed for good).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moat_testkit::registry::{Registry, free_port};
use serde_json::{Value, json};

const ADMIN: &str = "bootstrap-secret-harbor-adapter-0123456789";
const VULN: &str = "application/vnd.security.vulnerability.report; version=1.1";
const VULN_HARBOR: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
const SBOM: &str = "application/vnd.security.sbom.report+json; version=1.0";
const SCAN_REQUEST: &str = "application/vnd.scanner.adapter.scan.request+json; version=1.1";

fn moat() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let st = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "moat"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(&root)
        .status()
        .expect("cargo build moat");
    assert!(st.success(), "cargo build -p moat failed");
    profile_dir.join("moat")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Answer {
    status: u16,
    /// Header lines, lowercased names.
    headers: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
        })
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Answer {
            status: 0,
            headers: String::new(),
            body: String::new(),
        };
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut h = String::new();
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{h}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

fn p(x: &Path) -> String {
    x.display().to_string()
}

#[test]
fn harbor_scanner_adapter_v1_2() {
    let Some(osv) = moat_testkit::shared_path("data/osv") else {
        return;
    };
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let lang = std::env::var_os("MOAT_LANG_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/moat-fixtures/lang-image"))
        .join("oci");
    if !lang.join("index.json").is_file() {
        moat_testkit::skip(&format!(
            "{} is missing (scripts/deps.d/40-lang-image.sh)",
            lang.display()
        ));
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bin = moat();
    let db = tmp.path().join("db");
    let o = Command::new(&bin)
        .args(["db", "import", "--db", &p(&db)])
        .args(["npm", "PyPI", "Go"].map(|e| p(&osv.join(e))))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    reg.push(&format!("oci:{}:lang", p(&lang)), "library/lang:1.0");
    let digest = reg.digest("library/lang:1.0");

    let store = format!("sqlite:{}", p(&tmp.path().join("server.db")));
    let o = Command::new(&bin)
        .args([
            "server",
            "token",
            "create",
            "--scope",
            "ingest,read",
            "--name",
            "harbor",
        ])
        .args(["--store", &store])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let auth = format!("Bearer {token}");
    let config = tmp.path().join("moat-server.yaml");
    std::fs::write(
        &config,
        format!(
            "scan:\n  insecure_registries: [\"{}\"]\n  retry_initial_ms: 100\n  retry_max_ms: 200\n  max_attempts: 2\n",
            reg.addr()
        ),
    )
    .unwrap();
    let port = free_port();
    let log = tmp.path().join("server.log");
    let _server = Proc(
        Command::new(&bin)
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--store", &store, "--db", &p(&db), "--config", &p(&config)])
            .env("MOAT_SERVER_TOKEN", ADMIN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("moat server"),
    );
    let t = Instant::now();
    while http(port, "GET", "/healthz", &[], b"").status != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let a = [("Authorization", auth.as_str())];

    // Metadata: both capabilities, the database's date.
    let m = http(port, "GET", "/api/v1/metadata", &a, b"");
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(
        m.header("content-type").as_deref(),
        Some("application/vnd.scanner.adapter.metadata+json; version=1.1")
    );
    let mj = m.json();
    assert_eq!(mj["scanner"]["name"], "moat");
    let caps = mj["capabilities"].as_array().unwrap();
    assert!(caps.iter().any(|c| {
        c["type"] == "vulnerability"
            && c["produces_mime_types"]
                .as_array()
                .unwrap()
                .contains(&json!(VULN))
    }));
    assert!(caps.iter().any(|c| {
        c["type"] == "sbom"
            && c["additional_attributes"]["sbom_media_types"]
                .as_array()
                .unwrap()
                .contains(&json!("application/vnd.cyclonedx+json"))
    }));
    assert!(
        mj["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"].is_string(),
        "{mj}"
    );
    assert_eq!(http(port, "GET", "/api/v1/metadata", &[], b"").status, 401);

    // Scan requests: errors first.
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", SCAN_REQUEST),
    ];
    let req = |url: &str, mime: &str, d: &str| {
        json!({"registry": {"url": url, "authorization": "Basic cm9ib3Q6c2VjcmV0"},
               "artifact": {"repository": "library/lang", "digest": d, "tag": "1.0", "mime_type": mime}})
        .to_string()
    };
    let r = http(port, "POST", "/api/v1/scan", &h, b"{\"registry\": ");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let r = http(
        port,
        "POST",
        "/api/v1/scan",
        &h,
        req(
            &format!("http://{}", reg.addr()),
            "application/vnd.oci.image.index.v1+json",
            &digest,
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 501, "{}", r.body);
    let r = http(
        port,
        "POST",
        "/api/v1/scan",
        &h,
        req("http://10.0.0.1:5000", oci, &digest).as_bytes(),
    );
    assert_eq!(
        r.status, 422,
        "plain HTTP to an unlisted registry: {}",
        r.body
    );
    let r = http(
        port,
        "POST",
        "/api/v1/scan",
        &h,
        req(&format!("http://{}", reg.addr()), oci, "sha256:xyz").as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.body);

    // The real scan: 202 with an id, then polled.
    let r = http(
        port,
        "POST",
        "/api/v1/scan",
        &h,
        req(&format!("http://{}", reg.addr()), oci, &digest).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/scan/{id}/report");
    let accept = |m: &'static str| [("Authorization", auth.as_str()), ("Accept", m)];
    let t = Instant::now();
    let report = loop {
        let r = http(port, "GET", &path, &accept(VULN), b"");
        match r.status {
            200 => break r,
            302 => {
                let after: u64 = r
                    .header("refresh-after")
                    .and_then(|v| v.parse().ok())
                    .expect("Refresh-After");
                assert!(after >= 1, "{after}");
            }
            other => panic!(
                "report: {other} {}\n{}",
                r.body,
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no report within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(report.header("content-type").as_deref(), Some(VULN));
    let rj = report.json();
    assert_eq!(rj["artifact"]["digest"], digest.as_str());
    assert_eq!(rj["artifact"]["repository"], "library/lang");
    assert_eq!(rj["scanner"]["name"], "moat");
    let vulns = rj["vulnerabilities"].as_array().expect("vulnerabilities");
    assert!(
        vulns.iter().any(|v| v["package"] == "lodash"
            && v["severity"] == "High"
            && v["fix_version"].as_str().is_some_and(|f| !f.is_empty())),
        "{rj}"
    );
    for v in vulns {
        let sev = v["severity"].as_str().unwrap_or("");
        assert!(
            ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"].contains(&sev),
            "{v}"
        );
    }
    assert!(
        ["High", "Critical"].contains(&rj["severity"].as_str().unwrap_or("")),
        "{}",
        rj["severity"]
    );
    // The Harbor 1.0 report type: the same vulnerabilities.
    let r = http(port, "GET", &path, &accept(VULN_HARBOR), b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type").as_deref(), Some(VULN_HARBOR));
    assert_eq!(
        r.json()["vulnerabilities"].as_array().map(Vec::len),
        Some(vulns.len())
    );
    // SBOM report: needs the media type; CycloneDX with the image's packages.
    let r = http(port, "GET", &path, &accept(SBOM), b"");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(
        port,
        "GET",
        &format!("{path}?sbom_media_type=application%2Fvnd.cyclonedx%2Bjson"),
        &accept(SBOM),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type").as_deref(), Some(SBOM));
    let sj = r.json();
    assert_eq!(sj["media_type"], "application/vnd.cyclonedx+json");
    assert_eq!(sj["sbom"]["bomFormat"], "CycloneDX");
    let comps = sj["sbom"]["components"].as_array().expect("components");
    assert!(
        comps.iter().any(|c| c["name"] == "lodash"),
        "lodash not in the SBOM"
    );
    // Unsupported report type, unknown id.
    assert_eq!(
        http(port, "GET", &path, &accept("text/plain"), b"").status,
        501
    );
    let unknown = format!("/api/v1/scan/sha256-{}/report", "ab".repeat(32));
    assert_eq!(http(port, "GET", &unknown, &accept(VULN), b"").status, 404);
    assert_eq!(
        http(
            port,
            "GET",
            "/api/v1/scan/nonsense/report",
            &accept(VULN),
            b""
        )
        .status,
        404
    );

    // A digest the registry does not have: 302 while retried, then 500 with the registry's answer.
    let missing = format!("sha256:{}", "0f".repeat(32));
    let r = http(
        port,
        "POST",
        "/api/v1/scan",
        &h,
        req(&format!("http://{}", reg.addr()), oci, &missing).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let path = format!("/api/v1/scan/{}/report", r.json()["id"].as_str().unwrap());
    let t = Instant::now();
    loop {
        let r = http(port, "GET", &path, &accept(VULN), b"");
        if r.status == 500 {
            let msg = r.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(msg.contains(&missing), "{msg}");
            break;
        }
        assert_eq!(r.status, 302, "{}", r.body);
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the failed scan never reported 500"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log.contains(&token) && !log.contains("cm9ib3Q6c2VjcmV0"),
        "a secret in the server log"
    );
}
