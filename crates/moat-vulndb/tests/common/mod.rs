//! Shared test helpers: where ../shared is, and a snapshot of all of data/osv built once per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

pub fn shared() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    if base.join("data/osv").is_dir() {
        Some(base)
    } else {
        eprintln!("SKIPPED: {}/data/osv is missing", base.display());
        None
    }
}

/// A database directory holding an import of all of `data/osv` (built once, kept for the process).
pub fn full_db() -> Option<PathBuf> {
    static DB: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    DB.get_or_init(|| {
        let shared = shared()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        let t = std::time::Instant::now();
        let batch =
            moat_vulndb::import::read_path(&shared.join("data/osv")).expect("import data/osv");
        let n = batch.records.len();
        let meta = moat_vulndb::store::write(&db, batch.records, vec![]).expect("write snapshot");
        let size = std::fs::metadata(db.join(moat_vulndb::store::SNAPSHOT_FILE))
            .expect("snapshot")
            .len();
        eprintln!(
            "imported {n} records ({} warnings) in {:.2?}; snapshot {:.1} MB; digest {}",
            batch.warnings.len(),
            t.elapsed(),
            size as f64 / 1e6,
            meta.digest
        );
        Some((dir, db))
    })
    .as_ref()
    .map(|(_, p)| p.clone())
}
