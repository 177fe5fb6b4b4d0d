//! Debian packages: `var/lib/dpkg/status` (one stanza per package) and the distroless
//! `var/lib/dpkg/status.d/NAME` files (one stanza each, often without `Status:`). Licences come from the
//! package's `usr/share/doc/NAME/copyright`.

use moat_image::{EntryKind, FileEntry, FileMeta, FileView, Select};
use moat_model::{OsRelease, Package, PackageKind, Purl, SourcePackage};

use crate::budget::RunBudget;
use crate::{CatalogError, Cataloger, Context};

pub const STATUS: &str = "var/lib/dpkg/status";
pub const STATUS_D: &str = "var/lib/dpkg/status.d/";
const DOC: &str = "usr/share/doc/";
/// `NAME.list` / `NAME:ARCH.list` here is written when a package is unpacked: its layer is the layer
/// that installed the package's current version.
const INFO: &str = "var/lib/dpkg/info/";

/// A status file larger than this is not a dpkg database (Debian with every package installed is ~50 MB).
const MAX_STATUS: u64 = 128 << 20;
/// Copyright files above this are not read for licences.
const MAX_COPYRIGHT: u64 = 4 << 20;
/// All copyright files read in one run, together: a hostile image with a million of them cannot make
/// moat hold them all (a real Debian system's total is a few MiB). Past it, licences are left out.
pub const COPYRIGHT_BUDGET: u64 = 64 << 20;
/// The same for distroless `status.d/` files (a few KiB each in real images); past it, further
/// `status.d` files are not read.
pub const STATUS_D_BUDGET: u64 = 128 << 20;

/// The dpkg cataloger. Make a new one per run: it counts the copyright bytes it has asked for.
#[derive(Default)]
pub struct Dpkg {
    copyright_bytes: std::sync::atomic::AtomicU64,
    status_d_bytes: std::sync::atomic::AtomicU64,
    /// The first `status.d` file refused by [`STATUS_D_BUDGET`]: the catalogue stops on it.
    status_d_over: std::sync::Mutex<Option<String>>,
}

/// Books `size` bytes against `budget` in `counter`; false (and nothing booked) if they do not fit.
fn book(counter: &std::sync::atomic::AtomicU64, size: u64, budget: u64) -> bool {
    use std::sync::atomic::Ordering;
    let prev = counter.fetch_add(size, Ordering::Relaxed);
    if prev.saturating_add(size) <= budget {
        true
    } else {
        counter.fetch_sub(size, Ordering::Relaxed);
        false
    }
}

impl Dpkg {
    /// Whether one more copyright file of `size` bytes fits in the budget (and books it if so).
    fn book_copyright(&self, size: u64) -> bool {
        book(&self.copyright_bytes, size, COPYRIGHT_BUDGET)
    }
}

/// One control stanza: fields in order, values with continuation lines joined by `\n`.
#[derive(Debug, Default)]
pub struct Stanza {
    /// 1-based line of the stanza's first field.
    pub line: usize,
    pub fields: Vec<(String, String)>,
}

impl Stanza {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a deb822 control file into stanzas. Tolerant like dpkg: blank lines separate stanzas,
/// lines starting with a space or tab continue the previous field, `#` lines are comments.
pub fn parse_stanzas(text: &str) -> Result<Vec<Stanza>, CatalogError> {
    parse_stanzas_limited(text, usize::MAX, "")
}

/// [`parse_stanzas`], refusing more than `max` stanzas before they are built (`path` names the file).
pub fn parse_stanzas_limited(
    text: &str,
    max: usize,
    path: &str,
) -> Result<Vec<Stanza>, CatalogError> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Stanza>, st: Stanza| {
        if out.len() >= max {
            return Err(CatalogError::Budget(format!(
                "{path}: more than {max} stanzas (packages budget; raise it with MOAT_MAX_PACKAGES)"
            )));
        }
        out.push(st);
        Ok(())
    };
    let mut cur = Stanza::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                push(&mut out, std::mem::take(&mut cur))?;
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match cur.fields.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line.trim());
                }
                None => {
                    return Err(CatalogError::Line {
                        line: i + 1,
                        why: "continuation line before any field".into(),
                    });
                }
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(CatalogError::Line {
                line: i + 1,
                why: format!("expected `Field: value`, found {:?}", truncate(line)),
            });
        };
        if cur.fields.is_empty() {
            cur.line = i + 1;
        }
        cur.fields
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    if !cur.fields.is_empty() {
        push(&mut out, cur)?;
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Whether a stanza describes a package whose files are installed. dpkg's third `Status:` word is the
/// state; only `installed` counts (`config-files`, `half-installed`, `not-installed` do not). Distroless
/// `status.d` stanzas have no `Status:` and are installed by construction.
pub fn is_installed(st: &Stanza, status_required: bool) -> bool {
    match st.get("Status") {
        Some(s) => s.split_whitespace().nth(2) == Some("installed"),
        None => !status_required,
    }
}

/// `Source: name (version)` → the source package; absent means the binary's own name and version.
pub fn source_of(st: &Stanza, name: &str, version: &str) -> SourcePackage {
    match st.get("Source").map(str::trim).filter(|s| !s.is_empty()) {
        Some(src) => match src.split_once('(') {
            Some((n, v)) => SourcePackage {
                name: n.trim().to_string(),
                version: v.trim_end().trim_end_matches(')').trim().to_string(),
            },
            None => SourcePackage {
                name: src.to_string(),
                version: version.to_string(),
            },
        },
        None => SourcePackage {
            name: name.to_string(),
            version: version.to_string(),
        },
    }
}

/// The purl of a Debian-family package: namespace is the distribution id, `distro=ID-VERSION_ID`.
pub fn purl(name: &str, version: &str, arch: Option<&str>, os: Option<&OsRelease>) -> Purl {
    let ns = os
        .map(|o| o.id.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("debian");
    let mut p = Purl::new("deb", name)
        .with_namespace(ns)
        .with_version(version);
    if let Some(a) = arch {
        p = p.with_qualifier("arch", a);
    }
    if let Some(o) = os
        && let Some(v) = o.version_id.as_deref().filter(|v| !v.is_empty())
    {
        p = p.with_qualifier("distro", format!("{}-{v}", o.id));
    }
    p
}

/// Turns the stanzas of one file into packages. `status_required`: the main status file lists
/// removed packages too, so a stanza without `Status:` is not trusted there.
pub fn packages(
    text: &str,
    status_required: bool,
    os: Option<&OsRelease>,
    view: Option<&FileView>,
) -> Result<Vec<Package>, CatalogError> {
    packages_budgeted(
        text,
        status_required,
        os,
        view,
        &RunBudget::default(),
        STATUS,
    )
}

/// [`packages`] under the run's budgets: at most `MOAT_MAX_PACKAGES` stanzas in `path`, packages
/// and copyright text charged cumulatively.
pub fn packages_budgeted(
    text: &str,
    status_required: bool,
    os: Option<&OsRelease>,
    view: Option<&FileView>,
    budget: &RunBudget,
    path: &str,
) -> Result<Vec<Package>, CatalogError> {
    let mut out = Vec::new();
    let max = crate::budget::max_db_entries().min(usize::MAX as u64) as usize;
    for st in parse_stanzas_limited(text, max, path)? {
        if !is_installed(&st, status_required) {
            continue;
        }
        let (Some(name), Some(version)) = (st.get("Package"), st.get("Version")) else {
            continue;
        };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        let arch = st
            .get("Architecture")
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        let source = source_of(&st, name, version);
        let licenses = match view {
            Some(v) => licenses_budgeted(v, name, budget)?,
            None => Vec::new(),
        };
        budget.packages.charge(path, 1)?;
        let layer = view.and_then(|v| installed_by(v, name, arch.as_deref()));
        out.push(Package {
            name: name.to_string(),
            version: version.to_string(),
            kind: PackageKind::Deb,
            purl: purl(name, version, arch.as_deref(), os),
            arch,
            source: Some(source),
            licenses,
            path: None,
            layer,
            direct: None,
        });
    }
    Ok(out)
}

/// The layer that unpacked a package, from its `info/*.list` file; `None` leaves the status file's.
fn installed_by(view: &FileView, name: &str, arch: Option<&str>) -> Option<String> {
    let qualified = arch.map(|a| format!("{INFO}{name}:{a}.list"));
    let plain = format!("{INFO}{name}.list");
    qualified
        .iter()
        .chain(std::iter::once(&plain))
        .find_map(|p| view.get(p))
        .and_then(|e| e.layer.clone())
}

/// Licences recorded in `usr/share/doc/NAME/copyright`: the `License:` fields of a machine-readable
/// (DEP-5) file; otherwise the `/usr/share/common-licenses/X` files it points to.
pub fn licenses_of(view: &FileView, name: &str) -> Vec<String> {
    licenses_budgeted(view, name, &RunBudget::default()).unwrap_or_default()
}

/// [`licenses_of`], charging the copyright text read (again for every package whose file is a link
/// to the same one) to the run's copyright budget before it is parsed.
pub fn licenses_budgeted(
    view: &FileView,
    name: &str,
    budget: &RunBudget,
) -> Result<Vec<String>, CatalogError> {
    let path = format!("{DOC}{name}/copyright");
    let Some(bytes) = view.resolve(&path).and_then(|e| e.content.as_deref()) else {
        return Ok(Vec::new());
    };
    budget.copyright_bytes.charge(&path, bytes.len() as u64)?;
    Ok(parse_copyright(&String::from_utf8_lossy(bytes)))
}

pub fn parse_copyright(text: &str) -> Vec<String> {
    fn push(out: &mut Vec<String>, s: &str) {
        let s = s.trim().trim_end_matches([',', ';']).trim();
        if !s.is_empty() && s.len() <= 200 && !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:") {
            push(&mut out, v);
        }
    }
    if out.is_empty() {
        for line in text.lines() {
            let mut rest = line;
            while let Some(at) = rest.find("/usr/share/common-licenses/") {
                rest = &rest[at + "/usr/share/common-licenses/".len()..];
                let end = rest
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | '_'))
                    })
                    .unwrap_or(rest.len());
                let lic = rest[..end].trim_end_matches('.').trim_end_matches(".gz");
                push(&mut out, lic);
            }
        }
    }
    out
}

impl Cataloger for Dpkg {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn wants(&self, meta: &FileMeta) -> Select {
        let p = meta.path.as_str();
        let max = crate::budget::database_file_limit(STATUS).map_or(MAX_STATUS, |l| l.0);
        if p == STATUS {
            // Too big to read: kept as metadata so the run is refused with its size (lib.rs).
            return if meta.size > max {
                Select::Meta
            } else {
                Select::Content
            };
        }
        if let Some(name) = p.strip_prefix(STATUS_D) {
            let wanted = !name.contains('/') && !name.ends_with(".md5sums") && !name.is_empty();
            if wanted && meta.size > max {
                return Select::Meta;
            }
            if !wanted {
                return Select::Skip;
            }
            let budget = crate::budget::env_limit("MOAT_MAX_STATUS_D_BYTES", STATUS_D_BUDGET);
            if book(&self.status_d_bytes, meta.size, budget) {
                return Select::Content;
            }
            // Over the budget (hard links are charged their target's size): refused, not skipped.
            if let Ok(mut g) = self.status_d_over.lock()
                && g.is_none()
            {
                *g = Some(p.to_string());
            }
            return Select::Meta;
        }
        if let Some(f) = p.strip_prefix(INFO) {
            return if f.ends_with(".list") && !f.contains('/') {
                Select::Meta
            } else {
                Select::Skip
            };
        }
        if let Some(rest) = p.strip_prefix(DOC) {
            match rest.split_once('/') {
                // `usr/share/doc/libgcc-s1 -> gcc-12-base`: keep the link so the copyright resolves.
                None if matches!(meta.kind, EntryKind::Symlink(_)) => return Select::Meta,
                Some((_, "copyright"))
                    if meta.size <= MAX_COPYRIGHT && self.book_copyright(meta.size) =>
                {
                    return Select::Content;
                }
                _ => {}
            }
        }
        Select::Skip
    }

    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        let p = file.meta.path.as_str();
        let in_status_d = p.starts_with(STATUS_D);
        if p != STATUS && !in_status_d {
            return Ok(Vec::new());
        }
        let Some(bytes) = file.content.as_deref() else {
            return Ok(Vec::new());
        };
        if in_status_d && let Some(over) = self.status_d_over.lock().ok().and_then(|g| g.clone()) {
            return Err(CatalogError::Budget(format!(
                "{over}: the status.d files pass the {} byte budget (every hard link counted at its target's size; raise it with MOAT_MAX_STATUS_D_BYTES)",
                crate::budget::env_limit("MOAT_MAX_STATUS_D_BYTES", STATUS_D_BUDGET)
            )));
        }
        let max = crate::budget::database_file_limit(p).map_or(MAX_STATUS, |l| l.0);
        if bytes.len() as u64 > max {
            return Err(CatalogError::Budget(format!(
                "{p}: {} bytes, over the {max} byte limit for a dpkg database (raise it with MOAT_MAX_DPKG_STATUS_BYTES)",
                bytes.len()
            )));
        }
        let text = String::from_utf8_lossy(bytes);
        packages_budgeted(
            &text,
            !in_status_d,
            ctx.os.as_ref(),
            Some(ctx.view),
            ctx.budget,
            p,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_and_status() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\nSource: tzdata\nArchitecture: all\n";
        let os = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Default::default()
        };
        let pkgs = packages(text, true, Some(&os), None).expect("parses");
        assert_eq!(pkgs.len(), 2);
        assert_eq!(
            pkgs[0].source,
            Some(SourcePackage {
                name: "glibc".into(),
                version: "2.36-9".into()
            })
        );
        assert_eq!(
            pkgs[0].purl.to_string(),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            pkgs[1].source,
            Some(SourcePackage {
                name: "tzdata".into(),
                version: "2024a-0+deb12u1".into()
            })
        );
    }

    #[test]
    fn rejects_garbage_with_a_line_number() {
        match parse_stanzas("Package: a\nno colon here\n") {
            Err(CatalogError::Line { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn copyright_budget_is_bounded() {
        let d = Dpkg::default();
        let meta = |size| FileMeta {
            path: "usr/share/doc/x/copyright".into(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let mut taken = 0;
        for _ in 0..100 {
            if d.wants(&meta(MAX_COPYRIGHT)) == Select::Content {
                taken += 1;
            }
        }
        assert_eq!(taken, COPYRIGHT_BUDGET / MAX_COPYRIGHT);
        // The status file is always read, whatever the budget.
        let status = FileMeta {
            path: STATUS.into(),
            kind: EntryKind::File,
            size: 10,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        assert_eq!(d.wants(&status), Select::Content);
    }

    #[test]
    fn copyright_licences() {
        assert_eq!(
            parse_copyright(
                "Format: x\n\nFiles: *\nLicense: GPL-2+\n text\n\nLicense: GPL-2+\n\nLicense: BSD-3-clause\n"
            ),
            vec!["GPL-2+", "BSD-3-clause"]
        );
        assert_eq!(
            parse_copyright("see `/usr/share/common-licenses/LGPL-2.1'.\n"),
            vec!["LGPL-2.1"]
        );
    }
}
