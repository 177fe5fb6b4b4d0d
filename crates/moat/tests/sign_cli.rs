//! `moat key generate`, `moat sign`, `moat verify` end to end against a real registry (distribution
//! v2 on loopback): exit codes, messages naming the file or URL, JSON reports, and OpenSSL checking
//! the signature moat pushed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use moat_testkit::registry::{Registry, free_port, have, push};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn moat(args: &[&str], password: &str) -> Output {
    let out = Command::new(MOAT)
        .args(args)
        .env("COSIGN_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .expect("run moat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "moat {args:?} panicked: {err}");
    out
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn key_generate_sign_verify_with_exit_codes() {
    let Some(fixture) = moat_testkit::fixtures::debian("bookworm") else {
        return;
    };
    let layout = fixture.join("oci");
    if !have("curl") {
        moat_testkit::skip("curl is not installed (scripts/deps.d/00-images.sh)");
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let host = registry.addr();
    push(
        &format!("oci:{}:bookworm", layout.display()),
        &format!("{host}/demo:1"),
        &[],
    );
    let reg = format!("registry:{host}/demo:1");

    // Keys: an encrypted pair, an empty-password pair, an untrusted pair.
    let (k1, k2, k3) = (d.join("k1"), d.join("k2"), d.join("k3"));
    for (dir, pw) in [(&k1, "s3cret"), (&k2, ""), (&k3, "")] {
        let o = moat(&["key", "generate", "--out", p(dir)], pw);
        assert_eq!(code(&o), 0, "{}", err(&o));
        assert!(dir.join("cosign.pub").is_file() && dir.join("cosign.key").is_file());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(k1.join("cosign.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is owner-only");
    }
    let again = moat(&["key", "generate", "--out", p(&k1)], "x");
    assert_eq!(code(&again), 2);
    assert!(
        err(&again).contains("cosign.key") && err(&again).contains("--force"),
        "{}",
        err(&again)
    );
    let (key1, pub1) = (k1.join("cosign.key"), k1.join("cosign.pub"));
    let (key2, pub2) = (k2.join("cosign.key"), k2.join("cosign.pub"));
    let pub3 = k3.join("cosign.pub");

    let verify = |keys: &[&Path]| {
        let mut args = vec![
            "verify",
            reg.as_str(),
            "--insecure-registry",
            "--format",
            "json",
        ];
        for k in keys {
            args.push("--key");
            args.push(p(k));
        }
        moat(&args, "")
    };

    // Not signed yet: exit 1 with the HIGH finding.
    let o = verify(&[&pub1]);
    assert_eq!(code(&o), 1, "{}", err(&o));
    let r = json(&o);
    assert_eq!(r["findings"][0]["id"], "MOAT-SIGN-001");
    assert_eq!(r["findings"][0]["severity"], "HIGH");
    assert_eq!(
        r["findings"][0]["title"],
        "image is not signed by the trusted key"
    );
    assert_eq!(r["metadata"]["signatures"], "0");

    // The wrong password is an input error naming the key file; nothing is pushed.
    let o = moat(
        &["sign", "--key", p(&key1), "--insecure-registry", &reg],
        "wrong",
    );
    assert_eq!(code(&o), 2);
    assert!(
        err(&o).contains(p(&key1)) && err(&o).contains("wrong password"),
        "{}",
        err(&o)
    );

    // Sign with the right password: verify passes, table and JSON.
    let o = moat(
        &["sign", "--key", p(&key1), "--insecure-registry", &reg],
        "s3cret",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let signed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(signed.contains(".sig"), "{signed}");
    let o = verify(&[&pub1]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let r = json(&o);
    assert_eq!(r["findings"].as_array().map(Vec::len), Some(0), "{r}");
    assert_eq!(r["metadata"]["verified_by"], p(&pub1));
    let digest = r["metadata"]["manifest_digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let tag = r["metadata"]["signature_tag"]
        .as_str()
        .expect("tag")
        .to_string();
    assert_eq!(tag, format!("{}.sig", digest.replace(':', "-")));
    let o = moat(
        &["verify", &reg, "--insecure-registry", "--key", p(&pub1)],
        "",
    );
    assert_eq!(code(&o), 0);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Verified"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Another key is not trusted: exit 1, and the reason per signature.
    let o = verify(&[&pub3]);
    assert_eq!(code(&o), 1);
    let r = json(&o);
    assert!(
        r["findings"][0]["why"]
            .as_str()
            .unwrap_or("")
            .contains("does not verify"),
        "{r}"
    );

    // Two keys, two signatures: both verify; either key alone suffices.
    let o = moat(
        &["sign", "--key", p(&key2), "--insecure-registry", &reg],
        "",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    let o = verify(&[&pub1, &pub2]);
    assert_eq!(code(&o), 0);
    let r = json(&o);
    assert_eq!(r["metadata"]["signatures"], "2");
    assert_eq!(r["metadata"]["verified_signatures"], "2");
    assert_eq!(
        r["metadata"]["verified_by"],
        format!("{},{}", p(&pub1), p(&pub2))
    );
    assert_eq!(code(&verify(&[&pub2])), 0);
    assert_eq!(code(&verify(&[&pub3, &pub2])), 0);

    // skopeo sees the .sig tag as an image in the repository.
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{host}/demo:{tag}"))
        .output()
        .expect("skopeo inspect");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inspect: serde_json::Value = serde_json::from_slice(&o.stdout).expect("inspect JSON");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));

    // OpenSSL, an independent verifier, accepts the pushed signature over the pushed payload with
    // cosign.pub, and the payload names the image's digest and repository.
    if have("openssl") {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{host}/demo:{tag}"))
            .output()
            .expect("skopeo inspect --raw");
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).expect("manifest JSON");
        let layer = &m["layers"][0];
        let blob = layer["digest"].as_str().expect("layer digest");
        let payload = d.join("payload.json");
        let o = Command::new("curl")
            .args(["-sf", "-o", p(&payload)])
            .arg(format!("http://{host}/v2/demo/blobs/{blob}"))
            .output()
            .expect("curl");
        assert!(o.status.success());
        let text: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&payload).unwrap()).unwrap();
        assert_eq!(
            text["critical"]["image"]["docker-manifest-digest"],
            digest.as_str()
        );
        assert_eq!(
            text["critical"]["identity"]["docker-reference"],
            format!("{host}/demo")
        );
        assert_eq!(text["critical"]["type"], "cosign container image signature");
        let sig_b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .expect("signature");
        let sig = d.join("sig.b64");
        std::fs::write(&sig, sig_b64).unwrap();
        let der = d.join("sig.der");
        let o = Command::new("openssl")
            .args(["base64", "-d", "-A", "-in", p(&sig), "-out", p(&der)])
            .output()
            .unwrap();
        assert!(o.status.success());
        let o = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                p(&pub1),
                "-signature",
                p(&der),
                p(&payload),
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Verified OK"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!("SKIPPED (part): openssl is not installed");
    }

    // Input errors: exit 2 naming the file or URL.
    let bad = d.join("bad.pub");
    std::fs::write(&bad, "garbage").unwrap();
    let o = verify(&[&bad]);
    assert_eq!(code(&o), 2);
    assert!(err(&o).contains(p(&bad)), "{}", err(&o));
    let o = verify(&[&key1]);
    assert_eq!(code(&o), 2, "a private key is not a public key");
    let o = moat(
        &[
            "verify",
            &reg,
            "--insecure-registry",
            "--key",
            p(&d.join("missing.pub")),
        ],
        "",
    );
    assert_eq!(code(&o), 2);
    assert!(err(&o).contains("missing.pub"));
    let dead = free_port();
    let o = moat(
        &[
            "verify",
            &format!("registry:127.0.0.1:{dead}/demo:1"),
            "--insecure-registry",
            "--key",
            p(&pub1),
        ],
        "",
    );
    assert_eq!(code(&o), 2);
    assert!(
        err(&o).contains(&format!("http://127.0.0.1:{dead}/v2/demo/manifests/1")),
        "{}",
        err(&o)
    );
    let o = moat(&["verify", "oci:/tmp/x", "--key", p(&pub1)], "");
    assert_eq!(code(&o), 2);
    assert!(err(&o).contains("registry:"), "{}", err(&o));
    let o = moat(
        &[
            "sign",
            "--key",
            p(&key2),
            &format!("registry:{host}/demo:missing"),
            "--insecure-registry",
        ],
        "",
    );
    assert_eq!(code(&o), 2);
    assert!(err(&o).contains("404"), "{}", err(&o));
}
