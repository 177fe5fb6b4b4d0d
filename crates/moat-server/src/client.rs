//! The client side of moat server's ingest API, for `moat scan … --server URL --token-file F`: one
//! blocking POST of a moat JSON report. Fails closed: anything but a stored (201) or already stored
//! (200) answer is an error that says what the server answered (never the token).

use std::time::Duration;

use serde::Deserialize;

/// What the server answered to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Uploaded {
    /// The stored report's id.
    pub id: String,
    /// The content digest of the report.
    pub digest: String,
    /// The server already had this exact report.
    pub duplicate: bool,
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    #[error("--server {0:?} is not an http(s) URL")]
    Url(String),
    #[error("the token file {0} is empty")]
    EmptyToken(String),
    #[error("cannot reach moat server at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("moat server at {url} refused the report: HTTP {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
}

/// Reads a token file: its first line, trimmed.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let t = text.lines().next().unwrap_or("").trim().to_string();
    if t.is_empty() {
        return Err(UploadError::EmptyToken(path.display().to_string()).to_string());
    }
    Ok(t)
}

fn is_loopback(url: &str) -> bool {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .is_some_and(|h| {
            h.starts_with("127.") || h.starts_with("localhost") || h.starts_with("[::1]")
        })
}

/// POSTs a moat JSON report to `{server}/api/v1/reports`.
pub fn upload_report(
    server: &str,
    token: &str,
    report_json: &[u8],
    timeout: Duration,
) -> Result<Uploaded, UploadError> {
    let base = server.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
        return Err(UploadError::Url(server.to_string()));
    }
    let url = format!("{base}/api/v1/reports");
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .user_agent(format!("moat/{}", moat_model::MOAT_VERSION));
    if is_loopback(&url) {
        cfg = cfg.proxy(None);
    }
    let agent = ureq::Agent::new_with_config(cfg.build());
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {token}"))
        .send(report_json)
        .map_err(|e| UploadError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status == 200 || status == 201 {
        return serde_json::from_str(&body).map_err(|e| UploadError::Refused {
            url: url.clone(),
            status,
            message: format!(
                "unexpected answer ({e}): {}",
                body.chars().take(200).collect::<String>()
            ),
        });
    }
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    Err(UploadError::Refused {
        url,
        status,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_unreachable_servers_are_errors() {
        assert_eq!(
            upload_report("ftp://x.example", "t", b"{}", Duration::from_secs(1)),
            Err(UploadError::Url("ftp://x.example".into()))
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = upload_report(
            &format!("http://127.0.0.1:{port}"),
            "t",
            b"{}",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(
            matches!(e, UploadError::Unreachable { .. }),
            "a closed port: {e}"
        );
    }
}
