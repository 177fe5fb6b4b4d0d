//! "Images must be signed": every new container image of a pod must carry a cosign signature by
//! one of the trusted keys over its exact manifest digest (moat-sign). Keys are loaded once at
//! start-up; verdicts are cached by manifest digest (a digest never changes content), and a tag's
//! resolution for a short while (a tag can move).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use moat_sign::{RegistryOptions, VerifyingKey};
use serde_json::Value;

use crate::AdmissionError;
use crate::engine::Request;

/// Where the trusted keys are and how to reach registries.
#[derive(Debug, Clone, Default)]
pub struct SignatureConfig {
    /// cosign public keys (PEM); an image signed by any of them is admitted.
    pub keys: Vec<PathBuf>,
    /// Plain HTTP to registries (a loopback test registry only).
    pub insecure_registry: bool,
}

/// Most cached verdicts kept; the cache is emptied when full (bounded memory).
const MAX_CACHE: usize = 10_000;
/// How long a tag's resolution to a digest is trusted.
const TAG_TTL: Duration = Duration::from_secs(30);

/// The loaded keys and the verdict cache.
pub struct SignatureCheck {
    keys: Vec<VerifyingKey>,
    options: RegistryOptions,
    /// manifest digest → signed by a trusted key (with the reason when not).
    by_digest: Mutex<HashMap<String, Result<(), String>>>,
    /// image reference → (manifest digest, when resolved).
    by_tag: Mutex<HashMap<String, (String, Instant)>>,
}

/// What the signature check found for a request's images.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SignatureOutcome {
    /// One per unsigned image (deny).
    pub denials: Vec<String>,
    /// Registry or reference errors (decided by fail-open/closed).
    pub errors: Vec<String>,
}

impl SignatureCheck {
    /// Loads every key; a missing or malformed key stops the server from starting.
    pub fn load(cfg: &SignatureConfig) -> Result<SignatureCheck, AdmissionError> {
        let mut keys = Vec::new();
        for p in &cfg.keys {
            let bytes = std::fs::read(p).map_err(|e| {
                AdmissionError::Config(format!("cannot read trusted key {}: {e}", p.display()))
            })?;
            keys.push(
                moat_sign::load_public_key(&bytes, &p.display().to_string())
                    .map_err(|e| AdmissionError::Config(e.to_string()))?,
            );
        }
        Ok(SignatureCheck {
            keys,
            options: RegistryOptions {
                insecure: cfg.insecure_registry,
                timeout: Duration::from_secs(5),
                auth_file: None,
            },
            by_digest: Mutex::new(HashMap::new()),
            by_tag: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies each image (blocking: network). Run on a blocking thread.
    pub fn judge(&self, images: &[String]) -> SignatureOutcome {
        let mut out = SignatureOutcome::default();
        for image in images {
            match self.verdict(image) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => out.denials.push(format!(
                    "image-signed: image {image:?} has no valid cosign signature by a trusted key ({why})"
                )),
                Err(e) => out
                    .errors
                    .push(format!("image-signed: cannot verify image {image:?}: {e}")),
            }
        }
        out
    }

    fn verdict(&self, image: &str) -> Result<Result<(), String>, String> {
        let digest = match image.split_once("@") {
            Some((_, d)) if d.starts_with("sha256:") => Some(d.to_string()),
            _ => lock(&self.by_tag)
                .get(image)
                .filter(|(_, t)| t.elapsed() < TAG_TTL)
                .map(|(d, _)| d.clone()),
        };
        if let Some(d) = digest
            && let Some(v) = lock(&self.by_digest).get(&d)
        {
            return Ok(v.clone());
        }
        let v = moat_sign::verify_reference(image, &self.keys, &self.options)
            .map_err(|e| e.to_string())?;
        let result = if v.verified() {
            Ok(())
        } else if v.checks.is_empty() {
            Err(format!("no signature found under {}", v.signature_tag))
        } else {
            Err(v
                .checks
                .iter()
                .filter_map(|c| c.problem.clone())
                .collect::<Vec<_>>()
                .join("; "))
        };
        let mut digests = lock(&self.by_digest);
        if digests.len() >= MAX_CACHE {
            digests.clear();
        }
        digests.insert(v.manifest_digest.clone(), result.clone());
        drop(digests);
        let mut tags = lock(&self.by_tag);
        if tags.len() >= MAX_CACHE {
            tags.clear();
        }
        tags.insert(image.to_string(), (v.manifest_digest, Instant::now()));
        Ok(result)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The images a request brings in: every container image of a created pod (or workload template),
/// and on update only images not already in the old object.
pub fn new_images(req: &Request) -> Vec<String> {
    if !matches!(req.operation.as_str(), "CREATE" | "UPDATE")
        || !(req.sub_resource.is_empty() || req.sub_resource == "ephemeralcontainers")
    {
        return Vec::new();
    }
    let kind = if req.kind.is_empty() {
        req.object.get("kind").and_then(Value::as_str).unwrap_or("")
    } else {
        req.kind.as_str()
    };
    let images_of = |obj: &Value| -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        if let Some(t) = moat_kube::pod_template(obj, kind) {
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                for c in t
                    .spec
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(i) = c.get("image").and_then(Value::as_str) {
                        s.insert(i.to_string());
                    }
                }
            }
        }
        s
    };
    let mut new = images_of(&req.object);
    if req.operation == "UPDATE"
        && let Some(old) = &req.old_object
    {
        for i in images_of(old) {
            new.remove(&i);
        }
    }
    new.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(op: &str, sub: &str, object: Value, old: Option<Value>) -> Request {
        Request {
            operation: op.into(),
            kind: "Pod".into(),
            sub_resource: sub.into(),
            object,
            old_object: old,
            ..Request::default()
        }
    }

    fn pod(images: &[&str]) -> Value {
        let cs: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"initContainers": [{"name": "init", "image": "init:1"}], "containers": cs}})
    }

    #[test]
    fn new_images_of_creates_updates_and_subresources() {
        assert_eq!(
            new_images(&req("CREATE", "", pod(&["b:1", "a:1"]), None)),
            ["a:1", "b:1", "init:1"]
        );
        // An update only brings the images the old object did not have.
        assert_eq!(
            new_images(&req(
                "UPDATE",
                "",
                pod(&["a:1", "c:2"]),
                Some(pod(&["a:1"]))
            )),
            ["c:2"]
        );
        assert!(new_images(&req("UPDATE", "status", pod(&["a:1"]), None)).is_empty());
        assert!(new_images(&req("DELETE", "", pod(&["a:1"]), None)).is_empty());
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{"name": "w", "image": "web:3"}]}}}});
        let mut r = req("CREATE", "", deploy, None);
        r.kind = "Deployment".into();
        assert_eq!(new_images(&r), ["web:3"]);
    }

    #[test]
    fn a_malformed_trusted_key_stops_the_start() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("cosign.pub");
        std::fs::write(&k, "not a key").unwrap();
        let e = SignatureCheck::load(&SignatureConfig {
            keys: vec![k.clone()],
            insecure_registry: false,
        })
        .err()
        .expect("a malformed key is refused");
        assert!(e.to_string().contains(&k.display().to_string()), "{e}");
    }
}
