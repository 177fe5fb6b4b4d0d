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
    // Links that leave the image were refused before detection ([`crate::check_links`]).
    view.resolve_checked(path)
        .ok()
        .flatten()
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

/// `/etc/redhat-release`: `Red Hat Enterprise Linux release 8.9 (Ootpa)`, `CentOS Linux release
/// 7.9.2009 (Core)`, `Rocky Linux release 9.2 (Blue Onyx)`, `Fedora release 38 (Thirty Eight)`.
pub fn parse_redhat_release(s: &str) -> Option<OsRelease> {
    let line = s.lines().next()?.trim();
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next()?.to_string();
    let lower = name.to_ascii_lowercase();
    let id = [
        ("red hat", "rhel"),
        ("centos", "centos"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("fedora", "fedora"),
        ("oracle", "ol"),
        ("amazon", "amzn"),
    ]
    .iter()
    .find(|(k, _)| lower.contains(k))
    .map(|(_, id)| id.to_string())?;
    Some(OsRelease {
        id,
        version_id: Some(version),
        pretty_name: Some(line.to_string()),
        ..Default::default()
    })
}

/// `/etc/lsb-release` (`DISTRIB_ID=Ubuntu`, `DISTRIB_RELEASE=22.04`, `DISTRIB_CODENAME=jammy`).
pub fn parse_lsb_release(s: &str) -> Option<OsRelease> {
    let mut r = OsRelease::default();
    for line in s.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "DISTRIB_ID" => r.id = v.to_ascii_lowercase(),
            "DISTRIB_RELEASE" => r.version_id = Some(v),
            "DISTRIB_CODENAME" => r.version_codename = Some(v),
            "DISTRIB_DESCRIPTION" => r.pretty_name = Some(v),
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
    if let Some(r) = text(view, "etc/redhat-release").and_then(parse_redhat_release) {
        return Some(r);
    }
    if let Some(r) = text(view, "etc/lsb-release").and_then(parse_lsb_release) {
        return Some(r);
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
        let rh =
            parse_redhat_release("Red Hat Enterprise Linux release 8.9 (Ootpa)\n").expect("rhel");
        assert_eq!(
            (rh.id.as_str(), rh.version_id.as_deref()),
            ("rhel", Some("8.9"))
        );
        let c = parse_redhat_release("CentOS Linux release 7.9.2009 (Core)").expect("centos");
        assert_eq!(
            (c.id.as_str(), c.version_id.as_deref()),
            ("centos", Some("7.9.2009"))
        );
        assert!(parse_redhat_release("something else").is_none());
        let u = parse_lsb_release("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n").expect("ubuntu");
        assert_eq!(
            (u.id.as_str(), u.version_id.as_deref()),
            ("ubuntu", Some("22.04"))
        );
    }
}
