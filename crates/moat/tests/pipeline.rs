//! The workshop's CI pipeline (exercise 3) as shipped in examples/pipeline/pipeline.sh, run for real: buildah
//! builds, moat lints, scans and validates, skopeo pushes to a loopback registry, moat signs and verifies.
//! The vulnerable image is blocked and never reaches the registry; the secure one is pushed and signed.
//! The GitHub Action's run step (action.yml) is executed the way a runner executes it, on both images.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use moat_testkit::registry::Registry;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

/// A command run inside the shared podman environment (what buildah, podman and skopeo need here).
fn contained(podman_env: &Path, program: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg("source \"$0\" && exec \"$@\"")
        .arg(podman_env)
        .arg(program);
    c
}

fn fixtures() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/moat-fixtures")
}

fn catalog(reg: &Registry) -> String {
    let o = Command::new("curl")
        .args(["-sS", &format!("http://{}/v2/_catalog", reg.addr())])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `run:` script of the action's step `id: run`.
fn action_run_script() -> String {
    let yaml = std::fs::read_to_string(root().join("action.yml")).expect("action.yml");
    let action: serde_json::Value = serde_saphyr::from_str(&yaml).expect("action.yml parses");
    assert_eq!(action["runs"]["using"], "composite");
    action["runs"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == "run"))
        .and_then(|s| s["run"].as_str())
        .expect("a step with id: run")
        .to_string()
}

#[test]
fn workshop_pipeline_blocks_the_vulnerable_image_and_pushes_the_secure_one_signed() {
    let podman_env = moat_testkit::require_shared!("scripts/podman-env.sh");
    let osv = moat_testkit::require_shared!("data/osv");
    let (bookworm, lang) = (
        fixtures().join("bookworm/oci"),
        fixtures().join("lang-image/oci"),
    );
    let missing: Vec<&str> = ["buildah", "skopeo", "curl"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty()
        || !bookworm.join("index.json").is_file()
        || !lang.join("index.json").is_file()
    {
        // scripts/deps.d (00-images, 40-lang-image) provide both; skip() fails in CI.
        moat_testkit::skip(&format!(
            "pipeline: missing {missing:?} or the Debian/language images under {}",
            fixtures().display()
        ));
        return;
    }
    let Some(reg) = Registry::start() else {
        moat_testkit::skip("pipeline: no loopback registry");
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();

    // Bases in local storage, a vulnerability DB, a signing key.
    for (src, dst) in [
        (
            format!("oci:{}:bookworm", bookworm.display()),
            "localhost/moat-test/debian:bookworm",
        ),
        (
            format!("oci:{}:lang", lang.display()),
            "localhost/moat-test/lang:latest",
        ),
    ] {
        let o = contained(&podman_env, "skopeo")
            .args(["copy", "-q", &src, &format!("containers-storage:{dst}")])
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "load {src}: {}", text(&o));
    }
    let db = w.join("db");
    let o = Command::new(MOAT)
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .output()
        .expect("moat db import");
    assert!(o.status.success(), "{}", text(&o));
    let keys = w.join("keys");
    let o = Command::new(MOAT)
        .args(["key", "generate", "--out"])
        .arg(&keys)
        .env("COSIGN_PASSWORD", "")
        .output()
        .expect("moat key generate");
    assert!(o.status.success(), "{}", text(&o));

    let example = root().join("examples/pipeline");
    let pipeline = |image: &str, dockerfile: &str, base: &str| -> Output {
        contained(&podman_env, "bash")
            .arg(example.join("pipeline.sh"))
            .current_dir(&example)
            .env("REGISTRY", reg.addr())
            .env("IMAGE", image)
            .env("TAG", "1.0")
            .env("DOCKERFILE", example.join(dockerfile))
            .env("CONTEXT", example.join("app"))
            .env("MANIFEST", example.join("k8s/deployment.yaml"))
            .env("KEY", keys.join("cosign.key"))
            .env("OUT", w.join(image))
            .env("MOAT", MOAT)
            .env("MOAT_DB", &db)
            .env("COSIGN_PASSWORD", "")
            .env("INSECURE_REGISTRY", "true")
            .env(
                "BUILD_ARGS",
                format!("--pull=never --format=docker --build-arg BASE={base}"),
            )
            .output()
            .expect("run pipeline.sh")
    };

    // The vulnerable image: the scan gate blocks it, nothing reaches the registry.
    let o = pipeline(
        "vulnerable-app",
        "app/vulnerable.dockerfile",
        "localhost/moat-test/lang:latest",
    );
    eprintln!("vulnerable-app pipeline: {}", text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("BLOCKED"), "{err}");
    // Blocked by the scan gate itself (vulnerabilities at HIGH), and by the root user in the Dockerfile.
    assert!(
        err.contains("gate scan: findings at or above high"),
        "{err}"
    );
    assert!(
        err.contains("gate lint: findings at or above high"),
        "{err}"
    );
    assert!(err.contains("gate policy: passed"), "{err}");
    assert!(
        !catalog(&reg).contains("vulnerable-app"),
        "{}",
        catalog(&reg)
    );
    let scan: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.join("vulnerable-app/scan.sarif")).expect("scan.sarif written"),
    )
    .expect("SARIF JSON");
    assert_eq!(scan["version"], "2.1.0");
    assert!(
        scan["runs"][0]["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["level"] == "error")),
        "no error-level result in the vulnerable image's SARIF"
    );

    // The secure image: every gate passes, it is pushed and signed with the pipeline's key.
    let o = pipeline(
        "secure-app",
        "app/secure.dockerfile",
        "localhost/moat-test/debian:bookworm",
    );
    eprintln!("secure-app pipeline: {}", text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(catalog(&reg).contains("secure-app"), "{}", catalog(&reg));
    let o = Command::new(MOAT)
        .arg("verify")
        .arg(format!("registry:{}/secure-app:1.0", reg.addr()))
        .arg("--key")
        .arg(keys.join("cosign.pub"))
        .args(["--insecure-registry", "--format", "json"])
        .output()
        .expect("moat verify");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in ["lint.sarif", "scan.sarif", "policy.sarif"] {
        let sarif: serde_json::Value = serde_json::from_slice(
            &std::fs::read(w.join("secure-app").join(f)).expect("SARIF written"),
        )
        .expect("SARIF JSON");
        assert_eq!(sarif["version"], "2.1.0", "{f}");
    }

    // The action's run step, as a runner executes it (GITHUB_OUTPUT, inputs as env), on both images.
    let script = action_run_script();
    for (image, want) in [("secure-app", "0"), ("vulnerable-app", "1")] {
        let out = w.join(format!("{image}.github-output"));
        let sarif = w.join(format!("{image}.action.sarif"));
        let o = Command::new("bash")
            .arg("-e")
            .arg("-c")
            .arg(&script)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(MOAT).parent().expect("bin dir").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("GITHUB_OUTPUT", &out)
            .env("MOAT_COMMAND", "scan")
            .env(
                "MOAT_TARGET",
                format!("oci-archive:{}", w.join(image).join("image.tar").display()),
            )
            .env("MOAT_FAIL_ON", "high")
            .env("MOAT_SARIF", &sarif)
            .env("MOAT_ARGS", format!("--db {}", db.display()))
            .output()
            .expect("run the action's step");
        assert_eq!(
            o.status.code().map(|c| c.to_string()).as_deref(),
            Some(want),
            "{image}: {}",
            text(&o)
        );
        let outputs = std::fs::read_to_string(&out).expect("GITHUB_OUTPUT written");
        assert!(outputs.contains(&format!("exit-code={want}")), "{outputs}");
        assert!(
            outputs.contains(&format!("sarif={}", sarif.display())),
            "{outputs}"
        );
        assert!(sarif.is_file(), "{image}: no SARIF from the action");
    }
}
