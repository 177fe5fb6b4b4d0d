//! Compiled binaries: Go's build information (`.go.buildinfo`: main module, dependencies, Go
//! version, which becomes the `stdlib` package) and cargo-auditable's `.dep-v0` section (Rust).
//!
//! Trade-off: whether a file is an ELF binary is only known from its content, and catalogers choose
//! files from metadata alone, so executable regular files between 4 KiB and [`MAX_BINARY`] (shared
//! libraries and scripts excluded by name) are read into memory while the image is collected, and
//! stay there until cataloguing ends. Peak memory therefore grows with the total size of an image's
//! executables (≈ 45 MB for bookworm plus one Go tool); [`MAX_BINARIES_TOTAL`] caps it per scan.
//! Executables beyond the cap, or larger than `MAX_BINARY`, are not read, so their Go or Rust
//! dependencies are not listed. Only ELF is parsed (Linux images).

use std::collections::HashSet;
use std::io::Read;
use std::sync::Mutex;

use moat_image::{EntryKind, FileEntry, FileMeta, Select};
use moat_model::{Package, PackageKind, Purl};
use object::{Object, ObjectSection};
use serde::Deserialize;

use super::{base, cargo_package, go_package, package};
use crate::{CatalogError, Cataloger, Context};

/// Largest executable read whole (Go binaries of big tools reach ~150 MB).
pub const MAX_BINARY: u64 = 256 << 20;

/// Names that are never Go or Rust programs but often carry the executable bit.
fn not_a_program(name: &str) -> bool {
    const EXT: [&str; 12] = [
        ".sh", ".py", ".pl", ".rb", ".js", ".txt", ".md", ".json", ".jar", ".a", ".o", ".pyc",
    ];
    name.contains(".so") || EXT.iter().any(|e| name.ends_with(e))
}

/// Most bytes of executables one scan holds in memory.
pub const MAX_BINARIES_TOTAL: u64 = 1 << 30;

/// Go and Rust binaries. Remembers what it selected, so the memory budget holds across layers and
/// the second `wants` call (when the caller hands out files) answers the same.
#[derive(Default)]
pub struct Binaries {
    selected: Mutex<(u64, HashSet<String>)>,
}

impl Cataloger for Binaries {
    fn name(&self) -> &'static str {
        "binary"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let candidate = m.kind == EntryKind::File
            && m.mode & 0o111 != 0
            && (4096..=MAX_BINARY).contains(&m.size)
            && !not_a_program(base(&m.path))
            && !m.path.starts_with("usr/share/")
            && !m.path.starts_with("etc/");
        if !candidate {
            return Select::Skip;
        }
        let mut sel = self.selected.lock().unwrap_or_else(|e| e.into_inner());
        if sel.1.contains(&m.path) {
            return Select::Content;
        }
        if sel.0 + m.size > MAX_BINARIES_TOTAL {
            return Select::Skip;
        }
        sel.0 += m.size;
        sel.1.insert(m.path.clone());
        Select::Content
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        let data = file.content.as_deref().unwrap_or_default();
        if !data.starts_with(b"\x7fELF") {
            return Ok(Vec::new());
        }
        parse_elf(data)
    }
}

/// Go and Rust packages recorded in an ELF binary (none if it records neither).
pub fn parse_elf(data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let file = object::File::parse(data)
        .map_err(|e| CatalogError::Invalid(format!("unreadable ELF: {e}")))?;
    let mut out = Vec::new();
    if let Some(sec) = file.section_by_name(".go.buildinfo") {
        let bytes = sec
            .data()
            .map_err(|e| CatalogError::Invalid(format!(".go.buildinfo: {e}")))?;
        if let Some(info) = go_buildinfo(&file, bytes)? {
            out.extend(info.packages());
        }
    } else if file.sections().next().is_none()
        && let Some(at) = (0..data.len().saturating_sub(GO_MAGIC.len()))
            .step_by(16)
            .find(|&i| data[i..].starts_with(GO_MAGIC))
    {
        // Section headers stripped (sstrip, some packers): the blob is 16-byte aligned in the
        // file's data, so look for its magic there, as Go's own debug/buildinfo does.
        if let Some(info) = go_buildinfo(&file, &data[at..])? {
            out.extend(info.packages());
        }
    }
    if let Some(sec) = file.section_by_name(".dep-v0") {
        let bytes = sec
            .data()
            .map_err(|e| CatalogError::Invalid(format!(".dep-v0: {e}")))?;
        out.extend(auditable(bytes)?);
    }
    Ok(out)
}

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// What a Go binary says about how it was built.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// `go1.21.0`
    pub go_version: String,
    /// The main module and its version (`(devel)` when built from a checkout without a tag).
    pub main: Option<(String, String)>,
    pub deps: Vec<(String, String)>,
    /// `-ldflags` as recorded, where a release version of a `(devel)` main module often sits.
    pub ldflags: Option<String>,
}

fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        x |= u64::from(c & 0x7f) << (7 * i);
        if c < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// Reads the buildinfo blob: Go 1.18+ inlines two varint-prefixed strings after the 32-byte
/// header; older toolchains store pointers to Go string headers elsewhere in the file.
fn go_buildinfo(file: &object::File<'_>, sec: &[u8]) -> Result<Option<GoBuildInfo>, CatalogError> {
    let bad = |why: &str| CatalogError::Invalid(format!(".go.buildinfo: {why}"));
    let Some(at) = sec.windows(GO_MAGIC.len()).position(|w| w == GO_MAGIC) else {
        return Ok(None);
    };
    let hdr = sec
        .get(at..at + 32)
        .ok_or_else(|| bad("truncated header"))?;
    let ptr_size = usize::from(hdr[14]);
    let flags = hdr[15];
    let big_endian = flags & 1 != 0;
    let (version, modinfo) = if flags & 2 != 0 {
        let mut rest = &sec[at + 32..];
        let mut strs = Vec::new();
        for _ in 0..2 {
            let (len, n) = read_uvarint(rest).ok_or_else(|| bad("bad string length"))?;
            let len = usize::try_from(len).map_err(|_| bad("string too long"))?;
            let s = rest
                .get(n..n.saturating_add(len))
                .ok_or_else(|| bad("string runs past the section"))?;
            strs.push(String::from_utf8_lossy(s).into_owned());
            rest = &rest[n + len..];
        }
        (strs.remove(0), strs.remove(0))
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(bad("pointer size is neither 4 nor 8"));
        }
        let read_ptr = |b: &[u8]| -> Option<u64> {
            Some(match (ptr_size, big_endian) {
                (8, false) => u64::from_le_bytes(b.get(..8)?.try_into().ok()?),
                (8, true) => u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
                (_, false) => u64::from(u32::from_le_bytes(b.get(..4)?.try_into().ok()?)),
                (_, true) => u64::from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?)),
            })
        };
        let at_addr = |addr: u64, len: u64| -> Option<&[u8]> {
            file.sections().find_map(|s| {
                let start = s.address();
                if addr >= start && addr.checked_add(len)? <= start.checked_add(s.size())? {
                    let d = s.data().ok()?;
                    d.get(
                        usize::try_from(addr - start).ok()?
                            ..usize::try_from(addr - start + len).ok()?,
                    )
                } else {
                    None
                }
            })
        };
        let go_string = |ptr_addr: u64| -> Option<String> {
            let hdr = at_addr(ptr_addr, 2 * ptr_size as u64)?;
            let data = read_ptr(hdr)?;
            let len = read_ptr(&hdr[ptr_size..])?;
            if len > 1 << 20 {
                return None;
            }
            Some(String::from_utf8_lossy(at_addr(data, len)?).into_owned())
        };
        let vp = read_ptr(&hdr[16..]).ok_or_else(|| bad("truncated header"))?;
        let mp = read_ptr(&hdr[16 + ptr_size..]).ok_or_else(|| bad("truncated header"))?;
        (
            go_string(vp).ok_or_else(|| bad("version pointer outside the file"))?,
            go_string(mp).unwrap_or_default(),
        )
    };
    // The module information is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
        modinfo
            .get(16..modinfo.len() - 16)
            .unwrap_or_default()
            .to_string()
    } else {
        modinfo
    };
    let mut info = GoBuildInfo {
        go_version: version,
        ..GoBuildInfo::default()
    };
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] => info.main = Some((path.to_string(), version.to_string())),
            ["dep", path, version, ..] => info.deps.push((path.to_string(), version.to_string())),
            ["=>", path, version, ..] => {
                if let Some(last) = info.deps.last_mut() {
                    *last = (path.to_string(), version.to_string());
                }
            }
            ["build", kv] => {
                if let Some(v) = kv.strip_prefix("-ldflags=") {
                    info.ldflags = Some(v.trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    Ok(Some(info))
}

impl GoBuildInfo {
    /// A release version that `-X <pkg>.version=...` stamped into a `(devel)` main module.
    fn ldflags_version(&self) -> Option<String> {
        let flags = self.ldflags.as_deref()?;
        let mut words = flags.split_whitespace();
        while let Some(w) = words.next() {
            let kv = if w == "-X" {
                words.next()?
            } else {
                w.strip_prefix("-X=").unwrap_or("")
            };
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let var = key.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
            if matches!(var.as_str(), "version" | "gitversion" | "buildversion")
                && !value.is_empty()
            {
                let v = value.trim_matches(['\'', '"']);
                if v.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    return Some(format!("v{v}"));
                }
                if v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()) {
                    return Some(v.to_string());
                }
            }
        }
        None
    }

    /// The main module (when its version is known), each dependency, and the Go standard library.
    pub fn packages(&self) -> Vec<Package> {
        let mut out = Vec::new();
        if let Some((path, version)) = &self.main {
            // `(devel)` is not a version: matching it would report every advisory of the module.
            let version = if version == "(devel)" || version.is_empty() {
                self.ldflags_version()
            } else {
                Some(version.clone())
            };
            if let Some(v) = version {
                let mut p = go_package(path, &v);
                p.direct = None;
                out.push(p);
            }
        }
        for (path, version) in &self.deps {
            if version.is_empty() || version == "(devel)" {
                continue;
            }
            out.push(go_package(path, version));
        }
        if let Some(v) = stdlib_version(&self.go_version) {
            out.push(package(
                PackageKind::GoStdlib,
                "stdlib",
                &v,
                Purl::new("golang", "stdlib").with_version(v.clone()),
            ));
        }
        out
    }
}

/// `go1.21.0` → `1.21.0`, `go1.20` → `1.20.0`; development toolchains have no release version.
pub fn stdlib_version(go: &str) -> Option<String> {
    let v = go.split_whitespace().next()?.strip_prefix("go")?;
    let v = v.split('-').next()?;
    if v.is_empty() || !v.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let numeric = v
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric && v.split('.').count() == 2 {
        Some(format!("{v}.0"))
    } else {
        Some(v.to_string())
    }
}

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    kind: String,
}

/// cargo-auditable's section: zlib-compressed JSON listing every crate compiled in.
pub fn auditable(compressed: &[u8]) -> Result<Vec<Package>, CatalogError> {
    const MAX_JSON: u64 = 8 << 20;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| CatalogError::Invalid(format!(".dep-v0: {e}")))?;
    if json.len() as u64 > MAX_JSON {
        return Err(CatalogError::Invalid(format!(
            ".dep-v0 inflates past {MAX_JSON} bytes"
        )));
    }
    let data: AuditData = serde_json::from_slice(&json)
        .map_err(|e| CatalogError::Invalid(format!(".dep-v0 JSON: {e}")))?;
    Ok(data
        .packages
        .iter()
        // Build-time-only crates (build scripts, proc macros) are not in the binary.
        .filter(|p| p.kind != "build")
        .filter(|p| p.source != "local")
        .map(|p| cargo_package(&p.name, &p.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(stdlib_version("go1.21.0").as_deref(), Some("1.21.0"));
        assert_eq!(stdlib_version("go1.20").as_deref(), Some("1.20.0"));
        assert_eq!(
            stdlib_version("go1.22.1 X:boringcrypto").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(stdlib_version("devel go1.23-abc"), None);
        let info = GoBuildInfo {
            main: Some(("github.com/a/b".into(), "(devel)".into())),
            ldflags: Some(
                "-w -s -X github.com/a/b/internal/version.version=1.18.1 -X x.gitCommit=abc".into(),
            ),
            ..GoBuildInfo::default()
        };
        assert_eq!(info.ldflags_version().as_deref(), Some("v1.18.1"));
    }

    #[test]
    fn executables_are_read_within_a_total_budget() {
        let meta = |path: &str, size: u64, mode: u32| FileMeta {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mode,
            uid: 0,
            gid: 0,
        };
        let b = Binaries::default();
        let per = MAX_BINARIES_TOTAL / MAX_BINARY;
        for i in 0..per {
            assert_eq!(
                b.wants(&meta(&format!("usr/bin/{i}"), MAX_BINARY, 0o755)),
                Select::Content
            );
        }
        assert_eq!(
            b.wants(&meta("usr/bin/next", MAX_BINARY, 0o755)),
            Select::Skip,
            "over the total budget"
        );
        assert_eq!(
            b.wants(&meta("usr/bin/0", MAX_BINARY, 0o755)),
            Select::Content,
            "asked again: same answer"
        );
        assert_eq!(
            b.wants(&meta("usr/bin/huge", MAX_BINARY + 1, 0o755)),
            Select::Skip
        );
        assert_eq!(b.wants(&meta("usr/bin/small", 4095, 0o755)), Select::Skip);
        assert_eq!(b.wants(&meta("usr/bin/data", 8192, 0o644)), Select::Skip);
        assert_eq!(
            b.wants(&meta("usr/lib/libx.so.1", 8192, 0o755)),
            Select::Skip
        );
    }

    #[test]
    fn hostile_sections() {
        assert!(auditable(b"not zlib").is_err());
        assert!(parse_elf(b"\x7fELF\x02\x01garbage").is_err());
    }
}
