//! Rust: `Cargo.lock` (v1–v4). Binaries built with cargo-auditable are read in `binary.rs`.

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::Package;

use super::{MAX_TEXT, base, cargo_package, dedup, is_file_within, text};
use crate::{CatalogError, Cataloger, Context};

pub struct CargoLock;

impl Cataloger for CargoLock {
    fn name(&self) -> &'static str {
        "cargo-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        if is_file_within(m, MAX_TEXT) && base(&m.path) == "Cargo.lock" {
            Select::Content
        } else {
            Select::Skip
        }
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_cargo_lock(&text(file)?)
    }
}

/// Every `[[package]]`, the workspace's own crates included (they are what the lockfile builds).
/// Crates whose source is the workspace are direct dependencies' parents: their listed
/// dependencies are marked direct, the rest transitive.
pub fn parse_cargo_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let bad = |why: String| CatalogError::Invalid(why);
    let doc: toml::Table = s
        .parse()
        .map_err(|e: toml::de::Error| bad(format!("invalid TOML: {}", e.message())))?;
    let pkgs = match doc.get("package") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err(bad("field \"package\" is not an array of tables".into())),
    };
    let mut out = Vec::new();
    let mut direct = std::collections::BTreeSet::new();
    for (i, pkg) in pkgs.iter().enumerate() {
        let t = pkg
            .as_table()
            .ok_or_else(|| bad(format!("package[{i}] is not a table")))?;
        let name = t
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| bad(format!("package[{i}] has no name")))?;
        let version = t
            .get("version")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| bad(format!("package {name:?} has no version")))?;
        let local = t.get("source").is_none();
        if local && let Some(toml::Value::Array(deps)) = t.get("dependencies") {
            // `name` or `name version` or `name version (source)`
            direct.extend(
                deps.iter()
                    .filter_map(toml::Value::as_str)
                    .filter_map(|d| d.split_whitespace().next())
                    .map(str::to_string),
            );
        }
        out.push((cargo_package(name, version), local));
    }
    let mut out: Vec<Package> = out
        .into_iter()
        .map(|(mut p, local)| {
            if !local && !direct.is_empty() {
                p.direct = Some(direct.contains(&p.name));
            }
            p
        })
        .collect();
    dedup(&mut out);
    Ok(out)
}
