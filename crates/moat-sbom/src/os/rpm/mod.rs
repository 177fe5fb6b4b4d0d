//! RPM packages from the package database, in all three formats rpm has used: SQLite (`rpmdb.sqlite`,
//! Fedora 33+, RHEL 9), ndb (`Packages.db`, SUSE) and Berkeley DB (`Packages`, RHEL ≤ 8, CentOS). The
//! databases are read from memory by our own readers (no file is written, no C library is linked):
//! each gives header blobs, [`header`] reads the package fields from them.

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::{OsRelease, Package, PackageKind, Purl, SourcePackage};

use crate::{CatalogError, Cataloger, Context};

pub use header::RpmHeader;

/// Where rpm keeps its database: the classic path and the `/usr` one (Fedora 36+, SUSE).
const DIRS: [&str; 2] = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"];
const FILES: [&str; 3] = ["rpmdb.sqlite", "Packages.db", "Packages"];

/// A malformed database, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DbError(pub String);

/// What one database may yield (issue 17): header bytes and records, counted for every slot or row
/// even when several point at the same blob, and checked before each copy.
pub(crate) struct Quota {
    bytes: u64,
    records: u64,
    max_bytes: u64,
    max_records: u64,
}

/// Prefix of a [`DbError`] that is a spent budget (the catalogue stops, it is not a warning).
pub(crate) const OVER_BUDGET: &str = "limit exceeded: ";

impl Quota {
    pub(crate) fn new() -> Quota {
        Quota {
            bytes: 0,
            records: 0,
            max_bytes: crate::budget::rpm_header_bytes(),
            max_records: crate::budget::max_db_entries(),
        }
    }

    /// Charges one record of `len` bytes (`what` names it).
    pub(crate) fn take(&mut self, len: u64, what: &str) -> Result<(), DbError> {
        self.records += 1;
        self.bytes = self.bytes.saturating_add(len);
        if self.records > self.max_records {
            return Err(DbError(format!(
                "{OVER_BUDGET}{what}: more than {} package records (packages budget; raise it with MOAT_MAX_PACKAGES)",
                self.max_records
            )));
        }
        if self.bytes > self.max_bytes {
            return Err(DbError(format!(
                "{OVER_BUDGET}{what}: header bytes read from the database pass {} (every slot counted, duplicates too; raise it with MOAT_MAX_RPM_HEADER_BYTES)",
                self.max_bytes
            )));
        }
        Ok(())
    }
}

/// The header blobs of a database in any of the three formats, detected from its first bytes.
pub fn blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DbError> {
    if bytes.starts_with(b"SQLite format 3\0") {
        sqlite::blobs(bytes)
    } else if ndb::is_ndb(bytes) {
        ndb::blobs(bytes)
    } else if bdb::is_bdb_hash(bytes) {
        bdb::blobs(bytes)
    } else {
        Err(DbError(
            "not an rpm database (neither SQLite, ndb nor Berkeley DB hash)".into(),
        ))
    }
}

/// Every package header in a database. `gpg-pubkey` entries (imported signing keys, which
/// `rpm -qa` lists) are not software and are left out.
pub fn headers(bytes: &[u8]) -> Result<Vec<RpmHeader>, DbError> {
    let mut out = Vec::new();
    for (i, b) in blobs(bytes)?.iter().enumerate() {
        let h =
            header::parse(b).map_err(|e| DbError(format!("package record {}: {}", i + 1, e.0)))?;
        if h.name.is_empty() || h.name == "gpg-pubkey" {
            continue;
        }
        out.push(h);
    }
    Ok(out)
}

/// The purl namespace for a distribution id, as the purl spec's rpm examples spell vendors.
/// Without a known distribution, the package's vendor names it.
fn namespace(os: Option<&OsRelease>, vendor: &str) -> String {
    match os.map(|o| o.id.as_str()).unwrap_or("") {
        "" => {
            let v = vendor.to_ascii_lowercase();
            [
                ("suse", "suse"),
                ("fedora", "fedora"),
                ("centos", "centos"),
                ("rocky", "rocky"),
                ("almalinux", "almalinux"),
                ("amazon", "amazon"),
                ("oracle", "oracle"),
                ("microsoft", "mariner"),
            ]
            .iter()
            .find(|(k, _)| v.contains(k))
            .map_or("redhat", |(_, ns)| ns)
            .to_string()
        }
        "rhel" => "redhat".into(),
        "amzn" => "amazon".into(),
        "sles" | "sled" | "sle-micro" => "suse".into(),
        id if id.starts_with("opensuse") => "opensuse".into(),
        id => id.into(),
    }
}

/// `name-version-release.src.rpm` → (name, version-release).
pub fn split_source_rpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_string(), format!("{version}-{release}")))
}

pub fn package(h: &RpmHeader, os: Option<&OsRelease>) -> Package {
    let vr = if h.release.is_empty() {
        h.version.clone()
    } else {
        format!("{}-{}", h.version, h.release)
    };
    let epoch = h.epoch.filter(|e| *e != 0);
    let version = match epoch {
        Some(e) => format!("{e}:{vr}"),
        None => vr.clone(),
    };
    let arch = Some(h.arch.clone()).filter(|a| !a.is_empty() && a != "(none)");
    let mut purl = Purl::new("rpm", &h.name)
        .with_namespace(namespace(os, &h.vendor))
        .with_version(&vr);
    if let Some(a) = &arch {
        purl = purl.with_qualifier("arch", a);
    }
    if let Some(e) = epoch {
        purl = purl.with_qualifier("epoch", e.to_string());
    }
    if let Some(o) = os
        && let Some(v) = o.version_id.as_deref().filter(|v| !v.is_empty())
    {
        purl = purl.with_qualifier("distro", format!("{}-{v}", o.id));
    }
    // The source rpm has no epoch of its own; it shares the binary's, as rpm builds them together.
    let source = split_source_rpm(&h.source_rpm).map(|(n, v)| SourcePackage {
        name: n,
        version: match epoch {
            Some(e) => format!("{e}:{v}"),
            None => v,
        },
    });
    Package {
        name: h.name.clone(),
        version,
        kind: PackageKind::Rpm,
        arch,
        source,
        licenses: if h.license.is_empty() {
            Vec::new()
        } else {
            vec![h.license.clone()]
        },
        purl,
        path: None,
        layer: None,
        direct: None,
    }
}

/// Every path an rpm database may be at.
pub fn database_paths() -> Vec<String> {
    DIRS.iter()
        .flat_map(|d| FILES.iter().map(move |f| format!("{d}{f}")))
        .collect()
}

/// Whether `path` is one of [`database_paths`], without allocating (asked for every selected file).
pub fn is_database(path: &str) -> bool {
    DIRS.iter()
        .any(|d| path.strip_prefix(d).is_some_and(|f| FILES.contains(&f)))
}

pub struct Rpm;

impl Cataloger for Rpm {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn wants(&self, meta: &FileMeta) -> Select {
        for d in DIRS {
            if let Some(f) = meta.path.strip_prefix(d)
                && FILES.contains(&f)
            {
                // Too big to read: kept as metadata so the run is refused with its size (lib.rs).
                let max = crate::budget::database_file_limit(&meta.path)
                    .map_or(crate::budget::RPM_DB_BYTES, |l| l.0);
                return if meta.size > max {
                    Select::Meta
                } else {
                    Select::Content
                };
            }
        }
        Select::Skip
    }

    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        let Some(bytes) = file.content.as_deref() else {
            return Ok(Vec::new());
        };
        // A leftover Berkeley DB next to the database rpm now uses is stale: read the newer one only.
        let path = file.meta.path.as_str();
        if let Some(dir) = path.strip_suffix("Packages") {
            for newer in ["rpmdb.sqlite", "Packages.db"] {
                if ctx.view.get(&format!("{dir}{newer}")).is_some() {
                    return Ok(Vec::new());
                }
            }
        }
        let hs = headers(bytes).map_err(|e| match e.0.strip_prefix(OVER_BUDGET) {
            Some(m) => CatalogError::Budget(format!("{path}: {m}")),
            None => CatalogError::Invalid(e.0),
        })?;
        ctx.budget.packages.charge(path, hs.len() as u64)?;
        Ok(hs.iter().map(|h| package(h, ctx.os.as_ref())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_source_rpm("curl-7.76.0-6.cm2.src.rpm"),
            Some(("curl".into(), "7.76.0-6.cm2".into()))
        );
        assert_eq!(
            split_source_rpm("python3-pip-21.2.3-6.el9.src.rpm"),
            Some(("python3-pip".into(), "21.2.3-6.el9".into()))
        );
        assert_eq!(split_source_rpm("(none)"), None);
    }

    #[test]
    fn hostile_databases_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"SQLite format 3\0",
            b"RpmP\0\0\0\0\0\0\0\0\x01\0\0\0",
            &[0u8; 64][..],
        ] {
            assert!(blobs(bytes).is_err());
        }
        let mut bdb = vec![0u8; 512];
        bdb[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
        bdb[20..24].copy_from_slice(&512u32.to_le_bytes());
        bdb[32..36].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        assert!(blobs(&bdb).is_err());
    }
}
