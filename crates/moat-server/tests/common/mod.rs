//! Shared by tests/alert_delivery.rs and tests/ingest_events.rs: the real `moat server` binary on
//! loopback, a minimal HTTP client, and a loopback webhook receiver whose answers a test scripts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "bootstrap-secret-0123456789";

/// The moat binary of this build (beside this test binary's `deps/`). `cargo test -p moat-server`
/// does not build it, so it is built once per test binary when missing or older than this test
/// binary (a stale binary would test yesterday's server).
pub fn moat() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join("moat");
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let stale = match (mtime(&bin), mtime(&exe)) {
            (Some(b), Some(t)) => b < t,
            _ => true,
        };
        if !stale {
            return;
        }
        let target_dir = profile_dir.parent().expect("target dir");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut args = vec!["build", "-q", "-p", "moat"];
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            args.push("--release");
        }
        let st = Command::new(env!("CARGO"))
            .args(&args)
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(&root)
            .status()
            .expect("cargo build moat");
        assert!(st.success(), "cargo build -p moat failed");
    });
    bin
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// SIGKILL: no graceful shutdown, nothing flushed by the server.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `moat server` on a free loopback port with the bootstrap token [`ADMIN`].
pub fn start(store: &str, dir: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let log = dir.join(format!("server-{port}.log"));
    let child = Command::new(moat())
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            store,
        ])
        .args(extra)
        .env("MOAT_SERVER_TOKEN", ADMIN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("moat server");
    let mut s = Server { child, port, log };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _, _)) = http(port, "GET", "/healthz", None, b"") {
            return s;
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!("moat server exited with {status}: {}", s.log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moat server did not start on {port}: {}", s.log_text());
}

/// A minimal HTTP/1.1 client: (status, headers, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    // A server refusing a too-large body answers and closes before reading it all: keep the answer.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_string(), body.to_string()))
}

/// POST with the admin token; panics on I/O errors.
pub fn post(port: u16, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (st, _, b) = http(port, "POST", path, Some(ADMIN), body).expect("POST");
    let v = serde_json::from_str(&b).unwrap_or(serde_json::Value::String(b));
    (st, v)
}

pub fn get(port: u16, path: &str) -> (u16, String) {
    let (st, _, b) = http(port, "GET", path, Some(ADMIN), b"").expect("GET");
    (st, b)
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub idempotency_key: String,
    pub body: Vec<u8>,
    pub status: u16,
}

/// A loopback webhook receiver. `answer(n, key)` picks the status of the n-th request (0-based).
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    pub count: Arc<AtomicUsize>,
}

impl Receiver {
    pub fn start(answer: impl Fn(usize, &str) -> u16 + Send + Sync + 'static) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (g, s, c) = (got.clone(), stop.clone(), count.clone());
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let (sock, _) = match l.accept() {
                    Ok(x) => x,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (g, answer) = (g.clone(), answer.clone());
                std::thread::spawn(move || {
                    let Ok(clone) = sock.try_clone() else { return };
                    let mut r = BufReader::new(clone);
                    let mut len = 0usize;
                    let mut key = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if lower.starts_with("idempotency-key:") {
                            key = line["idempotency-key:".len()..].trim().to_string();
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let status = answer(n, &key);
                    let mut sock = sock;
                    let _ = write!(
                        sock,
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    g.lock().expect("lock").push(Received {
                        idempotency_key: key,
                        body,
                        status,
                    });
                });
            }
        });
        Receiver {
            port,
            got,
            stop,
            count,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Requests answered 2xx, per idempotency key.
    pub fn accepted_per_key(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for r in self.received() {
            if (200..300).contains(&r.status) {
                *m.entry(r.idempotency_key).or_insert(0) += 1;
            }
        }
        m
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits up to `limit` for `cond`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A Falco alert as Falco's `http_output` / Falcosidekick posts it (the shape of
/// docs/security-center-research.md §5.4), made distinct by `n`.
pub fn falco_alert(n: usize, rule: &str, ns: &str) -> serde_json::Value {
    serde_json::json!({
        "uuid": format!("0c5f1a9e-6a6e-4d8e-9d59-{n:012}"),
        "output": format!("12:00:01.000000000: Warning Shell spawned in a container (user=root container=payments-{n} shell=sh)"),
        "priority": "Warning",
        "rule": rule,
        "time": format!("2026-08-22T12:{:02}:{:02}.000000000Z", (n / 60) % 60, n % 60),
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "hostname": "node-3",
        "output_fields": {
            "container.id": format!("{n:012x}"),
            "container.image.repository": "harbor.example/team-a/payments",
            "k8s.ns.name": ns,
            "k8s.pod.name": format!("payments-7d9c6f7b9-{n}"),
            "proc.cmdline": "sh",
            "user.name": "root"
        }
    })
}

/// Writes a server config with one webhook target at `receiver_port` and one `runtime.alert` rule,
/// retries from `initial_ms`, and returns the config path.
pub fn alert_config(dir: &Path, receiver_port: u16, initial_ms: u64, extra: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yaml"),
        format!(
            "targets:\n  - name: receiver\n    type: webhook\n    url: http://127.0.0.1:{receiver_port}/hook\n    timeout_seconds: 2\n\
             rules:\n  - id: shell-in-prod\n    description: a shell in a production container\n    event: runtime.alert\n    when: {{rule: \"Terminal shell*\", namespace: \"prod*\"}}\n    targets: [receiver]\n"
        ),
    )
    .expect("rules");
    let cfg = dir.join("server.yaml");
    std::fs::write(
        &cfg,
        format!(
            "alerts:\n  rules: [rules.yaml]\n  retry: {{initial_ms: {initial_ms}, max_ms: {}, max_attempts: 50}}\n  poll_ms: 50\n{extra}",
            initial_ms * 4
        ),
    )
    .expect("config");
    cfg
}
