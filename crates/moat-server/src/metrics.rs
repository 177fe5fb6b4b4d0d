//! Prometheus text metrics kept as atomics (no metrics crate): counters, a scan latency histogram, and
//! gauges read from the store at scrape time (queue depth per lane).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the scan latency histogram.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
pub struct Metrics {
    pub reports_ingested: AtomicU64,
    pub sboms_ingested: AtomicU64,
    pub scans: AtomicU64,
    pub runtime_alerts: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub store_errors: AtomicU64,
    pub requests_rejected: AtomicU64,
    scan_buckets: [AtomicU64; BUCKETS.len()],
    scan_count: AtomicU64,
    scan_sum_us: AtomicU64,
}

impl Metrics {
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one scan's duration.
    pub fn observe_scan(&self, d: std::time::Duration) {
        self.scans.fetch_add(1, Ordering::Relaxed);
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.scan_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.scan_count.fetch_add(1, Ordering::Relaxed);
        self.scan_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text; `lanes` = (lane, queued, running, oldest age ms).
    pub fn render(&self, lanes: &[(String, i64, i64, i64)]) -> String {
        let mut o = String::new();
        let c = |o: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        c(
            &mut o,
            "moat_reports_ingested_total",
            "Scan reports stored.",
            &self.reports_ingested,
        );
        c(
            &mut o,
            "moat_sboms_ingested_total",
            "SBOMs stored and matched.",
            &self.sboms_ingested,
        );
        c(
            &mut o,
            "moat_scans_total",
            "Image scans finished.",
            &self.scans,
        );
        c(
            &mut o,
            "moat_runtime_alerts_total",
            "Runtime alerts stored.",
            &self.runtime_alerts,
        );
        c(
            &mut o,
            "moat_alerts_sent_total",
            "Alert deliveries that succeeded.",
            &self.alerts_sent,
        );
        c(
            &mut o,
            "moat_alerts_failed_total",
            "Alert deliveries that failed.",
            &self.alerts_failed,
        );
        c(
            &mut o,
            "moat_store_errors_total",
            "Store operations that failed.",
            &self.store_errors,
        );
        c(
            &mut o,
            "moat_requests_rejected_total",
            "Requests refused by the rate limit.",
            &self.requests_rejected,
        );
        let _ = writeln!(
            o,
            "# HELP moat_scan_duration_seconds Scan latency.\n# TYPE moat_scan_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "moat_scan_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.scan_buckets[i].load(Ordering::Relaxed)
            );
        }
        let n = self.scan_count.load(Ordering::Relaxed);
        let _ = writeln!(o, "moat_scan_duration_seconds_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            o,
            "moat_scan_duration_seconds_sum {}",
            self.scan_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "moat_scan_duration_seconds_count {n}");
        let _ = writeln!(
            o,
            "# HELP moat_queue_backlog Jobs queued per lane.\n# TYPE moat_queue_backlog gauge"
        );
        for (lane, q, _, _) in lanes {
            let _ = writeln!(o, "moat_queue_backlog{{lane=\"{lane}\"}} {q}");
        }
        let _ = writeln!(
            o,
            "# HELP moat_queue_running Jobs running per lane.\n# TYPE moat_queue_running gauge"
        );
        for (lane, _, r, _) in lanes {
            let _ = writeln!(o, "moat_queue_running{{lane=\"{lane}\"}} {r}");
        }
        let _ = writeln!(
            o,
            "# HELP moat_queue_oldest_age_seconds Age of the oldest queued job per lane.\n# TYPE moat_queue_oldest_age_seconds gauge"
        );
        for (lane, _, _, a) in lanes {
            let _ = writeln!(
                o,
                "moat_queue_oldest_age_seconds{{lane=\"{lane}\"}} {}",
                *a as f64 / 1000.0
            );
        }
        o
    }
}
