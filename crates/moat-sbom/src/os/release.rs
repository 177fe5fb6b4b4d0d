//! Which distribution an image is: `/etc/os-release` (or `/usr/lib/os-release`), else the
//! distribution-specific fallback files.

use moat_image::{FileMeta, FileView, Select};
use moat_model::OsRelease;

/// Files distribution detection reads.
pub const FILES: [&str; 6] = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/redhat-release",
    "etc/lsb-release",
];

pub fn wants(meta: &FileMeta) -> Select {
    if FILES.contains(&meta.path.as_str()) {
        Select::Content
    } else {
        Select::Skip
    }
}

fn text<'a>(view: &'a FileView, path: &str) -> Option<&'a str> {
    view.resolve(path)
        .and_then(|e| e.content.as_deref())
        .and_then(|b| std::str::from_utf8(b).ok())
}

/// Parses os-release `KEY=value` lines (values optionally quoted).
pub fn parse_os_release(s: &str) -> Option<OsRelease> {
    let mut r = OsRelease::default();
    for line in s.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => r.id = v.to_ascii_lowercase(),
            "VERSION_ID" => r.version_id = Some(v),
            "VERSION_CODENAME" => r.version_codename = Some(v),
            "PRETTY_NAME" => r.pretty_name = Some(v),
            _ => {}
        }
    }
    if r.id.is_empty() { None } else { Some(r) }
}

pub fn detect(view: &FileView) -> Option<OsRelease> {
    for p in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(r) = text(view, p).and_then(parse_os_release) {
            return Some(r);
        }
    }
    if let Some(v) = text(view, "etc/alpine-release") {
        return Some(OsRelease {
            id: "alpine".into(),
            version_id: Some(v.trim().to_string()),
            ..Default::default()
        });
    }
    if let Some(v) = text(view, "etc/debian_version") {
        let v = v.trim();
        let major = v.split('.').next().unwrap_or(v);
        return Some(OsRelease {
            id: "debian".into(),
            version_id: Some(major.to_string()),
            ..Default::default()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_os_release() {
        let r = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        );
        assert_eq!(r.as_ref().map(|r| r.id.as_str()), Some("debian"));
        assert_eq!(r.and_then(|r| r.version_id), Some("12".to_string()));
        assert!(parse_os_release("garbage").is_none());
    }
}
