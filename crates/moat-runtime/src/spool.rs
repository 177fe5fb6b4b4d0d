//! A durable on-disk spool for alerts on their way to `moat server` (`POST /api/v1/runtime/alerts`).
//!
//! Every alert is appended, as one JSON line, to the open segment (`open-SEQ.ndjson`) before
//! [`Spool::push`] returns: a crash of the sensor after that (kill -9, OOM) loses nothing, the line is
//! in the kernel's page cache and on disk after the next `fsync`. A segment is closed (fsync'd and
//! renamed to `seg-SEQ.ndjson`, then the directory fsync'd) when it holds [`SEGMENT_ALERTS`] alerts,
//! [`SEGMENT_BYTES`] bytes, or is [`SEGMENT_AGE`] old. A sender thread POSTs closed segments in order
//! and deletes one only when the server answered 2xx; the server is idempotent per alert content, so a
//! segment sent again after a crash between the answer and the delete is harmless.
//!
//! On start, segments left by an earlier run (closed or still open) are replayed first, in order. A
//! last line torn by a crash in the middle of a write is dropped and counted (never sent half).
//! The spool is bounded ([`SpoolConfig::max_bytes`]): past the bound new alerts are refused, counted
//! and reported (the sensor keeps printing them to its other sinks), never dropped silently. A segment
//! the server rejects as malformed (4xx other than 401/403/408/429) is kept as `rejected-SEQ.ndjson`
//! for inspection, never retried forever nor deleted; 401/403 (a wrong token) and 5xx or network errors
//! are retried with backoff.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::alert::{Format, format_alert};
use crate::rules::Alert;

/// Alerts per segment (one POST).
pub const SEGMENT_ALERTS: usize = 1000;
/// Bytes per segment.
pub const SEGMENT_BYTES: u64 = 1 << 20;
/// Age after which a non-empty open segment is closed and sent.
pub const SEGMENT_AGE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {message}")]
    Io { path: String, message: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> SpoolError {
    SpoolError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What a delivery attempt of one segment gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored (2xx): the segment may be deleted. With the server's counts when it answered
    /// `{"accepted":N,"duplicates":M}`.
    Stored(Option<(u64, u64)>),
    /// Try again later (network error, 5xx, 408, 429, 401/403): the message says why.
    Retry(String),
    /// The server refuses the content itself (400, 413...): kept aside as `rejected-*`.
    Rejected(String),
}

/// Sends one segment's body (NDJSON of alerts); the spool's sender thread calls it.
pub type Sender = Box<dyn FnMut(&[u8]) -> Delivery + Send>;

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Bound on the spool's size on disk (closed and open segments).
    pub max_bytes: u64,
}

/// Counters, for the summary line and `/metrics`.
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Alerts appended to the spool.
    pub spooled: AtomicU64,
    /// Alerts the server stored.
    pub delivered: AtomicU64,
    /// Alerts refused because the spool was full (reported, printed by the other sinks).
    pub refused_full: AtomicU64,
    /// Alerts in segments the server rejected (kept as rejected-*.ndjson).
    pub rejected: AtomicU64,
    /// Torn last lines dropped when replaying segments of a crashed run.
    pub torn: AtomicU64,
    /// Alerts found on disk from an earlier run, at start.
    pub replayed: AtomicU64,
    /// Failed delivery attempts (retried).
    pub retries: AtomicU64,
    /// What the server said it stored as new, and recognised as already stored (idempotent resends).
    pub server_accepted: AtomicU64,
    pub server_duplicates: AtomicU64,
}

struct Open {
    seq: u64,
    file: File,
    path: PathBuf,
    alerts: usize,
    bytes: u64,
    since: Instant,
}

struct State {
    open: Option<Open>,
    next_seq: u64,
    /// Bytes on disk (closed + open segments).
    bytes: u64,
    last_error: Option<String>,
}

struct Shared {
    cfg: SpoolConfig,
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    stats: SpoolStats,
}

/// The spool and its sender thread.
pub struct Spool {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

fn seg_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}-{seq:020}.ndjson")
}

fn seq_of(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(".ndjson")?
        .parse()
        .ok()
}

fn fsync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// Keeps only complete lines that are JSON objects; returns (body, alerts kept, torn lines dropped).
fn sanitize(bytes: &[u8]) -> (Vec<u8>, u64, u64) {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut kept, mut torn) = (0, 0);
    let complete = bytes.len() - bytes.iter().rev().take_while(|b| **b != b'\n').count();
    if complete < bytes.len() && !bytes[complete..].iter().all(u8::is_ascii_whitespace) {
        torn += 1;
    }
    for line in bytes[..complete].split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line).is_ok() {
            out.extend_from_slice(line);
            out.push(b'\n');
            kept += 1;
        } else {
            torn += 1;
        }
    }
    (out, kept, torn)
}

impl Spool {
    /// Opens (creating) the spool directory, takes over what an earlier run left, and starts sending.
    pub fn start(cfg: SpoolConfig, sender: Sender) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| io(&cfg.dir, e))?;
        // Private: alerts name processes, files and users of the host.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&cfg.dir, std::fs::Permissions::from_mode(0o700));
        }
        let stats = SpoolStats::default();
        let mut max_seq = 0;
        let mut bytes = 0;
        let entries = std::fs::read_dir(&cfg.dir).map_err(|e| io(&cfg.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| io(&cfg.dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            // An open segment of a crashed run: its complete lines become a closed segment.
            if let Some(seq) = seq_of(&name, "open") {
                let raw = std::fs::read(&path).map_err(|e| io(&path, e))?;
                let (body, kept, torn) = sanitize(&raw);
                stats.torn.fetch_add(torn, Ordering::Relaxed);
                stats.replayed.fetch_add(kept, Ordering::Relaxed);
                if kept > 0 {
                    let dest = cfg.dir.join(seg_name("seg", seq));
                    moat_fsio::write_atomic(&dest, &body, 0o600).map_err(|e| io(&dest, e))?;
                }
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                max_seq = max_seq.max(seq);
                continue;
            }
            let seq = seq_of(&name, "seg").or_else(|| seq_of(&name, "rejected"));
            if let Some(seq) = seq {
                max_seq = max_seq.max(seq);
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                bytes += len;
                if name.starts_with("seg-") {
                    let raw = std::fs::read(&path).map_err(|e| io(&path, e))?;
                    stats
                        .replayed
                        .fetch_add(sanitize(&raw).1, Ordering::Relaxed);
                }
            }
        }
        fsync_dir(&cfg.dir)?;
        let shared = Arc::new(Shared {
            cfg,
            state: Mutex::new(State {
                open: None,
                next_seq: max_seq + 1,
                bytes,
                last_error: None,
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            stats,
        });
        let s2 = shared.clone();
        let worker = std::thread::Builder::new()
            .name("moat-spool".into())
            .spawn(move || send_loop(&s2, sender))
            .map_err(|e| io(&shared.cfg.dir, e))?;
        Ok(Spool {
            shared,
            worker: Some(worker),
        })
    }

    pub fn stats(&self) -> &SpoolStats {
        &self.shared.stats
    }

    /// The last delivery error, if the latest attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .state
            .lock()
            .ok()
            .and_then(|s| s.last_error.clone())
    }

    /// Appends alerts to the open segment (written before this returns). Alerts that do not fit in
    /// the bound are refused and counted; an I/O error is returned (the caller reports it).
    pub fn push(&self, alerts: &[Alert]) -> Result<(), SpoolError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let sh = &self.shared;
        let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = Vec::new();
        let mut n = 0;
        for a in alerts {
            let line = format_alert(a, Format::Json);
            if st.bytes + (buf.len() + line.len() + 1) as u64 > sh.cfg.max_bytes {
                sh.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        if st.open.is_none() {
            let seq = st.next_seq;
            st.next_seq += 1;
            let path = sh.cfg.dir.join(seg_name("open", seq));
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            st.open = Some(Open {
                seq,
                file,
                path,
                alerts: 0,
                bytes: 0,
                since: Instant::now(),
            });
        }
        let o = st.open.as_mut().expect("opened above");
        o.file.write_all(&buf).map_err(|e| io(&o.path, e))?;
        o.alerts += n;
        o.bytes += buf.len() as u64;
        let full = o.alerts >= SEGMENT_ALERTS || o.bytes >= SEGMENT_BYTES;
        st.bytes += buf.len() as u64;
        sh.stats.spooled.fetch_add(n as u64, Ordering::Relaxed);
        if full {
            close_open(sh, &mut st)?;
        }
        drop(st);
        sh.wake.notify_all();
        Ok(())
    }

    /// Closes the open segment and waits up to `grace` for the sender to deliver what is spooled;
    /// what is left stays on disk for the next start.
    pub fn finish(mut self, grace: Duration) -> Finished {
        let sh = self.shared.clone();
        {
            let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
            let _ = close_open(&sh, &mut st);
        }
        sh.wake.notify_all();
        let t0 = Instant::now();
        while t0.elapsed() < grace && pending_segments(&sh.cfg.dir) > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        sh.stop.store(true, Ordering::SeqCst);
        sh.wake.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        let st = &sh.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let left = closed(&sh.cfg.dir)
            .iter()
            .filter_map(|(_, p)| std::fs::read(p).ok())
            .map(|b| sanitize(&b).1)
            .sum();
        Finished {
            spooled: get(&st.spooled),
            replayed: get(&st.replayed),
            delivered: get(&st.delivered),
            server_accepted: get(&st.server_accepted),
            server_duplicates: get(&st.server_duplicates),
            rejected: get(&st.rejected),
            refused_full: get(&st.refused_full),
            torn: get(&st.torn),
            left,
            last_error: sh.state.lock().ok().and_then(|s| s.last_error.clone()),
        }
    }
}

/// What [`Spool::finish`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub spooled: u64,
    pub replayed: u64,
    pub delivered: u64,
    pub server_accepted: u64,
    pub server_duplicates: u64,
    pub rejected: u64,
    pub refused_full: u64,
    pub torn: u64,
    /// Alerts still on disk, sent on the next start.
    pub left: u64,
    pub last_error: Option<String>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn pending_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.starts_with("seg-") || n.starts_with("open-")
                })
                .count()
        })
        .unwrap_or(0)
}

/// fsyncs the open segment and renames it to a closed one (then fsyncs the directory).
fn close_open(sh: &Shared, st: &mut State) -> Result<(), SpoolError> {
    let Some(o) = st.open.take() else {
        return Ok(());
    };
    o.file.sync_all().map_err(|e| io(&o.path, e))?;
    drop(o.file);
    let dest = sh.cfg.dir.join(seg_name("seg", o.seq));
    std::fs::rename(&o.path, &dest).map_err(|e| io(&dest, e))?;
    fsync_dir(&sh.cfg.dir)
}

/// Closed segments, oldest first.
fn closed(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    seq_of(&n, "seg").map(|s| (s, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn send_loop(sh: &Shared, mut sender: Sender) {
    let mut backoff = Duration::from_millis(200);
    loop {
        // Close an open segment that has aged.
        {
            let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
            if st
                .open
                .as_ref()
                .is_some_and(|o| o.since.elapsed() >= SEGMENT_AGE)
                && let Err(e) = close_open(sh, &mut st)
            {
                st.last_error = Some(e.to_string());
            }
        }
        let segs = closed(&sh.cfg.dir);
        let mut failed = false;
        for (seq, path) in segs {
            if sh.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(raw) = std::fs::read(&path) else {
                continue;
            };
            let (body, kept, torn) = sanitize(&raw);
            sh.stats.torn.fetch_add(torn, Ordering::Relaxed);
            let outcome = if kept == 0 {
                Delivery::Stored(None)
            } else {
                sender(&body)
            };
            let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Delivery::Stored(counts) => {
                    if let Some((a, d)) = counts {
                        sh.stats.server_accepted.fetch_add(a, Ordering::Relaxed);
                        sh.stats.server_duplicates.fetch_add(d, Ordering::Relaxed);
                    }
                    if std::fs::remove_file(&path).is_ok() {
                        let _ = fsync_dir(&sh.cfg.dir);
                        st.bytes = st.bytes.saturating_sub(raw.len() as u64);
                        sh.stats.delivered.fetch_add(kept, Ordering::Relaxed);
                    }
                    st.last_error = None;
                    backoff = Duration::from_millis(200);
                }
                Delivery::Rejected(why) => {
                    let dest = sh.cfg.dir.join(seg_name("rejected", seq));
                    if std::fs::rename(&path, &dest).is_ok() {
                        let _ = fsync_dir(&sh.cfg.dir);
                        sh.stats.rejected.fetch_add(kept, Ordering::Relaxed);
                    }
                    st.last_error = Some(format!(
                        "segment {seq} rejected (kept as {}): {why}",
                        dest.display()
                    ));
                }
                Delivery::Retry(why) => {
                    sh.stats.retries.fetch_add(1, Ordering::Relaxed);
                    st.last_error = Some(why);
                    failed = true;
                }
            }
            if failed {
                break;
            }
        }
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        let wait = if failed {
            let w = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            w
        } else {
            SEGMENT_AGE / 2
        };
        let st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        let _ = sh.wake.wait_timeout(st, wait);
    }
}

/// A [`Sender`] POSTing to `{server}/api/v1/runtime/alerts` with a bearer token, for `moat server`'s
/// ingest contract: 202 `{"accepted":N,"duplicates":M}`.
pub fn server_sender(server: &str, token: String, timeout: Duration) -> Result<Sender, String> {
    let base = server.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!("--output-server {server:?} is not an http(s) URL"));
    }
    let url = format!("{base}/api/v1/runtime/alerts");
    let loopback = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .is_some_and(|h| {
            h.starts_with("127.") || h.starts_with("localhost") || h.starts_with("[::1]")
        });
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .user_agent("moat-runtime");
    if loopback {
        cfg = cfg.proxy(None);
    }
    let agent = ureq::Agent::new_with_config(cfg.build());
    Ok(Box::new(move |body: &[u8]| {
        let resp = agent
            .post(&url)
            .header("Content-Type", "application/x-ndjson")
            .header("Authorization", &format!("Bearer {token}"))
            .send(body);
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => return Delivery::Retry(format!("cannot reach {url}: {e}")),
        };
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let short: String = text.chars().take(300).collect();
        match status {
            200..=299 => {
                let v: Option<serde_json::Value> = serde_json::from_str(&text).ok();
                let n = |k: &str| {
                    v.as_ref()
                        .and_then(|v| v.get(k))
                        .and_then(serde_json::Value::as_u64)
                };
                Delivery::Stored(n("accepted").zip(n("duplicates")))
            }
            401 | 403 => Delivery::Retry(format!(
                "{url}: HTTP {status} (check --token-file: an ingest token): {short}"
            )),
            408 | 429 | 500..=599 => Delivery::Retry(format!("{url}: HTTP {status}: {short}")),
            _ => Delivery::Rejected(format!("{url}: HTTP {status}: {short}")),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_lines_are_dropped_not_sent_half() {
        let (b, kept, torn) = sanitize(b"{\"a\":1}\n{\"b\":2}\n{\"c\":");
        assert_eq!((kept, torn), (2, 1));
        assert_eq!(b, b"{\"a\":1}\n{\"b\":2}\n");
        let (_, kept, torn) = sanitize(b"{\"a\":1}\nnot json\n\n");
        assert_eq!((kept, torn), (1, 1));
        assert_eq!(seq_of("seg-00000000000000000007.ndjson", "seg"), Some(7));
        assert_eq!(seq_of("open-x.ndjson", "open"), None);
    }
}
