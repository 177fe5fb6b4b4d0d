//! A real OCI registry (distribution v2, Debian's `docker-registry`) on loopback, started by
//! `../shared/scripts/registry.sh`, stopped when the [`Registry`] guard drops (passed or failed), with
//! `skopeo` pushes. Optionally it sends its notification envelopes to a URL (moat server's
//! `/api/v1/registry/events`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running registry; dropping it stops it.
pub struct Registry {
    script: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Notification URL and token, kept for [`Registry::restart`].
    notify: (Option<String>, Option<String>),
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Registry {
    /// Starts a registry (no notifications); None (a visible skip; a failure in CI) when
    /// `../shared/scripts/registry.sh`, `docker-registry` or `skopeo` is missing.
    pub fn start() -> Option<Registry> {
        Registry::start_with(None, None)
    }

    /// Starts a registry that POSTs its notifications to `notify_url` (with `Authorization: Bearer
    /// token` when given).
    pub fn start_with(notify_url: Option<&str>, token: Option<&str>) -> Option<Registry> {
        let script = crate::shared_path("scripts/registry.sh")?;
        if !have("docker-registry") || !have("skopeo") {
            crate::skip(
                "docker-registry or skopeo is not installed (../shared/scripts/apt-tools.sh)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir for the registry");
        let port = free_port();
        let r = Registry {
            script,
            dir,
            port,
            notify: (notify_url.map(str::to_string), token.map(str::to_string)),
        };
        r.run_start(notify_url, token);
        Some(r)
    }

    fn run_start(&self, notify_url: Option<&str>, token: Option<&str>) {
        let mut c = Command::new("bash");
        c.arg(&self.script)
            .arg("start")
            .arg(self.dir.path())
            .arg(self.port.to_string());
        if let Some(u) = notify_url {
            c.arg(u).arg(token.unwrap_or(""));
        }
        let out = c.output().expect("run registry.sh");
        assert!(
            out.status.success(),
            "registry did not start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's working folder (config.yml, registry.log, data/).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far (requests are logged at `info`; the script sets `warn`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry process (its data stays; [`Registry::restart`] serves it again).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .status();
        // The script signals the process; wait until the port is closed.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts the registry again on the same port and data, with the same notification settings.
    pub fn restart(&self) {
        self.run_start(self.notify.0.as_deref(), self.notify.1.as_deref());
    }

    /// `skopeo copy` of `src` (e.g. `oci:LAYOUT:TAG`) to `docker://ADDR/DEST` (`repo:tag`); panics
    /// with skopeo's message on failure.
    pub fn push(&self, src: &str, dest: &str) {
        push(src, &format!("{}/{dest}", self.addr()), &[]);
    }

    /// The manifest digest a tag points at now (`skopeo inspect`).
    pub fn digest(&self, reference: &str) -> String {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{}/{reference}", self.addr()))
            .output()
            .expect("skopeo inspect");
        assert!(
            out.status.success(),
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// `skopeo copy -q --dest-tls-verify=false SRC docker://DEST [extra...]`; panics with skopeo's
/// message on failure.
pub fn push(src: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .args(extra)
        .arg(src)
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {src} {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
