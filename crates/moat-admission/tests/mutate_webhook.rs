//! The mutating webhook end to end over real TLS: Kyverno's own library tests (classic mutate rules
//! and MutatingPolicies) sent as real AdmissionReviews to `/mutate`; the base64 JSONPatch in each
//! response, applied to the request's object, must equal the test's `patchedResources` (compared as
//! Kyverno compares them: nulls and empty maps/lists dropped).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use moat_admission::{EngineConfig, ServeConfig, Server};
use serde_json::{Value, json};

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    moat_policy::parse_yaml_documents(&text, &path.display().to_string()).expect("yaml")
}

fn tidy(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let o: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| tidy(x).map(|x| (k.clone(), x)))
                .collect();
            (!o.is_empty()).then_some(Value::Object(o))
        }
        Value::Array(a) => {
            let l: Vec<Value> = a.iter().filter_map(tidy).collect();
            (!l.is_empty()).then_some(Value::Array(l))
        }
        x => Some(x.clone()),
    }
}

fn name_of(d: &Value) -> &str {
    d.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// (resource, expected patched resource) pairs of a test folder whose expected result is pass.
fn cases(folder: &Path) -> (Vec<PathBuf>, Vec<(Value, Value)>) {
    let tdir = folder.join(".kyverno-test");
    let test = docs(&tdir.join("kyverno-test.yaml")).remove(0);
    let list = |k: &str| -> Vec<String> {
        test[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let policies = list("policies").iter().map(|p| tdir.join(p)).collect();
    let resources: Vec<Value> = list("resources")
        .iter()
        .flat_map(|r| docs(&tdir.join(r)))
        .collect();
    let mut out = Vec::new();
    for r in test["results"].as_array().into_iter().flatten() {
        let (Some(pf), Some("pass")) = (r["patchedResources"].as_str(), r["result"].as_str())
        else {
            continue;
        };
        let patched = docs(&tdir.join(pf));
        for n in r["resources"].as_array().into_iter().flatten() {
            let n = n.as_str().unwrap_or("");
            let n = n.rsplit('/').next().unwrap_or(n);
            let kind = r["kind"].as_str().unwrap_or("");
            let (Some(res), Some(want)) = (
                resources
                    .iter()
                    .find(|d| name_of(d) == n && d["kind"] == kind),
                patched
                    .iter()
                    .find(|d| name_of(d) == n && d["kind"] == kind),
            ) else {
                continue;
            };
            out.push((res.clone(), want.clone()));
        }
    }
    (policies, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_returns_patches_equal_to_kyverno_patched_resources() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno-policies missing");
        return;
    };
    let lib = shared.join("data/kyverno-policies");
    let certs = tempfile::tempdir().expect("tmp");
    let ca = make_certs(certs.path()).ca_cert_pem;
    let mut checked = 0;
    for folder in [
        "other-mpol/always-pull-images",
        "other-mpol/prepend-image-registry",
        "other-mpol/add-imagepullsecrets",
        "best-practices-mpol/add-safe-to-evict",
        "karpenter-mpol/add-karpenter-donot-evict",
        "other/always-pull-images",
        "other/add-imagepullsecrets",
        "other/replace-image-registry",
        "psp-migration/add-capabilities",
    ] {
        let (policies, cases) = cases(&lib.join(folder));
        assert!(!cases.is_empty(), "{folder}: no patched resources to check");
        let mut cfg = ServeConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            certs.path().join("tls.crt"),
            certs.path().join("tls.key"),
        );
        cfg.engine = EngineConfig {
            policies,
            ..EngineConfig::default()
        };
        cfg.reload_interval = Duration::from_secs(3600);
        let server = Server::start(cfg).await.expect("start");
        for (i, (object, want)) in cases.iter().enumerate() {
            let kind = object["kind"].as_str().unwrap_or("");
            let review = json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {
                    "uid": format!("m{i}"),
                    "kind": {"group": "", "version": "v1", "kind": kind},
                    "operation": "CREATE",
                    "namespace": object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default"),
                    "userInfo": {"username": "alice"},
                    "object": object,
                }
            });
            let r = request(
                server.addr,
                &ca,
                "POST",
                "/mutate",
                &serde_json::to_vec(&review).expect("json"),
            )
            .await;
            assert_eq!(r.status, 200, "{folder}: {}", r.body);
            let v = r.json();
            assert_eq!(v["kind"], "AdmissionReview");
            assert_eq!(v["response"]["uid"], format!("m{i}"));
            assert_eq!(v["response"]["allowed"], true, "{folder}: {v}");
            assert_eq!(v["response"]["patchType"], "JSONPatch", "{folder}: {v}");
            let patch = base64::engine::general_purpose::STANDARD
                .decode(v["response"]["patch"].as_str().expect("patch"))
                .expect("base64");
            let ops: Vec<Value> = serde_json::from_slice(&patch).expect("patch is JSON");
            let mut got = moat_policy::mutate::apply_patch(object, &ops).expect("patch applies");
            if got.pointer("/metadata/namespace").is_none()
                && want.pointer("/metadata/namespace") == Some(&json!("default"))
            {
                got["metadata"]["namespace"] = json!("default");
            }
            assert_eq!(
                tidy(&got),
                tidy(want),
                "{folder}: {} patched by /mutate differs from the Kyverno test's patchedResources",
                name_of(object)
            );
            checked += 1;
        }
        server
            .shutdown(Duration::from_secs(2))
            .await
            .expect("shutdown");
    }
    // A request no mutation selects gets no patch at all.
    eprintln!("mutate webhook: {checked} Kyverno patched resources reproduced");
    assert!(checked >= 12, "only {checked} cases checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_without_matching_rules_allows_without_patch_and_rejects_garbage() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/kyverno-policies missing");
        return;
    };
    let certs = tempfile::tempdir().expect("tmp");
    let ca = make_certs(certs.path()).ca_cert_pem;
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        certs.path().join("tls.crt"),
        certs.path().join("tls.key"),
    );
    cfg.engine =
        EngineConfig {
            policies: vec![shared.join(
                "data/kyverno-policies/other-mpol/always-pull-images/always-pull-images.yaml",
            )],
            ..EngineConfig::default()
        };
    let server = Server::start(cfg).await.expect("start");
    let review = json!({
        "apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
        "request": {"uid": "cm", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "operation": "CREATE", "namespace": "default",
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}}
    });
    let r = request(
        server.addr,
        &ca,
        "POST",
        "/mutate",
        review.to_string().as_bytes(),
    )
    .await;
    let v = r.json();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"].get("patch").is_none(), "{v}");
    let r = request(server.addr, &ca, "POST", "/mutate", b"{not json").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not JSON"), "{}", r.body);
    server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("shutdown");
}
