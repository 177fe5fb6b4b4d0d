//! Cosign-compatible image signing and verification with keys.
//!
//! The format is cosign's, so cosign, containers/image (skopeo, podman) and moat read each other's
//! signatures:
//! - keys: ECDSA P-256; `cosign.pub` is a PEM `PUBLIC KEY`, `cosign.key` an `ENCRYPTED SIGSTORE
//!   PRIVATE KEY` (scrypt + NaCl secretbox JSON envelope over PKCS#8), see [`keys`];
//! - the signed payload is the "simple signing" JSON naming the repository and the manifest digest;
//! - signatures live in the image's repository as an OCI manifest tagged `sha256-<hex>.sig`, one layer
//!   per signature (`application/vnd.dev.cosign.simplesigning.v1+json`, the payload as the blob, the
//!   base64 DER ECDSA signature in the `dev.cosignproject.cosign/signature` annotation).
#![forbid(unsafe_code)]

mod cosign;
pub mod keys;
mod reference;
mod registry;

pub use cosign::{
    SignOutcome, SignatureCheck, Verdict, resolve_digest, sign_image, signature_tag,
    simple_signing_payload, verify_reference,
};
pub use keys::{GeneratedKeys, generate, load_private_key, load_public_key, public_key_pem};
pub use p256::ecdsa::{SigningKey, VerifyingKey};
pub use reference::ImageRef;
pub use registry::RegistryOptions;

/// Everything that can stop signing or verification before a verdict: the input is wrong or
/// unreachable. "Not signed" is a [`Verdict`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key file that cannot be used; names the file.
    #[error("{file}: {why}")]
    Key { file: String, why: String },
    /// An image reference that does not parse.
    #[error("{0}")]
    Reference(String),
    /// The registry could not be reached or refused; names the URL.
    #[error("{url}: {why}")]
    Registry { url: String, why: String },
    /// A document from the registry that is not what it must be.
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    /// Randomness or encoding failure.
    #[error("{0}")]
    Crypto(String),
}
