//! "Image must be scanned and passed", answered by moat server: every new container image of a pod is
//! resolved to its manifest digest (a tag through the registry) and admitted only when the server's
//! verdict for that digest is `allow`. A `block` verdict denies with the server's reasons; a digest the
//! server never judged (404) or is still judging (`pending`) denies too. A server or registry that
//! cannot answer is an error, decided by fail-open/fail-closed. Verdicts are cached by digest for a
//! short while; a tag's resolution likewise (a tag can move).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::AdmissionError;
use crate::signatures::SignatureOutcome;

/// Where the verdicts come from.
#[derive(Debug, Clone, Default)]
pub struct VerdictConfig {
    /// moat server's base URL (`https://moat.example:8080`); empty: no verdict check.
    pub server: String,
    /// A bearer token with the `read` scope.
    pub token: String,
    /// Plain HTTP to registries when resolving tags (a loopback test registry only).
    pub insecure_registry: bool,
    /// How long an `allow`/`block` verdict and a tag's digest are trusted.
    pub cache_ttl: Duration,
}

const MAX_CACHE: usize = 10_000;

/// A digest's verdict (Ok: allow; Err: why it is denied) and when it was fetched.
type CachedVerdict = (Result<(), String>, Instant);

/// The loaded client and its caches.
pub struct VerdictCheck {
    cfg: VerdictConfig,
    agent: ureq::Agent,
    by_digest: Mutex<HashMap<String, CachedVerdict>>,
    by_tag: Mutex<HashMap<String, (String, Instant)>>,
}

impl VerdictCheck {
    /// Checks the configuration (an http(s) URL and a token) and builds the client.
    pub fn new(cfg: VerdictConfig) -> Result<VerdictCheck, AdmissionError> {
        let s = cfg.server.trim_end_matches('/').to_string();
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            return Err(AdmissionError::Config(format!(
                "--server {:?} is not an http(s) URL",
                cfg.server
            )));
        }
        if cfg.token.trim().is_empty() || cfg.token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(AdmissionError::Config(
                "the server token is empty or has characters not allowed in a header".into(),
            ));
        }
        let t = Some(Duration::from_secs(5));
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(t)
                .max_redirects(0)
                .build(),
        );
        Ok(VerdictCheck {
            cfg: VerdictConfig {
                server: s,
                token: cfg.token.trim().to_string(),
                ..cfg
            },
            agent,
            by_digest: Mutex::new(HashMap::new()),
            by_tag: Mutex::new(HashMap::new()),
        })
    }

    /// Judges each image (blocking: network). Run on a blocking thread.
    pub fn judge(&self, images: &[String]) -> SignatureOutcome {
        let mut out = SignatureOutcome::default();
        for image in images {
            match self.verdict(image) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => out
                    .denials
                    .push(format!("image-scanned: image {image:?} {why}")),
                Err(e) => out.errors.push(format!(
                    "image-scanned: cannot get the verdict of image {image:?}: {e}"
                )),
            }
        }
        out
    }

    fn verdict(&self, image: &str) -> Result<Result<(), String>, String> {
        let ttl = self.cfg.cache_ttl;
        let digest = match image.split_once('@') {
            Some((_, d)) if d.starts_with("sha256:") => d.to_string(),
            _ => {
                let cached = lock(&self.by_tag)
                    .get(image)
                    .filter(|(_, t)| t.elapsed() < ttl)
                    .map(|(d, _)| d.clone());
                match cached {
                    Some(d) => d,
                    None => {
                        let d = self.resolve(image)?;
                        let mut tags = lock(&self.by_tag);
                        if tags.len() >= MAX_CACHE {
                            tags.clear();
                        }
                        tags.insert(image.to_string(), (d.clone(), Instant::now()));
                        d
                    }
                }
            }
        };
        if let Some((v, at)) = lock(&self.by_digest).get(&digest)
            && at.elapsed() < ttl
        {
            return Ok(v.clone());
        }
        let url = format!("{}/api/v1/verdicts/{digest}", self.cfg.server);
        let resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.cfg.token))
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body: Value = {
            let mut r = resp.into_body();
            let bytes = r
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .unwrap_or_default();
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let result = match status {
            200 => match body.get("decision").and_then(Value::as_str) {
                Some("allow") => Ok(()),
                Some("block") => {
                    let reasons: Vec<&str> = body
                        .get("reasons")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    Err(format!(
                        "({digest}) is blocked by moat server: {}",
                        if reasons.is_empty() {
                            "no reason given".to_string()
                        } else {
                            reasons.join("; ")
                        }
                    ))
                }
                Some("pending") => {
                    // Not cached: the scan may finish any moment.
                    return Ok(Err(format!(
                        "({digest}) is not judged yet by moat server (pending)"
                    )));
                }
                other => return Err(format!("GET {url}: unexpected decision {other:?}")),
            },
            404 => return Ok(Err(format!("({digest}) was never scanned by moat server"))),
            401 | 403 => return Err(format!("GET {url}: HTTP {status}: the token was refused")),
            s => return Err(format!("GET {url}: HTTP {s}")),
        };
        let mut d = lock(&self.by_digest);
        if d.len() >= MAX_CACHE {
            d.clear();
        }
        d.insert(digest, (result.clone(), Instant::now()));
        Ok(result)
    }

    /// A tag's manifest digest, from the registry (the digest of the manifest bytes it serves).
    fn resolve(&self, image: &str) -> Result<String, String> {
        let opts = moat_sign::RegistryOptions {
            insecure: self.cfg.insecure_registry,
            timeout: Duration::from_secs(5),
            auth_file: None,
        };
        moat_sign::resolve_digest(image, &opts).map_err(|e| e.to_string())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// A loopback HTTP responder speaking the verdict endpoint of the API contract; it records the
    /// paths and Authorization headers it saw.
    fn responder(answers: usize) -> (String, std::thread::JoinHandle<Vec<(String, String)>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..answers {
                let (s, _) = l.accept().expect("accept");
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut first = String::new();
                r.read_line(&mut first).expect("request line");
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                let mut auth = String::new();
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).expect("header");
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if line.to_ascii_lowercase().starts_with("authorization:") {
                        auth = line.trim_end().to_string();
                    }
                }
                let (status, body) = if path.ends_with(&"a".repeat(64)) {
                    (
                        "200 OK",
                        r#"{"digest":"x","decision":"allow","reasons":[]}"#,
                    )
                } else if path.ends_with(&"b".repeat(64)) {
                    (
                        "200 OK",
                        r#"{"digest":"x","decision":"block","reasons":["vulnerability: GHSA-1 (HIGH)"]}"#,
                    )
                } else if path.ends_with(&"c".repeat(64)) {
                    (
                        "200 OK",
                        r#"{"digest":"x","decision":"pending","reasons":[]}"#,
                    )
                } else {
                    ("404 Not Found", r#"{"error":"never seen"}"#)
                };
                let mut s = s;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.push((path, auth));
            }
            seen
        });
        (format!("http://{addr}"), h)
    }

    #[test]
    fn verdicts_by_digest_decide_and_allow_is_cached() {
        let (url, h) = responder(4);
        let check = VerdictCheck::new(VerdictConfig {
            server: url,
            token: "t0ken".into(),
            insecure_registry: true,
            cache_ttl: Duration::from_secs(30),
        })
        .expect("config");
        let img = |c: char| format!("127.0.0.1:1/app@sha256:{}", c.to_string().repeat(64));
        let o = check.judge(&[img('a'), img('b'), img('c'), img('d')]);
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        assert_eq!(o.denials.len(), 3, "{:?}", o.denials);
        assert!(o.denials[0].contains("blocked by moat server: vulnerability: GHSA-1 (HIGH)"));
        assert!(o.denials[1].contains("pending"));
        assert!(o.denials[2].contains("never scanned"));
        // The allow verdict is cached: no fifth request (the responder answers four only).
        assert!(check.judge(&[img('a')]).denials.is_empty());
        let seen = h.join().expect("responder");
        assert!(
            seen.iter()
                .all(|(p, a)| p.starts_with("/api/v1/verdicts/sha256:")
                    && a.eq_ignore_ascii_case("authorization: Bearer t0ken"))
        );
    }

    #[test]
    fn an_unreachable_server_is_an_error_for_the_failure_policy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let check = VerdictCheck::new(VerdictConfig {
            server: format!("http://127.0.0.1:{port}"),
            token: "t".into(),
            insecure_registry: true,
            cache_ttl: Duration::from_secs(30),
        })
        .expect("config");
        let o = check.judge(&[format!("r.example/a@sha256:{}", "a".repeat(64))]);
        assert!(o.denials.is_empty());
        assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
        assert!(
            VerdictCheck::new(VerdictConfig {
                server: "moat.example".into(),
                token: "t".into(),
                ..VerdictConfig::default()
            })
            .is_err()
        );
    }
}
