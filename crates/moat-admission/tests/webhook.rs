//! The webhook end to end over real TLS on 127.0.0.1, with real AdmissionReview payloads from
//! ../shared/data/schemas/admissionreview: allowed, denied with messages, v1 and v1beta1; malformed
//! JSON, wrong apiVersion, a 10 MB object and slow clients get clear errors and the server keeps
//! serving; health, readiness and metrics; certificate reload; graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use moat_admission::{EngineConfig, ServeConfig, Server};
use moat_kube::{Level, PssVersion};
use tokio::io::AsyncWriteExt;

async fn start(dir: &std::path::Path, level: Option<Level>, timeout: Duration) -> Server {
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("tls.crt"),
        dir.join("tls.key"),
    );
    cfg.engine = EngineConfig {
        pss_level: level,
        pss_version: PssVersion::LATEST,
        ..EngineConfig::default()
    };
    cfg.request_timeout = timeout;
    cfg.reload_interval = Duration::from_millis(200);
    Server::start(cfg).await.expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_payloads_errors_and_operations() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data missing (AdmissionReview payloads)");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = make_certs(dir.path());
    let ca = bundle.ca_cert_pem.clone();
    let server = start(dir.path(), Some(Level::Baseline), Duration::from_secs(1)).await;
    let addr = server.addr;
    let data = shared.join("data");

    // Kubewarden's captured requests: the privileged-container expectations are PSS baseline's.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("schemas/admissionreview/expected.json"))
            .expect("expected.json"),
    )
    .expect("json");
    let mut checked = 0;
    for case in expected["cases"].as_array().expect("cases") {
        let file = case["admissionreview_file"].as_str().expect("file");
        let body = std::fs::read(data.join(file)).expect("payload");
        let review: serde_json::Value = serde_json::from_slice(&body).expect("payload json");
        let uid = review["request"]["uid"].as_str().expect("uid").to_string();
        let r = post(addr, &ca, &body).await;
        assert_eq!(r.status, 200, "{file}: {}", r.body);
        let v = r.json();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{file}");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], uid.as_str(), "{file}");
        let allowed = v["response"]["allowed"].as_bool().expect("allowed");
        for e in case["expectations"].as_array().expect("expectations") {
            // Settings that exempt init/ephemeral containers have no PSS equivalent: PSS judges every
            // container, so those privileged pods are denied here.
            let want = if e["settings"].is_null() {
                e["allowed"].as_bool().expect("bool")
            } else {
                false
            };
            assert_eq!(allowed, want, "{file}: {} -> {}", e["test"], r.body);
            if !allowed {
                let msg = v["response"]["status"]["message"]
                    .as_str()
                    .expect("message");
                assert!(msg.contains("privileged"), "{file}: {msg}");
                assert_eq!(v["response"]["status"]["code"], 403);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "all kubewarden privileged expectations checked");

    // Capabilities: baseline admits the default set (CHOWN, KILL) and denies the rest.
    for (file, want) in [
        ("req_pod_with_allowed_capabilities_accept.json", true),
        ("req_pod_with_allowed_capabilities_reject.json", false),
        (
            "req_pod_with_capabilities_in_required_drop_capabilities.json",
            false,
        ),
        ("req_pod_with_container_with_capabilities_added.json", false),
        (
            "req_pod_with_container_with_capabilities_added_and_sidecar.json",
            false,
        ),
        (
            "req_pod_with_container_with_capabilities_added_for_deployment.json",
            false,
        ),
        ("req_pod_with_mutate_capabilities.json", true),
        ("req_pod_with_mutate_capabilities_for_deployment.json", true),
        ("req_pod_without_security_context.json", true),
        ("panic.json", true),
    ] {
        let body = std::fs::read(
            data.join("schemas/admissionreview/derived-admissionreview-v1/capabilities-psp-policy")
                .join(file),
        )
        .expect("payload");
        let v = post(addr, &ca, &body).await.json();
        assert_eq!(v["response"]["allowed"], want, "{file}: {v}");
        if !want {
            let msg = v["response"]["status"]["message"]
                .as_str()
                .expect("message");
            assert!(
                msg.contains("capabilities_baseline") || msg.contains("non-default capabilities"),
                "{msg}"
            );
        }
    }

    // The official k8s.io/api round-trip fixtures (v1 and v1beta1): echoed apiVersion and uid.
    for (file, api) in [
        (
            "admission.k8s.io.v1.AdmissionReview.json",
            "admission.k8s.io/v1",
        ),
        (
            "admission.k8s.io.v1beta1.AdmissionReview.json",
            "admission.k8s.io/v1beta1",
        ),
    ] {
        let body = std::fs::read(
            data.join("schemas/admissionreview/k8s-api-roundtrip-fixtures")
                .join(file),
        )
        .expect("fixture");
        let v = post(addr, &ca, &body).await.json();
        assert_eq!(v["apiVersion"], api);
        assert_eq!(v["response"]["uid"], "uidValue");
        assert_eq!(
            v["response"]["allowed"], true,
            "a CustomType is not a pod: {v}"
        );
    }

    // Malformed JSON, wrong apiVersion, wrong kind, no request: HTTP 400 naming the problem.
    let r = post(addr, &ca, b"{\"apiVersion\": ").await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .expect("error")
            .contains("not JSON"),
        "{}",
        r.body
    );
    let r = post(
        addr,
        &ca,
        br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unsupported apiVersion"), "{}", r.body);
    let r = post(
        addr,
        &ca,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expected AdmissionReview"), "{}", r.body);
    let r = post(
        addr,
        &ca,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no request"), "{}", r.body);

    // A 10 MB object: refused with 413 from its Content-Length, and when streamed without one.
    let big = {
        let pad = "x".repeat(10 * 1024 * 1024);
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"big","operation":"CREATE","kind":{{"kind":"Pod"}},"object":{{"kind":"Pod","metadata":{{"annotations":{{"pad":"{pad}"}}}},"spec":{{"containers":[]}}}}}}}}"#
        )
    };
    let mut s = connect(addr, &ca).await;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    let r = parse_response(&read_all(&mut s).await);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("exceeds"), "{}", r.body);
    let s = connect(addr, &ca).await;
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await;
        for chunk in big.as_bytes().chunks(64 * 1024) {
            if wr
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .is_err()
                || wr.write_all(chunk).await.is_err()
                || wr.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut raw),
    )
    .await;
    writer.abort();
    let r = parse_response(&raw);
    assert_eq!(r.status, 413, "{}", r.body);

    // Slow clients: headers never finished → connection closed; body never finished → 408. Meanwhile
    // the server answers others.
    let mut stalled_headers = connect(addr, &ca).await;
    stalled_headers
        .write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("partial head");
    let mut stalled_body = connect(addr, &ca).await;
    stalled_body
        .write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{\"apiV")
        .await
        .expect("partial body");
    let ok = post(addr, &ca, &std::fs::read(data.join(
        "schemas/admissionreview/derived-admissionreview-v1/pod-privileged-policy/no_privileged_containers.json",
    )).expect("payload")).await;
    assert_eq!(ok.json()["response"]["allowed"], true);
    let r = parse_response(&read_all(&mut stalled_body).await);
    assert_eq!(r.status, 408, "{}", r.body);
    let raw = read_all(&mut stalled_headers).await;
    let r = parse_response(&raw);
    assert!(
        raw.is_empty() || r.status == 408,
        "stalled headers must be cut off: {}",
        String::from_utf8_lossy(&raw)
    );

    // Health, readiness, metrics (decisions and latency histogram).
    let r = request(addr, &ca, "GET", "/healthz", b"").await;
    assert_eq!((r.status, r.body.trim()), (200, "ok"));
    let r = request(addr, &ca, "GET", "/readyz", b"").await;
    assert_eq!(r.status, 200);
    let m = request(addr, &ca, "GET", "/metrics", b"").await.body;
    assert!(
        m.contains("moat_admission_decisions_total{result=\"denied\"}"),
        "{m}"
    );
    assert!(
        m.contains("moat_admission_request_duration_seconds_bucket{le=\"+Inf\"}"),
        "{m}"
    );
    let denied: u64 = m
        .lines()
        .find(|l| l.starts_with("moat_admission_decisions_total{result=\"denied\"}"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .expect("denied count");
    assert!(denied >= 9, "{m}");

    // Certificate reload: new files, new connections get the new certificate (the old CA fails).
    let dir2 = tempfile::tempdir().expect("tmp");
    let bundle2 = make_certs(dir2.path());
    std::fs::copy(dir2.path().join("tls.key"), dir.path().join("tls.key")).expect("key");
    std::fs::copy(dir2.path().join("tls.crt"), dir.path().join("tls.crt")).expect("crt");
    let mut reloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        if connector(&bundle2.ca_cert_pem)
            .connect(name, tcp)
            .await
            .is_ok()
        {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the server never presented the new certificate");
    let r = request(addr, &bundle2.ca_cert_pem, "GET", "/healthz", b"").await;
    assert_eq!(r.status, 200);

    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("graceful shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificate_is_a_clear_start_error() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("tls.key"), "not a key").expect("write");
    let cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    let err = Server::start(cfg).await.err().expect("must fail");
    assert!(err.to_string().contains("tls.crt"), "{err}");
}

/// The workshop's admission policy (Kyverno-shaped, under its own kind) through the webhook: as written
/// (Audit, Kyverno's default) a root pod from an untrusted registry is admitted with the three rule
/// messages as warnings; after the file is changed to Enforce the running server reloads it and denies
/// with every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workshop_policy_audit_then_enforce_after_reload() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/workshop missing");
        return;
    };
    let policy = std::fs::read_to_string(shared.join("data/workshop/image-security-policy.yaml"))
        .expect("policy");
    let certs = tempfile::tempdir().expect("tmp");
    let ca = make_certs(certs.path()).ca_cert_pem;
    let pdir = tempfile::tempdir().expect("tmp");
    std::fs::write(pdir.path().join("image-security-policy.yaml"), &policy).expect("write");
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        certs.path().join("tls.crt"),
        certs.path().join("tls.key"),
    );
    cfg.engine = EngineConfig {
        policies: vec![pdir.path().to_path_buf()],
        ..EngineConfig::default()
    };
    cfg.reload_interval = Duration::from_millis(100);
    let server = Server::start(cfg).await.expect("start");

    let pod = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "w1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "namespace": "production",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "production"},
                "spec": {"containers": [{"name": "web", "image": "docker.io/library/nginx:1.25"}]}}}
    });
    let body = serde_json::to_vec(&pod).expect("json");
    let v = post(server.addr, &ca, &body).await.json();
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let warnings: Vec<String> = v["response"]["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap_or("").to_string())
        .collect();
    for m in [
        "must not run as root",
        "must be scanned",
        "trusted registries",
    ] {
        assert!(warnings.iter().any(|w| w.contains(m)), "{m}: {warnings:?}");
    }

    // Enforce: rewrite the file; the server picks it up without a restart.
    let enforced = policy.replace(
        "spec:\n  rules:",
        "spec:\n  validationFailureAction: Enforce\n  rules:",
    );
    assert_ne!(enforced, policy);
    std::fs::write(pdir.path().join("image-security-policy.yaml"), &enforced).expect("write");
    let mut denied = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let v = post(server.addr, &ca, &body).await.json();
        if v["response"]["allowed"] == false {
            denied = Some(v);
            break;
        }
    }
    let v = denied.expect("the reloaded Enforce policy denies");
    let msg = v["response"]["status"]["message"]
        .as_str()
        .expect("message");
    for m in [
        "must not run as root",
        "must be scanned",
        "trusted registries",
    ] {
        assert!(msg.contains(m), "{m}: {msg}");
    }
    let m = request(server.addr, &ca, "GET", "/metrics", b"").await.body;
    assert!(m.contains("moat_admission_policies 1"), "{m}");
    server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("shutdown");
}
