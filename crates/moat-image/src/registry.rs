//! `registry:HOST/REPO[:TAG|@DIGEST]` over the OCI distribution API with a small blocking client:
//! anonymous, bearer-token (WWW-Authenticate challenge) and basic auth from the Docker config file.
//! Manifests are read whole (bounded); blobs are streamed.
//!
//! [`Client`] is moat's one registry client: reference names, credentials, token challenges,
//! timeouts and error messages live here; other crates (signing) build their uploads on it.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use crate::ImageError;
use crate::digest::{Digest, read_bounded, verify};
use crate::layout::{DOCKER_LIST, DOCKER_MANIFEST, MAX_DOCUMENT, OCI_INDEX, OCI_MANIFEST};

/// A registry answer, any status.
pub type Response = ureq::http::Response<ureq::Body>;

/// Whether `t` is a valid tag (`[A-Za-z0-9_.-]{1,128}`).
pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Splits a `[HOST/]REPO` name into registry host and repository with Docker Hub's defaults
/// (`docker.io`, `library/`; `index.docker.io` and `registry-1.docker.io` are `docker.io`) and checks
/// both; the error says what is wrong.
pub fn split_name(name: &str) -> Result<(String, String), &'static str> {
    let (host, repo) = match name.split_once('/') {
        Some((h, r)) if h.contains('.') || h.contains(':') || h == "localhost" => {
            (h.to_string(), r.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let host = if host == "index.docker.io" || host == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        host
    };
    let repo = if host == "docker.io" && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo
    };
    if repo.is_empty()
        || !repo
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        || repo
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("invalid repository name");
    }
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return Err("invalid registry host");
    }
    Ok((host, repo))
}

/// The host the distribution API of `host` is served from.
pub fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Registry host as written (`docker.io`, `127.0.0.1:5000`).
    pub(crate) host: String,
    pub(crate) repo: String,
    /// A tag or a `sha256:` digest.
    pub(crate) reference: String,
}

impl Reference {
    pub(crate) fn parse(s: &str) -> Result<Reference, ImageError> {
        let bad = |why: &str| {
            ImageError::Target(format!(
                "registry:{s}: {why} (expected HOST/REPO[:TAG|@DIGEST])"
            ))
        };
        let (name, reference) = match s.split_once('@') {
            Some((n, d)) => {
                Digest::parse(d, &format!("registry:{s}"))?;
                (n, d.to_string())
            }
            None => {
                let slash = s.rfind('/').unwrap_or(0);
                match s.rfind(':') {
                    Some(i) if i > slash => (&s[..i], s[i + 1..].to_string()),
                    _ => (s, "latest".to_string()),
                }
            }
        };
        if !s.contains('@') && !valid_tag(&reference) {
            return Err(bad("invalid tag"));
        }
        // `registry:127.0.0.1:5931` is a host and port, not Docker Hub's `library/127.0.0.1:5931`.
        if !name.contains('/')
            && (name == "localhost"
                || name.parse::<std::net::IpAddr>().is_ok()
                || (name.contains('.') && reference.bytes().all(|b| b.is_ascii_digit())))
        {
            return Err(bad("names a registry host but no repository"));
        }
        let (host, repo) = split_name(name).map_err(bad)?;
        Ok(Reference {
            host,
            repo,
            reference,
        })
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP (for a loopback test registry); HTTPS otherwise.
    pub insecure: bool,
    /// Per-phase network timeout.
    pub timeout: Duration,
    /// An explicit credentials file (Docker `config.json` format).
    pub auth_file: Option<PathBuf>,
}

/// A request body with its content type.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8], &'a str),
}

/// A connection to one repository of one registry: answers auth challenges, maps transport
/// failures and refusals to errors naming the URL.
pub struct Client {
    agent: ureq::Agent,
    origin: String,
    base: String,
    repo: String,
    insecure: bool,
    /// `user:password`, base64, from the credentials file.
    basic: Option<String>,
    /// The `Authorization` header value once a challenge has been answered.
    auth: Mutex<Option<String>>,
    timeout: Duration,
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

fn invalid(what: &str, why: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        what: what.to_string(),
        why: why.into(),
    }
}

impl Client {
    /// A client for `repo` on `host` (as parsed by [`split_name`]).
    pub fn new(host: &str, repo: &str, options: &ClientOptions) -> Client {
        let t = Some(options.timeout);
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!options.insecure)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .timeout_per_write(t)
            .max_redirects(5)
            .user_agent(format!("moat/{}", moat_model::MOAT_VERSION));
        if is_loopback(host) {
            cfg = cfg.proxy(None);
        }
        let scheme = if options.insecure { "http" } else { "https" };
        let origin = format!("{scheme}://{}", api_host(host));
        Client {
            agent: ureq::Agent::new_with_config(cfg.build()),
            base: format!("{origin}/v2/{repo}"),
            origin,
            repo: repo.to_string(),
            insecure: options.insecure,
            basic: credentials(host, options.auth_file.as_ref()),
            auth: Mutex::new(None),
            timeout: options.timeout,
        }
    }

    /// `scheme://host` of the registry API.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `scheme://host/v2/REPO`: manifests and blobs are under it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with the current credentials, answering one 401 challenge and retrying.
    /// Returns the answer whatever its status (see [`status_error`]).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<Response, ImageError> {
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
                    let req = b.body(()).map_err(|e| invalid(url, e.to_string()))?;
                    self.agent.run(req)
                }
                Body::Bytes(bytes, ct) => {
                    let req = b
                        .header("Content-Type", *ct)
                        .body(bytes.to_vec())
                        .map_err(|e| invalid(url, e.to_string()))?;
                    self.agent.run(req)
                }
            }
            .map_err(|e| self.transport_error(url, e))?;
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
        Err(invalid(
            url,
            "401 Unauthorized after authenticating: the credentials were refused",
        ))
    }

    /// GET that fails on any status but 2xx.
    pub fn get(&self, url: &str, accept: Option<&str>) -> Result<Response, ImageError> {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let resp = self.send("GET", url, &headers, &Body::None)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        Err(status_error("GET", url, status, resp))
    }

    fn transport_error(&self, url: &str, e: ureq::Error) -> ImageError {
        let why = match e {
            ureq::Error::Timeout(phase) => {
                format!("timed out ({phase}) after {} s", self.timeout.as_secs_f32())
            }
            ureq::Error::RequireHttpsOnly(_) => {
                "plain HTTP refused: use --insecure-registry for a loopback test registry".into()
            }
            other => {
                let msg = other.to_string();
                let tls = ["tls", "corrupt message", "certificate", "handshake"]
                    .iter()
                    .any(|k| msg.to_ascii_lowercase().contains(k));
                if tls && !self.insecure {
                    format!(
                        "request failed: {msg} (TLS failed; for a plain-HTTP loopback registry use --insecure-registry)"
                    )
                } else {
                    format!("request failed: {msg}")
                }
            }
        };
        invalid(url, why)
    }

    /// Answers a `WWW-Authenticate` challenge; false when there is nothing to answer with.
    fn answer(&self, challenge: &str, url: &str) -> Result<bool, ImageError> {
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
            return Err(invalid(url, "bearer challenge without a realm"));
        };
        if !(realm.starts_with("https://") || self.insecure && realm.starts_with("http://")) {
            return Err(invalid(
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
        let resp = req
            .call()
            .map_err(|e| self.transport_error(&token_url, e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error("GET", &token_url, status, resp));
        }
        let body = read_bounded(resp.into_body().into_reader(), 1 << 20, &token_url)?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| invalid(&token_url, format!("token answer is not JSON: {e}")))?;
        let Some(token) = t.token.or(t.access_token).filter(|t| !t.is_empty()) else {
            return Err(invalid(&token_url, "token answer has no token"));
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                &token_url,
                "token has characters not allowed in a header",
            ));
        }
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("Bearer {token}"));
        Ok(true)
    }
}

/// Reads an answer's body whole, failing beyond `max` bytes.
pub fn read_body(resp: Response, max: u64, url: &str) -> Result<Vec<u8>, ImageError> {
    read_bounded(resp.into_body().into_reader(), max, url)
}

/// A connection to the repository of one image reference (pull only).
pub(crate) struct Registry {
    client: Client,
}

impl Registry {
    pub(crate) fn new(reference: Reference, options: &crate::OpenOptions) -> Registry {
        let o = ClientOptions {
            // Plain HTTP only to a host the user named: never to the Docker Hub default.
            insecure: options.insecure_registry && reference.host != "docker.io",
            timeout: options.timeout,
            auth_file: options.auth_file.clone(),
        };
        Registry {
            client: Client::new(&reference.host, &reference.repo, &o),
        }
    }

    pub(crate) fn blob_url(&self, d: &Digest) -> String {
        format!("{}/blobs/{d}", self.client.base())
    }

    fn manifest_url(&self, reference: &str) -> String {
        format!("{}/manifests/{reference}", self.client.base())
    }

    /// Fetches a manifest or index by tag or digest; verifies it when asked by digest.
    pub(crate) fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), ImageError> {
        let url = self.manifest_url(reference);
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let resp = self.client.get(&url, Some(&accept))?;
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let bytes = read_body(resp, MAX_DOCUMENT, &url)?;
        if reference.starts_with("sha256:") {
            verify(&bytes, &Digest::parse(reference, &url)?, &url)?;
        }
        Ok((bytes, ct))
    }

    /// Streams a blob; the caller verifies its digest as it reads.
    pub(crate) fn open_blob(&self, d: &Digest) -> Result<(Box<dyn Read>, Option<u64>), ImageError> {
        let url = self.blob_url(d);
        let resp = self.client.get(&url, None)?;
        let len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok((Box::new(resp.into_body().into_reader()), len))
    }
}

/// The error for a refusal: the status explained, with the registry's own `errors[0]` when given.
pub fn status_error(method: &str, url: &str, status: u16, resp: Response) -> ImageError {
    // The distribution API explains refusals in `{"errors":[{"code","message"}]}`.
    let detail = read_bounded(resp.into_body().into_reader().take(64 << 10), 64 << 10, url)
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
        403 => {
            let access = if method == "GET" || method == "HEAD" {
                "pull"
            } else {
                "push"
            };
            format!("403 Forbidden{detail}: the credentials do not grant {access} access")
        }
        404 => format!("404 Not Found{detail}: no such repository, tag, manifest or blob"),
        429 => format!("429 Too Many Requests{detail}: rate-limited by the registry"),
        s if s >= 500 => format!("{s} server error{detail}: the registry failed; try again later"),
        s => format!("unexpected HTTP status {s}{detail}"),
    };
    invalid(url, why)
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

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
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

/// The credentials file: an explicit one, `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, or
/// `~/.docker/config.json`.
fn credentials_file(explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Some(p.into());
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Basic credentials (base64 `user:password`) for `host` from the `auths` map, if any.
fn credentials(host: &str, explicit: Option<&PathBuf>) -> Option<String> {
    let path = credentials_file(explicit)?;
    let f = crate::digest::open_regular(&path).ok()?;
    let bytes = read_bounded(f, 4 << 20, &path.display().to_string()).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let wanted: &[&str] = if host == "docker.io" {
        &["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        &[host]
    };
    for (key, entry) in auths {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        if !wanted.contains(&k) {
            continue;
        }
        if let Some(a) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .ok()?;
            if decoded.contains(&b':') {
                return Some(base64::engine::general_purpose::STANDARD.encode(decoded));
            }
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|u| u.as_str()),
            entry.get("password").and_then(|p| p.as_str()),
        ) {
            return Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("127.0.0.1:5000/debian:12").expect("parse");
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "debian", "12")
        );
        let r = Reference::parse("127.0.0.1:5000/a/b").expect("parse");
        assert_eq!(r.reference, "latest");
        let r = Reference::parse("debian").expect("parse");
        assert_eq!(
            (r.host.as_str(), r.repo.as_str()),
            ("docker.io", "library/debian")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("ghcr.io/x/y@{d}")).expect("parse");
        assert_eq!(r.reference, d);
        assert!(Reference::parse("host:5000/../x:1").is_err());
        assert!(Reference::parse("host:5000/x@sha256:zz").is_err());
        // Issue 14: a host without a repository was read as docker.io/library/127.0.0.1:5931.
        for host_only in ["127.0.0.1:5931", "localhost:5000", "registry.example:5000"] {
            let e = Reference::parse(host_only)
                .expect_err(host_only)
                .to_string();
            assert!(e.contains("no repository"), "{host_only}: {e}");
        }
        assert!(Reference::parse("debian:12").is_ok());
    }

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p[0],
            (
                "realm".to_string(),
                "https://auth.example/token".to_string()
            )
        );
        assert_eq!(p[2].1, "repository:a/b:pull,push");
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
