//! Key files: generation round trips, cosign's envelope, plain PKCS#8 from openssl, hostile files.

use moat_sign::{SignError, generate, load_private_key, load_public_key, public_key_pem};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::{Signer as _, Verifier as _};

#[test]
fn generated_keys_round_trip_and_sign() {
    let k = generate(b"pw").unwrap();
    assert!(
        k.private_pem
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    );
    assert!(k.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let sk = load_private_key(k.private_pem.as_bytes(), b"pw", "cosign.key").unwrap();
    let pk = load_public_key(k.public_pem.as_bytes(), "cosign.pub").unwrap();
    assert_eq!(public_key_pem(sk.verifying_key()).unwrap(), k.public_pem);
    let sig: Signature = sk.sign(b"payload");
    pk.verify(b"payload", &sig).unwrap();
    assert!(pk.verify(b"other", &sig).is_err());
    // The envelope is cosign's JSON: scrypt N/r/p, salt, nacl/secretbox nonce, ciphertext.
    let body: String = k
        .private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["kdf"]["name"], "scrypt");
    assert_eq!(v["kdf"]["params"]["N"], 32768);
    assert_eq!(v["kdf"]["params"]["r"], 8);
    assert_eq!(v["kdf"]["params"]["p"], 1);
    assert_eq!(v["cipher"]["name"], "nacl/secretbox");
    let salt = base64::engine::general_purpose::STANDARD
        .decode(v["kdf"]["salt"].as_str().unwrap())
        .unwrap();
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(v["cipher"]["nonce"].as_str().unwrap())
        .unwrap();
    assert_eq!((salt.len(), nonce.len()), (32, 24));
}

#[test]
fn wrong_or_empty_password_is_a_key_error_naming_the_file() {
    let k = generate(b"right").unwrap();
    match load_private_key(k.private_pem.as_bytes(), b"wrong", "keys/cosign.key") {
        Err(SignError::Key { file, why }) => {
            assert_eq!(file, "keys/cosign.key");
            assert!(why.contains("wrong password"), "{why}");
        }
        other => panic!("expected a key error, got {other:?}"),
    }
    let empty = generate(b"").unwrap();
    load_private_key(empty.private_pem.as_bytes(), b"", "cosign.key").unwrap();
    assert!(load_private_key(empty.private_pem.as_bytes(), b"x", "cosign.key").is_err());
}

#[test]
fn hostile_key_files_are_refused_with_a_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a key".to_vec(), "not a PEM"),
        (vec![b'A'; 100_000], "too large"),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n".to_vec(),
            "not valid JSON",
        ),
    ];
    for (text, want) in cases {
        let e = load_private_key(&text, b"", "k").unwrap_err().to_string();
        assert!(e.contains(want), "{e} should contain {want}");
    }
    // An envelope asking scrypt for 2^30 blocks would need terabytes: refused before deriving.
    use base64::Engine as _;
    let greedy = r#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":"AAAA"}"#;
    let pem = format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(greedy)
    );
    let e = load_private_key(pem.as_bytes(), b"", "k")
        .unwrap_err()
        .to_string();
    assert!(e.contains("128 MiB"), "{e}");
    let other_cipher = greedy
        .replace("1073741824", "16")
        .replace("nacl/secretbox", "aes");
    let pem = format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(other_cipher)
    );
    let e = load_private_key(pem.as_bytes(), b"", "k")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cipher.name"), "{e}");
    // A public key where a private one is needed, and the reverse.
    let k = generate(b"").unwrap();
    let e = load_private_key(k.public_pem.as_bytes(), b"", "cosign.pub")
        .unwrap_err()
        .to_string();
    assert!(e.contains("public key"), "{e}");
    let e = load_public_key(k.private_pem.as_bytes(), "cosign.key")
        .unwrap_err()
        .to_string();
    assert!(e.contains("PUBLIC KEY"), "{e}");
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// OpenSSL is an independent implementation: its PKCS#8 and SEC1 keys load, and its verifier accepts
/// moat's PEM public key and DER signature.
#[test]
fn openssl_keys_and_signatures_interoperate() {
    if !have("openssl") {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "sec1.pem",
    ]);
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        "sec1.pem",
        "-out",
        "pkcs8.pem",
    ]);
    run(&["ec", "-in", "sec1.pem", "-pubout", "-out", "pub.pem"]);
    let sec1 =
        load_private_key(&std::fs::read(d.join("sec1.pem")).unwrap(), b"", "sec1.pem").unwrap();
    let pkcs8 = load_private_key(
        &std::fs::read(d.join("pkcs8.pem")).unwrap(),
        b"",
        "pkcs8.pem",
    )
    .unwrap();
    assert_eq!(sec1.verifying_key(), pkcs8.verifying_key());
    let openssl_pub =
        load_public_key(&std::fs::read(d.join("pub.pem")).unwrap(), "pub.pem").unwrap();
    assert_eq!(&openssl_pub, pkcs8.verifying_key());

    // moat signs, OpenSSL verifies with moat's public key PEM.
    let k = generate(b"").unwrap();
    let sk = load_private_key(k.private_pem.as_bytes(), b"", "cosign.key").unwrap();
    let payload = moat_sign::simple_signing_payload(
        "127.0.0.1:5000/demo",
        &format!("sha256:{}", "1".repeat(64)),
    );
    let sig: Signature = sk.sign(&payload);
    std::fs::write(d.join("cosign.pub"), &k.public_pem).unwrap();
    std::fs::write(d.join("payload.json"), &payload).unwrap();
    std::fs::write(d.join("sig.der"), sig.to_der().as_bytes()).unwrap();
    let ok = run(&[
        "dgst",
        "-sha256",
        "-verify",
        "cosign.pub",
        "-signature",
        "sig.der",
        "payload.json",
    ]);
    assert!(String::from_utf8_lossy(&ok).contains("Verified OK"));

    // OpenSSL signs, moat verifies.
    let theirs = run(&["dgst", "-sha256", "-sign", "pkcs8.pem", "payload.json"]);
    let sig = Signature::from_der(&theirs).unwrap();
    openssl_pub.verify(&payload, &sig).unwrap();
}
