//! The image verifier the policy engine calls for `verifyImages` rules and ImageValidatingPolicies:
//! moat-sign's cosign verification against the image's registry. Verdicts are cached by manifest
//! digest (a digest never changes content) and a tag's resolution for a short while (a tag can
//! move). Registries on loopback addresses are reached over plain HTTP, as Docker does for
//! 127.0.0.0/8; every other registry over HTTPS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use moat_policy::{ImageCheck, ImageVerifier};
use moat_sign::{ImageRef, RegistryOptions, VerifyingKey};

const MAX_CACHE: usize = 10_000;
const TAG_TTL: Duration = Duration::from_secs(30);

/// moat-sign behind the policy engine's [`ImageVerifier`].
#[derive(Debug)]
pub struct CosignVerifier {
    timeout: Duration,
    keys: Mutex<HashMap<String, Result<VerifyingKey, String>>>,
    /// (keys, manifest digest) → verdict.
    by_digest: Mutex<HashMap<(String, String), ImageCheck>>,
    /// image reference → (manifest digest, when resolved).
    by_tag: Mutex<HashMap<String, (String, Instant)>>,
}

impl Default for CosignVerifier {
    fn default() -> Self {
        CosignVerifier::new(Duration::from_secs(5))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl CosignVerifier {
    pub fn new(timeout: Duration) -> CosignVerifier {
        CosignVerifier {
            timeout,
            keys: Mutex::new(HashMap::new()),
            by_digest: Mutex::new(HashMap::new()),
            by_tag: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, pem: &str) -> Result<VerifyingKey, String> {
        let mut keys = lock(&self.keys);
        if keys.len() >= MAX_CACHE {
            keys.clear();
        }
        keys.entry(pem.to_string())
            .or_insert_with(|| {
                moat_sign::load_public_key(pem.as_bytes(), "policy public key")
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

impl ImageVerifier for CosignVerifier {
    fn verify(&self, image: &str, public_keys: &[String]) -> ImageCheck {
        let mut keys = Vec::new();
        for pem in public_keys {
            match self.key(pem) {
                Ok(k) => keys.push(k),
                Err(e) => return ImageCheck::Error(format!("policy key: {e}")),
            }
        }
        let keyset = public_keys.join("\n");
        let digest = match image.split_once('@') {
            Some((_, d)) if d.starts_with("sha256:") => Some(d.to_string()),
            _ => lock(&self.by_tag)
                .get(image)
                .filter(|(_, t)| t.elapsed() < TAG_TTL)
                .map(|(d, _)| d.clone()),
        };
        if let Some(d) = &digest
            && let Some(v) = lock(&self.by_digest).get(&(keyset.clone(), d.clone()))
        {
            return v.clone();
        }
        let parsed = match ImageRef::parse(image) {
            Ok(r) => r,
            Err(e) => return ImageCheck::Error(e.to_string()),
        };
        let options = RegistryOptions {
            insecure: loopback(&parsed.host),
            timeout: self.timeout,
            auth_file: None,
        };
        let v = match moat_sign::verify_reference(image, &keys, &options) {
            Ok(v) => v,
            Err(e) => return ImageCheck::Error(e.to_string()),
        };
        let check = if v.verified() {
            ImageCheck::Verified {
                digest: v.manifest_digest.clone(),
            }
        } else if v.checks.is_empty() {
            ImageCheck::NotVerified(format!("no signature found under {}", v.signature_tag))
        } else {
            ImageCheck::NotVerified(
                v.checks
                    .iter()
                    .filter_map(|c| c.problem.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        let mut d = lock(&self.by_digest);
        if d.len() >= MAX_CACHE {
            d.clear();
        }
        d.insert((keyset, v.manifest_digest.clone()), check.clone());
        drop(d);
        let mut t = lock(&self.by_tag);
        if t.len() >= MAX_CACHE {
            t.clear();
        }
        t.insert(image.to_string(), (v.manifest_digest, Instant::now()));
        check
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        assert!(super::loopback("127.0.0.1:5000"));
        assert!(super::loopback("localhost"));
        assert!(!super::loopback("ghcr.io"));
        assert!(!super::loopback("127.example.com:443"));
        assert!(super::loopback("[::1]:5000"));
    }
}
