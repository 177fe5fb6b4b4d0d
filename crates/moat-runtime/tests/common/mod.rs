//! Helpers shared by the live tests (real podman containers and the real eBPF sensor): finding
//! ../shared, skipping visibly, running podman with the shared environment, loading the shared Debian
//! image, and running the sensor on a thread until it is attached.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use moat_runtime::Engine;
use moat_runtime::rules::Alert;
use moat_runtime::sensor::{self, Options};

pub const IMAGE: &str = "localhost/debian-mini:bookworm";

pub fn shared() -> PathBuf {
    std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// Skips with a visible message; in CI (`CI=true`) a missing requirement fails instead.
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("required in CI: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The environment ../shared/scripts/podman-env.sh sets up (rootful podman with runc on these VMs).
pub fn podman_env(shared: &Path) -> Option<Vec<(String, String)>> {
    let script = shared.join("scripts/podman-env.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". '{}' >/dev/null 2>&1; env -0", script.display()))
        .output()
        .ok()?;
    let keep = ["CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "TMPDIR"];
    let env: Vec<(String, String)> = out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            let (k, v) = s.split_once('=')?;
            keep.contains(&k).then(|| (k.to_string(), v.to_string()))
        })
        .collect();
    (env.len() == keep.len()).then_some(env)
}

pub fn podman(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new("timeout");
    c.arg("120").arg("podman").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run podman")
}

/// Podman's environment with the shared Debian image loaded, or why not (to skip with).
pub fn podman_with_image() -> Result<Vec<(String, String)>, String> {
    let docker_tar = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/moat-fixtures/bookworm/docker.tar");
    let env = match podman_env(&shared()) {
        Some(e)
            if Command::new("podman").arg("--version").output().is_ok() && docker_tar.exists() =>
        {
            e
        }
        _ => {
            return Err(
                "podman, ../shared or ~/.cache/moat-fixtures/bookworm/docker.tar missing".into(),
            );
        }
    };
    if !podman(&env, &["image", "exists", IMAGE]).status.success() {
        let out = podman(
            &env,
            &["load", "-i", docker_tar.to_str().unwrap_or_default()],
        );
        if !out.status.success() {
            return Err(format!(
                "podman load: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(env)
}

/// The real sensor running on a thread, collecting every alert.
pub struct Sensor {
    pub alerts: Arc<Mutex<Vec<Alert>>>,
    thread: JoinHandle<Result<sensor::Stats, sensor::SensorError>>,
    _dir: tempfile::TempDir,
}

impl Sensor {
    /// Starts the sensor with `engine` and waits until it is attached; Err(why) when BPF is missing.
    pub fn start(engine: Engine) -> Result<Sensor, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let ready = dir.path().join("ready");
        let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
        let sink = alerts.clone();
        let opts = Options {
            duration: Some(Duration::from_secs(300)),
            ready_file: Some(ready.clone()),
            ..Default::default()
        };
        let thread = std::thread::spawn(move || {
            sensor::run(engine, &opts, |_, a| {
                sink.lock().unwrap().extend(a.iter().cloned())
            })
        });
        let t0 = Instant::now();
        while !ready.exists() {
            if thread.is_finished() {
                return match thread.join() {
                    Ok(Err(e)) => Err(format!("no BPF: {e}")),
                    _ => Err("sensor stopped before attaching".into()),
                };
            }
            if t0.elapsed() > Duration::from_secs(60) {
                panic!("sensor did not attach within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Sensor {
            alerts,
            thread,
            _dir: dir,
        })
    }

    /// Stops the sensor (after a moment for the last events) and returns its statistics and alerts.
    pub fn stop(self) -> (sensor::Stats, Vec<Alert>) {
        std::thread::sleep(Duration::from_millis(1500));
        sensor::request_stop();
        let stats = self
            .thread
            .join()
            .expect("sensor thread")
            .expect("sensor run");
        let alerts = self.alerts.lock().unwrap().clone();
        (stats, alerts)
    }
}
