//! Image signature verification in policy, end to end: a real registry (distribution v2 on
//! loopback), images signed with moat-sign (what `moat sign` runs), and the webhook over TLS with
//! an ImageValidatingPolicy and a classic `verifyImages` ClusterPolicy: the signed image is
//! admitted (and `/mutate` pins it to its digest), the unsigned and the wrongly-signed ones are
//! denied with each policy's message.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use moat_admission::{EngineConfig, ServeConfig, Server};
use moat_sign::{ImageRef, RegistryOptions, generate, load_private_key, sign_image};
use serde_json::{Value, json};
use sha2::Digest;

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let hex = hex::encode(sha2::Sha256::digest(data));
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs");
    std::fs::write(dir.join(&hex), data).expect("blob");
    format!("sha256:{hex}")
}

/// A one-layer OCI image layout, distinct per `label`, tagged `latest`.
fn oci_image(layout: &Path, label: &str) {
    let layer = vec![0u8; 1024]; // an empty tar archive
    let diff_id = put_blob(layout, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"moat.test": label}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .expect("config");
    let cd = put_blob(layout, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id, "size": layer.len()}],
    }))
    .expect("manifest");
    let md = put_blob(layout, &manifest);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("layout");
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
        .expect("index"),
    )
    .expect("index");
}

fn indent(pem: &str, n: usize) -> String {
    pem.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pod_review(uid: &str, image: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "default",
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": uid, "namespace": "default"},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_images_admitted_unsigned_and_wrongly_signed_denied() {
    let Some(reg) = moat_testkit::registry::Registry::start() else {
        return;
    };
    let addr = reg.addr();
    let work = tempfile::tempdir().expect("tmp");
    for name in ["signed", "unsigned", "wrong"] {
        let layout = work.path().join(name);
        oci_image(&layout, name);
        reg.push(
            &format!("oci:{}:latest", layout.display()),
            &format!("app/{name}:1"),
        );
    }
    let trusted = generate(b"").expect("keys");
    let other = generate(b"").expect("keys");
    let opts = RegistryOptions {
        insecure: true,
        timeout: Duration::from_secs(10),
        auth_file: None,
    };
    for (image, keys) in [("signed", &trusted), ("wrong", &other)] {
        let key = load_private_key(keys.private_pem.as_bytes(), b"", "cosign.key").expect("key");
        let r = ImageRef::parse(&format!("{addr}/app/{image}:1")).expect("ref");
        sign_image(&r, &key, &opts).expect("sign");
    }

    let pdir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        pdir.path().join("ivpol.yaml"),
        format!(
            r#"apiVersion: policies.kyverno.io/v1alpha1
kind: ImageValidatingPolicy
metadata:
  name: require-moat-signature
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["pods"]
  matchImageReferences:
  - glob: "{addr}/app/*"
  attestors:
  - name: moat
    cosign:
      key:
        data: |
{}
  validations:
  - expression: >-
      images.containers.map(image, verifyImageSignatures(image, [attestors.moat])).all(e, e > 0)
    message: images must be signed by the release key
"#,
            indent(&trusted.public_pem, 10)
        ),
    )
    .expect("write");
    std::fs::write(
        pdir.path().join("verify-images.yaml"),
        format!(
            r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: verify-image
spec:
  validationFailureAction: Enforce
  background: false
  rules:
  - name: verify-image
    match:
      any:
      - resources:
          kinds: [Pod]
    verifyImages:
    - imageReferences: ["{addr}/app/*"]
      mutateDigest: true
      attestors:
      - entries:
        - keys:
            publicKeys: |
{}
"#,
            indent(&trusted.public_pem, 14)
        ),
    )
    .expect("write");

    let certs = tempfile::tempdir().expect("tmp");
    let ca = make_certs(certs.path()).ca_cert_pem;
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        certs.path().join("tls.crt"),
        certs.path().join("tls.key"),
    );
    cfg.engine = EngineConfig {
        policies: vec![pdir.path().to_path_buf()],
        ..EngineConfig::default()
    };
    let server = Server::start(cfg).await.expect("start");

    let v = post(
        server.addr,
        &ca,
        &pod_review("ok", &format!("{addr}/app/signed:1")),
    )
    .await
    .json();
    assert_eq!(v["response"]["allowed"], true, "signed image: {v}");

    for (uid, image) in [("unsigned", "unsigned"), ("wrong", "wrong")] {
        let v = post(
            server.addr,
            &ca,
            &pod_review(uid, &format!("{addr}/app/{image}:1")),
        )
        .await
        .json();
        assert_eq!(v["response"]["allowed"], false, "{image}: {v}");
        let msg = v["response"]["status"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("require-moat-signature")
                && msg.contains("images must be signed by the release key"),
            "{image}: {msg}"
        );
        assert!(
            msg.contains("verify-image/verify-image") && msg.contains("failed to verify image"),
            "{image}: {msg}"
        );
    }

    // mutateDigest: /mutate pins the verified image to the digest moat verified.
    let digest = reg.digest("app/signed:1");
    let image = format!("{addr}/app/signed:1");
    let r = request(
        server.addr,
        &ca,
        "POST",
        "/mutate",
        &pod_review("m", &image),
    )
    .await;
    let v: Value = r.json();
    assert_eq!(v["response"]["allowed"], true, "{v}");
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(v["response"]["patch"].as_str().expect("a patch"))
        .expect("base64");
    let ops: Vec<Value> = serde_json::from_slice(&patch).expect("json");
    assert_eq!(
        ops,
        vec![
            json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("{image}@{digest}")})
        ]
    );
    server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("shutdown");
}
