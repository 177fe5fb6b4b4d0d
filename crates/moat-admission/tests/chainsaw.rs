//! Kyverno's chainsaw admission cases (../shared/data/kyverno/expected.json,
//! `chainsaw_admission_cases`) through the running webhook over real TLS: each test's policies,
//! patched to Enforce as chainsaw does, loaded by `moat admission`; each resource file sent as
//! AdmissionReview CREATE requests must be admitted or rejected as the test expects. The same
//! policies left in Audit admit the bad resources with warnings.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use moat_admission::{EngineConfig, ServeConfig, Server};
use serde_json::{Value, json};

fn load_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (docs, _) = moat_kube::load_str(&path.display().to_string(), &text).expect("yaml");
    docs.into_iter().map(|d| d.value).collect()
}

/// The policy files a chainsaw test applies (`../policy.yaml`), with the validation action set.
fn policies(test_file: &Path, action: &str) -> Vec<Value> {
    let dir = test_file.parent().expect("dir");
    let test = &load_docs(test_file)[0];
    let mut out: Vec<Value> = Vec::new();
    for step in test
        .pointer("/spec/steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for op in step
            .get("try")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(file) = op
                .pointer("/apply/file")
                .or_else(|| op.pointer("/create/file"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if !file.starts_with("../") {
                continue;
            }
            for mut p in load_docs(&dir.join(file)) {
                if p.get("spec").is_some_and(Value::is_object) {
                    p["spec"]["validationFailureAction"] = json!(action);
                    if let Some(rules) = p.pointer_mut("/spec/rules").and_then(Value::as_array_mut)
                    {
                        for r in rules {
                            if r.pointer("/validate/failureAction").is_some() {
                                r["validate"]["failureAction"] = json!(action);
                            }
                        }
                    }
                }
                out.push(p);
            }
        }
    }
    assert!(
        !out.is_empty(),
        "{}: no policy applied",
        test_file.display()
    );
    out
}

fn review(doc: &Value, uid: usize) -> Vec<u8> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let ns = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("chainsaw-test");
    let namespaced = kind != "Namespace" && !kind.starts_with("Cluster");
    let mut req = json!({
        "uid": format!("chainsaw-{uid}"),
        "kind": {"group": "", "version": "v1", "kind": kind},
        "operation": "CREATE",
        "name": doc.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "userInfo": {"username": "chainsaw", "groups": ["system:authenticated"]},
        "object": doc,
    });
    if namespaced {
        req["namespace"] = json!(ns);
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}),
    )
    .expect("json")
}

async fn serve(policy_dir: &Path, cert_dir: &Path) -> Server {
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        cert_dir.join("tls.crt"),
        cert_dir.join("tls.key"),
    );
    cfg.engine = EngineConfig {
        policies: vec![policy_dir.to_path_buf()],
        ..EngineConfig::default()
    };
    Server::start(cfg).await.expect("server starts")
}

fn write_policies(dir: &Path, ps: &[Value]) {
    for (i, p) in ps.iter().enumerate() {
        std::fs::write(
            dir.join(format!("policy-{i}.json")),
            serde_json::to_vec_pretty(p).expect("json"),
        )
        .expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chainsaw_cases_through_the_webhook() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data missing (Kyverno chainsaw cases)");
        return;
    };
    let data = shared.join("data/kyverno");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("expected.json")).expect("read"))
            .expect("json");
    let mut by_test: BTreeMap<String, Vec<(PathBuf, bool)>> = BTreeMap::new();
    for c in expected["chainsaw_admission_cases"]
        .as_array()
        .expect("cases")
    {
        let admit = c["expected_admission"] == "admit";
        by_test
            .entry(c["chainsaw_test"].as_str().expect("test").to_string())
            .or_default()
            .push((data.join(c["file"].as_str().expect("file")), admit));
    }
    let certs = tempfile::tempdir().expect("tmp");
    let ca = make_certs(certs.path()).ca_cert_pem;
    let (mut ok, mut total, mut uid) = (0, 0, 0);
    let mut wrong = Vec::new();
    let mut warned = 0;
    for (test, cases) in &by_test {
        let test_file = data.join(test);
        // Enforce: the expected admissions.
        let pdir = tempfile::tempdir().expect("tmp");
        write_policies(pdir.path(), &policies(&test_file, "Enforce"));
        let server = serve(pdir.path(), certs.path()).await;
        let engine = moat_admission::Engine::new(EngineConfig {
            policies: vec![pdir.path().to_path_buf()],
            ..EngineConfig::default()
        })
        .expect("engine");
        for (file, admit) in cases {
            let mut admitted = true;
            let mut messages = Vec::new();
            for doc in load_docs(file) {
                uid += 1;
                let r = post(server.addr, &ca, &review(&doc, uid)).await;
                assert_eq!(r.status, 200, "{}: {}", file.display(), r.body);
                let v = r.json();
                assert_eq!(v["response"]["uid"], format!("chainsaw-{uid}"));
                // The webhook answers exactly what the engine decides for the same request.
                let direct = engine.decide(
                    &moat_admission::review::parse(&review(&doc, uid))
                        .expect("parse")
                        .request,
                );
                assert_eq!(
                    v["response"]["allowed"],
                    direct.allowed,
                    "{}: {v}",
                    file.display()
                );
                if v["response"]["allowed"] == false {
                    admitted = false;
                    let m = v["response"]["status"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    assert!(!m.is_empty(), "a denial carries its message");
                    messages.push(m);
                }
            }
            total += 1;
            if admitted == *admit {
                ok += 1;
            } else {
                wrong.push(format!(
                    "{} expected {} got {} {messages:?}",
                    file.display(),
                    if *admit { "admit" } else { "reject" },
                    if admitted { "admit" } else { "reject" }
                ));
            }
        }
        server
            .shutdown(Duration::from_secs(2))
            .await
            .expect("shutdown");

        // Audit: rejected resources are admitted, with the failure as a warning.
        let adir = tempfile::tempdir().expect("tmp");
        write_policies(adir.path(), &policies(&test_file, "Audit"));
        let server = serve(adir.path(), certs.path()).await;
        if let Some((file, _)) = cases.iter().find(|(_, admit)| !admit) {
            let mut any_warning = false;
            for doc in load_docs(file) {
                uid += 1;
                let v = post(server.addr, &ca, &review(&doc, uid)).await.json();
                assert_eq!(
                    v["response"]["allowed"],
                    true,
                    "Audit never denies: {}: {v}",
                    file.display()
                );
                any_warning |= v["response"]["warnings"]
                    .as_array()
                    .is_some_and(|w| !w.is_empty());
            }
            if any_warning {
                warned += 1;
            } else {
                eprintln!("  no audit warning: {}", file.display());
            }
        }
        server
            .shutdown(Duration::from_secs(2))
            .await
            .expect("shutdown");
    }
    eprintln!("chainsaw admission cases: {ok}/{total} agree; audit warnings on {warned} tests");
    for w in &wrong {
        eprintln!("  disagree: {w}");
    }
    assert!(total >= 180, "all cases exercised: {total}");
    // Policies the engine does not support (validate.podSecurity subrules) cannot warn.
    assert!(
        warned * 100 >= by_test.len() * 80,
        "Audit failures come back as warnings: {warned}/{}",
        by_test.len()
    );
    // The bar for Kyverno compatibility; disagreements are listed above.
    assert!(
        ok * 100 >= total * 95,
        "only {ok} of {total} chainsaw cases agree"
    );
}
