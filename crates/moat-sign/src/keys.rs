//! Key pairs in cosign's formats: the public key as a PEM `PUBLIC KEY` (SPKI), the private key as an
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (a JSON envelope: scrypt derives a key from the password, NaCl
//! secretbox seals the PKCS#8 DER). Plain PKCS#8 (`PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) PEM keys
//! are accepted too, so keys made by openssl work.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::aead::Aead;
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};

use crate::SignError;

/// PEM label cosign 2.x writes; older cosign wrote `ENCRYPTED COSIGN PRIVATE KEY` (same envelope).
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// Key files are a few hundred bytes; anything far larger is not a key.
const MAX_KEY_FILE: usize = 64 << 10;
/// scrypt needs 128·r·N bytes: refuse envelopes asking for more than this (cosign uses N=32768 or
/// 65536 with r=8, 32–64 MiB), so a hostile key file cannot exhaust memory.
const MAX_SCRYPT_MEMORY: u64 = 128 << 20;

/// The scrypt parameters moat writes: go-securesystemslib's defaults, which every cosign reader accepts
/// (sigstore-rs accepts only these).
const WRITE_LOG_N: u8 = 15;
const WRITE_R: u32 = 8;
const WRITE_P: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// A freshly generated key pair, already encoded as the two files cosign writes.
pub struct GeneratedKeys {
    /// `cosign.key`: the encrypted private key PEM.
    pub private_pem: String,
    /// `cosign.pub`: the public key PEM.
    pub public_pem: String,
}

fn random(buf: &mut [u8]) -> Result<(), SignError> {
    getrandom::fill(buf).map_err(|e| SignError::Crypto(format!("no randomness from the OS: {e}")))
}

/// Generates an ECDSA P-256 key pair; the private key is encrypted with `password` (may be empty).
pub fn generate(password: &[u8]) -> Result<GeneratedKeys, SignError> {
    let key = loop {
        let mut bytes = [0u8; 32];
        random(&mut bytes)?;
        // Zero or a value ≥ the group order is rejected; retrying is the standard remedy (p ≈ 2^-32).
        if let Ok(k) = SigningKey::from_slice(&bytes) {
            break k;
        }
    };
    let private_pem = encrypt_private_key(&key, password)?;
    let public_pem = public_key_pem(key.verifying_key())?;
    Ok(GeneratedKeys {
        private_pem,
        public_pem,
    })
}

/// The public key as cosign writes it (`-----BEGIN PUBLIC KEY-----`, SPKI DER).
pub fn public_key_pem(key: &VerifyingKey) -> Result<String, SignError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| SignError::Crypto(format!("cannot encode the public key: {e}")))
}

/// Seals the PKCS#8 DER of `key` in cosign's encrypted envelope.
pub fn encrypt_private_key(key: &SigningKey, password: &[u8]) -> Result<String, SignError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SignError::Crypto(format!("cannot encode the private key: {e}")))?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    random(&mut salt)?;
    random(&mut nonce)?;
    let box_key = derive(password, &salt, WRITE_LOG_N, WRITE_R, WRITE_P)?;
    let cipher = XSalsa20Poly1305::new(&box_key.into());
    let sealed = cipher
        .encrypt(&nonce.into(), der.as_bytes())
        .map_err(|_| SignError::Crypto("secretbox sealing failed".into()))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << WRITE_LOG_N,
                r: WRITE_R,
                p: WRITE_P,
            },
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(sealed),
    };
    let json = serde_json::to_vec(&envelope)
        .map_err(|e| SignError::Crypto(format!("cannot encode the key envelope: {e}")))?;
    pem::encode_string(ENCRYPTED_LABEL, LineEnding::LF, &json)
        .map_err(|e| SignError::Crypto(format!("cannot encode the key PEM: {e}")))
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], SignError> {
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| SignError::Crypto(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| SignError::Crypto(format!("scrypt: {e}")))?;
    Ok(out)
}

fn key_error(name: &str, why: impl Into<String>) -> SignError {
    SignError::Key {
        file: name.to_string(),
        why: why.into(),
    }
}

fn check_size(text: &[u8], name: &str) -> Result<(), SignError> {
    if text.len() > MAX_KEY_FILE {
        return Err(key_error(
            name,
            format!("{} bytes: too large for a key file", text.len()),
        ));
    }
    Ok(())
}

/// Reads a private key: cosign's encrypted PEM (with `password`), or plain PKCS#8 / SEC1 PEM.
/// `name` is the file name used in errors.
pub fn load_private_key(text: &[u8], password: &[u8], name: &str) -> Result<SigningKey, SignError> {
    check_size(text, name)?;
    let (label, body) = decode_pem(text, name)?;
    match label.as_str() {
        ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
            let der = decrypt_envelope(&body, password, name)?;
            SigningKey::from_pkcs8_der(&der).map_err(|e| {
                key_error(
                    name,
                    format!("decrypted key is not a P-256 PKCS#8 key: {e}"),
                )
            })
        }
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&body)
            .map_err(|e| key_error(name, format!("not an ECDSA P-256 PKCS#8 key: {e}"))),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&body)
            .map(SigningKey::from)
            .map_err(|e| key_error(name, format!("not an ECDSA P-256 SEC1 key: {e}"))),
        "PUBLIC KEY" => Err(key_error(
            name,
            "this is a public key; signing needs the private key (cosign.key)",
        )),
        other => Err(key_error(
            name,
            format!(
                "PEM type {other:?} is not a private key moat reads (ENCRYPTED SIGSTORE PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY)"
            ),
        )),
    }
}

/// Decodes one PEM block leniently: text around it, any line length and CRLF are accepted (Go,
/// OpenSSL and editors disagree on these); the label must match at BEGIN and END.
fn decode_pem(text: &[u8], name: &str) -> Result<(String, Vec<u8>), SignError> {
    let text =
        std::str::from_utf8(text).map_err(|_| key_error(name, "not a PEM key file (not UTF-8)"))?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("-----BEGIN ")
                .and_then(|r| r.strip_suffix("-----"))
        })
        .ok_or_else(|| key_error(name, "not a PEM key file (no -----BEGIN line)"))?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut closed = false;
    for l in lines {
        if l == end {
            closed = true;
            break;
        }
        if l.contains(':') {
            continue; // RFC 1421 headers (Proc-Type...) carry nothing moat uses.
        }
        body.push_str(l);
    }
    if !closed {
        return Err(key_error(
            name,
            format!("PEM block {label:?} has no {end} line"),
        ));
    }
    let der = B64
        .decode(body.as_bytes())
        .map_err(|e| key_error(name, format!("PEM body is not base64: {e}")))?;
    Ok((label, der))
}

fn decrypt_envelope(body: &[u8], password: &[u8], name: &str) -> Result<Vec<u8>, SignError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        key_error(
            name,
            format!("encrypted key envelope is not valid JSON: {e}"),
        )
    })?;
    if env.kdf.name != "scrypt" {
        return Err(key_error(
            name,
            format!("kdf.name {:?} is not supported (only scrypt)", env.kdf.name),
        ));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(key_error(
            name,
            format!(
                "cipher.name {:?} is not supported (only nacl/secretbox)",
                env.cipher.name
            ),
        ));
    }
    let KdfParams { n, r, p } = env.kdf.params;
    if n < 2 || !n.is_power_of_two() || n > 1 << 30 || r == 0 || p == 0 || p > 16 {
        return Err(key_error(
            name,
            format!("kdf.params N={n} r={r} p={p} are not valid scrypt parameters"),
        ));
    }
    if 128u64.saturating_mul(r as u64).saturating_mul(n) > MAX_SCRYPT_MEMORY {
        return Err(key_error(
            name,
            format!("kdf.params N={n} r={r} would need more than 128 MiB"),
        ));
    }
    let salt = B64
        .decode(env.kdf.salt.as_bytes())
        .map_err(|e| key_error(name, format!("kdf.salt is not base64: {e}")))?;
    let nonce = B64
        .decode(env.cipher.nonce.as_bytes())
        .map_err(|e| key_error(name, format!("cipher.nonce is not base64: {e}")))?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| key_error(name, "cipher.nonce is not 24 bytes"))?;
    let sealed = B64
        .decode(env.ciphertext.as_bytes())
        .map_err(|e| key_error(name, format!("ciphertext is not base64: {e}")))?;
    let box_key = derive(password, &salt, n.trailing_zeros() as u8, r, p)?;
    let cipher = XSalsa20Poly1305::new(&box_key.into());
    cipher.decrypt(&nonce.into(), sealed.as_slice()).map_err(|_| {
        key_error(
            name,
            "cannot decrypt the private key: wrong password (set COSIGN_PASSWORD) or a damaged file",
        )
    })
}

/// Reads a public key PEM (`PUBLIC KEY`, SPKI). `name` is the file name used in errors.
pub fn load_public_key(text: &[u8], name: &str) -> Result<VerifyingKey, SignError> {
    check_size(text, name)?;
    let (label, der) = decode_pem(text, name)?;
    if label != "PUBLIC KEY" {
        return Err(key_error(
            name,
            format!("PEM type {label:?}: verification needs a PUBLIC KEY (cosign.pub)"),
        ));
    }
    VerifyingKey::from_public_key_der(&der)
        .map_err(|e| key_error(name, format!("not an ECDSA P-256 public key: {e}")))
}
