//! The signature store's registry access, built on moat-image's registry client (auth, tokens,
//! timeouts, error messages): manifests by tag or digest, verified blobs, and the uploads signing
//! needs (blob HEAD + monolithic POST/PUT, manifest PUT).

use std::path::PathBuf;
use std::time::Duration;

use moat_image::ImageError;
use moat_image::registry::{Body, Client, ClientOptions, encode, read_body, status_error};
use sha2::{Digest as _, Sha256};

use crate::SignError;
use crate::reference::ImageRef;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Manifests are small JSON documents; the distribution spec suggests 4 MiB as a limit.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP (for a loopback test registry); HTTPS otherwise.
    pub insecure: bool,
    /// Per-phase network timeout.
    pub timeout: Duration,
    /// An explicit credentials file (Docker `config.json` format).
    pub auth_file: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            timeout: Duration::from_secs(30),
            auth_file: None,
        }
    }
}

pub(crate) struct Registry {
    client: Client,
}

fn net(url: &str, why: impl Into<String>) -> SignError {
    SignError::Registry {
        url: url.to_string(),
        why: why.into(),
    }
}

/// The shared client's errors name the URL (or answer) they are about.
fn from_image(e: ImageError) -> SignError {
    match e {
        ImageError::Invalid { what, why } => SignError::Registry { url: what, why },
        ImageError::Limit { what, why } => SignError::Registry {
            url: what,
            why: format!("limit exceeded: {why}"),
        },
        other => SignError::Registry {
            url: "registry".into(),
            why: other.to_string(),
        },
    }
}

impl Registry {
    pub(crate) fn new(r: &ImageRef, o: &RegistryOptions) -> Registry {
        let options = ClientOptions {
            insecure: o.insecure,
            timeout: o.timeout,
            auth_file: o.auth_file.clone(),
        };
        Registry {
            client: Client::new(&r.host, &r.repo, &options),
        }
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<moat_image::registry::Response, SignError> {
        self.client
            .send(method, url, headers, body)
            .map_err(from_image)
    }

    fn refused(method: &str, url: &str, resp: moat_image::registry::Response) -> SignError {
        let status = resp.status().as_u16();
        from_image(status_error(method, url, status, resp))
    }

    /// A manifest by tag or digest: `None` when the registry says 404. Verified when asked by digest.
    pub(crate) fn manifest(&self, reference: &str) -> Result<Option<Vec<u8>>, SignError> {
        let url = format!("{}/manifests/{reference}", self.client.base());
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let resp = self.send("GET", &url, &[("Accept", &accept)], &Body::None)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(Self::refused("GET", &url, resp));
        }
        let bytes = read_body(resp, MAX_MANIFEST, &url).map_err(from_image)?;
        if reference.starts_with("sha256:") && sha256_digest(&bytes) != reference {
            return Err(net(
                &url,
                "manifest content does not match the digest it was fetched by",
            ));
        }
        Ok(Some(bytes))
    }

    /// A blob, bounded and verified against its digest.
    pub(crate) fn blob(&self, digest: &str, max: u64) -> Result<Vec<u8>, SignError> {
        let url = format!("{}/blobs/{digest}", self.client.base());
        let resp = self.send("GET", &url, &[], &Body::None)?;
        if !resp.status().is_success() {
            return Err(Self::refused("GET", &url, resp));
        }
        let bytes = read_body(resp, max, &url).map_err(from_image)?;
        if sha256_digest(&bytes) != digest {
            return Err(net(&url, "blob content does not match its digest"));
        }
        Ok(bytes)
    }

    /// Uploads a blob unless the registry already has it (monolithic POST then PUT).
    pub(crate) fn push_blob(&self, bytes: &[u8]) -> Result<String, SignError> {
        let digest = sha256_digest(bytes);
        let base = self.client.base();
        let head = format!("{base}/blobs/{digest}");
        let resp = self.send("HEAD", &head, &[], &Body::None)?;
        if resp.status().is_success() {
            return Ok(digest);
        }
        let start = format!("{base}/blobs/uploads/");
        let resp = self.send(
            "POST",
            &start,
            &[],
            &Body::Bytes(&[], "application/octet-stream"),
        )?;
        if resp.status().as_u16() != 202 {
            return Err(Self::refused("POST", &start, resp));
        }
        let Some(location) = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        else {
            return Err(net(&start, "upload started without a Location header"));
        };
        let mut url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else if location.starts_with('/') {
            format!("{}{location}", self.client.origin())
        } else {
            return Err(net(
                &start,
                format!("upload Location {location:?} is not a URL or path"),
            ));
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", encode(&digest)));
        let resp = self.send(
            "PUT",
            &url,
            &[],
            &Body::Bytes(bytes, "application/octet-stream"),
        )?;
        if !resp.status().is_success() {
            return Err(Self::refused("PUT", &url, resp));
        }
        Ok(digest)
    }

    /// Puts an OCI image manifest under a tag.
    pub(crate) fn push_manifest(&self, tag: &str, bytes: &[u8]) -> Result<(), SignError> {
        let url = format!("{}/manifests/{tag}", self.client.base());
        let resp = self.send("PUT", &url, &[], &Body::Bytes(bytes, OCI_MANIFEST))?;
        if !resp.status().is_success() {
            return Err(Self::refused("PUT", &url, resp));
        }
        Ok(())
    }
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
