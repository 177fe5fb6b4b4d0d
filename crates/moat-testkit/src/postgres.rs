//! A real PostgreSQL (Debian's `postgresql` package) for tests: a cluster initdb'd in a temp dir as the
//! `postgres` user (initdb refuses root), served on loopback with its socket in the same dir, stopped
//! and removed on Drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running throw-away cluster.
pub struct Postgres {
    dir: PathBuf,
    child: Option<Child>,
    pub port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_postgres(cmd: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", "sh", "-c", cmd]);
    c
}

impl Postgres {
    /// Starts a cluster, or visibly skips (None) when the PostgreSQL binaries are missing outside CI
    /// (scripts/deps.d/70-postgres.sh installs them). Panics if they exist but the cluster won't start.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            crate::skip("PostgreSQL binaries missing (run scripts/deps.d/70-postgres.sh)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir = std::env::temp_dir().join(format!("moat-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg temp dir");
        let st = Command::new("chown")
            .args(["postgres:postgres", &dir.display().to_string()])
            .status()
            .expect("chown");
        assert!(st.success(), "chown {} to postgres failed", dir.display());
        let data = dir.join("data");
        let out = as_postgres(&format!(
            "{}/initdb -D {} -U postgres -A trust --no-sync -E UTF8 >{}/initdb.log 2>&1",
            bin.display(),
            data.display(),
            dir.display()
        ))
        .status()
        .expect("initdb");
        assert!(
            out.success(),
            "initdb failed: see {}/initdb.log",
            dir.display()
        );
        let child = as_postgres(&format!(
            "exec {}/postgres -D {} -k {} -p {port} -h 127.0.0.1 -c fsync=off -c max_connections=200 >{}/pg.log 2>&1",
            bin.display(),
            data.display(),
            dir.display(),
            dir.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .expect("postgres");
        let pg = Postgres {
            dir,
            child: Some(child),
            port,
        };
        let t = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Accepting TCP is not yet accepting logins; createdb retries until it can.
                let ok = Command::new(bin.join("createdb"))
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-U",
                        "postgres",
                        "moat",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return Some(pg);
                }
            }
            if t.elapsed() > Duration::from_secs(30) {
                panic!("postgres did not start: see {}/pg.log", pg.dir.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/moat`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/moat", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A fast shutdown of the postmaster itself (its pid file), then of runuser if it lingers.
            let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().map(str::trim).map(String::from))
                .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty());
            if let Some(pid) = pid {
                let _ = Command::new("kill").args(["-INT", &pid]).status();
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
