//! The image fixtures `../shared/scripts/debian-image.sh` (and the lang-image script) build under
//! `~/.cache/moat-fixtures` (`MOAT_FIXTURES` overrides): `<suite>/oci` (an OCI layout tagged with the
//! suite), `<suite>/rootfs`, `<suite>/docker.tar`, each suite finished when `<suite>/.done` exists.

use std::path::PathBuf;

/// Where the fixtures live, whether or not they were built.
pub fn fixtures_root() -> Option<PathBuf> {
    std::env::var_os("MOAT_FIXTURES")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/moat-fixtures")))
}

/// A built Debian image fixture (`bookworm`, `bullseye`): its folder, or a visible skip (None; a
/// failure in CI) naming the script that builds it.
pub fn debian(suite: &str) -> Option<PathBuf> {
    let Some(root) = fixtures_root() else {
        crate::skip("no HOME for the image fixtures");
        return None;
    };
    let dir = root.join(suite);
    if dir.join(".done").exists() {
        Some(dir)
    } else {
        crate::skip(&format!(
            "{} missing (run ../shared/scripts/debian-image.sh {suite})",
            dir.display()
        ));
        None
    }
}

/// The Debian fixtures among `suites` that are built; a visible skip (empty) when none is.
pub fn debian_any(suites: &[&'static str]) -> Vec<&'static str> {
    let built: Vec<&'static str> = match fixtures_root() {
        Some(root) => suites
            .iter()
            .copied()
            .filter(|s| root.join(s).join(".done").exists())
            .collect(),
        None => Vec::new(),
    };
    if built.is_empty() {
        crate::skip(&format!(
            "no Debian image fixture ({}) under ~/.cache/moat-fixtures (../shared/scripts/debian-image.sh builds them)",
            suites.join(", ")
        ));
    }
    built
}
