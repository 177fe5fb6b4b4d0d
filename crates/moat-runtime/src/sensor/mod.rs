//! Sensors: the eBPF sensor ([`ebpf`]) that turns kernel events into [`Event`]s, and the process
//! table and container/user enrichment they share.
//!
//! The eBPF object is built from `bpf/moat.bpf.c` by `bpf/build.sh` and committed, so building moat
//! never needs clang. Without BPF privileges `run` fails with a message saying so; `--degraded`
//! selects the proc-connector sensor instead (exec/exit only).

pub mod container;
pub mod ebpf;
pub mod metrics;
pub mod proc_connector;
pub mod procs;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::event::Event;
use crate::rules::{Alert, Engine};

/// Sensor options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Evaluate only events from containers.
    pub container_only: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Use the proc-connector sensor.
    pub degraded: bool,
    /// Written once the sensor is attached.
    pub ready_file: Option<PathBuf>,
    /// Counters the sensor keeps up to date (served on `/metrics` by `watch --metrics-listen`).
    pub metrics: Arc<metrics::Metrics>,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub sensor: &'static str,
    pub events: u64,
    pub alerts: u64,
    /// Events the kernel could not hand over (ring buffer full).
    pub lost: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "cannot load the eBPF sensor: {0}. moat needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF \
         (/sys/kernel/btf/vmlinux); run as root, or use --degraded for the proc-connector sensor (exec and exit only)"
    )]
    Bpf(String),
    #[error("proc connector: {0}")]
    ProcConnector(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT/SIGTERM end the watch loop cleanly.
fn install_signal_handlers() {
    STOP.store(false, Ordering::SeqCst);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Runs a sensor until the duration elapses or a signal arrives, evaluating every event and handing
/// it with its alerts to `sink`.
pub fn run(
    mut engine: Engine,
    opts: &Options,
    mut sink: impl FnMut(&Event, &[Alert]),
) -> Result<Stats, SensorError> {
    install_signal_handlers();
    let mut stats = Stats::default();
    let m = opts.metrics.clone();
    let mut handle = |ev: &mut Event| {
        stats.events += 1;
        m.events.fetch_add(1, Ordering::Relaxed);
        // The sensor's own health events are never filtered out.
        let health = matches!(ev.evt_type.as_str(), "drop" | "sensor_detached");
        if opts.container_only && ev.container.is_none() && !health {
            return;
        }
        let t = std::time::Instant::now();
        let alerts = engine.process(ev);
        m.observe_eval(t.elapsed());
        stats.alerts += alerts.len() as u64;
        m.alerts.fetch_add(alerts.len() as u64, Ordering::Relaxed);
        sink(ev, &alerts);
    };
    let (name, lost) = if opts.degraded {
        ("proc-connector", proc_connector::run(opts, &mut handle)?)
    } else {
        ("ebpf", ebpf::run(opts, &mut handle)?)
    };
    stats.sensor = name;
    stats.lost = lost;
    Ok(stats)
}

/// Writes the ready file, if asked.
pub(crate) fn signal_ready(opts: &Options, sensor: &str) {
    if let Some(p) = &opts.ready_file {
        let _ = std::fs::write(p, format!("{sensor} {}\n", std::process::id()));
    }
}

/// Asks a running sensor loop to stop (as SIGTERM would).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}
