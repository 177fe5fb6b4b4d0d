//! A small blocking OCI distribution client that can also write: manifests by tag or digest, blobs
//! (HEAD, GET, monolithic POST+PUT upload), and a manifest PUT. Auth: anonymous, bearer tokens from
//! the `WWW-Authenticate` challenge (pull or pull,push scope as the registry asks) and basic auth from
//! the Docker credentials file. Plain HTTP only with `insecure` (loopback test registries).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
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
    agent: ureq::Agent,
    origin: String,
    base: String,
    repo: String,
    insecure: bool,
    basic: Option<String>,
    auth: Mutex<Option<String>>,
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

fn net(url: &str, why: impl Into<String>) -> SignError {
    SignError::Registry {
        url: url.to_string(),
        why: why.into(),
    }
}

enum Body<'a> {
    None,
    Bytes(&'a [u8], &'a str),
}

impl Registry {
    pub(crate) fn new(r: &ImageRef, o: &RegistryOptions) -> Registry {
        let t = Some(o.timeout);
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!o.insecure)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .timeout_per_write(t)
            .max_redirects(5)
            .user_agent(format!("moat/{}", moat_model::MOAT_VERSION));
        if is_loopback(&r.host) {
            cfg = cfg.proxy(None);
        }
        let scheme = if o.insecure { "http" } else { "https" };
        let origin = format!("{scheme}://{}", r.api_host());
        Registry {
            agent: ureq::Agent::new_with_config(cfg.build()),
            base: format!("{origin}/v2/{}", r.repo),
            origin,
            repo: r.repo.clone(),
            insecure: o.insecure,
            basic: credentials(&r.host, o.auth_file.as_ref()),
            auth: Mutex::new(None),
        }
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::http::Response<ureq::Body>, SignError> {
        for attempt in 0..2 {
            let mut b = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let current = self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone();
            // Credentials go only to the registry itself, never to an upload host elsewhere.
            if let Some(a) = current.as_ref()
                && url.starts_with(&self.origin)
            {
                b = b.header("Authorization", a);
            }
            let resp = match body {
                Body::None => {
                    let req = b.body(()).map_err(|e| net(url, e.to_string()))?;
                    self.agent.run(req)
                }
                Body::Bytes(bytes, ct) => {
                    let req = b
                        .header("Content-Type", *ct)
                        .body(bytes.to_vec())
                        .map_err(|e| net(url, e.to_string()))?;
                    self.agent.run(req)
                }
            }
            .map_err(|e| self.transport(url, e))?;
            let status = resp.status().as_u16();
            if status == 401 && attempt == 0 {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if let Some(c) = challenge
                    && self.answer(&c, url)?
                {
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(net(
            url,
            "401 Unauthorized after authenticating: the credentials were refused",
        ))
    }

    fn transport(&self, url: &str, e: ureq::Error) -> SignError {
        match e {
            ureq::Error::RequireHttpsOnly(_) => net(
                url,
                "plain HTTP refused: use --insecure-registry for a loopback test registry",
            ),
            ureq::Error::Timeout(phase) => net(url, format!("timed out ({phase})")),
            other => {
                let msg = other.to_string();
                if !self.insecure && msg.to_ascii_lowercase().contains("tls") {
                    net(
                        url,
                        format!(
                            "request failed: {msg} (for a plain-HTTP loopback registry use --insecure-registry)"
                        ),
                    )
                } else {
                    net(url, format!("request failed: {msg}"))
                }
            }
        }
    }

    fn answer(&self, challenge: &str, url: &str) -> Result<bool, SignError> {
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(b) = &self.basic else {
                return Ok(false);
            };
            *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("Basic {b}"));
            return Ok(true);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(false);
        }
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let Some(realm) = param("realm") else {
            return Err(net(url, "bearer challenge without a realm"));
        };
        if !(realm.starts_with("https://") || self.insecure && realm.starts_with("http://")) {
            return Err(net(
                url,
                format!("token realm {realm:?} is not an https URL"),
            ));
        }
        let scope = param("scope")
            .map(str::to_string)
            .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
        let mut token_url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { "&" } else { "?" },
            encode(&scope)
        );
        if let Some(service) = param("service") {
            token_url.push_str(&format!("&service={}", encode(service)));
        }
        let mut req = self.agent.get(&token_url);
        if let Some(b) = &self.basic {
            req = req.header("Authorization", &format!("Basic {b}"));
        }
        let resp = req.call().map_err(|e| self.transport(&token_url, e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error(&token_url, status, resp));
        }
        let body = read_bounded(resp, 1 << 20, &token_url)?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| net(&token_url, format!("token answer is not JSON: {e}")))?;
        let Some(token) = t.token.or(t.access_token).filter(|t| !t.is_empty()) else {
            return Err(net(&token_url, "token answer has no token"));
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(net(
                &token_url,
                "token has characters not allowed in a header",
            ));
        }
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("Bearer {token}"));
        Ok(true)
    }

    /// A manifest by tag or digest: `None` when the registry says 404. Verified when asked by digest.
    pub(crate) fn manifest(&self, reference: &str) -> Result<Option<Vec<u8>>, SignError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let resp = self.send("GET", &url, &[("Accept", &accept)], &Body::None)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(status_error(&url, status, resp));
        }
        let bytes = read_bounded(resp, MAX_MANIFEST, &url)?;
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
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.send("GET", &url, &[], &Body::None)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error(&url, status, resp));
        }
        let bytes = read_bounded(resp, max, &url)?;
        if sha256_digest(&bytes) != digest {
            return Err(net(&url, "blob content does not match its digest"));
        }
        Ok(bytes)
    }

    /// Uploads a blob unless the registry already has it (monolithic POST then PUT).
    pub(crate) fn push_blob(&self, bytes: &[u8]) -> Result<String, SignError> {
        let digest = sha256_digest(bytes);
        let head = format!("{}/blobs/{digest}", self.base);
        let resp = self.send("HEAD", &head, &[], &Body::None)?;
        if resp.status().is_success() {
            return Ok(digest);
        }
        let start = format!("{}/blobs/uploads/", self.base);
        let resp = self.send(
            "POST",
            &start,
            &[],
            &Body::Bytes(&[], "application/octet-stream"),
        )?;
        let status = resp.status().as_u16();
        if status != 202 {
            return Err(status_error(&start, status, resp));
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
            format!("{}{location}", self.origin)
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
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error(&url, status, resp));
        }
        Ok(digest)
    }

    /// Puts an OCI image manifest under a tag.
    pub(crate) fn push_manifest(&self, tag: &str, bytes: &[u8]) -> Result<(), SignError> {
        let url = format!("{}/manifests/{tag}", self.base);
        let resp = self.send("PUT", &url, &[], &Body::Bytes(bytes, OCI_MANIFEST))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error(&url, status, resp));
        }
        Ok(())
    }
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn read_bounded(
    resp: ureq::http::Response<ureq::Body>,
    max: u64,
    url: &str,
) -> Result<Vec<u8>, SignError> {
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| net(url, format!("reading the answer: {e}")))?;
    if out.len() as u64 > max {
        return Err(net(url, format!("answer larger than {max} bytes")));
    }
    Ok(out)
}

fn status_error(url: &str, status: u16, resp: ureq::http::Response<ureq::Body>) -> SignError {
    let detail = read_bounded(resp, 64 << 10, url)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            Some(
                format!(" ({code}: {msg})")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect::<String>(),
            )
        })
        .unwrap_or_default();
    let why = match status {
        401 => format!(
            "401 Unauthorized{detail}: the registry wants credentials (docker login writes them to ~/.docker/config.json)"
        ),
        403 => format!("403 Forbidden{detail}: the credentials do not grant this access"),
        404 => format!("404 Not Found{detail}: no such repository, tag, manifest or blob"),
        s if s >= 500 => format!("{s} server error{detail}"),
        s => format!("unexpected HTTP status {s}{detail}"),
    };
    net(url, why)
}

/// Splits `Bearer realm="...",service="...",scope="a,b"` into the scheme and its parameters.
fn parse_challenge(s: &str) -> (String, Vec<(String, String)>) {
    let s = s.trim();
    let (scheme, rest) = s.split_once(' ').unwrap_or((s, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.push((key, value));
    }
    (scheme.to_string(), params)
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Basic credentials (base64 `user:password`) for `host`: an explicit file, `$REGISTRY_AUTH_FILE`,
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, as docker and podman write them.
fn credentials(host: &str, explicit: Option<&PathBuf>) -> Option<String> {
    let path = explicit
        .cloned()
        .or_else(|| std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from))
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(|d| PathBuf::from(d).join("config.json")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
        })?;
    let f = std::fs::File::open(&path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(4 << 20).read_to_end(&mut bytes).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let wanted: &[&str] = if host == "docker.io" {
        &["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        &[host]
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    for (key, entry) in auths {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        if !wanted.contains(&k) {
            continue;
        }
        if let Some(a) = entry.get("auth").and_then(|a| a.as_str())
            && let Ok(decoded) = b64.decode(a.trim())
            && decoded.contains(&b':')
        {
            return Some(b64.encode(decoded));
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|u| u.as_str()),
            entry.get("password").and_then(|p| p.as_str()),
        ) {
            return Some(b64.encode(format!("{u}:{p}")));
        }
    }
    None
}
