//! Signing and verification against a real OCI registry (distribution v2 on loopback, started by the
//! shared script): Debian images pushed with skopeo, signatures pushed by moat, attacks made by hand.

use std::process::Command;

use base64::Engine as _;
use moat_sign::{
    ImageRef, RegistryOptions, SignError, VerifyingKey, generate, load_private_key,
    load_public_key, sign_image, signature_tag, verify_reference,
};
use moat_testkit::registry::{Registry, free_port, push};

/// Raw distribution API access, to play the attacker.
struct Raw {
    base: String,
}

impl Raw {
    fn manifest(&self, repo: &str, reference: &str) -> Vec<u8> {
        let resp = ureq::get(&format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap();
        resp.into_body().read_to_vec().unwrap()
    }
    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        ureq::get(&format!("{}/v2/{repo}/blobs/{digest}", self.base))
            .call()
            .unwrap()
            .into_body()
            .read_to_vec()
            .unwrap()
    }
    fn put_blob(&self, repo: &str, bytes: &[u8]) {
        let digest = sha(bytes);
        let resp = ureq::post(&format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .send_empty()
            .unwrap();
        let loc = resp
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let url = if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            loc
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{url}{sep}digest={}", digest.replace(':', "%3A")))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
    }
    fn put_manifest(&self, repo: &str, tag: &str, bytes: &[u8]) {
        ureq::put(&format!("{}/v2/{repo}/manifests/{tag}", self.base))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send(bytes)
            .unwrap();
    }
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn opts() -> RegistryOptions {
    RegistryOptions {
        insecure: true,
        ..RegistryOptions::default()
    }
}

fn keypair(password: &[u8]) -> (moat_sign::SigningKey, VerifyingKey) {
    let k = generate(password).unwrap();
    (
        load_private_key(k.private_pem.as_bytes(), password, "cosign.key").unwrap(),
        load_public_key(k.public_pem.as_bytes(), "cosign.pub").unwrap(),
    )
}

#[test]
fn sign_and_verify_against_a_real_registry() {
    let (Some(bookworm), Some(bullseye)) = (
        moat_testkit::fixtures::debian("bookworm"),
        moat_testkit::fixtures::debian("bullseye"),
    ) else {
        return;
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    let host = registry.addr();
    let fx = |s: &str| {
        if s == "bullseye" {
            &bullseye
        } else {
            &bookworm
        }
    };
    let layout = |s: &str| format!("oci:{}:{s}", fx(s).join("oci").display());
    // Three images with three digests: A (bookworm OCI), B (bullseye), C (bookworm as Docker v2s2).
    push(&layout("bookworm"), &format!("{host}/demo:1"), &[]);
    push(&layout("bullseye"), &format!("{host}/demo:b"), &[]);
    push(
        &layout("bookworm"),
        &format!("{host}/demo:c"),
        &["--format", "v2s2"],
    );
    let a = format!("registry:{host}/demo:1");
    let b = format!("registry:{host}/demo:b");
    let c = format!("registry:{host}/demo:c");
    let raw = Raw {
        base: format!("http://{host}"),
    };

    let (sk1, pk1) = keypair(b"pw");
    let (sk2, pk2) = keypair(b"");
    let (_, pk3) = keypair(b"");

    // Unsigned: a verdict, not an error, with no signature found.
    let v = verify_reference(&a, &[pk1], &opts()).unwrap();
    assert!(!v.verified() && v.checks.is_empty());

    // Sign A with key 1: verifies with key 1 only.
    let ra = ImageRef::parse(&a).unwrap();
    let s1 = sign_image(&ra, &sk1, &opts()).unwrap();
    assert!(s1.added && s1.signatures == 1);
    assert_eq!(s1.signature_tag, signature_tag(&s1.manifest_digest));
    let v = verify_reference(&a, &[pk1], &opts()).unwrap();
    assert!(v.verified(), "{v:?}");
    assert_eq!(v.manifest_digest, s1.manifest_digest);
    assert_eq!(
        v.checks[0].docker_reference.as_deref(),
        Some(format!("{host}/demo").as_str())
    );
    let v = verify_reference(&a, &[pk3], &opts()).unwrap();
    assert!(!v.verified());
    assert!(
        v.checks[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("does not verify"),
        "{v:?}"
    );

    // By digest too (what an admission controller pins).
    let by_digest = format!("registry:{host}/demo@{}", s1.manifest_digest);
    assert!(
        verify_reference(&by_digest, &[pk1], &opts())
            .unwrap()
            .verified()
    );

    // A second key appends; the first signature is kept; both verify; re-signing is idempotent.
    let s2 = sign_image(&ra, &sk2, &opts()).unwrap();
    assert!(s2.added && s2.signatures == 2, "{s2:?}");
    let v = verify_reference(&a, &[pk1, pk2], &opts()).unwrap();
    assert_eq!(v.checks.iter().filter(|c| c.verified).count(), 2, "{v:?}");
    let keys: Vec<Option<usize>> = v.checks.iter().map(|c| c.key).collect();
    assert_eq!(keys, vec![Some(0), Some(1)]);
    assert!(verify_reference(&a, &[pk2], &opts()).unwrap().verified());
    let again = sign_image(&ra, &sk1, &opts()).unwrap();
    assert!(!again.added && again.signatures == 2);

    // skopeo (containers/image) reads the .sig tag as an ordinary OCI manifest.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{host}/demo:{}", s1.signature_tag))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(l["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    }

    // Replay: A's signatures copied onto B's .sig tag must not make B signed.
    let vb = verify_reference(&b, &[pk1], &opts()).unwrap();
    assert!(vb.checks.is_empty());
    raw.put_manifest(
        "demo",
        &vb.signature_tag,
        &raw.manifest("demo", &s1.signature_tag),
    );
    let vb = verify_reference(&b, &[pk1, pk2], &opts()).unwrap();
    assert!(!vb.verified());
    assert_eq!(vb.checks.len(), 2);
    for ch in &vb.checks {
        assert!(ch.key.is_some(), "the signature itself is genuine");
        assert!(
            ch.problem
                .as_deref()
                .unwrap()
                .contains(&format!("for manifest {}", s1.manifest_digest)),
            "{ch:?}"
        );
    }

    // A hostile .sig manifest (1,001 layers) is a rejection, not an error a fail-open webhook admits on.
    let mut m: serde_json::Value =
        serde_json::from_slice(&raw.manifest("demo", &s1.signature_tag)).unwrap();
    let first = m["layers"][0].clone();
    m["layers"] = serde_json::Value::Array(vec![first; 1001]);
    raw.put_manifest("demo", &vb.signature_tag, &serde_json::to_vec(&m).unwrap());
    let vb = verify_reference(&b, &[pk1], &opts()).unwrap();
    assert!(!vb.verified());
    assert!(
        vb.checks[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("too many"),
        "{:?}",
        vb.checks
    );

    // Tampering: sign C, then flip a bit of the signature in its manifest.
    let rc = ImageRef::parse(&c).unwrap();
    let s3 = sign_image(&rc, &sk1, &opts()).unwrap();
    assert_ne!(s3.manifest_digest, s1.manifest_digest);
    assert!(verify_reference(&c, &[pk1], &opts()).unwrap().verified());
    let mut m: serde_json::Value =
        serde_json::from_slice(&raw.manifest("demo", &s3.signature_tag)).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let ann = &mut m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    let mut der = b64.decode(ann.as_str().unwrap()).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    *ann = serde_json::Value::String(b64.encode(&der));
    raw.put_manifest("demo", &s3.signature_tag, &serde_json::to_vec(&m).unwrap());
    let v = verify_reference(&c, &[pk1], &opts()).unwrap();
    assert!(!v.verified());
    assert!(
        v.checks[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("does not verify"),
        "{v:?}"
    );

    // Tampered payload: a payload naming C under A's genuine signature (swap the blob) fails.
    let good_layer = raw.manifest("demo", &s1.signature_tag);
    let mut m: serde_json::Value = serde_json::from_slice(&good_layer).unwrap();
    let forged = moat_sign::simple_signing_payload(&format!("{host}/demo"), &s3.manifest_digest);
    raw.put_blob("demo", &forged);
    m["layers"][0]["digest"] = serde_json::Value::String(sha(&forged));
    m["layers"][0]["size"] = serde_json::json!(forged.len());
    m["layers"].as_array_mut().unwrap().truncate(1);
    raw.put_manifest("demo", &s3.signature_tag, &serde_json::to_vec(&m).unwrap());
    assert!(!verify_reference(&c, &[pk1], &opts()).unwrap().verified());

    // The same image in another repository: the signature's docker-reference names demo, not other.
    push(&layout("bookworm"), &format!("{host}/other:1"), &[]);
    let m = raw.manifest("demo", &s1.signature_tag);
    let mv: serde_json::Value = serde_json::from_slice(&m).unwrap();
    raw.put_blob(
        "other",
        &raw.blob("demo", mv["config"]["digest"].as_str().unwrap()),
    );
    for l in mv["layers"].as_array().unwrap() {
        raw.put_blob("other", &raw.blob("demo", l["digest"].as_str().unwrap()));
    }
    raw.put_manifest("other", &s1.signature_tag, &m);
    let v = verify_reference(&format!("registry:{host}/other:1"), &[pk1], &opts()).unwrap();
    assert!(!v.verified());
    assert!(
        v.checks[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("names repository"),
        "{v:?}"
    );

    // Input errors: a missing image, a plain-HTTP registry without --insecure-registry.
    match verify_reference(&format!("registry:{host}/demo:nope"), &[pk1], &opts()) {
        Err(SignError::Registry { url, why }) => {
            assert!(url.contains("demo:nope"), "{url}");
            assert!(why.contains("404"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let e = verify_reference(&a, &[pk1], &RegistryOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&host), "{e}");
    assert!(registry.dir().join("registry.pid").exists());
}

#[test]
fn unreachable_registry_is_an_error_naming_the_url() {
    let port = free_port();
    let (_, pk) = keypair(b"");
    let e =
        verify_reference(&format!("registry:127.0.0.1:{port}/x:1"), &[pk], &opts()).unwrap_err();
    assert!(matches!(e, SignError::Registry { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("http://127.0.0.1:{port}/v2/x/manifests/1")),
        "{e}"
    );
}
