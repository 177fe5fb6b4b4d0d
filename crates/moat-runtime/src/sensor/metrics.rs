//! The sensor's own health, for whoever watches the watcher: events, ring-buffer losses, rule
//! evaluation time, re-attachments and detected detachments, served as Prometheus text on
//! `GET /metrics` (`moat runtime watch --metrics-listen ADDR`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (seconds) of the rule-evaluation histogram buckets: one event against the loaded
/// rules takes a few microseconds; a slow rule set shows in the upper buckets.
const EVAL_BUCKETS: [f64; 8] = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3, 1e-2];

/// Counters shared between the sensor loop (writer) and the `/metrics` endpoint (reader).
#[derive(Debug)]
pub struct Metrics {
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    /// Kernel events lost: ring-buffer reservations that failed (the BPF `lost` counter).
    pub lost: AtomicU64,
    eval_ns: AtomicU64,
    eval_count: AtomicU64,
    eval_buckets: [AtomicU64; EVAL_BUCKETS.len()],
    /// Times the sensor re-attached its programs after finding them detached.
    pub restarts: AtomicU64,
    /// Times a check found a program detached (or syscall tracing silent) while the sensor ran.
    pub detached: AtomicU64,
    /// 1 while every program is attached and syscall tracing advances, 0 otherwise.
    pub attached: AtomicU64,
    started: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            eval_ns: AtomicU64::new(0),
            eval_count: AtomicU64::new(0),
            eval_buckets: Default::default(),
            restarts: AtomicU64::new(0),
            detached: AtomicU64::new(0),
            attached: AtomicU64::new(0),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

impl Metrics {
    /// Records one event's rule evaluation.
    pub fn observe_eval(&self, took: Duration) {
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        self.eval_ns.fetch_add(ns, Ordering::Relaxed);
        self.eval_count.fetch_add(1, Ordering::Relaxed);
        let s = took.as_secs_f64();
        if let Some(i) = EVAL_BUCKETS.iter().position(|b| s <= *b) {
            self.eval_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition (version 0.0.4) of every counter.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "moat_sensor_events_total",
            "counter",
            "Kernel events the sensor decoded and evaluated.",
            g(&self.events).to_string(),
        );
        metric(
            "moat_sensor_alerts_total",
            "counter",
            "Alerts raised.",
            g(&self.alerts).to_string(),
        );
        metric(
            "moat_sensor_ring_buffer_lost_total",
            "counter",
            "Kernel events lost because the ring buffer was full.",
            g(&self.lost).to_string(),
        );
        metric(
            "moat_sensor_restarts_total",
            "counter",
            "Times the sensor re-attached its BPF programs after finding them detached.",
            g(&self.restarts).to_string(),
        );
        metric(
            "moat_sensor_detached_total",
            "counter",
            "Times a check found a BPF program detached or syscall tracing silent.",
            g(&self.detached).to_string(),
        );
        metric(
            "moat_sensor_attached",
            "gauge",
            "1 while every BPF program of the sensor is attached.",
            g(&self.attached).to_string(),
        );
        metric(
            "moat_sensor_start_time_seconds",
            "gauge",
            "When this sensor process started (a change means the sensor was restarted).",
            format!("{:.3}", self.started),
        );
        s.push_str(
            "# HELP moat_rule_evaluation_seconds Time to evaluate one event against the loaded rules.\n\
             # TYPE moat_rule_evaluation_seconds histogram\n",
        );
        let mut cum = 0;
        for (b, c) in EVAL_BUCKETS.iter().zip(&self.eval_buckets) {
            cum += g(c);
            s.push_str(&format!(
                "moat_rule_evaluation_seconds_bucket{{le=\"{b}\"}} {cum}\n"
            ));
        }
        let count = g(&self.eval_count);
        s.push_str(&format!(
            "moat_rule_evaluation_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             moat_rule_evaluation_seconds_sum {:.9}\n\
             moat_rule_evaluation_seconds_count {count}\n",
            g(&self.eval_ns) as f64 / 1e9
        ));
        s
    }
}

/// Serves `GET /metrics` on `addr` from a background thread; returns the bound address (port 0
/// picks one).
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("moat-metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                // One scrape at a time is plenty; a stuck client cannot hold the thread for long.
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = answer(conn, &metrics);
            }
        })?;
    Ok(local)
}

fn answer(conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    // Bounded reads: the request line and headers, at most 64 lines of 8 KiB.
    (&mut r).take(8192).read_line(&mut first)?;
    for _ in 0..64 {
        let mut h = String::new();
        let n = (&mut r).take(8192).read_line(&mut h)?;
        if n == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics only\n".to_string(),
        ),
    };
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_prometheus_text() {
        let m = Arc::new(Metrics::default());
        m.events.fetch_add(3, Ordering::Relaxed);
        m.lost.fetch_add(2, Ordering::Relaxed);
        m.observe_eval(Duration::from_nanos(1500));
        m.observe_eval(Duration::from_millis(50));
        let addr = serve("127.0.0.1:0", m.clone()).unwrap();
        let get = |req: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let out = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("\nmoat_sensor_events_total 3\n"), "{out}");
        assert!(out.contains("\nmoat_sensor_ring_buffer_lost_total 2\n"));
        assert!(out.contains("moat_rule_evaluation_seconds_bucket{le=\"0.0000025\"} 1\n"));
        // The 50 ms observation is above every bucket: only +Inf and the count hold it.
        assert!(out.contains("moat_rule_evaluation_seconds_bucket{le=\"0.01\"} 1\n"));
        assert!(out.contains("moat_rule_evaluation_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("moat_rule_evaluation_seconds_count 2\n"));
        assert!(get("GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
