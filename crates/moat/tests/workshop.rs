//! The container-security workshop our users follow (`../shared/data/workshop`), done end to end with
//! the `moat` binary alone, offline: every exercise's step is a moat command here, run on the
//! workshop's own files, real Debian images, a real loopback registry and the shared OSV data.
//!
//! - exercise 1: lint `vulnerable.dockerfile` and `secure.dockerfile`, compare them with `moat diff`;
//! - exercises 2 and 3: scan real images to JSON and SARIF with the pipeline's CRITICAL/HIGH gate, and
//!   the alert plus remediation plan for a vulnerable image pushed to a registry;
//! - admission: the workshop's `image-security-policy.yaml` through `moat policy test` and
//!   `moat lint --policy`; its PodSecurityPolicy's intent as `--profile pss-restricted`;
//! - exercise 4: `rbac.yaml` and `network-policy.yaml` pass, `collector-daemonset.yaml` is flagged;
//! - exercise 5: moat's default runtime rules load, and the workshop's incidents fire them in a replay.
//!
//! Walkthrough with real output: `docs/workshop.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    base.is_dir().then_some(base)
}

/// The workshop folder, or `None` after saying it is missing.
fn workshop() -> Option<PathBuf> {
    match shared().map(|s| s.join("data/workshop")) {
        Some(w) if w.join("README.md").is_file() => Some(w),
        _ => {
            eprintln!("SKIPPED: ../shared/data/workshop is missing");
            None
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn fixtures() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/moat-fixtures")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs moat with no ambient database or config, so only what a test passes counts.
fn moat(args: &[&str]) -> Output {
    let out = Command::new(MOAT)
        .args(args)
        .env("MOAT_DB", "/nonexistent/moat-db")
        .env_remove("MOAT_OSV_MIRROR")
        .env("COSIGN_PASSWORD", "")
        // No user configuration (~/.hadolint.yaml, registry credentials) changes what the workshop sees.
        .env("HOME", "/nonexistent/moat-home")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run moat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "moat {args:?} panicked: {err}");
    out
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            stdout(out),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings array")
}

fn ids(report: &Value) -> BTreeSet<String> {
    findings(report)
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

const LEVELS: [&str; 6] = ["UNKNOWN", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn rank(sev: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(sev))
        .unwrap_or_else(|| panic!("unknown severity {sev}"))
}

/// What `--fail-on SEV` must answer for this report: 1 when an unsuppressed finding is at or above it.
fn expected_gate(report: &Value, sev: &str) -> i32 {
    let hit = findings(report).iter().any(|f| {
        f.get("suppressed").is_none_or(Value::is_null)
            && rank(f["severity"].as_str().expect("severity")) >= rank(sev)
    });
    i32::from(hit)
}

/// The SARIF 2.1.0 schema validator, or `None` after saying why.
fn sarif_validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let path = shared()?.join("data/schemas/sarif/sarif-2.1/sarif-schema-2.1.0.json");
        let text = std::fs::read_to_string(&path).ok()?;
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        Some(jsonschema::validator_for(&schema).expect("schema compiles"))
    })
    .as_ref()
}

fn assert_valid_sarif(doc: &Value, what: &str) {
    assert_eq!(doc["version"], "2.1.0", "{what}");
    match sarif_validator() {
        Some(v) => {
            let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{what}: SARIF invalid: {errors:?}");
        }
        None => eprintln!("SKIPPED: SARIF schema missing: {what} not validated"),
    }
    // Every result's rule is declared, as GitHub code scanning needs.
    let run = &doc["runs"][0];
    let rules: BTreeSet<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    for r in run["results"].as_array().expect("results") {
        let id = r["ruleId"].as_str().expect("ruleId");
        assert!(rules.contains(id), "{what}: result rule {id} not declared");
    }
}

/// All of `../shared/data/osv` and the NVD / CVE JSON 5 severity records of `../shared/data/nvd`
/// imported once per test process into the target's tmp dir.
fn db() -> Option<PathBuf> {
    static DB: OnceLock<Option<PathBuf>> = OnceLock::new();
    DB.get_or_init(|| {
        let osv = shared()?.join("data/osv");
        let nvd = shared()?.join("data/nvd");
        if !osv.is_dir() || !nvd.is_dir() {
            eprintln!(
                "SKIPPED: ../shared/data/osv or data/nvd is missing: no vulnerability database"
            );
            return None;
        }
        let db = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workshop-db");
        let o = moat(&[
            "db",
            "import",
            "--replace",
            "--db",
            p(&db),
            p(&osv),
            p(&nvd),
        ]);
        assert_eq!(
            code(&o),
            0,
            "db import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Some(db)
    })
    .clone()
}

/// `moat scan TARGET --format json` with the test database, run once per target per test process
/// (several exercises look at the same report).
fn scan_json(target: &str, db: &Path) -> Value {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(target) {
        return v.clone();
    }
    let o = moat(&["scan", target, "--db", p(db), "--format", "json"]);
    assert_eq!(
        code(&o),
        0,
        "{target}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    cache.lock().unwrap().insert(target.to_string(), v.clone());
    v
}

/// A report's findings without the name the target was given (`location.object`), so the same image
/// read from two places compares equal.
fn same_image(report: &Value) -> Value {
    let mut fs = report["findings"].clone();
    for f in fs.as_array_mut().expect("findings") {
        if let Some(loc) = f.get_mut("location").and_then(Value::as_object_mut) {
            loc.remove("object");
        }
    }
    fs
}

// ---------------------------------------------------------------------------------------------
// Exercise 1: scan both Dockerfiles, compare, write the comparison report.

#[test]
fn exercise1_lint_both_dockerfiles_and_diff() {
    let Some(w) = workshop() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The repo's examples are the workshop's files, unchanged.
    for f in ["vulnerable.dockerfile", "secure.dockerfile"] {
        assert_eq!(
            std::fs::read(repo().join("examples").join(f)).unwrap(),
            std::fs::read(w.join(f)).unwrap(),
            "examples/{f} differs from the workshop's"
        );
    }
    let vul = w.join("vulnerable.dockerfile");
    let sec = w.join("secure.dockerfile");
    let (vj, sj) = (
        tmp.path().join("before.json"),
        tmp.path().join("after.json"),
    );
    for (df, out) in [(&vul, &vj), (&sec, &sj)] {
        let o = moat(&["lint", p(df), "--format", "json", "-o", p(out)]);
        assert_eq!(code(&o), 0, "no --fail-on: exit 0 whatever is found");
        assert!(o.stdout.is_empty(), "-o FILE leaves stdout empty");
    }
    let (before, after) = (read_json(&vj), read_json(&sj));
    let (bi, ai) = (ids(&before), ids(&after));
    // What the workshop says is wrong with the vulnerable image, each with a file:line location.
    for (id, line) in [
        ("DL3007", 1),      // ubuntu:latest
        ("MOAT-DF-007", 2), // curl, wget, netcat left in the image
        ("DL3008", 2),      // unpinned apt packages
        ("DL3009", 2),      // apt lists left behind
        ("MOAT-DF-002", 5), // chmod 777
        ("MOAT-DF-001", 6), // runs as root
        ("DL3002", 6),
    ] {
        let f = findings(&before)
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("vulnerable.dockerfile: {id} missing: {bi:?}"));
        assert_eq!(f["location"]["line"], line, "{id}");
        assert!(
            f["location"]["file"]
                .as_str()
                .unwrap()
                .ends_with("vulnerable.dockerfile")
        );
        assert!(
            f["fix"].as_str().is_some_and(|s| !s.is_empty()),
            "{id} has a fix"
        );
        assert!(!ai.contains(id), "secure.dockerfile still has {id}");
    }
    // The hardened file: non-root, no world-writable files, no network tools, pinned tag.
    assert!(ai.iter().all(|i| {
        ![
            "MOAT-DF-001",
            "MOAT-DF-002",
            "MOAT-DF-007",
            "DL3002",
            "DL3007",
        ]
        .contains(&i.as_str())
    }));
    let worst = |r: &Value| {
        findings(r)
            .iter()
            .map(|f| rank(f["severity"].as_str().unwrap()))
            .max()
    };
    assert!(worst(&before) >= Some(rank("HIGH")));
    assert!(
        worst(&after) < Some(rank("MEDIUM")),
        "secure.dockerfile: {ai:?}"
    );
    // The same as a CI gate.
    assert_eq!(code(&moat(&["lint", p(&vul), "--fail-on", "high"])), 1);
    assert_eq!(code(&moat(&["lint", p(&sec), "--fail-on", "medium"])), 0);

    // The comparison report: a finding is unchanged when the same rule fires for the same cause (its
    // message: DL3066 on `USER root` and on `USER appuser` are two causes), fixed or new otherwise.
    let count = |r: &Value| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for f in findings(r) {
            let key = format!(
                "{} {}",
                f["id"].as_str().unwrap(),
                f["message"].as_str().unwrap_or("")
            );
            *m.entry(key).or_default() += 1;
        }
        m
    };
    let (bc, ac) = (count(&before), count(&after));
    let fixed: usize = bc
        .iter()
        .map(|(id, n)| n.saturating_sub(*ac.get(id).unwrap_or(&0)))
        .sum();
    let new: usize = ac
        .iter()
        .map(|(id, n)| n.saturating_sub(*bc.get(id).unwrap_or(&0)))
        .sum();
    let unchanged = findings(&after).len() - new;
    let md = tmp.path().join("comparison.md");
    let o = moat(&["diff", p(&vj), p(&sj), "-o", p(&md)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains(&format!("## Fixed ({fixed})")), "{text}");
    assert!(text.contains(&format!("## New ({new})")), "{text}");
    assert!(
        text.contains(&format!("## Unchanged ({unchanged})")),
        "{text}"
    );
    let fixed_section = text
        .split("## Fixed")
        .nth(1)
        .unwrap()
        .split("## New")
        .next()
        .unwrap();
    for id in bi.difference(&ai) {
        assert!(
            fixed_section.contains(id.as_str()),
            "{id} not listed as fixed:\n{text}"
        );
    }
    // Printed to stdout without -o, byte for byte the same.
    assert_eq!(stdout(&moat(&["diff", p(&vj), p(&sj)])), text);

    // SARIF of both, valid for code scanning, with regions.
    for df in [&vul, &sec] {
        let doc = json(&moat(&["lint", p(df), "--format", "sarif"]));
        assert_valid_sarif(&doc, &df.display().to_string());
    }

    // The workshop's "good" multi-stage example: non-root, HEALTHCHECK, no network tools.
    let good = json(&moat(&[
        "lint",
        p(&w.join("node-multistage.dockerfile")),
        "--format",
        "json",
    ]));
    let gi = ids(&good);
    for id in [
        "MOAT-DF-001",
        "DL3002",
        "DL3057",
        "MOAT-DF-007",
        "MOAT-DF-002",
    ] {
        assert!(
            !gi.contains(id),
            "node-multistage.dockerfile: {id} in {gi:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Exercises 2 and 3: image scanning, the pipeline's gate, SARIF upload.

/// The pipeline's scanner step: `severity: 'CRITICAL,HIGH'` and `format: 'sarif'`, read from the file.
fn pipeline_gate(w: &Path) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(w.join("container-security-pipeline.yml")).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("pipeline has no {key}"))
    };
    let severities: Vec<String> = value("severity")
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .collect();
    (severities, value("format"))
}

/// `moat scan` as the pipeline runs it: JSON for people, SARIF (only the gated severities) for code
/// scanning, and the gate's exit code. Returns the JSON report.
fn pipeline_scan(target: &str, db: &Path, w: &Path, tmp: &Path) -> Value {
    let (sevs, format) = pipeline_gate(w);
    assert_eq!(sevs, ["critical", "high"]);
    assert_eq!(format, "sarif");
    let lowest = sevs.iter().min_by_key(|s| rank(s)).unwrap().clone();
    let dbs = p(db);
    let report = scan_json(target, db);
    assert_eq!(report["schema"], "moat.report/v1");
    // The verdict names the database snapshot it came from.
    let status = json(&moat(&["db", "status", "--db", dbs, "--json"]));
    let digest = report["metadata"]["db_digest"].as_str().expect("db_digest");
    assert!(digest.starts_with("sha256:"));
    assert!(
        stdout(&moat(&["db", "status", "--db", dbs])).contains(digest)
            || status.to_string().contains(digest)
    );

    // The gate: exit 1 exactly when something is at or above it.
    for sev in ["critical", "high", "low"] {
        let o = moat(&[
            "scan",
            target,
            "--db",
            dbs,
            "--format",
            "json",
            "--fail-on",
            sev,
        ]);
        assert_eq!(
            code(&o),
            expected_gate(&report, sev),
            "{target} --fail-on {sev}"
        );
        assert_eq!(
            json(&o)["findings"],
            report["findings"],
            "the gate changes no finding"
        );
    }
    // The SARIF the pipeline uploads: only CRITICAL and HIGH, valid, one result per finding.
    let sarif = tmp.join("results.sarif");
    let o = moat(&[
        "scan",
        target,
        "--db",
        dbs,
        "--severity",
        &sevs.join(","),
        "--format",
        &format,
        "-o",
        p(&sarif),
        "--fail-on",
        &lowest,
    ]);
    assert_eq!(
        code(&o),
        expected_gate(&report, &lowest),
        "{target}: pipeline gate"
    );
    assert!(o.stdout.is_empty());
    let doc = read_json(&sarif);
    assert_valid_sarif(&doc, target);
    let gated = findings(&report)
        .iter()
        .filter(|f| rank(f["severity"].as_str().unwrap()) >= rank(&lowest))
        .count();
    assert_eq!(
        doc["runs"][0]["results"].as_array().unwrap().len(),
        gated,
        "{target}"
    );
    report
}

#[test]
fn exercise3_pipeline_gate_on_the_bookworm_image() {
    let Some(w) = workshop() else { return };
    let image = fixtures().join("bookworm/docker.tar");
    if !image.is_file() {
        eprintln!(
            "SKIPPED: {} missing (../shared/scripts/debian-image.sh bookworm)",
            image.display()
        );
        return;
    }
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let target = format!("docker-archive:{}", image.display());
    let report = pipeline_scan(&target, &db, &w, tmp.path());
    assert_eq!(report["metadata"]["os"], "debian 12");
    // The shared data has no Debian 12 advisories: the report says so instead of looking clean.
    let deb = report["coverage"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["ecosystem"] == "Debian:12"))
        .expect("Debian:12 coverage");
    assert_eq!(
        (deb["covered"].clone(), deb["records"].clone()),
        (Value::Bool(false), Value::from(0))
    );
    assert!(
        report["warnings"]
            .as_array()
            .is_some_and(|ws| ws.iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("no Debian:12 records")))),
        "{}",
        report["warnings"]
    );
    // Every installed package was looked at (dpkg-query lists 88).
    assert_eq!(report["metadata"]["packages"], "88");
    // The same image in its OCI form gives the same verdict.
    let oci = fixtures().join("bookworm/oci");
    if oci.is_dir() {
        let o = json(&moat(&[
            "scan",
            &format!("oci:{}", oci.display()),
            "--db",
            p(&db),
            "--format",
            "json",
        ]));
        assert_eq!(same_image(&o), same_image(&report));
        assert_eq!(o["metadata"]["packages"], "88");
    }
}

/// Writes `root` as a one-layer `docker save` archive (manifest.json, config, layer tar).
fn docker_archive(root: &Path, out: &Path, user: &str) {
    use sha2::{Digest, Sha256};
    let mut layer = tar::Builder::new(Vec::new());
    layer.append_dir_all(".", root).expect("layer");
    let layer = layer.into_inner().expect("layer bytes");
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"User": user},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "workshop: Debian 11 with OpenSSL 1.1.1k-1, zlib 1.2.11.dfsg-2, gzip 1.10-4"}]})
    .to_string();
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config.as_bytes())));
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["workshop/old-openssl:1"], "Layers": ["layer/layer.tar"]}]).to_string();
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

/// The synthetic old-OpenSSL image of issue 14: Debian 11 with the OpenSSL, zlib and gzip releases
/// that eight DSAs of the shared data fix. In OSV those DSAs carry no severity; with the NVD records
/// imported beside them the image fails the pipeline's `--fail-on high` through NVD's CVSS.
#[test]
fn exercise3_old_openssl_image_fails_the_gate_through_nvd_severities() {
    let Some(w) = workshop() else { return };
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n",
    )
    .unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: libssl1.1\nStatus: install ok installed\nSource: openssl\nVersion: 1.1.1k-1\nArchitecture: amd64\n\n\
         Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.11.dfsg-2\nArchitecture: amd64\n\n\
         Package: gzip\nStatus: install ok installed\nVersion: 1.10-4\nArchitecture: amd64\n\n",
    )
    .unwrap();
    let image = tmp.path().join("old-openssl.tar");
    // A non-root user, so the image-configuration checks do not decide the gate.
    docker_archive(&root, &image, "1001");
    let target = format!("docker-archive:{}", image.display());
    let report = pipeline_scan(&target, &db, &w, tmp.path());
    let vulns: Vec<&Value> = findings(&report)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .collect();
    assert_eq!(vulns.len(), 8, "the eight OpenSSL/zlib/gzip DSAs");
    // HIGH or CRITICAL by NVD's CVSS, each naming the CVE and carrying the vector.
    let by_nvd: Vec<&&Value> = vulns
        .iter()
        .filter(|f| rank(f["severity"].as_str().unwrap()) >= rank("HIGH"))
        .filter(|f| f["vulnerability"]["rating"]["source"] == "nvd")
        .collect();
    assert_eq!(by_nvd.len(), 7, "{vulns:#?}");
    for f in &by_nvd {
        assert!(f["id"].as_str().unwrap().starts_with("CVE-"), "{}", f["id"]);
        assert!(
            f["vulnerability"]["rating"]["vector"]
                .as_str()
                .is_some_and(|v| v.starts_with("CVSS:3.1/"))
        );
    }
    // The gate on what NVD rates CRITICAL alone (the OS end-of-life finding is HIGH) exits 1: it
    // exited 0 when every DSA was UNKNOWN.
    let o = moat(&[
        "scan",
        &target,
        "--db",
        p(&db),
        "--scanners",
        "vuln",
        "--fail-on",
        "critical",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        findings(&json(&o))
            .iter()
            .any(|f| f["kind"] == "vulnerability" && f["severity"] == "CRITICAL")
    );
}

/// The image's configuration (the build-time checks on what was built): a Debian base runs as root and
/// ships setuid binaries; each finding names the file and the layer, with its CIS Docker Benchmark id.
#[test]
fn exercise1_image_configuration_of_the_built_image() {
    let image = fixtures().join("bookworm/docker.tar");
    if !image.is_file() {
        eprintln!("SKIPPED: {} missing", image.display());
        return;
    }
    let target = format!("docker-archive:{}", image.display());
    let o = moat(&["lint", &target, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    assert_eq!(r["target"]["kind"], "image");
    let root = findings(&r)
        .iter()
        .find(|f| f["id"] == "MOAT-IMG-001")
        .expect("no User in the config: runs as root");
    assert_eq!(root["severity"], "HIGH");
    assert!(
        root["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "CIS-DI-0001")
    );
    let setuid: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-005")
        .collect();
    let files: BTreeSet<&str> = setuid
        .iter()
        .filter_map(|f| f["location"]["file"].as_str())
        .collect();
    for f in ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount"] {
        assert!(files.contains(f), "{f} is setuid in Debian: {files:?}");
    }
    assert!(setuid.iter().all(|f| {
        f["location"]["layer"]
            .as_str()
            .is_some_and(|l| l.starts_with("sha256:"))
    }));
    let tmp = tempfile::tempdir().unwrap();
    let gate = tmp.path().join("gate.txt");
    assert_eq!(
        code(&moat(&[
            "lint",
            &target,
            "--fail-on",
            "high",
            "-o",
            p(&gate)
        ])),
        1
    );
    assert_valid_sarif(
        &json(&moat(&["lint", &target, "--format", "sarif"])),
        "image lint",
    );
}

/// The image with application dependencies of known-vulnerable releases (lodash 4.17.15, urllib3
/// 1.24.1, ...), built by scripts/deps.d/40-lang-image.sh on top of bookworm.
fn lang_image() -> Option<String> {
    let oci = fixtures().join("lang-image/oci");
    if oci.join("index.json").is_file() {
        Some(format!("oci:{}:lang", oci.display()))
    } else {
        eprintln!(
            "SKIPPED: {} missing (scripts/deps.d/40-lang-image.sh)",
            oci.display()
        );
        None
    }
}

#[test]
fn exercise3_pipeline_blocks_a_vulnerable_image() {
    let Some(w) = workshop() else { return };
    let Some(target) = lang_image() else { return };
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let report = pipeline_scan(&target, &db, &w, tmp.path());
    let high: Vec<&Value> = findings(&report)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .filter(|f| rank(f["severity"].as_str().unwrap()) >= rank("HIGH"))
        .collect();
    assert!(
        !high.is_empty(),
        "old lodash/urllib3/idna: HIGH advisories expected"
    );
    // "Push image if secure" does not happen: the gate said 1.
    assert_eq!(
        code(&moat(&[
            "scan",
            &target,
            "--db",
            p(&db),
            "--fail-on",
            "high",
            "-o",
            p(&tmp.path().join("r"))
        ])),
        1
    );
    // --ignore-unfixed keeps only what can be fixed; the gate still holds for those.
    let fixable = json(&moat(&[
        "scan",
        &target,
        "--db",
        p(&db),
        "--format",
        "json",
        "--ignore-unfixed",
    ]));
    let vulns = findings(&fixable)
        .iter()
        .filter(|f| f["kind"] == "vulnerability");
    assert!(vulns.clone().count() > 0);
    assert!(vulns.into_iter().all(|f| {
        f["vulnerability"]["fixed_versions"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    }));
}

/// (advisory id, purl without qualifiers) of every finding: what a finding is about, wherever found.
fn about(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = findings(report)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .map(|f| {
            let purl = f["package"]["purl"].as_str().unwrap_or("");
            let purl = purl.split('?').next().unwrap_or("").to_string();
            (f["id"].as_str().unwrap().to_string(), purl)
        })
        .collect();
    v.sort();
    v
}

/// The SBOM written at build time and scanned later (the registry/"security center" flow): CycloneDX and
/// SPDX from `moat sbom` give the same findings as the image.
#[test]
fn exercise3_sbom_of_the_image_scans_the_same() {
    let Some(target) = lang_image() else { return };
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let image = scan_json(&target, &db);
    assert!(!findings(&image).is_empty());
    for format in ["cyclonedx", "spdx"] {
        let bom = tmp.path().join(format!("bom.{format}.json"));
        let o = moat(&["sbom", &target, "--format", format, "-o", p(&bom)]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let o = moat(&[
            "scan",
            &format!("sbom:{}", p(&bom)),
            "--db",
            p(&db),
            "--format",
            "json",
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let r = json(&o);
        assert_eq!(
            about(&r),
            about(&image),
            "{format}: scan of the SBOM differs from the image's"
        );
        assert_eq!(r["metadata"]["os"], image["metadata"]["os"]);
        assert_eq!(r["metadata"]["packages"], image["metadata"]["packages"]);
    }
}

/// `moat diff` of the image's report and its SBOM's report: nothing fixed, nothing new.
#[test]
fn diff_of_image_and_its_sbom_is_empty() {
    let Some(target) = lang_image() else { return };
    let Some(db) = db() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (a, bom, b) = (
        tmp.path().join("a.json"),
        tmp.path().join("bom.json"),
        tmp.path().join("b.json"),
    );
    assert_eq!(
        code(&moat(&[
            "scan",
            &target,
            "--scanners",
            "vuln",
            "--db",
            p(&db),
            "--format",
            "json",
            "-o",
            p(&a)
        ])),
        0
    );
    assert_eq!(
        code(&moat(&[
            "sbom",
            &target,
            "--format",
            "cyclonedx",
            "-o",
            p(&bom)
        ])),
        0
    );
    let t = format!("sbom:{}", p(&bom));
    assert_eq!(
        code(&moat(&[
            "scan",
            &t,
            "--db",
            p(&db),
            "--format",
            "json",
            "-o",
            p(&b)
        ])),
        0
    );
    let md = stdout(&moat(&["diff", p(&a), p(&b)]));
    assert!(
        md.contains("## Fixed (0)") && md.contains("## New (0)"),
        "{md}"
    );
}

/// moat reads back its own inventory (`moat sbom` prints it by default into a pipe).
#[test]
fn own_inventory_is_a_valid_sbom_target() {
    let Some(target) = lang_image() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inventory.json");
    assert_eq!(
        code(&moat(&["sbom", &target, "--format", "json", "-o", p(&inv)])),
        0
    );
    let o = moat(&["sbom", &format!("sbom:{}", p(&inv)), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn exercise2_pushed_image_alert_and_remediation_plan() {
    let Some(_w) = workshop() else { return };
    let Some(target) = lang_image() else { return };
    let Some(db) = db() else { return };
    let script = shared().unwrap().join("scripts/registry.sh");
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("skopeo") || !have("docker-registry") {
        eprintln!("SKIPPED: skopeo or docker-registry missing (../shared/scripts/apt-tools.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reg_dir = tmp.path().join("registry");
    struct Stop(PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("bash")
                .arg(&self.0)
                .arg("stop")
                .arg(&self.1)
                .status();
        }
    }
    let started = Command::new("bash")
        .arg(&script)
        .args(["start", p(&reg_dir), &port.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let _stop = Stop(script.clone(), reg_dir.clone());
    assert!(started.success(), "registry did not start");
    let oci_ref = target.clone();
    let pushed = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &oci_ref,
            &format!("docker://127.0.0.1:{port}/secure-app:1.0.0"),
        ])
        .status()
        .unwrap();
    assert!(pushed.success(), "skopeo push");

    let reg = format!("registry:127.0.0.1:{port}/secure-app:1.0.0");
    // The alert: a HIGH vulnerability in the pushed image fails the check.
    let o = moat(&[
        "scan",
        &reg,
        "--insecure-registry",
        "--db",
        p(&db),
        "--format",
        "json",
        "--fail-on",
        "high",
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let pulled = json(&o);
    // The registry copy is the same image: the same findings as the layout it was pushed from.
    let local = scan_json(&target, &db);
    assert_eq!(same_image(&pulled), same_image(&local));
    // The remediation plan: every HIGH vulnerability says what to upgrade to, where the package sits.
    let high: Vec<&Value> = findings(&pulled)
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .filter(|f| rank(f["severity"].as_str().unwrap()) >= rank("HIGH"))
        .collect();
    assert!(!high.is_empty());
    for f in &high {
        let name = f["package"]["name"].as_str().unwrap();
        let fixed = f["vulnerability"]["fixed_versions"].as_array().unwrap();
        assert!(!fixed.is_empty(), "{}: no fixed version", f["id"]);
        let fix = f["fix"].as_str().unwrap_or("");
        assert!(
            fix.contains(name) && fixed.iter().any(|v| fix.contains(v.as_str().unwrap())),
            "{fix}"
        );
        assert!(
            f["location"]["file"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(
            f["location"]["layer"]
                .as_str()
                .is_some_and(|s| s.starts_with("sha256:"))
        );
        assert!(
            f["vulnerability"]["matched"]["comparison"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
    // Why: `moat explain` of one of them against the pushed image says MATCH.
    let id = high[0]["id"].as_str().unwrap();
    let o = moat(&[
        "explain",
        id,
        &reg,
        "--insecure-registry",
        "--db",
        p(&db),
        "-f",
        "text",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("MATCH"), "{}", stdout(&o));

    // The pipeline's "sign" step and its check: cosign-compatible keys, the signature pushed next to
    // the image, verified by the trusted key only.
    let keys = tmp.path().join("keys");
    let other = tmp.path().join("other-keys");
    for dir in [&keys, &other] {
        let o = moat(&["key", "generate", "--out", p(dir)]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (key, public, other_public) = (
        keys.join("cosign.key"),
        keys.join("cosign.pub"),
        other.join("cosign.pub"),
    );
    let verify = |public: &Path| {
        moat(&[
            "verify",
            &reg,
            "--insecure-registry",
            "--key",
            p(public),
            "--format",
            "json",
        ])
    };
    assert_eq!(code(&verify(&public)), 1, "not signed yet");
    let o = moat(&["sign", &reg, "--insecure-registry", "--key", p(&key)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let ok = verify(&public);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stderr));
    let r = json(&ok);
    assert!(findings(&r).is_empty(), "{r}");
    assert_eq!(r["metadata"]["verified_by"], p(&public));
    let no = verify(&other_public);
    assert_eq!(code(&no), 1, "a signature by another key is not trusted");
    assert!(findings(&json(&no)).iter().any(|f| f["severity"] == "HIGH"));
}

// ---------------------------------------------------------------------------------------------
// Admission: the image-security policy and the PodSecurityPolicy's intent.

const GOOD_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: secure-app
  namespace: production
  labels:
    app: secure-app
  annotations:
    defender.security.microsoft.com/scan-status: "passed"
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1001
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: app
    image: myregistry.azurecr.io/secure-app:1.0.0
    securityContext:
      runAsNonRoot: true
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
"#;

const BAD_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: bad-app
  namespace: production
spec:
  containers:
  - name: app
    image: docker.io/library/ubuntu:latest
"#;

fn policy_ids(report: &Value, object: &str) -> BTreeSet<String> {
    findings(report)
        .iter()
        .filter(|f| {
            f["location"]["object"]
                .as_str()
                .is_some_and(|o| o.ends_with(object))
        })
        .filter_map(|f| f["id"].as_str())
        .filter(|i| i.starts_with("production-image-policy/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn admission_image_security_policy() {
    let Some(w) = workshop() else { return };
    let policy = w.join("image-security-policy.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods.yaml");
    std::fs::write(&pods, format!("{GOOD_POD}---\n{BAD_POD}")).unwrap();
    let rules = [
        "no-root-user",
        "require-image-scanning",
        "trusted-registries",
    ];

    // Kyverno's test format, unchanged: every rule passes the good pod and fails the bad one.
    let mut results = String::new();
    for rule in rules {
        for (pod, want) in [("secure-app", "pass"), ("bad-app", "fail")] {
            results += &format!(
                "- policy: production-image-policy\n  rule: {rule}\n  kind: Pod\n  resources: [{pod}]\n  result: {want}\n"
            );
        }
    }
    // A test reads only the files of its own tree (issue 17): the workshop's policy sits beside it, as in
    // Kyverno's layout.
    std::fs::copy(&policy, tmp.path().join("image-security-policy.yaml")).unwrap();
    let test = format!(
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: workshop\npolicies:\n- image-security-policy.yaml\nresources:\n- pods.yaml\nresults:\n{results}"
    );
    std::fs::write(tmp.path().join("kyverno-test.yaml"), &test).unwrap();
    let o = moat(&["policy", "test", p(tmp.path()), "--format", "json"]);
    assert_eq!(
        code(&o),
        0,
        "{}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = json(&o);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["ok"] == true), "{rows:?}");
    // A wrong expectation is a mismatch: exit 1.
    let wrong = tmp.path().join("wrong");
    std::fs::create_dir(&wrong).unwrap();
    std::fs::copy(&pods, wrong.join("pods.yaml")).unwrap();
    std::fs::copy(&policy, wrong.join("image-security-policy.yaml")).unwrap();
    std::fs::write(
        wrong.join("kyverno-test.yaml"),
        test.replacen("result: fail", "result: pass", 1),
    )
    .unwrap();
    assert_eq!(code(&moat(&["policy", "test", p(&wrong)])), 1);

    // The same policy in CI: `moat lint --policy`.
    let o = moat(&["lint", p(&pods), "--policy", p(&policy), "--format", "json"]);
    assert_eq!(code(&o), 0);
    let report = json(&o);
    assert!(policy_ids(&report, "secure-app").is_empty(), "{report}");
    let bad = policy_ids(&report, "bad-app");
    let want: BTreeSet<String> = rules
        .iter()
        .map(|r| format!("production-image-policy/{r}"))
        .collect();
    assert_eq!(bad, want);
    for f in findings(&report).iter().filter(|f| {
        f["id"]
            .as_str()
            .unwrap()
            .starts_with("production-image-policy/")
    }) {
        assert!(
            f["location"]["file"]
                .as_str()
                .unwrap()
                .ends_with("pods.yaml")
        );
        assert_eq!(
            f["location"]["document"], 1,
            "the bad pod is the second document"
        );
    }
    // The messages are the policy's own.
    let text = report.to_string();
    for m in [
        "Containers must not run as root",
        "Images must be scanned before deployment",
        "Images must come from trusted registries",
    ] {
        assert!(text.contains(m), "{m}");
    }
    // The good pod alone passes the policy and PSS restricted: the gate is clean.
    let good = tmp.path().join("good.yaml");
    std::fs::write(&good, GOOD_POD).unwrap();
    let o = moat(&[
        "lint",
        p(&good),
        "--policy",
        p(&policy),
        "--profile",
        "pss-restricted",
        "--fail-on",
        "low",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // Pod rules reach the pod template of a workload (the collector DaemonSet fails all three).
    let r = json(&moat(&[
        "lint",
        p(&w.join("collector-daemonset.yaml")),
        "--policy",
        p(&policy),
        "--format",
        "json",
    ]));
    assert_eq!(policy_ids(&r, "microsoft-defender-collector"), want);
    assert_eq!(
        code(&moat(&[
            "lint",
            p(&w.join("collector-daemonset.yaml")),
            "--policy",
            p(&policy),
            "--profile",
            "pss-baseline",
            "--fail-on",
            "medium"
        ])),
        1
    );
}

#[test]
fn admission_pod_security_policy_intent_is_pss_restricted() {
    let Some(w) = workshop() else { return };
    let psp = std::fs::read_to_string(w.join("pod-security-policy.yaml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lint = |yaml: &str, name: &str, profile: &str| -> (i32, Value) {
        let f = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&f, yaml).unwrap();
        let o = moat(&[
            "lint",
            p(&f),
            "--profile",
            profile,
            "--fail-on",
            "low",
            "--format",
            "json",
        ]);
        (code(&o), json(&o))
    };
    // A pod within the PodSecurityPolicy passes the restricted profile.
    let (c, r) = lint(GOOD_POD, "good", "pss-restricted");
    assert_eq!((c, findings(&r).len()), (0, 0), "{r}");
    // Each field of the PodSecurityPolicy, broken on its own, is refused by the PSS check it maps to.
    let cases: [(&str, &str, String); 7] = [
        (
            "privileged: false",
            "privileged",
            GOOD_POD.replace(
                "      allowPrivilegeEscalation: false\n",
                "      allowPrivilegeEscalation: false\n      privileged: true\n",
            ),
        ),
        (
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation",
            GOOD_POD.replace(
                "allowPrivilegeEscalation: false",
                "allowPrivilegeEscalation: true",
            ),
        ),
        (
            "requiredDropCapabilities",
            "capabilities_restricted",
            GOOD_POD.replace("        drop: [\"ALL\"]\n", "        drop: [\"NET_RAW\"]\n"),
        ),
        (
            "hostNetwork: false",
            "hostNamespaces",
            GOOD_POD.replace(
                "  automountServiceAccountToken: false\n",
                "  automountServiceAccountToken: false\n  hostNetwork: true\n",
            ),
        ),
        (
            "hostPID: false",
            "hostNamespaces",
            GOOD_POD.replace(
                "  automountServiceAccountToken: false\n",
                "  automountServiceAccountToken: false\n  hostPID: true\n",
            ),
        ),
        (
            "volumes:",
            "restrictedVolumes",
            format!("{GOOD_POD}  volumes:\n  - name: data\n    hostPath:\n      path: /data\n"),
        ),
        (
            "MustRunAsNonRoot",
            "runAsNonRoot",
            GOOD_POD.replace("runAsNonRoot: true", "runAsNonRoot: false"),
        ),
    ];
    for (field, check, yaml) in &cases {
        assert!(psp.contains(field), "the workshop's PSP has {field}");
        assert_ne!(yaml, GOOD_POD, "{check}: mutation applied");
        let (c, r) = lint(yaml, check, "pss-restricted");
        assert_eq!(c, 1, "{field} broken: exit 1\n{r}");
        assert!(
            ids(&r).contains(*check),
            "{field} broken: {check} expected in {:?}",
            ids(&r)
        );
        // The profile runs PSS checks only.
        assert!(
            ids(&r).iter().all(|i| !i.starts_with("MOAT-")),
            "{:?}",
            ids(&r)
        );
    }
    // readOnlyRootFilesystem is not part of PSS; moat's best-practice check covers it.
    assert!(psp.contains("readOnlyRootFilesystem: true"));
    let (_, r) = lint(
        &GOOD_POD.replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
        "rofs",
        "all",
    );
    assert!(ids(&r).contains("MOAT-K8S-007"), "{:?}", ids(&r));
}

/// Stops the webhook this test started.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str], body: Option<&str>) -> Option<String> {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "10"]).args(args);
    c.stdin(if body.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped());
    let mut child = c.spawn().ok()?;
    if let Some(b) = body {
        use std::io::Write;
        child.stdin.take()?.write_all(b.as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn review(uid: &str, pod_yaml: &str) -> String {
    let pod: Value = serde_saphyr::from_str(pod_yaml).expect("pod YAML");
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "production",
            "operation": "CREATE",
            "userInfo": {"username": "developer"},
            "object": pod,
        }
    })
    .to_string()
}

/// Starts `moat admission serve` on a free loopback port with `extra` after `--policies`; returns the
/// server (stopped on drop) and a function posting an AdmissionReview for a pod.
fn webhook(certs: &Path, extra: &[&str]) -> (Server, impl Fn(&str, &str) -> Value + use<>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(MOAT)
        .args(["admission", "serve", "--listen", &addr])
        .args([
            "--tls-cert",
            p(&certs.join("tls.crt")),
            "--tls-key",
            p(&certs.join("tls.key")),
        ])
        .arg("--policies")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start webhook");
    let server = Server(child);
    let ca = p(&certs.join("ca.crt")).to_string();
    let base = format!("https://{addr}");
    let mut up = false;
    for _ in 0..100 {
        if curl(&["--cacert", &ca, &format!("{base}/healthz")], None).is_some() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "webhook did not come up on {addr}");
    let post = move |uid: &str, pod: &str| -> Value {
        let url = format!("{base}/validate");
        let args = [
            "--cacert",
            &ca,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
            &url,
        ];
        let out = curl(&args, Some(&review(uid, pod))).expect("webhook answered");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not an AdmissionReview ({e}): {out}"))
    };
    (server, post)
}

/// Block or allow at deployment: the webhook with the workshop's policy and PSS restricted, over real
/// TLS with certificates from `moat admission certs`.
#[test]
fn admission_webhook_blocks_or_allows() {
    let Some(w) = workshop() else { return };
    if curl(&["--version"], None).is_none() {
        eprintln!("SKIPPED: curl missing: webhook not exercised");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let o = moat(&[
        "admission",
        "certs",
        "--out",
        p(&certs),
        "--name",
        "127.0.0.1",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let policy = w.join("image-security-policy.yaml");
    let (_server, post) = webhook(&certs, &[p(&policy), "--profile", "pss-restricted"]);
    // The pod that follows the policy and PSS restricted is admitted, with nothing to warn about.
    let ok = post("uid-good", GOOD_POD);
    assert_eq!(ok["response"]["uid"], "uid-good");
    assert_eq!(ok["response"]["allowed"], true, "{ok}");
    assert!(
        ok["response"]["warnings"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{ok}"
    );
    // The workshop's bad pod is refused by PSS restricted, with the reasons; the policy (no
    // validationFailureAction: Kyverno's default, Audit) adds its three messages as warnings.
    let no = post("uid-bad", BAD_POD);
    assert_eq!(no["response"]["uid"], "uid-bad");
    assert_eq!(no["response"]["allowed"], false, "{no}");
    let msg = no["response"]["status"]["message"].as_str().unwrap_or("");
    for why in ["allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile"] {
        assert!(msg.contains(why), "{why} not in the denial: {msg}");
    }
    let warnings = no["response"]["warnings"].to_string();
    for m in [
        "Containers must not run as root",
        "Images must be scanned before deployment",
        "Images must come from trusted registries",
    ] {
        assert!(warnings.contains(m), "{m} not warned: {no}");
    }
    // The same policy set to Enforce denies on its own rules, with their messages.
    let text = std::fs::read_to_string(&policy).unwrap();
    let enforce = tmp.path().join("enforce.yaml");
    std::fs::write(
        &enforce,
        text.replacen(
            "\nspec:\n",
            "\nspec:\n  validationFailureAction: Enforce\n",
            1,
        ),
    )
    .unwrap();
    let (_enforcing, post) = webhook(&certs, &[p(&enforce)]);
    assert_eq!(post("uid-good", GOOD_POD)["response"]["allowed"], true);
    let no = post("uid-bad", BAD_POD);
    assert_eq!(no["response"]["allowed"], false, "{no}");
    let msg = no["response"]["status"]["message"].as_str().unwrap_or("");
    for m in [
        "production-image-policy/no-root-user",
        "production-image-policy/require-image-scanning",
        "production-image-policy/trusted-registries",
    ] {
        assert!(msg.contains(m), "{m} not in the denial: {msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// Exercise 4: namespace with least-privilege RBAC and network segmentation; the collector flagged.

#[test]
fn exercise4_rbac_and_network_policy_pass() {
    let Some(w) = workshop() else { return };
    // Issue 14: the workshop's NetworkPolicy lists namespaceSelector and podSelector as two separate peers
    // (either one admits), in its ingress and in its DNS egress: MOAT-K8S-016 says so, and nothing else.
    let o = moat(&[
        "lint",
        p(&w.join("network-policy.yaml")),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let r = json(&o);
    let fields: Vec<(String, String)> = findings(&r)
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_string(),
                f["location"]["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                "MOAT-K8S-016".to_string(),
                "spec.ingress[0].from[1]".to_string()
            ),
            (
                "MOAT-K8S-016".to_string(),
                "spec.egress[1].to[1]".to_string()
            ),
        ],
        "{r}"
    );
    let o = moat(&[
        "lint",
        p(&w.join("rbac.yaml")),
        "--fail-on",
        "low",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "rbac.yaml: {}", stdout(&o));
    let r = json(&o);
    assert_eq!(r["target"]["kind"], "kubernetes");
    assert!(
        findings(&r).is_empty(),
        "rbac.yaml: least privilege, nothing to say: {r}"
    );
    // The RBAC check is live: the same Role widened to every verb on secrets is flagged.
    let tmp = tempfile::tempdir().unwrap();
    let wide = tmp.path().join("rbac-wide.yaml");
    let rbac = std::fs::read_to_string(w.join("rbac.yaml")).unwrap();
    let widened = rbac
        .replace(
            "resources: [\"pods\", \"services\"]",
            "resources: [\"pods\", \"secrets\"]",
        )
        .replace("verbs: [\"get\", \"list\", \"watch\"]", "verbs: [\"*\"]");
    assert_ne!(widened, rbac);
    std::fs::write(&wide, widened).unwrap();
    let o = moat(&["lint", p(&wide), "--fail-on", "high", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let got = ids(&json(&o));
    assert!(
        got.contains("MOAT-K8S-101") && got.contains("MOAT-K8S-103"),
        "{got:?}"
    );
    // Segmentation: the app's Deployment is selected by the workshop's NetworkPolicy when linted with it.
    let deploy = tmp.path().join("deploy.yaml");
    std::fs::write(
        &deploy,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: secure-app\n  namespace: production\nspec:\n  selector:\n    matchLabels:\n      app: secure-app\n  template:\n    metadata:\n      labels:\n        app: secure-app\n    spec:\n      containers:\n      - name: app\n        image: myregistry.azurecr.io/secure-app:1.0.0\n",
    )
    .unwrap();
    let alone = ids(&json(&moat(&["lint", p(&deploy), "--format", "json"])));
    assert!(alone.contains("MOAT-K8S-012"), "{alone:?}");
    let with = ids(&json(&moat(&[
        "lint",
        p(&deploy),
        p(&w.join("network-policy.yaml")),
        "--format",
        "json",
    ])));
    assert!(!with.contains("MOAT-K8S-012"), "{with:?}");
}

#[test]
fn exercise4_collector_daemonset_is_flagged() {
    let Some(w) = workshop() else { return };
    let ds = w.join("collector-daemonset.yaml");
    let o = moat(&["lint", p(&ds), "--format", "json"]);
    assert_eq!(code(&o), 0);
    let r = json(&o);
    let at = |id: &str, field: &str| {
        findings(&r)
            .iter()
            .find(|f| f["id"] == id && f["location"]["field"] == field)
            .unwrap_or_else(|| panic!("{id} at {field} missing: {r}"))
    };
    let f = at(
        "privileged",
        "spec.template.spec.containers[0].securityContext.privileged",
    );
    assert_eq!(f["severity"], "CRITICAL");
    assert_eq!(f["location"]["line"], 31);
    assert_eq!(
        f["location"]["object"],
        "DaemonSet/microsoft-defender/microsoft-defender-collector"
    );
    let f = at(
        "MOAT-K8S-009",
        "spec.template.spec.volumes[0].hostPath.path",
    );
    assert_eq!(f["severity"], "CRITICAL");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("/var/run/docker.sock")
    );
    at(
        "MOAT-K8S-010",
        "spec.template.spec.volumes[1].hostPath.path",
    );
    at(
        "MOAT-K8S-010",
        "spec.template.spec.volumes[2].hostPath.path",
    );
    for i in 0..3 {
        at(
            "hostPathVolumes",
            &format!("spec.template.spec.volumes[{i}].hostPath"),
        );
    }
    at("MOAT-K8S-005", "spec.template.spec.containers[0].image");
    for sev in ["critical", "high"] {
        assert_eq!(
            code(&moat(&["lint", p(&ds), "--fail-on", sev])),
            1,
            "--fail-on {sev}"
        );
    }
    // Pod Security Admission at baseline would refuse it too.
    let b = moat(&[
        "lint",
        p(&ds),
        "--profile",
        "pss-baseline",
        "--fail-on",
        "low",
        "--format",
        "json",
    ]);
    assert_eq!(code(&b), 1);
    assert_eq!(
        ids(&json(&b)),
        BTreeSet::from(["hostPathVolumes".to_string(), "privileged".to_string()])
    );
    // SARIF for the security center.
    assert_valid_sarif(
        &json(&moat(&["lint", p(&ds), "--format", "sarif"])),
        "collector-daemonset.yaml",
    );
    // The whole workshop folder in one report (Dockerfiles and manifests), valid SARIF too.
    assert_valid_sarif(
        &json(&moat(&["lint", p(&w), "--format", "sarif"])),
        "workshop folder",
    );
}

// ---------------------------------------------------------------------------------------------
// Exercise 5: runtime rules and the workshop's incidents.

fn event(num: u32, ty: &str, name: &str, exepath: &str, args: &[&str], extra: &str) -> String {
    let args = serde_json::to_string(args).unwrap();
    format!(
        r#"{{"num":{num},"ts":{ts},"type":"{ty}","dir":"<","res":0,"args":{{}},"proc":{{"pid":{pid},"tid":{pid},"vpid":{num},"name":"{name}","exe":"{name}","exepath":"{exepath}","args":{args},"cwd":"/app","tty":0,"uid":1001,"gid":1001,"loginuid":-1,"user":"appuser","ancestors":[{{"pid":4300,"name":"sh","exe":"/bin/sh","exepath":"/bin/sh","args":[]}}]}}{extra},"container":{{"id":"f3f5754df93a","full_id":"f3f5754df93a9c1e","runtime":"podman","image":"myregistry.azurecr.io/secure-app:1.0.0","image_repository":"myregistry.azurecr.io/secure-app","image_tag":"1.0.0","privileged":false}}}}"#,
        ts = 1_795_715_097_000_000_000u64 + u64::from(num) * 1_000_000_000,
        pid = 4300 + num,
    )
}

#[test]
fn exercise5_runtime_rules_and_incidents() {
    let rules = repo().join("crates/moat-runtime/rules/moat_rules.yaml");
    // moat's default rules all load and are evaluable; each carries MITRE ids and a response.
    let o = moat(&["runtime", "rules", "check", p(&rules), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let check = json(&o);
    let n = check["rules"].as_u64().unwrap();
    assert!(n >= 10, "{check}");
    assert_eq!(check["evaluable"], n);
    assert_eq!(check["skipped"].as_array().map(Vec::len), Some(0));
    let text = std::fs::read_to_string(&rules).unwrap();
    let count = |key: &str| text.lines().filter(|l| l.starts_with(key)).count() as u64;
    assert_eq!(count("- rule:"), n);
    assert_eq!(
        count("  response:"),
        n,
        "every default rule says how to respond"
    );
    // Every detection names MITRE techniques (the sensor-health rule is not an attack).
    for block in text.split("\n- rule:").skip(1) {
        assert!(
            block.contains("\n  mitre:") || block.contains("tags: [moat, sensor]"),
            "rule without MITRE ids:{}",
            block.lines().next().unwrap_or("")
        );
    }
    let text_out = moat(&["runtime", "rules", "check", p(&rules), "--format", "text"]);
    assert!(
        stdout(&text_out).contains(&format!("evaluable: {n}")),
        "{}",
        stdout(&text_out)
    );
    // The rules `watch` and `replay` embed are that file: checked and listed without naming it.
    let embedded = moat(&["runtime", "rules", "check", "--format", "json"]);
    assert_eq!(
        code(&embedded),
        0,
        "{}",
        String::from_utf8_lossy(&embedded.stderr)
    );
    assert_eq!(json(&embedded)["rules"], n);
    let listed = json(&moat(&["runtime", "rules", "list", "--format", "json"]));
    let listed = listed["rules"].as_array().expect("rules");
    assert_eq!(listed.len() as u64, n);
    for r in listed {
        assert!(
            r["rule"].as_str().is_some_and(|s| s.starts_with("moat ")),
            "{r}"
        );
        assert!(r["priority"].is_string() && r["enabled"] == true, "{r}");
    }
    let with_mitre = listed
        .iter()
        .filter(|r| r["mitre"].as_array().is_some_and(|m| !m.is_empty()))
        .count() as u64;
    assert!(
        with_mitre + 1 >= n,
        "MITRE ids listed for every detection: {with_mitre}/{n}"
    );

    // The incidents: curl to a malicious site (and its connection to a listed address), a crypto
    // miner, `sudo su` — replayed as the sensor records them.
    let tmp = tempfile::tempdir().unwrap();
    let events = [
        event(
            1,
            "execve",
            "curl",
            "/usr/bin/curl",
            &["http://malicious-site.com"],
            "",
        ),
        event(
            2,
            "connect",
            "curl",
            "/usr/bin/curl",
            &["http://malicious-site.com"],
            r#","fd":{"num":3,"type":"ipv4","l4proto":"tcp","lip":"10.88.0.5","lport":43210,"rip":"203.0.113.10","rport":80}"#,
        ),
        event(
            3,
            "execve",
            "xmrig",
            "/opt/xmrig",
            &[
                "-o",
                "stratum+tcp://pool.supportxmr.com:3333",
                "--donate-level",
                "1",
            ],
            "",
        ),
        event(4, "execve", "sudo", "/usr/bin/sudo", &["su"], ""),
    ];
    let file = tmp.path().join("incidents.jsonl");
    std::fs::write(&file, events.join("\n") + "\n").unwrap();
    let o = moat(&["runtime", "replay", p(&file), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let alerts: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert JSON line"))
        .collect();
    let fired: BTreeMap<&str, &Value> = alerts
        .iter()
        .map(|a| (a["rule"].as_str().unwrap(), a))
        .collect();
    for (rule, priority) in [
        ("moat Network tool in container", "Warning"),
        ("moat Outbound connection to malicious address", "Critical"),
        ("moat Crypto miner launched", "Critical"),
        ("moat Privilege escalation via sudo or su", "Warning"),
    ] {
        let a = fired
            .get(rule)
            .unwrap_or_else(|| panic!("{rule} did not fire: {alerts:?}"));
        assert_eq!(a["priority"], priority, "{rule}");
        // Falco's output shape, so existing alert pipelines (falcosidekick-style) take moat's alerts.
        for key in [
            "time",
            "rule",
            "priority",
            "output",
            "output_fields",
            "tags",
        ] {
            assert!(
                a.get(key).is_some_and(|v| !v.is_null()),
                "{rule}: no {key}: {a}"
            );
        }
        assert_eq!(a["output_fields"]["container.id"], "f3f5754df93a", "{rule}");
        assert!(
            a["mitre"].as_array().is_some_and(|m| !m.is_empty()),
            "{rule}: MITRE ids"
        );
        assert!(
            a["response"].as_str().is_some_and(|r| !r.is_empty()),
            "{rule}: response guidance"
        );
        assert!(
            a["output"].as_str().unwrap().contains("f3f5754df93a"),
            "{rule}: container id in output"
        );
        assert!(
            a.to_string().contains("myregistry.azurecr.io/secure-app"),
            "{rule}: image"
        );
    }
    // As an alerting gate: a CRITICAL alert fired.
    assert_eq!(
        code(&moat(&[
            "runtime",
            "replay",
            p(&file),
            "--fail-on",
            "critical",
            "-o",
            p(&tmp.path().join("a"))
        ])),
        1
    );
    // Nothing fires on a quiet app process.
    let quiet = tmp.path().join("quiet.jsonl");
    std::fs::write(
        &quiet,
        event(
            9,
            "execve",
            "gunicorn",
            "/usr/local/bin/gunicorn",
            &["--bind", "0.0.0.0:8000", "app:app"],
            "",
        ) + "\n",
    )
    .unwrap();
    let o = moat(&["runtime", "replay", p(&quiet), "--fail-on", "debug"]);
    assert_eq!((code(&o), stdout(&o)), (0, String::new()));

    // Falco's own stable rules load too (users bring their rule files).
    if let Some(s) = shared() {
        let falco = s.join("data/falco/rules/rules/falco_rules.yaml");
        if falco.is_file() {
            let c = json(&moat(&[
                "runtime",
                "rules",
                "check",
                p(&falco),
                "--format",
                "json",
            ]));
            assert!(c["rules"].as_u64().unwrap() > 0);
            assert_eq!(
                c["evaluable"], c["rules"],
                "every stable Falco rule is evaluable"
            );
            eprintln!(
                "falco_rules.yaml: {} rules, {} evaluable",
                c["rules"], c["evaluable"]
            );
        } else {
            eprintln!("SKIPPED: {} missing", falco.display());
        }
    }
}
