//! Reading OSV records from what people have: a directory tree of `*.json` (the layout of OSV.dev's
//! bucket and of `../shared/data/osv`), a single record, or an OSV.dev `all.zip` export. NVD CVE API
//! 2.0 records (one `cve` object per file, or an API response) and CVE JSON 5 records found in the
//! same places are told apart by their fields and kept as CVE ratings ([`crate::cve`]).
//!
//! A record that does not parse is skipped with a warning naming the file; a zip that cannot be read
//! at all fails the import (so a truncated download never replaces a good snapshot).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cve::{self, CveRating, Format};
use crate::osv::Record;

/// Files and zip entries larger than this are refused (no OSV record comes close: the largest
/// OSV.dev records are a few MiB).
pub const MAX_RECORD_BYTES: u64 = 16 << 20;
/// The most record bytes one import reads in all, across files, zips and entries: records are kept
/// in memory until the snapshot is written. `MOAT_MAX_IMPORT_BYTES` raises it.
pub const MAX_IMPORT_BYTES: u64 = 4 << 30;

/// The import budget: [`MAX_IMPORT_BYTES`] or `MOAT_MAX_IMPORT_BYTES`.
pub fn import_budget() -> u64 {
    std::env::var("MOAT_MAX_IMPORT_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_IMPORT_BYTES)
}
/// An archive may hold at most this many entries.
pub const MAX_ZIP_ENTRIES: usize = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable zip archive: {msg}")]
    Zip { path: PathBuf, msg: String },
    #[error(
        "{0}: no OSV, NVD or CVE JSON 5 records found (expected *.json records or an all.zip export)"
    )]
    Empty(PathBuf),
    /// Records were found but none could be read: the first reasons, each naming its file and field.
    #[error("{path}: no record could be read: {why}")]
    Unreadable { path: PathBuf, why: String },
    /// A path that is not a regular file or directory (a FIFO, a device), or a refused link.
    #[error("{0}")]
    Refused(String),
    /// The import read more record bytes than its budget allows.
    #[error(
        "{path}: the import reads more than {limit} bytes of OSV records (raise it with MOAT_MAX_IMPORT_BYTES)"
    )]
    OverBudget { path: PathBuf, limit: u64 },
}

/// What one import read.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    /// CVE ratings from NVD and CVE JSON 5 records.
    pub ratings: Vec<CveRating>,
    /// NVD and CVE JSON 5 documents read (a record without any metric adds no rating).
    pub cve_documents: usize,
    /// Records skipped, each naming the file and the problem.
    pub warnings: Vec<String>,
    /// Record bytes read so far, charged against [`import_budget`].
    pub bytes_read: u64,
}

impl Batch {
    /// Charges `n` record bytes read from `path` against the import budget.
    fn charge(&mut self, n: u64, path: &Path) -> Result<(), ImportError> {
        self.bytes_read = self.bytes_read.saturating_add(n);
        let limit = import_budget();
        if self.bytes_read > limit {
            return Err(ImportError::OverBudget {
                path: path.to_path_buf(),
                limit,
            });
        }
        Ok(())
    }
}

fn refused(e: moat_fsio::FsError) -> ImportError {
    ImportError::Refused(e.to_string())
}

fn parse_into(batch: &mut Batch, name: &str, bytes: &[u8]) {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            batch.warnings.push(format!("{name}: not JSON: {e}"));
            return;
        }
    };
    let (kind, parsed) = match cve::detect(&value) {
        Format::Osv => ("", None),
        Format::Nvd => ("NVD CVE API 2.0", Some(cve::from_nvd(&value))),
        Format::Cve5 => ("CVE JSON 5", Some(cve::from_cve5(&value))),
    };
    match parsed {
        Some(Ok(r)) => {
            batch.cve_documents += 1;
            batch.ratings.extend(r);
            return;
        }
        Some(Err(e)) => {
            batch
                .warnings
                .push(format!("{name}: not a valid {kind} record: {e}"));
            return;
        }
        None => {}
    }
    let culprit = bad_field(&value);
    match serde_json::from_value::<Record>(value) {
        Ok(r) if !r.id.trim().is_empty() => batch.records.push(r.slim()),
        Ok(_) => batch
            .warnings
            .push(format!("{name}: record has an empty id")),
        Err(e) => batch.warnings.push(match culprit {
            Some(field) => format!("{name}: not an OSV record: field `{field}`: {e}"),
            None => format!("{name}: not an OSV record: {e}"),
        }),
    }
}

/// The top-level field whose value makes a record fail to deserialize (a wrong-typed `affected`,
/// `aliases` or `id`), found only when it fails: each field is tried alone beside a valid id.
fn bad_field(value: &serde_json::Value) -> Option<String> {
    let obj = value.as_object()?;
    if serde_json::from_value::<Record>(value.clone()).is_ok() {
        return None;
    }
    for (k, v) in obj {
        let mut one = serde_json::Map::new();
        one.insert("id".into(), serde_json::Value::String("X".into()));
        one.insert(k.clone(), v.clone());
        if serde_json::from_value::<Record>(serde_json::Value::Object(one)).is_err() {
            return Some(k.clone());
        }
    }
    None
}

/// Reads every record under `path` (directory, `.json` file or `.zip` archive).
pub fn read_path(path: &Path) -> Result<Batch, ImportError> {
    let meta = std::fs::metadata(path).map_err(|source| ImportError::Io {
        path: path.into(),
        source,
    })?;
    let mut batch = Batch::default();
    if meta.is_dir() {
        walk(path, &mut batch, 0)?;
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        let f = moat_fsio::open_regular(path, moat_fsio::Follow::Always).map_err(refused)?;
        read_zip(f, path, &mut batch)?;
    } else {
        let bytes = read_limited(path, moat_fsio::Follow::Always)?;
        batch.charge(bytes.len() as u64, path)?;
        parse_into(&mut batch, &path.display().to_string(), &bytes);
    }
    if batch.records.is_empty() && batch.cve_documents == 0 {
        if !batch.warnings.is_empty() {
            let mut why: Vec<String> = batch.warnings.iter().take(3).cloned().collect();
            if batch.warnings.len() > 3 {
                why.push(format!("and {} more", batch.warnings.len() - 3));
            }
            return Err(ImportError::Unreadable {
                path: path.to_path_buf(),
                why: why.join("; "),
            });
        }
        return Err(ImportError::Empty(path.to_path_buf()));
    }
    Ok(batch)
}

/// Reads one record file: a regular file only (never a FIFO or device), within [`MAX_RECORD_BYTES`].
fn read_limited(path: &Path, follow: moat_fsio::Follow) -> Result<Vec<u8>, ImportError> {
    moat_fsio::read_regular(
        path,
        follow,
        &moat_fsio::Budget::new(MAX_RECORD_BYTES, "one OSV record", "a smaller record"),
    )
    .map_err(refused)
}

fn walk(dir: &Path, batch: &mut Batch, depth: usize) -> Result<(), ImportError> {
    if depth > 16 {
        batch.warnings.push(format!(
            "{}: directory nesting deeper than 16, skipped",
            dir.display()
        ));
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| ImportError::Io {
        path: dir.into(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        // Never follow symlinks out of the tree being imported.
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            walk(&p, batch, depth + 1)?;
        } else if m.is_file() {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".zip") {
                let f = moat_fsio::open_regular(&p, moat_fsio::Follow::Never).map_err(refused)?;
                read_zip(f, &p, batch)?;
            } else if name.ends_with(".json")
                && !name.starts_with('.')
                && name != "HARVESTED_PROVENANCE.json"
            {
                match read_limited(&p, moat_fsio::Follow::Never) {
                    Ok(bytes) => {
                        batch.charge(bytes.len() as u64, &p)?;
                        parse_into(batch, &p.display().to_string(), &bytes)
                    }
                    Err(e) => batch.warnings.push(e.to_string()),
                }
            }
        }
    }
    Ok(())
}

/// Reads every `*.json` entry of a zip archive.
pub fn read_zip<R: Read + std::io::Seek>(
    r: R,
    path: &Path,
    batch: &mut Batch,
) -> Result<(), ImportError> {
    let zerr = |e: zip::result::ZipError| ImportError::Zip {
        path: path.into(),
        msg: e.to_string(),
    };
    let mut z = zip::ZipArchive::new(r).map_err(zerr)?;
    if z.len() > MAX_ZIP_ENTRIES {
        return Err(ImportError::Zip {
            path: path.into(),
            msg: format!("more than {MAX_ZIP_ENTRIES} entries"),
        });
    }
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(zerr)?;
        let entry = e
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| format!("entry {i}"));
        if !e.is_file() || !entry.ends_with(".json") {
            continue;
        }
        let name = format!("{}!{entry}", path.display());
        let mut buf = Vec::new();
        (&mut e)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|err| ImportError::Zip {
                path: path.into(),
                msg: format!("{entry}: {err}"),
            })?;
        batch.charge(buf.len() as u64, path)?;
        if buf.len() as u64 > MAX_RECORD_BYTES {
            batch.warnings.push(format!(
                "{name}: larger than {MAX_RECORD_BYTES} bytes, skipped"
            ));
            continue;
        }
        parse_into(batch, &name, &buf);
    }
    Ok(())
}
