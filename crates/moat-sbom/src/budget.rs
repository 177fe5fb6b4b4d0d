//! Budgets of one catalogue run (issue 17): bytes of package databases read, copyright text read and
//! packages kept, charged *cumulatively* — a `status.d` entry or a copyright file linked 3,000 times
//! to one big file is charged 3,000 times — and checked before the bytes are copied or parsed. Over a
//! budget the run stops with an error naming the file and the limit (moat exits 2). Every default
//! can be raised with the environment variable named in the error (see docs/security.md).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::CatalogError;

/// A limit from the environment, or `default` when unset or not a number.
pub fn env_limit(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
}

/// Bytes of package databases (dpkg `status` and `status.d/*`, apk `installed`, rpm databases) given
/// to the OS catalogers in one run, every link and duplicate counted again.
pub const DB_BYTES: u64 = 512 << 20;
/// Largest single dpkg `status` file (Debian with every package installed is about 50 MB).
pub const DPKG_STATUS_BYTES: u64 = 128 << 20;
/// Largest apk `installed` database (a large Alpine image's is a few MB).
pub const APK_DB_BYTES: u64 = 64 << 20;
/// Largest rpm database file.
pub const RPM_DB_BYTES: u64 = 512 << 20;
/// Header bytes read out of one rpm database (ndb/bdb slots pointing at one blob each count).
pub const RPM_HEADER_BYTES: u64 = 256 << 20;
/// Copyright text parsed for licences in one run, links counted again.
pub const COPYRIGHT_BYTES: u64 = 64 << 20;
/// Stanzas (dpkg) or blocks (apk) or headers (rpm) in one database; packages kept in one run.
pub const PACKAGES: u64 = 100_000;

/// One named limit with its running total.
pub struct Meter {
    pub what: &'static str,
    pub var: &'static str,
    pub limit: u64,
    used: AtomicU64,
}

impl Meter {
    fn new(what: &'static str, var: &'static str, default: u64) -> Meter {
        Meter {
            what,
            var,
            limit: env_limit(var, default),
            used: AtomicU64::new(0),
        }
    }

    /// Charges `n` units for `path`; an error (nothing charged) when they do not fit.
    pub fn charge(&self, path: &str, n: u64) -> Result<(), CatalogError> {
        let prev = self.used.fetch_add(n, Ordering::Relaxed);
        if prev.saturating_add(n) <= self.limit {
            return Ok(());
        }
        self.used.fetch_sub(n, Ordering::Relaxed);
        Err(self.over(path, prev.saturating_add(n)))
    }

    pub fn over(&self, path: &str, wanted: u64) -> CatalogError {
        CatalogError::Budget(format!(
            "{path}: over the {} budget of {} ({} wanted, every link and duplicate counted; raise it with {})",
            self.what, self.limit, wanted, self.var
        ))
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// The budgets of one run; make one per catalogue.
pub struct RunBudget {
    pub db_bytes: Meter,
    pub copyright_bytes: Meter,
    pub packages: Meter,
}

impl Default for RunBudget {
    fn default() -> Self {
        RunBudget {
            db_bytes: Meter::new("package-database bytes", "MOAT_MAX_DB_BYTES", DB_BYTES),
            copyright_bytes: Meter::new(
                "copyright bytes",
                "MOAT_MAX_COPYRIGHT_BYTES",
                COPYRIGHT_BYTES,
            ),
            packages: Meter::new("packages", "MOAT_MAX_PACKAGES", PACKAGES),
        }
    }
}

/// The largest file of each package database kind, and the variable that raises it.
pub fn database_file_limit(path: &str) -> Option<(u64, &'static str)> {
    use crate::os::{apk, dpkg, rpm};
    if path == dpkg::STATUS || path.starts_with(dpkg::STATUS_D) {
        Some((
            env_limit("MOAT_MAX_DPKG_STATUS_BYTES", DPKG_STATUS_BYTES),
            "MOAT_MAX_DPKG_STATUS_BYTES",
        ))
    } else if path == apk::INSTALLED {
        Some((
            env_limit("MOAT_MAX_APK_DB_BYTES", APK_DB_BYTES),
            "MOAT_MAX_APK_DB_BYTES",
        ))
    } else if rpm::is_database(path) {
        Some((
            env_limit("MOAT_MAX_RPM_DB_BYTES", RPM_DB_BYTES),
            "MOAT_MAX_RPM_DB_BYTES",
        ))
    } else {
        None
    }
}

/// rpm header bytes one database may yield (`MOAT_MAX_RPM_HEADER_BYTES`).
pub fn rpm_header_bytes() -> u64 {
    env_limit("MOAT_MAX_RPM_HEADER_BYTES", RPM_HEADER_BYTES)
}

/// Entries one database may hold (`MOAT_MAX_PACKAGES`).
pub fn max_db_entries() -> u64 {
    env_limit("MOAT_MAX_PACKAGES", PACKAGES)
}
