//! moat's own container image (the repository's Dockerfile), dogfooded: moat lints the Dockerfile and scans
//! the image it builds (buildah, from the local Debian image) with no finding at MEDIUM or above; the image
//! has no shell and runs as a non-root user; and the admission webhook started from it with exactly the
//! arguments and mounts of deploy/base/admission/webhook.yaml answers /readyz 200 over TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a container tool inside the shared podman environment (rootful, runc, cgroupfs, own storage).
fn contained(tool: &str, args: &[&str]) -> Output {
    let env = moat_testkit::shared_path("scripts/podman-env.sh")
        .expect("../shared/scripts/podman-env.sh");
    Command::new("bash")
        .arg("-c")
        .arg("source \"$0\" && exec \"$@\"")
        .arg(env)
        .arg(tool)
        .args(args)
        .output()
        .expect("run container tool")
}

fn severe(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter(|f| matches!(f["severity"].as_str(), Some("MEDIUM" | "HIGH" | "CRITICAL")))
                .map(|f| format!("{} {} {}", f["severity"], f["id"], f["title"]))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn own_dockerfile_lints_clean_at_medium() {
    let o = Command::new(MOAT)
        .args(["lint", "--fail-on", "medium", "-f", "json"])
        .arg(root().join("Dockerfile"))
        .output()
        .expect("run moat");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert!(severe(&report).is_empty(), "{:?}", severe(&report));
}

/// The `args:` list of the first container in a manifest, as written (one `- arg` per line).
fn deployment_args(manifest: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut indent = None;
    for line in manifest.lines() {
        match indent {
            None if line.trim_end().ends_with("args:") && line.trim_start() == "args:" => {
                indent = Some(line.len() - line.trim_start().len());
            }
            Some(n) => {
                let t = line.trim_start();
                if t.starts_with('#') {
                    continue;
                }
                match t.strip_prefix("- ") {
                    Some(a) if line.len() - t.len() == n => args.push(a.trim().to_string()),
                    _ => break,
                }
            }
            None => {}
        }
    }
    args
}

fn osv_db(dir: &Path) -> Option<PathBuf> {
    let osv = moat_testkit::shared_path("data/osv")?;
    let db = dir.join("db");
    let o = Command::new(MOAT)
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .output()
        .expect("moat db import");
    assert!(o.status.success(), "{}", text(&o));
    Some(db)
}

#[test]
fn own_image_scans_clean_and_serves_the_webhook_as_deployed() {
    moat_testkit::require_shared!("scripts/podman-env.sh");
    let base_oci = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/moat-fixtures/bookworm/oci");
    let missing: Vec<&str> = ["buildah", "podman", "skopeo", "curl"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() || !base_oci.join("index.json").is_file() {
        // scripts/deps.d/00-images.sh installs the tools and builds the Debian image (skip fails in CI).
        moat_testkit::skip(&format!(
            "own_image: missing {missing:?} or {}",
            base_oci.display()
        ));
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();

    // The build context: the repository's Dockerfile and the moat binary these tests run.
    let ctx = w.join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::copy(root().join("Dockerfile"), ctx.join("Dockerfile")).expect("copy Dockerfile");
    std::fs::copy(MOAT, ctx.join("moat")).expect("copy moat");
    let base = "localhost/moat-test/debian:bookworm";
    let o = contained(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:bookworm", base_oci.display()),
            &format!("containers-storage:{base}"),
        ],
    );
    assert!(o.status.success(), "load base: {}", text(&o));
    let image = "localhost/moat-test/moat:dev";
    let o = contained(
        "buildah",
        &[
            "build",
            "-q",
            "--pull=never",
            "--format=docker",
            "--build-arg",
            &format!("BASE={base}"),
            "--build-arg",
            "MOAT_BIN=moat",
            "-t",
            image,
            &ctx.display().to_string(),
        ],
    );
    assert!(o.status.success(), "buildah build: {}", text(&o));
    let archive = w.join("moat-image.tar");
    let o = contained(
        "buildah",
        &[
            "push",
            "-q",
            image,
            &format!("oci-archive:{}:moat:dev", archive.display()),
        ],
    );
    assert!(o.status.success(), "buildah push: {}", text(&o));

    // Scan: vulnerabilities and image-configuration checks, gated at MEDIUM.
    let db = osv_db(w).expect("shared OSV data");
    let o = Command::new(MOAT)
        .arg("scan")
        .arg(format!("oci-archive:{}", archive.display()))
        .args(["--fail-on", "medium", "-f", "json", "--db"])
        .arg(&db)
        .output()
        .expect("moat scan");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("scan report is not JSON ({e}): {}", text(&o)));
    assert!(severe(&report).is_empty(), "{:?}", severe(&report));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // No shell, a non-root user.
    let o = contained(
        "podman",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "true",
        ],
    );
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no such file"),
        "the image has a shell: {}",
        text(&o)
    );
    let o = contained(
        "podman",
        &["image", "inspect", "--format", "{{.Config.User}}", image],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "65532:65532");

    // The webhook, started exactly as deploy/base/admission/webhook.yaml starts it.
    let manifest = std::fs::read_to_string(root().join("deploy/base/admission/webhook.yaml"))
        .expect("webhook.yaml");
    let args = deployment_args(&manifest);
    assert!(
        args.first().map(String::as_str) == Some("admission"),
        "{args:?}"
    );
    let tls = w.join("tls");
    let o = Command::new(MOAT)
        .args(["admission", "certs", "--name", "127.0.0.1", "--out"])
        .arg(&tls)
        .output()
        .expect("moat admission certs");
    assert!(o.status.success(), "{}", text(&o));
    let token = w.join("token");
    std::fs::create_dir_all(&token).expect("mkdir token");
    std::fs::write(token.join("token"), "moat_read_token_for_the_test\n").expect("token");
    // The files are read by uid 65532 inside the container, as the Secret volumes are in a pod.
    for d in [&tls, &token] {
        let o = Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(d)
            .output()
            .expect("chmod");
        assert!(o.status.success());
    }
    let policies = root().join("deploy/base/admission/policies");
    let name = format!("moat-webhook-test-{}", std::process::id());
    let mut run: Vec<String> = [
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (src, dst) in [
        (&tls, "/etc/moat/tls"),
        (&policies, "/etc/moat/policies"),
        (&token, "/etc/moat/token"),
    ] {
        run.push("-v".into());
        run.push(format!("{}:{dst}:ro", src.display()));
    }
    run.push(image.into());
    run.extend(args.iter().cloned());
    let refs: Vec<&str> = run.iter().map(String::as_str).collect();
    let o = contained("podman", &refs);
    assert!(o.status.success(), "podman run: {}", text(&o));
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = contained("podman", &["rm", "-f", "-t", "1", &self.0]);
        }
    }
    let _stop = Stop(name.clone());

    let port = args
        .iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .and_then(|l| l.rsplit(':').next())
        .expect("--listen in the Deployment's args")
        .to_string();
    let url = format!("https://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let o = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(tls.join("ca.crt"))
            .arg(&url)
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if code == "200" || Instant::now() > deadline {
            break code;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let logs = contained("podman", &["logs", &name]);
    assert_eq!(ready, "200", "/readyz from the image: {}", text(&logs));
}
