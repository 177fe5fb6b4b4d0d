//! A known answer from real cosign: a signature cosign produced on 2023-02-16 and recorded in the
//! public Rekor log (logIndex 13452680). Its signature layer has digest
//! `sha256:d1226e36…`, the payload cosign signed; the signing key is the P-256 key of the Fulcio
//! certificate attached to it (keyless, but the payload and the ECDSA signature are what key-based
//! cosign produces too). moat must build byte-identical payloads and accept cosign's signature.

use base64::Engine as _;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier as _;
use sha2::Digest as _;

const REFERENCE: &str = "wabbitnetworks.azurecr.io/test/cosign-image";
const IMAGE_DIGEST: &str =
    "sha256:623621b56649b5e0c2c7cf3ffd987932f8f9a5a01036e00d6f3ae9480087621c";
const LAYER_DIGEST: &str = "d1226e36bc8502978324cb2cb2116c6aa48edb2ea8f15b1c6f6f256ed43388f6";
const SIGNATURE: &str = "MEUCIFBlKbxxg1Ni++g99jeWO8Of3g5L0Xd+qMzdqCZySQ8DAiEA3lcOJPJ1FQOahtWaRU0hG0XxFEsbcVx6SIyzYQMMR0A=";
/// The public key of the certificate (`openssl x509 -pubkey`).
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7eKu8pk7g2/IRhRy2P/2HcsSBcX6
BZhOCIslH05AXqK5eKBFO0eM+hHqqiima4Tnwzc1sOot8tTFw9yDDmxpNA==
-----END PUBLIC KEY-----
";

#[test]
fn moat_payload_is_byte_identical_to_cosigns_and_its_signature_verifies() {
    let payload = moat_sign::simple_signing_payload(REFERENCE, IMAGE_DIGEST);
    assert_eq!(hex::encode(sha2::Sha256::digest(&payload)), LAYER_DIGEST);
    let key = moat_sign::load_public_key(PUBLIC_KEY.as_bytes(), "cosign-cert.pub").unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(SIGNATURE)
        .unwrap();
    let sig = Signature::from_der(&der).unwrap();
    key.verify(&payload, &sig).unwrap();
    // The same signature does not cover any other image.
    let other = moat_sign::simple_signing_payload(REFERENCE, &format!("sha256:{}", "0".repeat(64)));
    assert!(key.verify(&other, &sig).is_err());
}
