//! Image-configuration checks on built images, as pure functions over the OCI image config and a list
//! of file metadata (so they are testable without images): runs as root, no HEALTHCHECK, secrets in
//! `Env` and in history `created_by`, setuid/setgid files, world-writable files outside /tmp, `ADD` in
//! history, package-manager caches left in layers. CIS Docker Benchmark ids are aliases.

use moat_model::{Finding, FindingKind};
use serde::Deserialize;

use crate::LintError;
use crate::catalog;

#[derive(Debug, Clone, Default, Deserialize)]
struct RawHealthcheck {
    #[serde(rename = "Test", default)]
    test: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawRunConfig {
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Healthcheck", default)]
    healthcheck: Option<RawHealthcheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawHistory {
    #[serde(default)]
    created_by: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RawRunConfig>,
    #[serde(default)]
    history: Option<Vec<RawHistory>>,
}

/// The parts of an image config these checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub user: Option<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    /// `Healthcheck.Test` (`["NONE"]` = deliberately disabled); `None` = no healthcheck.
    pub healthcheck: Option<Vec<String>>,
    /// `created_by` of every history entry, in order.
    pub history: Vec<String>,
}

impl ImageConfig {
    /// Reads an OCI/Docker image config JSON document.
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<ImageConfig, LintError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            LintError::Input(format!(
                "{name}: invalid image config (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let rc = raw.config.unwrap_or_default();
        Ok(ImageConfig {
            user: rc.user,
            env: rc.env.unwrap_or_default(),
            healthcheck: rc
                .healthcheck
                .and_then(|h| h.test)
                .filter(|t| !t.is_empty()),
            history: raw
                .history
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.created_by.unwrap_or_default())
                .collect(),
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

/// Whether the file checks need an entry's metadata (`path` absolute), so a caller walking an image
/// can skip everything else.
pub fn wants(path: &str, mode: u32) -> bool {
    mode & 0o6002 != 0 || CACHE_DIRS.iter().any(|c| path.starts_with(c))
}

/// Image-configuration findings for the image named `target`.
pub fn check_image(target: &str, cfg: &ImageConfig, files: &[FileMeta]) -> Vec<Finding> {
    let mut out = Vec::new();
    let user = cfg.user.clone().unwrap_or_default();
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
    if cfg.healthcheck.is_none() {
        out.push(finding(
            "MOAT-IMG-002",
            target,
            "The image config has no Healthcheck".into(),
        ));
    }
    for e in &cfg.env {
        if let Some(k) = secret_assignment(e) {
            let mut f = finding(
                "MOAT-IMG-003",
                target,
                format!("Env {k} holds a secret value"),
            );
            f.location.field = Some(format!("config.Env[{k}]"));
            out.push(f);
        }
    }
    for (n, cb) in cfg.history.iter().enumerate() {
        if let Some(k) = secret_assignment(cb) {
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
