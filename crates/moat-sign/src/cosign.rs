//! Signing and verification in cosign's registry layout.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};

use crate::SignError;
use crate::reference::{ImageRef, is_sha256_digest};
use crate::registry::{MAX_MANIFEST, OCI_MANIFEST, Registry, RegistryOptions, sha256_digest};

/// The media type of a signature layer: its blob is the simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 DER ECDSA signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Payloads are a few hundred bytes; optional annotations can add some.
const MAX_PAYLOAD: u64 = 1 << 20;
/// All payloads of one verification together: a hostile `.sig` manifest cannot make moat download
/// gigabytes.
const MAX_PAYLOAD_TOTAL: u64 = 16 << 20;
/// A `.sig` manifest with more signature layers than this is treated as hostile.
const MAX_SIGNATURES: usize = 1000;

/// The tag cosign stores an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// The simple-signing payload cosign signs (compact JSON, cosign's key order).
pub fn simple_signing_payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// What `sign_image` did.
#[derive(Debug, Clone)]
pub struct SignOutcome {
    /// The digest of the manifest that was signed.
    pub manifest_digest: String,
    /// The tag the signatures are stored under.
    pub signature_tag: String,
    /// Signature layers in the `.sig` manifest now.
    pub signatures: usize,
    /// False when the same signature was already there (signing is idempotent).
    pub added: bool,
}

/// The manifest digest `reference` names now (a tag resolved through its registry; a digest checked to
/// exist). The admission webhook judges images by digest.
pub fn resolve_digest(reference: &str, options: &RegistryOptions) -> Result<String, SignError> {
    let r = ImageRef::parse(reference)?;
    resolve(&Registry::new(&r, options), &r)
}

fn resolve(reg: &Registry, r: &ImageRef) -> Result<String, SignError> {
    let reference = r.manifest_reference();
    match reg.manifest(reference)? {
        Some(bytes) => Ok(sha256_digest(&bytes)),
        None => Err(SignError::Registry {
            url: format!("registry:{r}"),
            why: "404 Not Found: no such image in the registry".into(),
        }),
    }
}

fn invalid(what: &str, why: impl Into<String>) -> SignError {
    SignError::Invalid {
        what: what.to_string(),
        why: why.into(),
    }
}

/// The layers of an existing `.sig` manifest, kept as they are (other tools' annotations too).
fn existing_layers(reg: &Registry, r: &ImageRef, tag: &str) -> Result<Vec<Value>, SignError> {
    let what = format!("registry:{}/{}:{tag}", r.host, r.repo);
    let Some(bytes) = reg.manifest(tag)? else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&what, format!("signature manifest is not JSON: {e}")))?;
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(&what, "signature manifest has no layers array"))?;
    if layers.len() > MAX_SIGNATURES {
        return Err(invalid(
            &what,
            format!("{} signature layers: too many", layers.len()),
        ));
    }
    Ok(layers.clone())
}

/// Signs the image `reference` points to with `key` and stores the signature next to it, keeping
/// the signatures already there.
pub fn sign_image(
    reference: &ImageRef,
    key: &SigningKey,
    options: &RegistryOptions,
) -> Result<SignOutcome, SignError> {
    let reg = Registry::new(reference, options);
    let digest = resolve(&reg, reference)?;
    let payload = simple_signing_payload(&reference.repository_name(), &digest);
    let signature: Signature = key.sign(&payload);
    let signature_b64 = B64.encode(signature.to_der().as_bytes());
    let tag = signature_tag(&digest);
    let mut layers = existing_layers(&reg, reference, &tag)?;
    let payload_digest = sha256_digest(&payload);
    let already = layers.iter().any(|l| {
        l.get("digest").and_then(Value::as_str) == Some(payload_digest.as_str())
            && l.pointer(&format!(
                "/annotations/{}",
                SIGNATURE_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
                == Some(signature_b64.as_str())
    });
    if already {
        return Ok(SignOutcome {
            manifest_digest: digest,
            signature_tag: tag,
            signatures: layers.len(),
            added: false,
        });
    }
    reg.push_blob(&payload)?;
    layers.push(json!({
        "mediaType": SIMPLE_SIGNING,
        "size": payload.len(),
        "digest": payload_digest,
        "annotations": {SIGNATURE_ANNOTATION: signature_b64},
    }));
    // The config is an image config whose diff_ids are the layer digests (the payloads are stored
    // uncompressed), with zero times so it is reproducible.
    let diff_ids: Vec<&str> = layers
        .iter()
        .filter_map(|l| l.get("digest").and_then(Value::as_str))
        .collect();
    let history: Vec<Value> = diff_ids
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .map_err(|e| SignError::Crypto(format!("cannot encode the signature config: {e}")))?;
    let config_digest = reg.push_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": config_digest},
        "layers": layers,
    }))
    .map_err(|e| SignError::Crypto(format!("cannot encode the signature manifest: {e}")))?;
    if manifest.len() as u64 > MAX_MANIFEST {
        return Err(invalid(&tag, "signature manifest would exceed 4 MiB"));
    }
    reg.push_manifest(&tag, &manifest)?;
    Ok(SignOutcome {
        manifest_digest: digest,
        signature_tag: tag,
        signatures: layers.len(),
        added: true,
    })
}

/// The judgement of one signature layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureCheck {
    /// The layer (payload) digest.
    pub layer: String,
    /// Index into the trusted keys of the key that verified the signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<usize>,
    /// The payload's `docker-reference`, when the payload was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_reference: Option<String>,
    /// The payload's `docker-manifest-digest`, when the payload was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_digest: Option<String>,
    /// True when signature, digest and repository all hold.
    pub verified: bool,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The outcome of verifying one image against trusted keys.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The reference as parsed (`host/repo:tag`).
    pub reference: String,
    /// The image's actual manifest digest.
    pub manifest_digest: String,
    /// The tag signatures were looked for under.
    pub signature_tag: String,
    /// One entry per signature layer found (empty when there is no `.sig` manifest).
    pub checks: Vec<SignatureCheck>,
}

impl Verdict {
    /// A valid signature by a trusted key over this exact manifest digest exists.
    pub fn verified(&self) -> bool {
        self.checks.iter().any(|c| c.verified)
    }
}

/// Verifies that the image `reference` names carries a cosign signature by one of `public_keys`
/// over its exact manifest digest, for its repository. Errors are input errors (bad reference,
/// registry unreachable); an unsigned image is a [`Verdict`] with no verified check. The admission
/// webhook can call this per container image.
pub fn verify_reference(
    reference: &str,
    public_keys: &[VerifyingKey],
    options: &RegistryOptions,
) -> Result<Verdict, SignError> {
    let r = ImageRef::parse(reference)?;
    let reg = Registry::new(&r, options);
    let digest = resolve(&reg, &r)?;
    let tag = signature_tag(&digest);
    let mut checks = Vec::new();
    // Whoever can push to the repository can write the .sig tag: a malformed one is a rejected
    // signature (exit 1, deny), never an error a fail-open webhook would admit on.
    let layers = match existing_layers(&reg, &r, &tag) {
        Ok(l) => l,
        Err(SignError::Invalid { why, .. }) => {
            checks.push(SignatureCheck {
                layer: tag.clone(),
                key: None,
                docker_reference: None,
                signed_digest: None,
                verified: false,
                problem: Some(why),
            });
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let mut budget = MAX_PAYLOAD_TOTAL;
    for layer in &layers {
        checks.push(check_layer(
            &reg,
            &r,
            &digest,
            layer,
            public_keys,
            &mut budget,
        ));
    }
    Ok(Verdict {
        reference: r.to_string(),
        manifest_digest: digest,
        signature_tag: tag,
        checks,
    })
}

fn check_layer(
    reg: &Registry,
    r: &ImageRef,
    digest: &str,
    layer: &Value,
    keys: &[VerifyingKey],
    budget: &mut u64,
) -> SignatureCheck {
    let layer_digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(80)
        .collect::<String>();
    let mut check = SignatureCheck {
        layer: layer_digest.clone(),
        key: None,
        docker_reference: None,
        signed_digest: None,
        verified: false,
        problem: None,
    };
    let fail = |mut c: SignatureCheck, why: String| {
        c.problem = Some(why);
        c
    };
    if layer.get("mediaType").and_then(Value::as_str) != Some(SIMPLE_SIGNING) {
        return fail(check, "not a simple-signing layer".into());
    }
    if !is_sha256_digest(&layer_digest) {
        return fail(check, "layer digest is not a sha256 digest".into());
    }
    let Some(sig_b64) = layer
        .get("annotations")
        .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return fail(check, format!("no {SIGNATURE_ANNOTATION} annotation"));
    };
    let Ok(sig_der) = B64.decode(sig_b64.trim().as_bytes()) else {
        return fail(check, "signature annotation is not base64".into());
    };
    let Ok(signature) = Signature::from_der(&sig_der) else {
        return fail(check, "signature is not a DER ECDSA P-256 signature".into());
    };
    if *budget == 0 {
        return fail(
            check,
            "not checked: the signature payloads already read exceed 16 MiB".into(),
        );
    }
    let payload = match reg.blob(&layer_digest, MAX_PAYLOAD.min(*budget)) {
        Ok(p) => p,
        Err(e) => return fail(check, format!("payload unreadable: {e}")),
    };
    *budget = budget.saturating_sub(payload.len() as u64);
    let Some(k) = keys
        .iter()
        .position(|k| k.verify(&payload, &signature).is_ok())
    else {
        return fail(
            check,
            "the signature does not verify with any trusted key".into(),
        );
    };
    check.key = Some(k);
    let v: Value = match serde_json::from_slice(&payload) {
        Ok(v) => v,
        Err(e) => return fail(check, format!("signed payload is not JSON: {e}")),
    };
    let field = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    check.docker_reference = field("/critical/identity/docker-reference");
    check.signed_digest = field("/critical/image/docker-manifest-digest");
    if field("/critical/type").as_deref() != Some(SIGNATURE_TYPE) {
        return fail(
            check,
            format!("payload critical.type is not {SIGNATURE_TYPE:?}"),
        );
    }
    match check.signed_digest.as_deref() {
        Some(d) if d == digest => {}
        Some(d) => {
            let why = format!("the signature is for manifest {d}, not this image's {digest}");
            return fail(check, why);
        }
        None => {
            return fail(
                check,
                "payload has no critical.image.docker-manifest-digest".into(),
            );
        }
    }
    match check.docker_reference.as_deref() {
        Some(claimed) if r.same_repository(claimed) => {}
        Some(claimed) => {
            let why = format!(
                "the signature names repository {claimed:?}, not {}",
                r.repository_name()
            );
            return fail(check, why);
        }
        None => {
            return fail(
                check,
                "payload has no critical.identity.docker-reference".into(),
            );
        }
    }
    check.verified = true;
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_and_tag_follow_cosign() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", "ab".repeat(32)));
        let p = simple_signing_payload("127.0.0.1:5000/demo", &d);
        assert_eq!(
            String::from_utf8(p).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/demo\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
    }
}
