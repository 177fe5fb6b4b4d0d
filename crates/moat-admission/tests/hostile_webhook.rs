//! Issue 17: the webhook under hostile policies, hostile AdmissionReviews and idle-connection
//! floods keeps answering `/healthz` and healthy reviews within its timeout. Hostile CEL (variables
//! doubling 45 times) and JMESPath (context variables doubling with `join` 40 times) are refused by
//! their budgets and the request is answered as the failure policy says (closed: denied, with the
//! limit named); evaluation runs on a bounded blocking pool; connections are counted and closed
//! when idle.

mod common;

use std::time::{Duration, Instant};

use common::*;
use moat_admission::{EngineConfig, ServeConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn policies(dir: &std::path::Path) {
    let mut cel = String::from(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: cel-doubling\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: doubling\n    match:\n      any:\n      - resources:\n          kinds: [ConfigMap]\n          namespaces: [attack]\n    validate:\n      cel:\n        variables:\n        - name: v0\n          expression: \"['aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaa']\"\n",
    );
    for i in 1..=45 {
        cel.push_str(&format!(
            "        - name: v{i}\n          expression: \"variables.v{p} + variables.v{p}\"\n",
            p = i - 1
        ));
    }
    cel.push_str("        expressions:\n        - expression: \"size(variables.v45) > 0\"\n          message: never\n");
    std::fs::write(dir.join("cel.yaml"), cel).expect("cel policy");
    let mut jp = String::from(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: jmes-doubling\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: doubling\n    match:\n      any:\n      - resources:\n          kinds: [ConfigMap]\n          namespaces: [attack]\n    context:\n    - name: v0\n      variable:\n        value: aaaaaaaaaaaaaaaa\n",
    );
    for i in 1..=40 {
        jp.push_str(&format!(
            "    - name: v{i}\n      variable:\n        jmesPath: \"join('', [v{p}, v{p}])\"\n",
            p = i - 1
        ));
    }
    jp.push_str("    validate:\n      message: never\n      deny:\n        conditions:\n          any:\n          - key: \"{{ v40 }}\"\n            operator: Equals\n            value: x\n");
    std::fs::write(dir.join("jmes.yaml"), jp).expect("jmes policy");
    std::fs::write(
        dir.join("label.yaml"),
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: require-app-label\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: app\n    match:\n      any:\n      - resources:\n          kinds: [ConfigMap]\n          namespaces: [default]\n    validate:\n      message: an app label is required\n      pattern:\n        metadata:\n          labels:\n            app: \"?*\"\n",
    )
    .expect("label policy");
}

fn review(ns: &str, name: &str, labels: serde_json::Value, data_bytes: usize) -> Vec<u8> {
    let data: serde_json::Map<String, serde_json::Value> = (0..data_bytes / 1024)
        .map(|i| (format!("k{i}"), serde_json::Value::String("x".repeat(1000))))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{name}"), "operation": "CREATE", "namespace": ns, "name": name,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "userInfo": {"username": "attacker"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": ns, "labels": labels},
                       "data": data}
        }
    }))
    .expect("review")
}

async fn start(dir: &std::path::Path) -> Server {
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("tls.crt"),
        dir.join("tls.key"),
    );
    cfg.engine = EngineConfig {
        policies: vec![
            dir.join("cel.yaml"),
            dir.join("jmes.yaml"),
            dir.join("label.yaml"),
        ],
        ..EngineConfig::default()
    };
    cfg.request_timeout = Duration::from_secs(2);
    cfg.idle_timeout = Duration::from_secs(2);
    cfg.max_connections = 48;
    cfg.eval_workers = 4;
    cfg.eval_deadline = Duration::from_secs(3);
    Server::start(cfg).await.expect("server starts")
}

async fn healthz_within(addr: std::net::SocketAddr, ca: &str, within: Duration) -> Duration {
    let t = Instant::now();
    let r = tokio::time::timeout(within, request(addr, ca, "GET", "/healthz", b""))
        .await
        .unwrap_or_else(|_| panic!("/healthz did not answer within {within:?}"));
    assert_eq!(r.status, 200, "{}", r.body);
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_policies_and_reviews_in_flight_leave_healthz_and_healthy_reviews_answering() {
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = make_certs(dir.path());
    let ca = bundle.ca_cert_pem.clone();
    policies(dir.path());
    let server = start(dir.path()).await;
    let addr = server.addr;

    // One hostile review alone: denied (fail closed), the rule's error names the budget.
    let hostile = review("attack", "boom", serde_json::json!({}), 2 << 20);
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), post(addr, &ca, &hostile))
        .await
        .expect("hostile review answered");
    eprintln!("one hostile review answered in {:?}", t.elapsed());
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["response"]["allowed"], false, "{v}");
    let msg = v["response"]["status"]["message"].to_string();
    assert!(
        msg.contains("MOAT_CEL_SIZE_LIMIT") || msg.contains("MOAT_CEL_COST_LIMIT"),
        "the CEL rule names its limit: {msg}"
    );
    assert!(
        msg.contains("MOAT_JMESPATH_BUDGET"),
        "the JMESPath rule names its budget: {msg}"
    );

    // Many hostile reviews (2 MiB each) in flight, on their own connections.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    // Two with 2 MiB objects, four with 64 KiB ones (more than the pool's 4 workers): the pool stays
    // busy with hostile work.
    let small = review("attack", "boom-small", serde_json::json!({}), 64 << 10);
    for i in 0..6 {
        let body = if i < 2 {
            hostile.clone()
        } else {
            small.clone()
        };
        let (ca, body, stop) = (ca.clone(), body, stop.clone());
        attackers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = tokio::time::timeout(Duration::from_secs(10), post(addr, &ca, &body)).await;
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        worst = worst.max(healthz_within(addr, &ca, Duration::from_secs(2)).await);
        let good = review(
            "default",
            &format!("good{i}"),
            serde_json::json!({"app": "web"}),
            1024,
        );
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(4), post(addr, &ca, &good))
            .await
            .expect("a healthy review is answered within the request timeout");
        assert_eq!(r.json()["response"]["allowed"], true, "{}", r.body);
        worst = worst.max(t.elapsed());
        let bad = review("default", &format!("bad{i}"), serde_json::json!({}), 1024);
        let r = post(addr, &ca, &bad).await;
        let v = r.json();
        assert_eq!(v["response"]["allowed"], false, "{v}");
        assert!(v.to_string().contains("an app label is required"), "{v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for a in attackers {
        sent += a.await.expect("attacker");
    }
    eprintln!("{sent} hostile reviews sent; worst healthy answer {worst:?}");
    assert!(sent >= 6);
    server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_counted_and_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = make_certs(dir.path());
    let ca = bundle.ca_cert_pem.clone();
    policies(dir.path());
    let server = start(dir.path()).await;
    let addr = server.addr;

    // An HTTP/2 client that negotiates h2, sends its preface and then nothing: closed when idle.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates({
            let mut roots = rustls::RootCertStore::empty();
            for c in <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.expect("pem")).expect("root");
            }
            roots
        })
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let mut h2 = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("tls h2");
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface");
    let t = Instant::now();
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match h2.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection is closed");
    // The idle timeout is never shorter than request_timeout + eval_deadline (5 s here).
    assert!(
        t.elapsed() >= Duration::from_millis(4500),
        "not before the idle timeout: {:?}",
        t.elapsed()
    );

    // Fill every connection slot with idle TCP connections: one more is closed at once (not left
    // hanging), and once the idle ones time out /healthz answers again.
    let mut idle = Vec::new();
    for _ in 0..48 {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("tcp"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let mut one = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut one)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "a connection over the limit is closed at once: {r:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    healthz_within(addr, &ca, Duration::from_secs(2)).await;
    let m = request(addr, &ca, "GET", "/metrics", b"").await;
    assert!(
        m.body.contains("moat_admission_refused_connections_total")
            && !m
                .body
                .contains("moat_admission_refused_connections_total 0"),
        "{}",
        m.body
    );
    drop(idle);
    server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("shutdown");
}
