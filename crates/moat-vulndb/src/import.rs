//! Reading OSV records from what people have: a directory tree of `*.json` (the layout of OSV.dev's
//! bucket and of `../shared/data/osv`), a single record, or an OSV.dev `all.zip` export.
//!
//! A record that does not parse is skipped with a warning naming the file; a zip that cannot be read
//! at all fails the import (so a truncated download never replaces a good snapshot).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::osv::Record;

/// Files and zip entries larger than this are refused (no OSV record comes close).
pub const MAX_RECORD_BYTES: u64 = 32 << 20;
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
    #[error("{0}: no OSV records found (expected *.json records or an all.zip export)")]
    Empty(PathBuf),
}

/// What one import read.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    /// Records skipped, each naming the file and the problem.
    pub warnings: Vec<String>,
}

fn parse_into(batch: &mut Batch, name: &str, bytes: &[u8]) {
    match Record::from_json(bytes) {
        Ok(r) if !r.id.trim().is_empty() => batch.records.push(r.slim()),
        Ok(_) => batch
            .warnings
            .push(format!("{name}: record has an empty id")),
        Err(e) => batch
            .warnings
            .push(format!("{name}: not an OSV record: {e}")),
    }
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
        let f = std::fs::File::open(path).map_err(|source| ImportError::Io {
            path: path.into(),
            source,
        })?;
        read_zip(f, path, &mut batch)?;
    } else {
        let bytes = read_limited(path)?;
        parse_into(&mut batch, &path.display().to_string(), &bytes);
    }
    if batch.records.is_empty() {
        return Err(ImportError::Empty(path.to_path_buf()));
    }
    Ok(batch)
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ImportError> {
    let f = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.into(),
        source,
    })?;
    let mut buf = Vec::new();
    f.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ImportError::Io {
            path: path.into(),
            source,
        })?;
    if buf.len() as u64 > MAX_RECORD_BYTES {
        return Err(ImportError::Io {
            path: path.into(),
            source: std::io::Error::other(format!("larger than {MAX_RECORD_BYTES} bytes")),
        });
    }
    Ok(buf)
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
                let f = std::fs::File::open(&p).map_err(|source| ImportError::Io {
                    path: p.clone(),
                    source,
                })?;
                read_zip(f, &p, batch)?;
            } else if name.ends_with(".json")
                && !name.starts_with('.')
                && name != "HARVESTED_PROVENANCE.json"
            {
                match read_limited(&p) {
                    Ok(bytes) => parse_into(batch, &p.display().to_string(), &bytes),
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
