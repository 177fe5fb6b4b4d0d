//! Registry protocol edge cases against a tiny HTTP server on 127.0.0.1 written here: bearer-token
//! and basic auth, refusals (401/403/404/500), a server that hangs (the timeout must fire), and a
//! server that serves the wrong bytes.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{E, Layer, layer};
use moat_image::{Image, OpenOptions, Select, Target};

struct Request {
    path: String,
    headers: HashMap<String, String>,
}

enum Reply {
    Send {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Send headers promising `len` bytes, then part of the body, then stall.
    Stall { len: usize, sent: Vec<u8> },
}

fn ok(body: Vec<u8>, ct: &str) -> Reply {
    Reply::Send {
        status: 200,
        headers: vec![("Content-Type".into(), ct.into())],
        body,
    }
}

fn status(code: u16, headers: Vec<(String, String)>) -> Reply {
    let body = br#"{"errors":[{"code":"DENIED","message":"told to refuse"}]}"#.to_vec();
    Reply::Send {
        status: code,
        headers,
        body,
    }
}

type Handler = dyn Fn(&Request, &str) -> Reply + Send + Sync;

/// Serves `handler` on a fresh loopback port; returns `127.0.0.1:PORT`.
fn serve(handler: Arc<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let a = addr.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handler.clone();
            let a = a.clone();
            std::thread::spawn(move || handle(stream, &*h, &a));
        }
    });
    addr
}

fn handle(mut stream: TcpStream, handler: &Handler, addr: &str) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let req = Request { path, headers };
    match handler(&req, addr) {
        Reply::Send {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(30)),
        Reply::Stall { len, sent } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&sent);
            let _ = stream.flush();
            std::thread::sleep(Duration::from_secs(30));
        }
    }
    let mut rest = Vec::new();
    let _ = reader.take(0).read_to_end(&mut rest);
}

/// A small image held in memory: manifest, config and one layer, by digest.
struct Fake {
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
    layer_digest: String,
}

fn fake_image() -> Fake {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Layer::gz(layer(&[E::File("var/lib/dpkg/status", b"Package: fake\n")]));
    let layer_digest = common::sha256(&l.stored);
    let (md, _) = common::put_image(dir.path(), &[l], "amd64", true);
    let mut blobs = HashMap::new();
    for e in std::fs::read_dir(dir.path().join("blobs/sha256"))
        .expect("blobs")
        .flatten()
    {
        let name = format!("sha256:{}", e.file_name().to_string_lossy());
        blobs.insert(name, std::fs::read(e.path()).expect("blob"));
    }
    let manifest = blobs.remove(&md).expect("manifest");
    Fake {
        manifest,
        blobs,
        layer_digest,
    }
}

/// Answers the distribution API for repository `app` from `fake`.
fn api(fake: &Fake, req: &Request) -> Reply {
    if req.path.starts_with("/v2/app/manifests/") {
        return ok(
            fake.manifest.clone(),
            "application/vnd.oci.image.manifest.v1+json",
        );
    }
    if let Some(d) = req.path.strip_prefix("/v2/app/blobs/")
        && let Some(b) = fake.blobs.get(d)
    {
        return ok(b.clone(), "application/octet-stream");
    }
    status(404, vec![])
}

fn insecure(timeout: Duration) -> OpenOptions {
    OpenOptions {
        insecure_registry: true,
        timeout,
        ..OpenOptions::default()
    }
}

fn pull(addr: &str, options: &OpenOptions) -> Result<Vec<u8>, String> {
    let target = Target::parse(&format!("registry:{addr}/app:1")).expect("target");
    let image = Image::open(&target, options).map_err(|e| e.to_string())?;
    let view = image
        .collect(&|_| Select::Content)
        .map_err(|e| e.to_string())?;
    Ok(view
        .get("var/lib/dpkg/status")
        .and_then(|e| e.content.clone())
        .unwrap_or_default())
}

#[test]
fn bearer_token_challenge_is_answered() {
    let fake = Arc::new(fake_image());
    let scopes = Arc::new(Mutex::new(Vec::<String>::new()));
    let (f, s) = (fake.clone(), scopes.clone());
    let addr = serve(Arc::new(move |req: &Request, addr: &str| {
        if req.path.starts_with("/token?") {
            s.lock().expect("lock").push(req.path.clone());
            return ok(
                br#"{"token":"good-token","expires_in":300}"#.to_vec(),
                "application/json",
            );
        }
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer good-token") {
            let c = format!(
                r#"Bearer realm="http://{addr}/token",service="fake",scope="repository:app:pull""#
            );
            return status(401, vec![("WWW-Authenticate".into(), c)]);
        }
        api(&f, req)
    }));
    let got = pull(&addr, &insecure(Duration::from_secs(10))).expect("pull with a token");
    assert_eq!(got, b"Package: fake\n");
    let scopes = scopes.lock().expect("lock");
    assert!(
        !scopes.is_empty()
            && scopes[0].contains("scope=repository%3Aapp%3Apull")
            && scopes[0].contains("service=fake"),
        "{scopes:?}"
    );
}

#[test]
fn basic_auth_comes_from_the_docker_config() {
    let fake = Arc::new(fake_image());
    let f = fake.clone();
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("moat:s3cret")
    );
    let addr = serve(Arc::new(move |req: &Request, _: &str| {
        if req.headers.get("authorization") != Some(&want) {
            return status(
                401,
                vec![("WWW-Authenticate".into(), r#"Basic realm="fake""#.into())],
            );
        }
        api(&f, req)
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = dir.path().join("config.json");
    let cfg = serde_json::json!({"auths": {format!("http://{addr}"): {"auth": base64::engine::general_purpose::STANDARD.encode("moat:s3cret")}}});
    std::fs::write(&auth, serde_json::to_vec(&cfg).expect("json")).expect("write");
    let with = OpenOptions {
        auth_file: Some(auth),
        ..insecure(Duration::from_secs(10))
    };
    assert_eq!(
        pull(&addr, &with).expect("pull with basic auth"),
        b"Package: fake\n"
    );
    // Without credentials: a 401 naming the URL.
    let none = OpenOptions {
        auth_file: Some(dir.path().join("absent.json")),
        ..insecure(Duration::from_secs(10))
    };
    let err = pull(&addr, &none).expect_err("no credentials");
    assert!(
        err.contains("401") && err.contains(&format!("http://{addr}/v2/app/manifests/1")),
        "{err}"
    );
}

#[test]
fn refusals_name_the_url_and_status() {
    for (code, words) in [
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (500, "server error"),
        (503, "server error"),
    ] {
        let addr = serve(Arc::new(move |_: &Request, _: &str| status(code, vec![])));
        let err = pull(&addr, &insecure(Duration::from_secs(10))).expect_err("refused");
        assert!(
            err.contains(&code.to_string())
                && err.contains(words)
                && err.contains(&format!("http://{addr}/v2/app/manifests/1"))
                && err.contains("told to refuse"),
            "{code}: {err}"
        );
    }
    // Refused only for the layer blob: the error names the blob URL.
    let fake = Arc::new(fake_image());
    let f = fake.clone();
    let addr = serve(Arc::new(move |req: &Request, _: &str| {
        if req.path.contains(&f.layer_digest) {
            status(500, vec![])
        } else {
            api(&f, req)
        }
    }));
    let err = pull(&addr, &insecure(Duration::from_secs(10))).expect_err("blob refused");
    assert!(
        err.contains(&format!("/v2/app/blobs/{}", fake.layer_digest)) && err.contains("500"),
        "{err}"
    );
}

#[test]
fn a_hanging_registry_times_out() {
    let addr = serve(Arc::new(|_: &Request, _: &str| Reply::Hang));
    let err = pull(&addr, &insecure(Duration::from_millis(800))).expect_err("hang");
    assert!(err.contains("timed out") && err.contains(&addr), "{err}");
    // Stalling in the middle of a layer body.
    let fake = Arc::new(fake_image());
    let f = fake.clone();
    let addr = serve(Arc::new(move |req: &Request, _: &str| {
        if req.path.contains(&f.layer_digest) {
            let b = &f.blobs[&f.layer_digest];
            Reply::Stall {
                len: b.len(),
                sent: b[..b.len() / 2].to_vec(),
            }
        } else {
            api(&f, req)
        }
    }));
    let err = pull(&addr, &insecure(Duration::from_millis(800))).expect_err("stall");
    assert!(
        err.contains(&fake.layer_digest) && err.to_lowercase().contains("timed out"),
        "{err}"
    );
}

#[test]
fn wrong_bytes_from_a_registry_are_caught() {
    let fake = Arc::new(fake_image());
    let f = fake.clone();
    let addr = serve(Arc::new(move |req: &Request, _: &str| {
        if req.path.contains(&f.layer_digest) {
            ok(
                common::gzip(&layer(&[E::File(
                    "var/lib/dpkg/status",
                    b"Package: evil\n",
                )])),
                "application/octet-stream",
            )
        } else {
            api(&f, req)
        }
    }));
    let err = pull(&addr, &insecure(Duration::from_secs(10))).expect_err("swapped blob");
    assert!(
        err.contains(&fake.layer_digest)
            && (err.contains("does not match its digest")
                || err.contains("bytes but the manifest says")),
        "{err}"
    );
    // A manifest asked for by digest that comes back different.
    let f = fake.clone();
    let addr = serve(Arc::new(move |req: &Request, _: &str| api(&f, req)));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let target = Target::parse(&format!("registry:{addr}/app@{wrong}")).expect("target");
    let err = Image::open(&target, &insecure(Duration::from_secs(10)))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&wrong) && err.contains("does not match its digest"),
        "{err}"
    );
}

#[test]
fn a_registry_index_is_resolved_to_the_platform() {
    let fake = Arc::new(fake_image());
    let md = common::sha256(&fake.manifest);
    // A Docker manifest list without `mediaType` in the body: the Content-Type header tells.
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"digest": format!("sha256:{}", "1".repeat(64)), "size": 10, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": md, "size": fake.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }))
    .expect("list");
    let f = fake.clone();
    let addr = serve(Arc::new(move |req: &Request, _: &str| {
        if req.path == "/v2/app/manifests/1" {
            return ok(
                list.clone(),
                "application/vnd.docker.distribution.manifest.list.v2+json",
            );
        }
        api(&f, req)
    }));
    assert_eq!(
        pull(&addr, &insecure(Duration::from_secs(10))).expect("amd64"),
        b"Package: fake\n"
    );
    let target = Target::parse(&format!("registry:{addr}/app:1")).expect("target");
    let image = Image::open(&target, &insecure(Duration::from_secs(10))).expect("open");
    assert_eq!(image.info().manifest_digest.as_deref(), Some(md.as_str()));
    let riscv = OpenOptions {
        platform: "linux/riscv64".into(),
        ..insecure(Duration::from_secs(10))
    };
    let err = Image::open(&target, &riscv)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("linux/riscv64")
            && err.contains("linux/arm/v7")
            && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn oversized_or_garbage_manifests_are_refused() {
    let addr = serve(Arc::new(|_: &Request, _: &str| {
        ok(
            vec![b' '; 9 << 20],
            "application/vnd.oci.image.manifest.v1+json",
        )
    }));
    let err = pull(&addr, &insecure(Duration::from_secs(10))).expect_err("huge");
    assert!(
        err.contains("limit exceeded") && err.contains("/v2/app/manifests/1"),
        "{err}"
    );
    let addr = serve(Arc::new(|_: &Request, _: &str| {
        ok(b"<html>proxy error</html>".to_vec(), "text/html")
    }));
    let err = pull(&addr, &insecure(Duration::from_secs(10))).expect_err("garbage");
    assert!(
        err.contains("invalid JSON") && err.contains("manifest sha256:"),
        "{err}"
    );
}
