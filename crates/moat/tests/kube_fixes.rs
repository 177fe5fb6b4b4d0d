//! Fixes to the Kubernetes side of the CLI, through the real binary: certificate validity of
//! `moat admission certs` (checked with the real openssl), empty manifests, empty policy paths,
//! Kubernetes flags checked whatever is linted, and the Kubernetes rules in `--list-rules`.

use std::path::Path;
use std::process::{Command, Output};

use moat_testkit::registry::{Registry, free_port, have, push};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str]) -> Output {
    Command::new(MOAT).args(args).output().expect("run moat")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dockerfile(dir: &Path) -> String {
    let p = dir.join("Dockerfile");
    std::fs::write(&p, "FROM debian:12.5\nUSER 1000\nCMD [\"true\"]\n").unwrap();
    p.display().to_string()
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x:1\n";

#[test]
fn admission_certs_are_valid_from_now_for_the_years_asked() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("c");
    let o = moat(&["admission", "certs", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["ca.crt", "tls.crt"] {
        let p = out.join(f);
        let p = p.to_str().unwrap();
        // Still valid 360 days from now (the old bug: expired at the next Jan 1).
        let c = Command::new("openssl")
            .args([
                "x509",
                "-in",
                p,
                "-noout",
                "-checkend",
                &(360 * 86400).to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "{f} expires within 360 days: {}",
            String::from_utf8_lossy(&c.stdout)
        );
        // ... but not beyond one year (and a day for leap years).
        let c = Command::new("openssl")
            .args([
                "x509",
                "-in",
                p,
                "-noout",
                "-checkend",
                &(367 * 86400).to_string(),
            ])
            .output()
            .unwrap();
        assert!(!c.status.success(), "{f} is valid for more than a year");
    }
    // Valid now: openssl verify checks notBefore <= now <= notAfter along the chain.
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(out.join("ca.crt"))
        .arg(out.join("tls.crt"))
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );

    // --years 3 lasts three years.
    let o = moat(&[
        "admission",
        "certs",
        "--out",
        out.to_str().unwrap(),
        "--years",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-checkend",
            &(3 * 364 * 86400).to_string(),
            "-in",
        ])
        .arg(out.join("tls.crt"))
        .output()
        .unwrap();
    assert!(c.status.success());

    for bad in ["0", "-1", "101"] {
        let o = moat(&[
            "admission",
            "certs",
            "--out",
            out.to_str().unwrap(),
            &format!("--years={bad}"),
        ]);
        assert_eq!(o.status.code(), Some(2), "--years {bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--years must be between 1 and 100"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn empty_manifests_are_input_errors() {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here\n---\n\n# more\n...\n"),
        ("empty.json", ""),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let o = moat(&["lint", p.to_str().unwrap(), "--fail-on", "low"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{}: no Kubernetes object (empty file)",
                p.display()
            )),
            "{}",
            stderr(&o)
        );
    }
    // A real manifest next to it still lints.
    let pod = d.path().join("pod.yaml");
    std::fs::write(&pod, POD).unwrap();
    let o = moat(&["lint", pod.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "runAsNonRoot")
    );
}

#[test]
fn policy_paths_without_a_policy_are_input_errors() {
    let d = tempfile::tempdir().unwrap();
    let pod = d.path().join("pod.yaml");
    std::fs::write(&pod, POD).unwrap();
    let empty = d.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let not_policy = d.path().join("configmap.yaml");
    std::fs::write(
        &not_policy,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let dir = d.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    for p in [&empty, &not_policy, &dir] {
        let o = moat(&[
            "lint",
            pod.to_str().unwrap(),
            "--policy",
            p.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", p.display(), stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                p.display()
            )),
            "{}",
            stderr(&o)
        );
    }
    // A real policy is accepted and judged.
    let policy = d.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: need-team\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: team\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      message: a team label is required\n      pattern:\n        metadata:\n          labels:\n            team: \"?*\"\n",
    )
    .unwrap();
    let o = moat(&[
        "lint",
        pod.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"].as_str().unwrap_or("").contains("need-team")),
        "{r}"
    );
}

#[test]
fn kubernetes_flags_are_checked_when_only_dockerfiles_are_linted() {
    let d = tempfile::tempdir().unwrap();
    let df = dockerfile(d.path());
    let o = moat(&["lint", &df]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let empty = d.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let empty_s = empty.display().to_string();
    for (flags, msg) in [
        (
            vec!["--profile", "pss-strict"],
            "unknown profile \"pss-strict\"".to_string(),
        ),
        (
            vec!["--pss-version", "v9"],
            "invalid Pod Security version \"v9\"".to_string(),
        ),
        (
            vec!["--policy", "/nonexistent/policy.yaml"],
            "cannot read /nonexistent/policy.yaml".to_string(),
        ),
        (
            vec!["--policy", &empty_s],
            format!("{empty_s}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found"),
        ),
    ] {
        let mut args = vec!["lint", df.as_str()];
        args.extend(flags.iter().copied());
        let o = moat(&args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&msg), "{flags:?}: {}", stderr(&o));
    }
}

#[test]
fn list_rules_has_the_kubernetes_rules() {
    let o = moat(&["lint", "--list-rules", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["severity_mapping"]["error"], "HIGH");
    let rules = r["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // The Dockerfile rules are still there, first, in the same shape.
    assert!(ids.contains(&"DL3007") && ids.contains(&"DL4006"));
    let dl3007 = rules.iter().find(|r| r["id"] == "DL3007").unwrap();
    assert_eq!(dl3007["scope"], "dockerfile");
    // Every best-practice/RBAC rule and every PSS check moat-kube can report.
    for k in moat_kube_ids() {
        assert!(ids.contains(&k.as_str()), "{k} not listed");
    }
    let privileged = rules.iter().find(|r| r["id"] == "privileged").unwrap();
    assert_eq!(privileged["pss_level"], "baseline");
    assert_eq!(privileged["severity"], "CRITICAL");
    let run_as_non_root = rules.iter().find(|r| r["id"] == "runAsNonRoot").unwrap();
    assert_eq!(run_as_non_root["pss_level"], "restricted");
    let socket = rules.iter().find(|r| r["id"] == "MOAT-K8S-009").unwrap();
    assert_eq!(socket["scope"], "kubernetes");
    for r in rules {
        for key in ["id", "severity", "scope", "title", "why", "fix"] {
            assert!(r[key].is_string(), "{key} missing in {r}");
        }
    }
    // A real manifest's findings all name a listed rule.
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("ds.yaml");
    std::fs::write(
        &m,
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels: {app: a}\n  template:\n    metadata:\n      labels: {app: a}\n    spec:\n      hostPID: true\n      containers:\n      - name: a\n        image: agent\n        securityContext:\n          privileged: true\n        volumeMounts:\n        - {name: sock, mountPath: /run/containerd/containerd.sock}\n      volumes:\n      - name: sock\n        hostPath: {path: /run/containerd/containerd.sock}\n",
    )
    .unwrap();
    let o = moat(&["lint", m.to_str().unwrap(), "--format", "json"]);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = rep["findings"].as_array().unwrap();
    assert!(found.iter().any(|f| f["id"] == "MOAT-K8S-009"), "{rep}");
    for f in found {
        assert!(
            ids.contains(&f["id"].as_str().unwrap()),
            "{} not listed",
            f["id"]
        );
    }
    // The text listing has them too.
    let o = moat(&["lint", "--list-rules", "--format", "table"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("MOAT-K8S-101")
            && text.contains("hostPathVolumes [HIGH] (Pod Security Standards baseline"),
        "{text}"
    );
}

/// The ids in moat-kube's source tables (read from the source, so a new rule must be listed too).
fn moat_kube_ids() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../moat-kube/src/");
    let mut ids = Vec::new();
    let rules = std::fs::read_to_string(format!("{root}rules.rs")).unwrap();
    for part in rules.split("\"MOAT-K8S-").skip(1) {
        ids.push(format!("MOAT-K8S-{}", &part[..3]));
    }
    let pss = std::fs::read_to_string(format!("{root}pss.rs")).unwrap();
    for part in pss.split("Check {\n        id: \"").skip(1) {
        ids.push(part.split('"').next().unwrap().to_string());
    }
    assert!(ids.len() > 30, "{ids:?}");
    ids.sort();
    ids.dedup();
    ids
}

// ---- "images must be signed" at admission, against a real registry and over real TLS ----

/// The webhook process this test started; killed by its own handle.
struct Webhook(std::process::Child);

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_webhook(d: &Path, extra: &[&str]) -> (Webhook, String) {
    let port = free_port();
    let mut args = vec![
        "admission".to_string(),
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        d.join("certs/tls.crt").display().to_string(),
        "--tls-key".into(),
        d.join("certs/tls.key").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(MOAT)
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let w = Webhook(child);
    let url = format!("https://127.0.0.1:{port}");
    for _ in 0..200 {
        let o = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(d.join("certs/ca.crt"))
            .arg(format!("{url}/readyz"))
            .output()
            .unwrap();
        if o.status.success() {
            return (w, url);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("webhook did not start: moat {args:?}");
}

fn review(d: &Path, url: &str, image: &str) -> serde_json::Value {
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "apps",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "image": image}]}}
        }
    });
    let f = d.join("review.json");
    std::fs::write(&f, body.to_string()).unwrap();
    let o = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(d.join("certs/ca.crt"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", f.display()))
        .arg(format!("{url}/validate"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    r["response"].clone()
}

#[test]
fn webhook_admits_signed_images_and_denies_unsigned_ones() {
    let Some(fixture) = moat_testkit::fixtures::debian("bookworm") else {
        return;
    };
    let layout = fixture.join("oci");
    if !have("curl") {
        moat_testkit::skip("curl is not installed");
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let host = registry.addr();
    // The same image in two repositories: a signature is bound to its repository.
    for repo in ["signed/app:1", "unsigned/app:1"] {
        push(
            &format!("oci:{}:bookworm", layout.display()),
            &format!("{host}/{repo}"),
            &[],
        );
    }
    let keys = d.join("keys");
    let o = Command::new(MOAT)
        .args(["key", "generate", "--out"])
        .arg(&keys)
        .env("COSIGN_PASSWORD", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = Command::new(MOAT)
        .args(["sign", "--insecure-registry", "--key"])
        .arg(keys.join("cosign.key"))
        .arg(format!("registry:{host}/signed/app:1"))
        .env("COSIGN_PASSWORD", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = moat(&[
        "admission",
        "certs",
        "--out",
        d.join("certs").to_str().unwrap(),
        "--name",
        "127.0.0.1",
        "--name",
        "localhost",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A missing key file stops the server from starting (exit 2 naming it).
    let o = moat(&[
        "admission",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        d.join("certs/tls.crt").to_str().unwrap(),
        "--tls-key",
        d.join("certs/tls.key").to_str().unwrap(),
        "--trusted-key",
        "/nonexistent/cosign.pub",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/cosign.pub"),
        "{}",
        stderr(&o)
    );

    let pubkey = keys.join("cosign.pub").display().to_string();
    let (_w, url) = start_webhook(d, &["--trusted-key", &pubkey, "--insecure-registry"]);
    let signed = format!("{host}/signed/app:1");
    let unsigned = format!("{host}/unsigned/app:1");
    let r = review(d, &url, &signed);
    assert_eq!(r["allowed"], true, "{r}");
    // Again (from the cache): the same verdict.
    let r = review(d, &url, &signed);
    assert_eq!(r["allowed"], true, "{r}");
    let r = review(d, &url, &unsigned);
    assert_eq!(r["allowed"], false, "{r}");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&unsigned) && msg.contains("no valid cosign signature"),
        "{msg}"
    );
    // An unreachable registry: an error, fail-closed by default.
    let gone = format!("127.0.0.1:{}/x/app:1", free_port());
    let r = review(d, &url, &gone);
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("fail-closed"),
        "{r}"
    );
    drop(_w);

    // --fail-open: admitted with a warning naming the image; unsigned images are still denied.
    let (_w, url) = start_webhook(
        d,
        &[
            "--trusted-key",
            &pubkey,
            "--insecure-registry",
            "--fail-open",
        ],
    );
    let r = review(d, &url, &gone);
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r["warnings"].to_string().contains(&gone), "{r}");
    let r = review(d, &url, &unsigned);
    assert_eq!(r["allowed"], false, "{r}");
}

#[test]
fn webhook_refuses_empty_policy_paths_and_zero_limits() {
    let d = tempfile::tempdir().unwrap();
    let certs = d.path().join("certs");
    let o = moat(&[
        "admission",
        "certs",
        "--out",
        certs.to_str().unwrap(),
        "--name",
        "127.0.0.1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let empty = d.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let dir = d.path().join("none");
    std::fs::create_dir(&dir).unwrap();
    let (cert, key) = (certs.join("tls.crt"), certs.join("tls.key"));
    let base = [
        "admission",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    for (extra, msg) in [
        (
            vec!["--policies", empty.to_str().unwrap()],
            format!(
                "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                empty.display()
            ),
        ),
        (
            vec!["--policies", dir.to_str().unwrap()],
            format!(
                "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                dir.display()
            ),
        ),
        (
            vec!["--max-body-bytes", "0"],
            "--max-body-bytes must be between 1 and".to_string(),
        ),
        (
            vec!["--request-timeout", "0"],
            "--request-timeout must be between 1 and 600".to_string(),
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let o = moat(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&msg), "{extra:?}: {}", stderr(&o));
    }
}
