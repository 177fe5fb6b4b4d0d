//! Image-configuration checks on built images, as pure functions over the OCI image config and a list
//! of file metadata (so they are testable without images): runs as root, no HEALTHCHECK, secrets in
//! `Env` and in history `created_by`, setuid/setgid files, world-writable files outside /tmp, `ADD` in
//! history, package-manager caches left in layers. CIS Docker Benchmark ids are aliases.

use moat_model::{Finding, FindingKind};
use serde::Deserialize;

use crate::LintError;
use crate::catalog;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Healthcheck {
    #[serde(rename = "Test", default)]
    pub test: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Healthcheck", default)]
    pub healthcheck: Option<Healthcheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: Option<bool>,
}

/// The parts of an OCI/Docker image config these checks read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub history: Option<Vec<History>>,
}

impl ImageConfig {
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<ImageConfig, LintError> {
        serde_json::from_slice(bytes).map_err(|e| {
            LintError::Input(format!(
                "{name}: invalid image config (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })
    }
}

/// One file in the image's merged filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Absolute path inside the image.
    pub path: String,
    /// Unix mode bits including the file type bits are not required: permission and setuid bits.
    pub mode: u32,
    pub is_dir: bool,
    pub is_symlink: bool,
    /// Digest of the layer the file comes from, when known.
    pub layer: Option<String>,
}

fn finding(id: &str, target: &str, message: String) -> Finding {
    let info = catalog::rule(id);
    let mut f = Finding::new(
        id,
        FindingKind::ImageConfig,
        info.map(|r| r.severity).unwrap_or_default(),
        info.map(|r| r.title).unwrap_or(id),
    );
    f.message = message;
    f.location.object = Some(target.to_string());
    if let Some(r) = info {
        f.aliases = r.aliases.iter().map(|s| s.to_string()).collect();
        f.why = Some(r.why.to_string());
        f.fix = Some(r.fix.to_string());
    }
    f
}

fn secret_assignment(s: &str) -> Option<String> {
    for tok in s.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|') {
        let Some((k, v)) = tok.split_once('=') else {
            continue;
        };
        let k = k
            .trim_start_matches('-')
            .trim_start_matches("build-arg")
            .trim_start_matches('|');
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        if v.is_empty() || v.starts_with('$') {
            continue;
        }
        let low = k.to_ascii_lowercase();
        if low.ends_with("_file") || low.ends_with("_path") || low.ends_with("_url") {
            continue;
        }
        if [
            "password",
            "passwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "private_key",
            "access_key",
        ]
        .iter()
        .any(|p| low.contains(p))
        {
            return Some(k.to_string());
        }
        if v.starts_with("AKIA") && v.len() >= 20
            || v.starts_with("ghp_")
            || v.starts_with("github_pat_")
            || v.starts_with("xoxb-")
        {
            return Some(k.to_string());
        }
    }
    None
}

const CACHE_DIRS: &[&str] = &[
    "/var/lib/apt/lists/",
    "/var/cache/apt/archives/",
    "/var/cache/apk/",
    "/var/cache/yum/",
    "/var/cache/dnf/",
    "/root/.cache/pip/",
    "/root/.npm/_cacache/",
    "/usr/local/share/.cache/yarn/",
];

/// Image-configuration findings for the image named `target`.
pub fn check_image(target: &str, cfg: &ImageConfig, files: &[FileMeta]) -> Vec<Finding> {
    let mut out = Vec::new();
    let rc = cfg.config.clone().unwrap_or_default();
    let user = rc.user.unwrap_or_default();
    let u = user.split(':').next().unwrap_or("");
    if u.is_empty() || u == "root" || u == "0" {
        out.push(finding(
            "MOAT-IMG-001",
            target,
            if u.is_empty() {
                "The image config sets no User: containers run as root".into()
            } else {
                format!("The image config sets User {user}")
            },
        ));
    }
    let hc = rc.healthcheck.map(|h| h.test).unwrap_or_default();
    if hc.is_empty() {
        out.push(finding(
            "MOAT-IMG-002",
            target,
            "The image config has no Healthcheck".into(),
        ));
    }
    for e in rc.env.unwrap_or_default() {
        if let Some(k) = secret_assignment(&e) {
            let mut f = finding(
                "MOAT-IMG-003",
                target,
                format!("Env {k} holds a secret value"),
            );
            f.location.field = Some(format!("config.Env[{k}]"));
            out.push(f);
        }
    }
    for (n, h) in cfg.history.clone().unwrap_or_default().iter().enumerate() {
        let cb = h.created_by.clone().unwrap_or_default();
        if let Some(k) = secret_assignment(&cb) {
            let mut f = finding(
                "MOAT-IMG-004",
                target,
                format!("history[{n}] created_by passes {k} with a literal value"),
            );
            f.location.field = Some(format!("history[{n}].created_by"));
            out.push(f);
        }
        let t = cb.trim_start();
        let t = t
            .strip_prefix("/bin/sh -c #(nop)")
            .map(str::trim_start)
            .unwrap_or(t);
        if t.starts_with("ADD ") && !t.starts_with("ADD file:") && !t.contains(" in / ") {
            let mut f = finding(
                "MOAT-IMG-007",
                target,
                format!("history[{n}]: {}", t.chars().take(120).collect::<String>()),
            );
            f.location.field = Some(format!("history[{n}].created_by"));
            out.push(f);
        }
    }
    let mut caches: std::collections::BTreeSet<&str> = Default::default();
    for f in files {
        if f.is_symlink {
            continue;
        }
        if !f.is_dir && f.mode & 0o6000 != 0 {
            let bits = match (f.mode & 0o4000 != 0, f.mode & 0o2000 != 0) {
                (true, true) => "setuid+setgid",
                (true, false) => "setuid",
                _ => "setgid",
            };
            let mut x = finding(
                "MOAT-IMG-005",
                target,
                format!("{} is {bits} (mode {:04o})", f.path, f.mode & 0o7777),
            );
            x.location.file = Some(f.path.clone());
            x.location.layer = f.layer.clone();
            out.push(x);
        }
        let under_tmp = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
            .iter()
            .any(|t| f.path == *t || f.path.starts_with(&format!("{t}/")));
        let sticky_dir = f.is_dir && f.mode & 0o1000 != 0;
        if f.mode & 0o002 != 0 && !under_tmp && !sticky_dir {
            let mut x = finding(
                "MOAT-IMG-006",
                target,
                format!(
                    "{} is world-writable (mode {:04o})",
                    f.path,
                    f.mode & 0o7777
                ),
            );
            x.location.file = Some(f.path.clone());
            x.location.layer = f.layer.clone();
            out.push(x);
        }
        if !f.is_dir {
            for c in CACHE_DIRS {
                if f.path.starts_with(c)
                    && !f.path.ends_with("/lock")
                    && !f.path.ends_with("/partial")
                {
                    caches.insert(c);
                }
            }
        }
    }
    for c in caches {
        let mut x = finding(
            "MOAT-IMG-008",
            target,
            format!("{c} still holds package-manager cache files"),
        );
        x.location.file = Some(c.to_string());
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_files() {
        let cfg = ImageConfig::from_json(
            "cfg.json",
            br#"{"config":{"User":"","Env":["PATH=/usr/bin","DB_PASSWORD=hunter2","KEY_FILE=/run/secrets/k"]},
                "history":[{"created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created_by":"ARG GITHUB_TOKEN=ghp_aaaaaaaaaaaaaaaaaaaaaaaa"},{"created_by":"ADD https://example.com/x.tgz /opt/ # buildkit"}]}"#,
        )
        .unwrap();
        let files = vec![
            FileMeta {
                path: "/usr/bin/passwd".into(),
                mode: 0o4755,
                is_dir: false,
                is_symlink: false,
                layer: None,
            },
            FileMeta {
                path: "/tmp".into(),
                mode: 0o1777,
                is_dir: true,
                is_symlink: false,
                layer: None,
            },
            FileMeta {
                path: "/app/data".into(),
                mode: 0o777,
                is_dir: true,
                is_symlink: false,
                layer: None,
            },
            FileMeta {
                path: "/var/lib/apt/lists/deb.debian.org_dists".into(),
                mode: 0o644,
                is_dir: false,
                is_symlink: false,
                layer: None,
            },
        ];
        let ids: Vec<String> = check_image("img", &cfg, &files)
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(
            ids,
            [
                "MOAT-IMG-001",
                "MOAT-IMG-002",
                "MOAT-IMG-003",
                "MOAT-IMG-004",
                "MOAT-IMG-007",
                "MOAT-IMG-005",
                "MOAT-IMG-006",
                "MOAT-IMG-008"
            ]
        );
        assert!(
            ImageConfig::from_json("bad.json", b"{")
                .unwrap_err()
                .to_string()
                .contains("bad.json")
        );
    }
}
