//! Dev-only helpers shared by moat's test suites. Never a dependency of a shipped crate.
//!
//! A test that needs `../shared` (the project's read-only data and scripts) calls [`shared`] or
//! [`shared_path`]. Where it is missing the test is *visibly* skipped (a `SKIPPED:` line on stderr and in
//! [`SKIP_LOG`]); in CI (`CI=true`) a missing `../shared` is a failure, never a silent pass.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// Headless Chromium over the DevTools protocol (feature `chromium`; the dashboard tests use it).
#[cfg(feature = "chromium")]
pub mod chromium;

/// A real OCI registry on loopback (../shared/scripts/registry.sh) with a Drop guard, and skopeo pushes.
pub mod registry;

/// The Debian image fixtures under `~/.cache/moat-fixtures`, with visible skips.
pub mod fixtures;

/// A real PostgreSQL cluster in a temp dir on loopback, stopped on Drop.
pub mod postgres;

/// Appended to by every skip, so a run can count them (`scripts/test.sh` prints the total).
pub const SKIP_LOG: &str = "/tmp/moat-test-skips.log";

/// The `shared/` folder beside the project root (`MOAT_SHARED` overrides), if it exists.
pub fn shared_root() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    base.is_dir().then_some(base)
}

/// `shared/<rel>`, or a visible skip (None) where it is missing; panics in CI, where it must exist.
pub fn shared_path(rel: &str) -> Option<PathBuf> {
    match shared_root().map(|s| s.join(rel)) {
        Some(p) if p.exists() => Some(p),
        other => {
            let shown =
                other.map_or_else(|| format!("../shared/{rel}"), |p| p.display().to_string());
            skip(&format!("{shown} is missing"));
            None
        }
    }
}

/// The `shared/` folder, or a visible skip (None); panics in CI.
pub fn shared() -> Option<PathBuf> {
    match shared_root() {
        Some(p) => Some(p),
        None => {
            skip("../shared is missing");
            None
        }
    }
}

/// Records a skip visibly; in CI a skip for a missing requirement is a failure.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("required test input missing in CI: {why}");
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED: {test}: {why}");
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIP_LOG)
    {
        let _ = writeln!(f, "{test}: {why}");
    }
}

/// Skips the calling test (returns) unless `shared/<rel>` exists; evaluates to the path.
#[macro_export]
macro_rules! require_shared {
    ($rel:expr) => {
        match $crate::shared_path($rel) {
            Some(p) => p,
            None => return,
        }
    };
}
