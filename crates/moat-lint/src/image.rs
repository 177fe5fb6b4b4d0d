//! Image-configuration checks on built images, as pure functions over moat-image's config and file
//! view (so they are testable without images: build a `FileView` by hand): runs as root, no HEALTHCHECK, secrets in
//! `Env` and in history `created_by`, setuid/setgid files, world-writable files outside /tmp (device
//! nodes under /dev are not files), `ADD` in history, package-manager caches left in layers, secret
//! files (private keys, `.env`, cloud/registry credentials, `.npmrc`/`.pypirc` with tokens; see
//! [`crate::secrets`]), SSH port 22 in `ExposedPorts`. CIS Docker Benchmark ids are aliases.

use moat_image::{EntryKind, FileMeta, FileView, ImageConfig, Select};
use moat_model::{Finding, FindingKind};

use crate::catalog::{RuleMeta, ids, ids::*};
use crate::secrets;

fn finding(rule: &'static RuleMeta, target: &str, message: String) -> Finding {
    let kind = if rule == &ids::MOAT_IMG_009 {
        FindingKind::Secret
    } else {
        FindingKind::ImageConfig
    };
    let mut f = crate::finding_of(rule, kind, None);
    f.message = message;
    f.location.object = Some(target.to_string());
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

/// What the file checks need of an entry: the content of regular files that may be secret files
/// (up to [`secrets::MAX_SECRET_FILE`] bytes), the metadata of setuid/setgid, world-writable and
/// package-cache files; nothing else. A caller walking an image can skip the rest.
pub fn wants(meta: &FileMeta) -> Select {
    let path = format!("/{}", meta.path);
    if meta.kind == EntryKind::File
        && meta.size <= secrets::MAX_SECRET_FILE
        && secrets::candidate(&path).is_some()
    {
        Select::Content
    } else if meta.mode & 0o6002 != 0 || CACHE_DIRS.iter().any(|c| path.starts_with(c)) {
        Select::Meta
    } else {
        Select::Skip
    }
}

/// Image-configuration findings for the image named `target`. `config` is `None` for a plain file
/// tree (`dir:`), which has no user or healthcheck to judge: only the file checks apply. `files` may
/// hold more entries than [`wants`] selected; only the ones it would select can give findings.
pub fn check_image(target: &str, config: Option<&ImageConfig>, files: &FileView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(cfg) = config {
        check_config(target, cfg, &mut out);
    }
    check_files(target, files, &mut out);
    out
}

fn check_config(target: &str, cfg: &ImageConfig, out: &mut Vec<Finding>) {
    let user = cfg.user.clone().unwrap_or_default();
    let u = user.split(':').next().unwrap_or("");
    if u.is_empty() || u == "root" || u == "0" {
        out.push(finding(
            &MOAT_IMG_001,
            target,
            if u.is_empty() {
                "The image config sets no User: containers run as root".into()
            } else {
                format!("The image config sets User {user}")
            },
        ));
    }
    for p in &cfg.exposed_ports {
        // `22`, `22/tcp` (a port without protocol is TCP); `22/udp` is not SSH.
        let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        if port.trim() == "22" && proto.trim().eq_ignore_ascii_case("tcp") {
            let mut f = finding(
                &MOAT_IMG_010,
                target,
                format!("The image config exposes {p} (SSH)"),
            );
            f.location.field = Some(format!("config.ExposedPorts[{p}]"));
            out.push(f);
        }
    }
    if cfg.healthcheck.as_ref().is_none_or(|h| h.is_empty()) {
        out.push(finding(
            &MOAT_IMG_002,
            target,
            "The image config has no Healthcheck".into(),
        ));
    }
    for e in &cfg.env {
        if let Some(k) = secret_assignment(e) {
            let mut f = finding(
                &MOAT_IMG_003,
                target,
                format!("Env {k} holds a secret value"),
            );
            f.location.field = Some(format!("config.Env[{k}]"));
            out.push(f);
        }
    }
    let history = cfg
        .history
        .iter()
        .map(|h| h.created_by.as_deref().unwrap_or(""));
    for (n, cb) in history.enumerate() {
        if let Some(k) = secret_assignment(cb) {
            let mut f = finding(
                &MOAT_IMG_004,
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
                &MOAT_IMG_007,
                target,
                format!("history[{n}]: {}", t.chars().take(120).collect::<String>()),
            );
            f.location.field = Some(format!("history[{n}].created_by"));
            out.push(f);
        }
    }
}

/// Secret files a later layer deleted or overwrote: the container no longer sees them, but the
/// earlier layer's blob still holds them, so anyone who can pull the image can read them.
fn check_shadowed_secrets(target: &str, files: &FileView, out: &mut Vec<Finding>) {
    let name = |index: usize, id: &Option<String>| match id {
        Some(id) => format!("layer {index} ({id})"),
        None => format!("layer {index}"),
    };
    for s in files.shadowed() {
        let path = format!("/{}", s.entry.meta.path);
        let Some(kind) = secrets::candidate(&path) else {
            continue;
        };
        let Some(what) = s
            .entry
            .content
            .as_deref()
            .and_then(|c| secrets::confirm(kind, c))
        else {
            continue;
        };
        let how = match s.how {
            moat_image::Removal::Deleted => "deleted",
            moat_image::Removal::Replaced => "overwritten",
        };
        let mut x = finding(
            &MOAT_IMG_009,
            target,
            format!(
                "{path} holds {what}, added in {} and {how} in {}: the container does not see it, but the image's layers still carry it to anyone who pulls them",
                name(s.entry.layer_index, &s.entry.layer),
                name(s.by_layer_index, &s.by_layer),
            ),
        );
        x.location.file = Some(path);
        x.location.layer = s.entry.layer.clone();
        out.push(x);
    }
}

fn check_files(target: &str, files: &FileView, out: &mut Vec<Finding>) {
    check_shadowed_secrets(target, files, out);
    let mut caches: std::collections::BTreeSet<&str> = Default::default();
    for e in files.iter() {
        if matches!(e.meta.kind, EntryKind::Symlink(_)) {
            continue;
        }
        let f = File {
            path: format!("/{}", e.meta.path),
            mode: e.meta.mode,
            is_dir: e.meta.kind == EntryKind::Dir,
            layer: e.layer.clone(),
        };
        if e.meta.kind == EntryKind::File
            && let Some(kind) = secrets::candidate(&f.path)
            && let Some(what) = e.content.as_deref().and_then(|c| secrets::confirm(kind, c))
        {
            let layer = match &f.layer {
                Some(id) => format!("layer {} ({id})", e.layer_index),
                None => "the file tree".to_string(),
            };
            let mut x = finding(
                &MOAT_IMG_009,
                target,
                format!("{} holds {what}, in {layer}", f.path),
            );
            x.location.file = Some(f.path.clone());
            x.location.layer = f.layer.clone();
            out.push(x);
        }
        // Device nodes, FIFOs and sockets: the ones under /dev are the root file system's device
        // files (`/dev/null` is 0666 by design), not files anyone writes content to.
        let special = e.meta.kind == EntryKind::Other;
        if special && (f.path == "/dev" || f.path.starts_with("/dev/")) {
            continue;
        }
        if !f.is_dir && f.mode & 0o6000 != 0 {
            let bits = match (f.mode & 0o4000 != 0, f.mode & 0o2000 != 0) {
                (true, true) => "setuid+setgid",
                (true, false) => "setuid",
                _ => "setgid",
            };
            let mut x = finding(
                &MOAT_IMG_005,
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
                &MOAT_IMG_006,
                target,
                format!(
                    "{} is world-writable (mode {:04o}){}",
                    f.path,
                    f.mode & 0o7777,
                    if special {
                        ", a device node, FIFO or socket outside /dev"
                    } else {
                        ""
                    }
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
            &MOAT_IMG_008,
            target,
            format!("{c} still holds package-manager cache files"),
        );
        x.location.file = Some(c.to_string());
        out.push(x);
    }
}

/// The facts of one entry the file checks read, with the absolute path reports show.
struct File {
    path: String,
    mode: u32,
    is_dir: bool,
    layer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        path: &str,
        mode: u32,
        kind: EntryKind,
        content: Option<&[u8]>,
    ) -> moat_image::FileEntry {
        moat_image::FileEntry {
            meta: FileMeta {
                path: path.into(),
                kind,
                size: content.map_or(0, |c| c.len() as u64),
                mode,
                uid: 0,
                gid: 0,
            },
            layer_index: 1,
            layer: Some("sha256:aaaa".into()),
            content: content.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn secret_files_and_ssh_port() {
        let key =
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretbody\n-----END RSA PRIVATE KEY-----\n";
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let meta = |p: &str, size: u64| FileMeta {
            path: p.into(),
            kind: EntryKind::File,
            size,
            mode: 0o600,
            uid: 0,
            gid: 0,
        };
        // The walk reads the content of candidates only, and never of big files.
        assert_eq!(wants(&meta("root/.ssh/id_rsa", 1700)), Select::Content);
        assert_eq!(wants(&meta("app/.npmrc", 80)), Select::Content);
        assert_eq!(wants(&meta("app/main.py", 80)), Select::Skip);
        assert_eq!(wants(&meta("app/.env", 1 << 30)), Select::Skip);
        let mut files = FileView::new();
        files.insert(entry("root/.ssh/id_rsa", 0o600, EntryKind::File, Some(key)));
        files.insert(entry(
            "etc/ssl/server.pem",
            0o644,
            EntryKind::File,
            Some(cert),
        ));
        files.insert(entry(
            "app/.npmrc",
            0o644,
            EntryKind::File,
            Some(b"//registry.npmjs.org/:_authToken=npm_TOPSECRET\n"),
        ));
        let cfg = ImageConfig {
            user: Some("1000".into()),
            healthcheck: Some(vec!["CMD".into(), "true".into()]),
            exposed_ports: vec!["22/tcp".into(), "8080/tcp".into(), "22/udp".into()],
            ..Default::default()
        };
        let got = check_image("img", Some(&cfg), &files);
        let ids: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|f| {
                (
                    f.id.as_str(),
                    f.location.file.as_deref().or(f.location.field.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                ("MOAT-IMG-010", Some("config.ExposedPorts[22/tcp]")),
                ("MOAT-IMG-009", Some("/app/.npmrc")),
                ("MOAT-IMG-009", Some("/root/.ssh/id_rsa")),
            ]
        );
        let key_finding = &got[2];
        assert_eq!(
            key_finding.message,
            "/root/.ssh/id_rsa holds an RSA private key, in layer 1 (sha256:aaaa)"
        );
        assert_eq!(key_finding.location.layer.as_deref(), Some("sha256:aaaa"));
        assert_eq!(key_finding.aliases, ["CIS-DI-0010"]);
        let all = serde_json::to_string(&got).unwrap();
        assert!(
            !all.contains("TOPSECRET") && !all.contains("secretbody"),
            "{all}"
        );
    }

    #[test]
    fn config_and_files() {
        let cfg = ImageConfig::from_json(
            "cfg.json",
            br#"{"config":{"User":"","Env":["PATH=/usr/bin","DB_PASSWORD=hunter2","KEY_FILE=/run/secrets/k"]},
                "history":[{"created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created_by":"ARG GITHUB_TOKEN=ghp_aaaaaaaaaaaaaaaaaaaaaaaa"},{"created_by":"ADD https://example.com/x.tgz /opt/ # buildkit"}]}"#,
        )
        .unwrap();
        let mut files = FileView::new();
        for (path, mode, kind) in [
            ("usr/bin/passwd", 0o4755, EntryKind::File),
            ("tmp", 0o1777, EntryKind::Dir),
            ("var/app/data", 0o777, EntryKind::Dir),
            (
                "var/lib/apt/lists/deb.debian.org_dists",
                0o644,
                EntryKind::File,
            ),
        ] {
            files.insert(moat_image::FileEntry {
                meta: FileMeta {
                    path: path.into(),
                    kind,
                    size: 0,
                    mode,
                    uid: 0,
                    gid: 0,
                },
                layer_index: 0,
                layer: None,
                content: None,
            });
        }
        let ids: Vec<String> = check_image("img", Some(&cfg), &files)
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
        // A device node under /dev is not a world-writable file; one elsewhere is reported.
        let mut files = FileView::new();
        for (path, mode, kind) in [
            ("dev/null", 0o666, EntryKind::Other),
            ("dev/pts", 0o755, EntryKind::Dir),
            ("opt/pipe", 0o666, EntryKind::Other),
        ] {
            files.insert(entry(path, mode, kind, None));
        }
        let got: Vec<(String, Option<String>)> = check_image("img", None, &files)
            .into_iter()
            .map(|f| (f.id, f.location.file))
            .collect();
        assert_eq!(got, [("MOAT-IMG-006".into(), Some("/opt/pipe".into()))]);
        assert!(
            ImageConfig::from_json("bad.json", b"{")
                .unwrap_err()
                .to_string()
                .contains("bad.json")
        );
    }
}
