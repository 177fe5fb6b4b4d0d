//! Shared test helpers: certificates from moat's own generator, a raw HTTPS/1.1 client over
//! tokio-rustls that trusts only the test CA, and the shared data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moat_admission::certs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    base.join("data").is_dir().then_some(base)
}

/// Writes a fresh CA and serving certificate for 127.0.0.1/localhost into `dir`.
pub fn make_certs(dir: &Path) -> certs::CertBundle {
    let b = certs::generate(&["localhost".to_string(), "127.0.0.1".to_string()], 1).expect("certs");
    certs::write(&b, dir).expect("write certs");
    b
}

pub fn connector(ca_pem: &str) -> TlsConnector {
    moat_admission::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("ca pem")).expect("add ca");
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

pub async fn connect(addr: SocketAddr, ca_pem: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = ServerName::try_from("localhost").expect("name");
    connector(ca_pem)
        .connect(name, tcp)
        .await
        .expect("tls handshake")
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Resp { status, body }
}

/// Reads until the server closes, bounded so a hung server fails the test instead of hanging it.
pub async fn read_all(s: &mut TlsStream<TcpStream>) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    buf
}

pub async fn request(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Resp {
    let mut s = connect(addr, ca_pem).await;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    s.flush().await.expect("flush");
    parse_response(&read_all(&mut s).await)
}

pub async fn post(addr: SocketAddr, ca_pem: &str, body: &[u8]) -> Resp {
    request(addr, ca_pem, "POST", "/validate", body).await
}
