//! Language ecosystem catalogers: npm, Python, Go, Rust, Java.
//!
//! Each ecosystem has one file. Lockfiles and package metadata are parsed with bounded, well-kept
//! parsers (serde_json, toml, serde-saphyr, roxmltree all refuse runaway nesting); every file is read
//! only after a size check, so a hostile lockfile becomes a [`CatalogError`] naming the file and the
//! scan goes on.

pub mod binary;
pub mod go;
pub mod java;
pub mod npm;
pub mod python;
pub mod rust;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use moat_image::{EntryKind, FileEntry, FileMeta, Select};
use moat_model::{Package, PackageKind, Purl};

use crate::{CatalogError, Cataloger, Context};

pub use binary::{MAX_BINARIES_TOTAL, MAX_BINARY};
pub use java::ArchiveLimits;

/// Every language cataloger.
pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    // One budget for all formats: a scan reads at most MAX_OVERSIZE_READ bytes of oversize files.
    let oversize: Oversize = Arc::default();
    vec![
        limited(npm::PackageLock, MAX_TEXT, &oversize),
        limited(npm::YarnLock, MAX_TEXT, &oversize),
        limited(npm::PnpmLock, MAX_TEXT, &oversize),
        limited(npm::NodeModules, MAX_MANIFEST, &oversize),
        limited(python::Installed, MAX_METADATA, &oversize),
        limited(python::Requirements, MAX_METADATA, &oversize),
        limited(python::PoetryLock, MAX_TEXT, &oversize),
        limited(python::PipfileLock, MAX_TEXT, &oversize),
        limited(python::UvLock, MAX_TEXT, &oversize),
        limited(python::PyLock, MAX_TEXT, &oversize),
        limited(go::GoMod, MAX_METADATA, &oversize),
        limited(rust::CargoLock, MAX_TEXT, &oversize),
        Box::new(binary::Binaries::default()),
        Box::new(java::Archives::default()),
        limited(java::PomXml, MAX_METADATA, &oversize),
        limited(java::GradleLock, MAX_TEXT, &oversize),
    ]
}

/// Largest `package.json` of an installed npm package.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// Largest go.mod / go.sum, pom.xml, requirements file or Python core metadata file.
pub(crate) const MAX_METADATA: u64 = 16 << 20;
/// Largest file ever read to refuse it, and the most bytes of such files read per scan. It equals
/// the image reader's own per-file cap, past which the reader would refuse the whole image, so
/// larger files are never selected (and so cannot be warned about).
pub(crate) const MAX_OVERSIZE_READ: u64 = 256 << 20;

/// Bytes of oversize files selected so far in a scan, and their paths (asked twice, answer the same).
type Oversize = Arc<Mutex<(u64, HashSet<String>)>>;

fn limited<C: Cataloger + 'static>(
    inner: C,
    limit: u64,
    oversize: &Oversize,
) -> Box<dyn Cataloger> {
    Box::new(SizeLimited {
        inner,
        limit,
        oversize: oversize.clone(),
    })
}

/// A cataloger for a format with a size limit. The inner cataloger chooses files by name; a file
/// over the limit is still read (once, within [`MAX_OVERSIZE_READ`] per scan) so that refusing it
/// is a warning naming the file instead of silence.
struct SizeLimited<C> {
    inner: C,
    limit: u64,
    oversize: Oversize,
}

impl<C: Cataloger> Cataloger for SizeLimited<C> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn wants(&self, m: &FileMeta) -> Select {
        if m.size <= self.limit {
            return self.inner.wants(m);
        }
        let capped = FileMeta {
            size: self.limit,
            ..m.clone()
        };
        if self.inner.wants(&capped) != Select::Content || m.size > MAX_OVERSIZE_READ {
            return Select::Skip;
        }
        let mut big = self.oversize.lock().unwrap_or_else(|e| e.into_inner());
        if big.1.contains(&m.path) {
            return Select::Content;
        }
        if big.0 + m.size > MAX_OVERSIZE_READ {
            return Select::Skip;
        }
        big.0 += m.size;
        big.1.insert(m.path.clone());
        Select::Content
    }
    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        let len = file.content.as_ref().map_or(0, |c| c.len() as u64);
        if len > self.limit {
            return Err(CatalogError::TooLarge { limit: self.limit });
        }
        self.inner.catalog(file, ctx)
    }
}

/// Largest lockfile or metadata file read (real lockfiles of very large monorepos stay well below).
pub(crate) const MAX_TEXT: u64 = 64 << 20;

/// The file name of an image path.
pub(crate) fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The parent directory of an image path (empty at the root).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// A regular file no larger than `limit`.
pub(crate) fn is_file_within(meta: &FileMeta, limit: u64) -> bool {
    meta.kind == EntryKind::File && meta.size <= limit
}

/// The content of a selected file as UTF-8 text (a UTF-8 BOM is dropped; UTF-16 with a BOM is
/// decoded, as Windows editors write requirements files that way).
pub(crate) fn text(file: &FileEntry) -> Result<std::borrow::Cow<'_, str>, CatalogError> {
    let bytes = file.content.as_deref().unwrap_or_default();
    if bytes.len() as u64 > MAX_TEXT {
        return Err(CatalogError::TooLarge { limit: MAX_TEXT });
    }
    decode_text(bytes)
}

pub fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, CatalogError> {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units)
            .map(std::borrow::Cow::Owned)
            .map_err(|_| CatalogError::Invalid("invalid UTF-16 text".into()))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        _ => {
            let b = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
            std::str::from_utf8(b)
                .map(std::borrow::Cow::Borrowed)
                .map_err(|e| {
                    CatalogError::Invalid(format!("not UTF-8 text (byte {})", e.valid_up_to()))
                })
        }
    }
}

/// A language package record with its purl.
pub(crate) fn package(kind: PackageKind, name: &str, version: &str, purl: Purl) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        kind,
        arch: None,
        source: None,
        licenses: Vec::new(),
        purl,
        path: None,
        layer: None,
        direct: None,
    }
}

/// `pkg:npm/%40scope/name@1.0.0`: the scope is the namespace.
pub(crate) fn npm_package(name: &str, version: &str) -> Package {
    let purl = match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, n)) => Purl::new("npm", n).with_namespace(format!("@{scope}")),
        None => Purl::new("npm", name),
    }
    .with_version(version);
    package(PackageKind::Npm, name, version, purl)
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `pkg:pypi/requests@2.19.1` with the PEP 503 name; the package keeps the name as written.
pub(crate) fn python_package(name: &str, version: &str) -> Package {
    package(
        PackageKind::Python,
        name,
        version,
        Purl::new("pypi", pep503(name)).with_version(version),
    )
}

/// `pkg:golang/github.com/x/y@v1.2.3`: all but the last path element is the namespace.
pub(crate) fn go_package(module: &str, version: &str) -> Package {
    let purl = match module.rsplit_once('/') {
        Some((ns, n)) => Purl::new("golang", n).with_namespace(ns),
        None => Purl::new("golang", module),
    }
    .with_version(version);
    package(PackageKind::Go, module, version, purl)
}

/// `pkg:cargo/serde@1.0.0`.
pub(crate) fn cargo_package(name: &str, version: &str) -> Package {
    package(
        PackageKind::Cargo,
        name,
        version,
        Purl::new("cargo", name).with_version(version),
    )
}

/// `pkg:maven/group/artifact@1.0`; the package name is `group:artifact`, as advisories name it.
pub(crate) fn maven_package(group: &str, artifact: &str, version: &str) -> Package {
    let purl = Purl::new("maven", artifact)
        .with_namespace(group)
        .with_version(version);
    package(
        PackageKind::Maven,
        &format!("{group}:{artifact}"),
        version,
        purl,
    )
}

/// Keeps the first record of each (name, version) in order: lockfiles list a package once per
/// place it is required from.
pub(crate) fn dedup(pkgs: &mut Vec<Package>) {
    let mut seen = std::collections::HashSet::new();
    pkgs.retain(|p| seen.insert((p.name.clone(), p.version.clone(), p.path.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_files_are_read_to_be_refused_within_a_budget() {
        let meta = |path: &str, size: u64| FileMeta {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let c = SizeLimited {
            inner: rust::CargoLock,
            limit: MAX_TEXT,
            oversize: Oversize::default(),
        };
        assert_eq!(c.wants(&meta("a/Cargo.lock", 1000)), Select::Content);
        assert_eq!(
            c.wants(&meta("a/Cargo.toml", MAX_TEXT + 1)),
            Select::Skip,
            "name decides first"
        );
        assert_eq!(
            c.wants(&meta("b/Cargo.lock", 200 << 20)),
            Select::Content,
            "oversize: read to be refused"
        );
        assert_eq!(
            c.wants(&meta("b/Cargo.lock", 200 << 20)),
            Select::Content,
            "asked again: same answer"
        );
        assert_eq!(
            c.wants(&meta("c/Cargo.lock", 200 << 20)),
            Select::Skip,
            "over the oversize budget"
        );
        assert_eq!(
            c.wants(&meta("d/Cargo.lock", MAX_OVERSIZE_READ + 1)),
            Select::Skip,
            "over the image reader's cap"
        );
    }

    #[test]
    fn purls() {
        assert_eq!(
            npm_package("@babel/core", "7.0.0").purl.to_string(),
            "pkg:npm/%40babel/core@7.0.0"
        );
        assert_eq!(
            npm_package("lodash", "4.17.15").purl.to_string(),
            "pkg:npm/lodash@4.17.15"
        );
        assert_eq!(
            python_package("Jinja2", "2.10").purl.to_string(),
            "pkg:pypi/jinja2@2.10"
        );
        assert_eq!(pep503("zope.interface__x"), "zope-interface-x");
        assert_eq!(
            go_package("github.com/x/y", "v1.2.3").purl.to_string(),
            "pkg:golang/github.com/x/y@v1.2.3"
        );
        assert_eq!(
            cargo_package("serde", "1.0.0").purl.to_string(),
            "pkg:cargo/serde@1.0.0"
        );
        assert_eq!(
            maven_package("org.a", "b", "1.0").purl.to_string(),
            "pkg:maven/org.a/b@1.0"
        );
    }
}
