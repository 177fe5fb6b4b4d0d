//! Alpine packages: `lib/apk/db/installed`, one block of `K:value` lines per package (`P` name,
//! `V` version, `A` arch, `o` origin = source package, `L` licence), blocks separated by blank lines.

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::{OsRelease, Package, PackageKind, Purl, SourcePackage};

use crate::{CatalogError, Cataloger, Context};

pub const INSTALLED: &str = "lib/apk/db/installed";
const MAX_INSTALLED: u64 = crate::budget::APK_DB_BYTES;

pub struct Apk;

/// The purl of an apk package: namespace is the distribution id (`alpine`, `wolfi`), `distro` the
/// release (`3.18.4`).
pub fn purl(name: &str, version: &str, arch: Option<&str>, os: Option<&OsRelease>) -> Purl {
    let ns = os
        .map(|o| o.id.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("alpine");
    let mut p = Purl::new("apk", name)
        .with_namespace(ns)
        .with_version(version);
    if let Some(a) = arch {
        p = p.with_qualifier("arch", a);
    }
    if let Some(v) = os.and_then(|o| o.version_id.as_deref()) {
        p = p.with_qualifier("distro", v);
    }
    p
}

#[derive(Default)]
struct Block {
    name: String,
    version: String,
    arch: String,
    origin: String,
    license: String,
}

pub fn packages(text: &str, os: Option<&OsRelease>) -> Result<Vec<Package>, CatalogError> {
    let mut blocks = Vec::new();
    let mut cur = Block::default();
    let mut started = false;
    let max = crate::budget::max_db_entries();
    let over = || {
        CatalogError::Budget(format!(
            "{INSTALLED}: more than {max} package blocks (packages budget; raise it with MOAT_MAX_PACKAGES)"
        ))
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            if started {
                if blocks.len() as u64 >= max {
                    return Err(over());
                }
                blocks.push(std::mem::take(&mut cur));
                started = false;
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(CatalogError::Line {
                line: i + 1,
                why: format!(
                    "expected `K:value`, found {:?}",
                    line.chars().take(60).collect::<String>()
                ),
            });
        };
        if k.len() != 1 {
            return Err(CatalogError::Line {
                line: i + 1,
                why: format!("field name {k:?} is not a single letter"),
            });
        }
        started = true;
        match k {
            "P" => cur.name = v.to_string(),
            "V" => cur.version = v.to_string(),
            "A" => cur.arch = v.to_string(),
            "o" => cur.origin = v.to_string(),
            "L" => cur.license = v.to_string(),
            _ => {}
        }
    }
    if started {
        blocks.push(cur);
    }
    Ok(blocks
        .into_iter()
        .filter(|b| !b.name.is_empty() && !b.version.is_empty())
        .map(|b| {
            let arch = Some(b.arch).filter(|a| !a.is_empty());
            // An apk's origin is its source package; both share the version.
            let src = if b.origin.is_empty() {
                b.name.clone()
            } else {
                b.origin
            };
            Package {
                purl: purl(&b.name, &b.version, arch.as_deref(), os),
                source: Some(SourcePackage {
                    name: src,
                    version: b.version.clone(),
                }),
                licenses: if b.license.is_empty() {
                    Vec::new()
                } else {
                    vec![b.license]
                },
                name: b.name,
                version: b.version,
                kind: PackageKind::Apk,
                arch,
                path: None,
                layer: None,
                direct: None,
            }
        })
        .collect())
}

impl Cataloger for Apk {
    fn name(&self) -> &'static str {
        "apk"
    }

    fn wants(&self, meta: &FileMeta) -> Select {
        if meta.path == INSTALLED {
            // Too big to read: kept as metadata so the run is refused with its size (lib.rs).
            let max = crate::budget::database_file_limit(INSTALLED).map_or(MAX_INSTALLED, |l| l.0);
            if meta.size > max {
                Select::Meta
            } else {
                Select::Content
            }
        } else {
            Select::Skip
        }
    }

    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        let Some(bytes) = file.content.as_deref() else {
            return Ok(Vec::new());
        };
        let max = crate::budget::database_file_limit(INSTALLED).map_or(MAX_INSTALLED, |l| l.0);
        if bytes.len() as u64 > max {
            return Err(CatalogError::Budget(format!(
                "{}: {} bytes, over the {max} byte limit for an apk database (raise it with MOAT_MAX_APK_DB_BYTES)",
                file.meta.path,
                bytes.len()
            )));
        }
        let pkgs = packages(&String::from_utf8_lossy(bytes), ctx.os.as_ref())?;
        ctx.budget
            .packages
            .charge(&file.meta.path, pkgs.len() as u64)?;
        Ok(pkgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn musl_purl() {
        let os = OsRelease {
            id: "alpine".into(),
            version_id: Some("3.18.4".into()),
            ..Default::default()
        };
        let p = packages(
            "P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:x\n",
            Some(&os),
        )
        .expect("parses");
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].purl.to_string(),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4"
        );
        assert!(packages("P:musl\ngarbage\n", None).is_err());
    }
}
