//! OS package catalogers: dpkg, apk, rpm; and distribution detection.

pub mod apk;
pub mod dpkg;
pub mod release;
pub mod rpm;

use crate::Cataloger;

pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![
        Box::new(dpkg::Dpkg::default()),
        Box::new(apk::Apk),
        Box::new(rpm::Rpm),
    ]
}

/// The fixed paths of every package database and release file, checked for hostile links before any
/// is read ([`crate::check_links`]).
pub fn database_paths() -> Vec<String> {
    let mut out: Vec<String> = release::FILES.iter().map(|s| s.to_string()).collect();
    out.push(dpkg::STATUS.into());
    out.push(dpkg::STATUS_D.trim_end_matches('/').into());
    out.push(apk::INSTALLED.into());
    out.extend(rpm::database_paths());
    out
}

/// Whether `path` is a package database file an OS cataloger reads.
pub fn is_database(path: &str) -> bool {
    path == dpkg::STATUS
        || path == apk::INSTALLED
        || path
            .strip_prefix(dpkg::STATUS_D)
            .is_some_and(|n| !n.is_empty() && !n.contains('/'))
        || rpm::is_database(path)
}
