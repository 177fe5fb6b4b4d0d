//! The durable alert spool for `moat runtime watch --output-server`: alerts spooled while the server
//! is down are sent after it comes back; a process killed with SIGKILL in the middle of spooling loses
//! no alert it had spooled (its segments are replayed on the next start, a torn last line dropped);
//! the bound refuses and counts; a segment the server rejects is kept aside; every POST carries the
//! bearer token and NDJSON of moat alerts. The receiver is a real HTTP server on loopback speaking the
//! ingest contract (202 {"accepted":N,"duplicates":M}); `server_roundtrip` runs the same against the
//! real `moat server` binary when it is built beside this test.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_runtime::rules::{Alert, Priority};
use moat_runtime::spool::{Spool, SpoolConfig, server_sender};

fn alert(n: u64) -> Alert {
    Alert {
        time: format!("2026-12-02T10:00:00.{n:09}Z"),
        rule: "spool test".into(),
        priority: Priority::Warning,
        output: format!("alert number {n}"),
        output_fields: serde_json::Map::from_iter([("n".to_string(), serde_json::json!(n))]),
        tags: vec![],
        source: "syscall",
        hostname: "test".into(),
        container: None,
        mitre: vec![],
        response: None,
    }
}

/// A loopback HTTP receiver: records every alert number and the Authorization header; answers with
/// the status in `status` (202 unless changed).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<u64>>>,
    auth: Arc<Mutex<BTreeSet<String>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<u64>>> = Arc::default();
        let auth: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(202));
        let (g, a, st) = (got.clone(), auth.clone(), status.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let lower = l.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        a.lock()
                            .unwrap()
                            .insert(l["authorization:".len()..].trim().to_string());
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                let code = st.load(Ordering::SeqCst);
                let mut n = 0;
                if code == 202 {
                    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        let v: serde_json::Value =
                            serde_json::from_slice(line).expect("NDJSON line");
                        g.lock()
                            .unwrap()
                            .push(v["output_fields"]["n"].as_u64().unwrap());
                        n += 1;
                    }
                }
                let answer = format!("{{\"accepted\":{n},\"duplicates\":0}}");
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Receiver {
            port,
            got,
            auth,
            status,
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn distinct(&self) -> BTreeSet<u64> {
        self.got.lock().unwrap().iter().copied().collect()
    }
}

fn spool(dir: &Path, url: &str, max_bytes: u64) -> Spool {
    Spool::start(
        SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes,
        },
        server_sender(url, "moat_testtoken".into(), Duration::from_secs(5)).unwrap(),
    )
    .unwrap()
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Child mode: spools alerts until killed, printing the count after every push that returned.
#[test]
fn child_spools_until_killed() {
    let Ok(dir) = std::env::var("MOAT_SPOOL_CHILD_DIR") else {
        return; // Only meaningful as the child of spooled_alerts_survive_sigkill.
    };
    let url = std::env::var("MOAT_SPOOL_CHILD_URL").unwrap();
    let sp = spool(Path::new(&dir), &url, 1 << 30);
    let mut out = std::io::stdout();
    for n in 0.. {
        sp.push(&[alert(n)]).unwrap();
        writeln!(out, "spooled {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn spooled_alerts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // The server is down while the child spools: a closed port.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_spools_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MOAT_SPOOL_CHILD_DIR", dir.path())
        .env("MOAT_SPOOL_CHILD_URL", &closed_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = None;
    while let Some(Ok(l)) = lines.next() {
        if let Some(n) = l.strip_prefix("spooled ") {
            last = n.parse::<u64>().ok();
            if last >= Some(2500) {
                break;
            }
        }
    }
    // SIGKILL in the middle of spooling: no chance to flush or close anything.
    child.kill().unwrap();
    let _ = child.wait();
    let acknowledged = last.expect("the child spooled");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().any(|n| n.starts_with("open-")),
        "an open segment was left: {left:?}"
    );
    // Restart against a server that is up: everything the child acknowledged arrives.
    let rx = Receiver::start();
    let sp = spool(dir.path(), &rx.url(), 1 << 30);
    assert!(sp.stats().replayed.load(Ordering::Relaxed) > 0);
    let ok = wait_for(Duration::from_secs(30), || {
        rx.distinct().range(..=acknowledged).count() as u64 == acknowledged + 1
    });
    let f = sp.finish(Duration::from_secs(5));
    let got = rx.distinct();
    let missing: Vec<u64> = (0..=acknowledged)
        .filter(|n| !got.contains(n))
        .take(10)
        .collect();
    eprintln!(
        "sigkill: child acknowledged alerts 0..={acknowledged}; after restart {} distinct received ({} posts' lines), {} torn dropped, {f:?}",
        got.len(),
        rx.got.lock().unwrap().len(),
        f.torn
    );
    assert!(
        ok && missing.is_empty(),
        "alerts lost after SIGKILL: first missing {missing:?}"
    );
    assert_eq!(f.left, 0, "everything was delivered");
    assert_eq!(
        rx.auth.lock().unwrap().iter().cloned().collect::<Vec<_>>(),
        vec!["Bearer moat_testtoken"]
    );
}

#[test]
fn server_down_then_up_bound_and_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    // Down: every POST answered 503; 2,500 alerts wait on disk (3 segments).
    rx.status.store(503, Ordering::SeqCst);
    let sp = spool(dir.path(), &rx.url(), 1 << 30);
    for chunk in (0..2500u64).collect::<Vec<_>>().chunks(100) {
        let alerts: Vec<Alert> = chunk.iter().map(|n| alert(*n)).collect();
        sp.push(&alerts).unwrap();
    }
    std::thread::sleep(Duration::from_millis(800));
    assert!(rx.distinct().is_empty());
    assert!(
        sp.last_error().is_some_and(|e| e.contains("503")),
        "{:?}",
        sp.last_error()
    );
    // Up again: all of them arrive, once each.
    rx.status.store(202, Ordering::SeqCst);
    assert!(
        wait_for(Duration::from_secs(40), || rx.distinct().len() == 2500),
        "got {}",
        rx.distinct().len()
    );
    let f = sp.finish(Duration::from_secs(5));
    assert_eq!(
        (f.spooled, f.delivered, f.left, f.refused_full),
        (2500, 2500, 0, 0),
        "{f:?}"
    );
    assert_eq!(rx.got.lock().unwrap().len(), 2500, "no alert sent twice");

    // The bound: 40 KB of spool while the server is down refuses the rest, counted.
    let dir2 = tempfile::tempdir().unwrap();
    rx.status.store(503, Ordering::SeqCst);
    let sp = spool(dir2.path(), &rx.url(), 40_000);
    for n in 0..1000 {
        sp.push(&[alert(10_000 + n)]).unwrap();
    }
    let f = sp.finish(Duration::from_millis(200));
    assert!(
        f.refused_full > 0 && f.spooled + f.refused_full == 1000,
        "{f:?}"
    );
    assert!(f.left == f.spooled, "{f:?}");
    let on_disk: u64 = std::fs::read_dir(dir2.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 40_000, "{on_disk} bytes on disk");

    // A rejected segment (400) is kept aside, not retried forever, not deleted.
    let dir3 = tempfile::tempdir().unwrap();
    rx.status.store(400, Ordering::SeqCst);
    let sp = spool(dir3.path(), &rx.url(), 1 << 30);
    sp.push(&[alert(20_000), alert(20_001)]).unwrap();
    let f = sp.finish(Duration::from_secs(5));
    assert_eq!((f.rejected, f.left), (2, 0), "{f:?}");
    let names: Vec<String> = std::fs::read_dir(dir3.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("rejected-")),
        "{names:?}"
    );
    assert!(f.last_error.unwrap_or_default().contains("HTTP 400"));
}

/// The moat binary beside this test binary (`target/<profile>/moat`), brought up to date once.
fn moat_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let mut args = vec!["build", "-q", "-p", "moat"];
    if profile.file_name().is_some_and(|n| n == "release") {
        args.push("--release");
    }
    let st = Command::new(env!("CARGO"))
        .args(&args)
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .status()
        .unwrap();
    assert!(st.success(), "cargo build -p moat");
    profile.join("moat")
}

/// Against the real `moat server` (SQLite store, an `ingest` token): alerts spooled while the server
/// is not yet up arrive once it is; a resend of the same alerts is counted as duplicates by the server.
#[test]
fn server_roundtrip() {
    let moat = moat_bin();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("s.db").display());
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    // The token is made before the server listens (same store).
    let init = Command::new(&moat)
        .args([
            "server", "token", "create", "--scope", "ingest", "--store", &store,
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let token = String::from_utf8_lossy(&init.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let sp = Spool::start(
        SpoolConfig {
            dir: dir.path().join("spool"),
            max_bytes: 1 << 30,
        },
        server_sender(&url, token, Duration::from_secs(10)).unwrap(),
    )
    .unwrap();
    for chunk in (0..1500u64).collect::<Vec<_>>().chunks(50) {
        sp.push(&chunk.iter().map(|n| alert(*n)).collect::<Vec<_>>())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    assert!(sp.last_error().is_some(), "the server is not up yet");
    let log = dir.path().join("server.log");
    let mut server = Command::new(&moat)
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            &store,
        ])
        .env(
            "MOAT_SERVER_TOKEN",
            "moat_admin_bootstrap_for_spool_test_0123456789",
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let delivered = wait_for(Duration::from_secs(60), || {
        sp.stats().delivered.load(Ordering::Relaxed) == 1500
    });
    // The first 100 again: the server recognises them.
    sp.push(&(0..100).map(alert).collect::<Vec<_>>()).unwrap();
    let f = sp.finish(Duration::from_secs(20));
    let _ = server.kill();
    let _ = server.wait();
    eprintln!("moat server roundtrip: {f:?}");
    assert!(
        delivered,
        "not delivered: {f:?}; server log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!((f.delivered, f.left, f.rejected), (1600, 0, 0), "{f:?}");
    assert_eq!(
        (f.server_accepted, f.server_duplicates),
        (1500, 100),
        "{f:?}"
    );
}
