//! npm: `package-lock.json` / `npm-shrinkwrap.json` (v1, v2, v3), `yarn.lock` (v1 and berry),
//! `pnpm-lock.yaml` (v5, v6, v9), and installed `node_modules/**/package.json`.

use std::collections::BTreeSet;

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::Package;
use serde_json::Value;

use super::{MAX_TEXT, base, dedup, is_file_within, npm_package, parent, text};
use crate::{CatalogError, Cataloger, Context};

fn select(yes: bool) -> Select {
    if yes { Select::Content } else { Select::Skip }
}

fn in_node_modules(path: &str) -> bool {
    path.starts_with("node_modules/") || path.contains("/node_modules/")
}

/// `package-lock.json` and `npm-shrinkwrap.json` (not the hidden `node_modules/.package-lock.json`:
/// the installed `package.json` files say the same thing, more exactly).
pub struct PackageLock;

impl Cataloger for PackageLock {
    fn name(&self) -> &'static str {
        "npm-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let b = base(&m.path);
        select(
            is_file_within(m, MAX_TEXT)
                && (b == "package-lock.json" || b == "npm-shrinkwrap.json")
                && !in_node_modules(&m.path),
        )
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_package_lock(&text(file)?)
    }
}

fn bad(why: impl Into<String>) -> CatalogError {
    CatalogError::Invalid(why.into())
}

/// Names listed in a package's dependency fields.
fn dep_names(pkg: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for field in [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ] {
        if let Some(m) = pkg.get(field).and_then(Value::as_object) {
            out.extend(m.keys().cloned());
        }
    }
    out
}

pub fn parse_package_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let doc: Value = serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let root = doc.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let mut out = Vec::new();
    if let Some(packages) = root.get("packages") {
        // lockfileVersion 2 and 3: one entry per installed path.
        let packages = packages
            .as_object()
            .ok_or_else(|| bad("field \"packages\" is not an object"))?;
        let direct = packages.get("").map(dep_names);
        for (key, pkg) in packages {
            if key.is_empty() {
                continue;
            }
            let Some(obj) = pkg.as_object() else {
                return Err(bad(format!("packages[{key:?}] is not an object")));
            };
            if obj.get("link").and_then(Value::as_bool) == Some(true) {
                continue; // a symlink to a workspace folder, listed under its own path
            }
            let Some(version) = obj.get("version").and_then(Value::as_str) else {
                continue;
            };
            let installed_name = key.rsplit_once("node_modules/").map(|(_, n)| n);
            // Outside node_modules: a workspace member or local folder, named by its manifest.
            let name = match obj.get("name").and_then(Value::as_str) {
                Some(n) => n,
                None => installed_name.unwrap_or_else(|| super::base(key)),
            };
            if name.is_empty() || version.is_empty() {
                continue;
            }
            let mut p = npm_package(name, version);
            if let (Some(direct), Some(n)) = (&direct, installed_name) {
                // Only a top-level install can be a direct dependency of the root.
                p.direct = Some(key == &format!("node_modules/{n}") && direct.contains(n));
            }
            out.push(p);
        }
    } else if let Some(deps) = root.get("dependencies") {
        // lockfileVersion 1: a tree of `dependencies` objects.
        let mut stack = vec![(deps, true)];
        while let Some((deps, top)) = stack.pop() {
            let deps = deps
                .as_object()
                .ok_or_else(|| bad("field \"dependencies\" is not an object"))?;
            for (name, dep) in deps {
                let obj = dep
                    .as_object()
                    .ok_or_else(|| bad(format!("dependencies[{name:?}] is not an object")))?;
                if let Some(version) = obj.get("version").and_then(Value::as_str)
                    && !version.is_empty()
                    && !is_non_registry(version)
                {
                    let mut p = npm_package(name, version);
                    if !top {
                        p.direct = Some(false);
                    }
                    out.push(p);
                }
                if let Some(nested) = obj.get("dependencies") {
                    stack.push((nested, false));
                }
            }
        }
    }
    dedup(&mut out);
    Ok(out)
}

/// Versions that name a place rather than a registry release (`file:`, git URLs, tarball URLs).
fn is_non_registry(v: &str) -> bool {
    v.starts_with("file:")
        || v.starts_with("link:")
        || v.contains("://")
        || v.starts_with("git")
        || v.starts_with("github:")
}

/// Installed packages: `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`
/// (other `package.json` files deeper inside a package are build leftovers, not packages).
pub struct NodeModules;

fn is_installed_manifest(path: &str) -> bool {
    if base(path) != "package.json" {
        return false;
    }
    let dir = parent(path);
    let (above, _) = dir.rsplit_once('/').unwrap_or(("", dir));
    let above_name = base(above);
    if above_name == "node_modules" {
        return true;
    }
    above_name.starts_with('@') && base(parent(above)) == "node_modules"
}

impl Cataloger for NodeModules {
    fn name(&self) -> &'static str {
        "npm-installed"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(is_file_within(m, 4 << 20) && is_installed_manifest(&m.path))
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_package_json(&text(file)?)
    }
}

pub fn parse_package_json(s: &str) -> Result<Vec<Package>, CatalogError> {
    let doc: Value = serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let (Some(name), Some(version)) = (
        doc.get("name").and_then(Value::as_str),
        doc.get("version").and_then(Value::as_str),
    ) else {
        return Ok(Vec::new());
    };
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = npm_package(name, version);
    match doc.get("license") {
        Some(Value::String(l)) => p.licenses.push(l.clone()),
        Some(Value::Object(o)) => p
            .licenses
            .extend(o.get("type").and_then(Value::as_str).map(str::to_string)),
        _ => {}
    }
    if let Some(Value::Array(ls)) = doc.get("licenses") {
        for l in ls {
            match l {
                Value::String(s) => p.licenses.push(s.clone()),
                Value::Object(o) => p
                    .licenses
                    .extend(o.get("type").and_then(Value::as_str).map(str::to_string)),
                _ => {}
            }
        }
    }
    Ok(vec![p])
}

/// `yarn.lock`, classic (v1) and berry (v2+) syntax.
pub struct YarnLock;

impl Cataloger for YarnLock {
    fn name(&self) -> &'static str {
        "yarn-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(
            is_file_within(m, MAX_TEXT)
                && base(&m.path) == "yarn.lock"
                && !in_node_modules(&m.path),
        )
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_yarn_lock(&text(file)?)
    }
}

/// Splits a yarn descriptor `name@range` (the name may start with a scope `@`).
fn split_descriptor(d: &str) -> Option<(&str, &str)> {
    let d = d.trim().trim_matches('"');
    // The first character may be a scope's `@`; the separator is the next `@`.
    let first = d.chars().next()?.len_utf8();
    let at = d[first..].find('@')? + first;
    Some((&d[..at], &d[at + 1..]))
}

/// Protocols whose packages do not come from a registry (workspaces, local folders, patches of
/// another entry, git checkouts): advisories are per registry release, so these are not packages.
fn yarn_local(range: &str) -> bool {
    if range.starts_with('.') || range.starts_with('/') {
        return true;
    }
    // `proto:...` — registry, git and tarball sources name a real release; anything else
    // (workspace, link, file, portal, exec, patch, unknown protocols) does not.
    match range.split_once(':') {
        Some((proto, _))
            if !proto.is_empty()
                && proto.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
        {
            !matches!(
                proto,
                "npm"
                    | "git"
                    | "git+https"
                    | "git+ssh"
                    | "git+http"
                    | "ssh"
                    | "github"
                    | "http"
                    | "https"
            )
        }
        _ => false,
    }
}

pub fn parse_yarn_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let mut out = Vec::new();
    // (name, range of the first descriptor, version, header line)
    let mut cur: Option<(String, String, Option<String>, usize)> = None;
    let flush = |cur: &mut Option<(String, String, Option<String>, usize)>,
                 out: &mut Vec<Package>|
     -> Result<(), CatalogError> {
        if let Some((name, range, version, line)) = cur.take() {
            if name == "__metadata" {
                return Ok(());
            }
            let version = version.ok_or(CatalogError::Line {
                line,
                why: format!("entry {name:?} has no version"),
            })?;
            if !yarn_local(range.trim_start_matches("npm:"))
                && !version.starts_with("0.0.0-use.local")
            {
                out.push(npm_package(&name, &version));
            }
        }
        Ok(())
    };
    for (i, raw) in s.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            flush(&mut cur, &mut out)?;
            let header = line.strip_suffix(':').ok_or(CatalogError::Line {
                line: i + 1,
                why: "expected an entry header ending in ':'".into(),
            })?;
            if header.trim_matches('"') == "__metadata" {
                cur = Some((
                    "__metadata".into(),
                    String::new(),
                    Some(String::new()),
                    i + 1,
                ));
                continue;
            }
            let first = header.split(", ").next().unwrap_or(header);
            let (name, range) = split_descriptor(first).ok_or(CatalogError::Line {
                line: i + 1,
                why: format!("cannot read package descriptor {first:?}"),
            })?;
            cur = Some((name.to_string(), range.to_string(), None, i + 1));
            continue;
        }
        // Only the entry's own fields (two spaces of indent), not its dependency lists.
        let Some(field) = line.strip_prefix("  ") else {
            continue;
        };
        if field.starts_with(' ') {
            continue;
        }
        let Some(entry) = cur.as_mut() else {
            return Err(CatalogError::Line {
                line: i + 1,
                why: "field outside an entry".into(),
            });
        };
        let (key, value) = match field.split_once(": ") {
            Some((k, v)) => (k, v),
            None => match field.split_once(' ') {
                Some((k, v)) => (k, v),
                None => continue,
            },
        };
        let value = value.trim().trim_matches('"');
        match key.trim_matches('"') {
            "version" => entry.2 = Some(value.to_string()),
            "resolution" => {
                // berry: `name@npm:1.2.3`; an aliased package is known by the name it resolves to.
                if let Some((n, r)) = split_descriptor(value)
                    && let Some(v) = r.strip_prefix("npm:")
                    && !v.is_empty()
                {
                    entry.0 = n.to_string();
                    entry.1 = r.to_string();
                } else if let Some((_, r)) = split_descriptor(value) {
                    entry.1 = r.to_string();
                }
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut out)?;
    dedup(&mut out);
    Ok(out)
}

/// `pnpm-lock.yaml` (lockfile versions 5.x, 6.x and 9.x; several YAML documents are read in turn).
pub struct PnpmLock;

impl Cataloger for PnpmLock {
    fn name(&self) -> &'static str {
        "pnpm-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(
            is_file_within(m, MAX_TEXT)
                && base(&m.path) == "pnpm-lock.yaml"
                && !in_node_modules(&m.path),
        )
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_pnpm_lock(&text(file)?)
    }
}

/// Name and version from a `packages` key: `/name/1.0.0_peer` (v5), `/name@1.0.0(peer)` (v6),
/// `name@1.0.0(peer)` (v9), scoped names included.
fn pnpm_key(key: &str, v5: bool) -> Option<(String, String)> {
    let mut k = key.strip_prefix('/').unwrap_or(key);
    // A registry host before the name: `registry.npmjs.org/foo/1.0.0`.
    if let Some((host, rest)) = k.split_once('/')
        && host.contains('.')
        && !host.starts_with('@')
    {
        k = rest;
    }
    let (n, v) = if v5 {
        let k = k.split('_').next().unwrap_or(k);
        k.rsplit_once('/')?
    } else {
        split_descriptor(k.split('(').next().unwrap_or(k))?
    };
    Some((n.to_string(), v.to_string()))
}

/// A version pnpm resolved from the registry (not a URL, path or commit).
fn pnpm_version_ok(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit()) && !v.contains('/') && !v.contains(':')
}

pub fn parse_pnpm_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(s).map_err(|e| {
        // The first line carries the position and reason; the rest is a source excerpt.
        let msg = e.to_string();
        bad(format!(
            "invalid YAML: {}",
            msg.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
        ))
    })?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let root = doc.as_object().ok_or_else(|| bad("not a YAML mapping"))?;
        let version = match root.get("lockfileVersion") {
            Some(Value::String(s)) => s.parse::<f64>().unwrap_or(0.0),
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        };
        let v5 = version < 6.0;
        // Direct dependencies of the root project.
        let mut direct = BTreeSet::new();
        let importer = root
            .get("importers")
            .and_then(|i| i.get("."))
            .unwrap_or(&doc);
        for field in ["dependencies", "devDependencies", "optionalDependencies"] {
            if let Some(m) = importer.get(field).and_then(Value::as_object) {
                direct.extend(m.keys().cloned());
            }
        }
        // pnpm 10+ may put the package manager's own lock in a first document.
        let only_manager = root
            .get("importers")
            .and_then(Value::as_object)
            .is_some_and(|imps| {
                imps.values().all(|i| {
                    ["dependencies", "devDependencies", "optionalDependencies"]
                        .iter()
                        .all(|f| i.get(f).is_none())
                        && i.get("packageManagerDependencies").is_some()
                })
            });
        if only_manager {
            continue;
        }
        let Some(packages) = root.get("packages") else {
            continue;
        };
        let packages = match packages {
            Value::Object(m) => m,
            Value::Null => continue,
            _ => return Err(bad("field \"packages\" is not a mapping")),
        };
        for (key, pkg) in packages {
            // Tarball and local packages record their name or version as fields; otherwise the
            // key says both. Keys that say neither (a bare git URL) are skipped.
            let from_key = pnpm_key(key, v5);
            let name = pkg
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| from_key.as_ref().map(|k| k.0.clone()));
            let version = pkg
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| from_key.as_ref().map(|k| k.1.clone()));
            let (Some(name), Some(version)) = (name, version) else {
                continue;
            };
            if name.is_empty() || !pnpm_version_ok(&version) {
                continue;
            }
            let mut p = npm_package(&name, &version);
            if !direct.is_empty() {
                p.direct = Some(direct.contains(&name));
            }
            out.push(p);
        }
    }
    dedup(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        assert_eq!(
            split_descriptor("\"@babel/core@^7.0.0\""),
            Some(("@babel/core", "^7.0.0"))
        );
        assert_eq!(
            split_descriptor("lodash@npm:4.17.15"),
            Some(("lodash", "npm:4.17.15"))
        );
        assert_eq!(
            pnpm_key("/@babel/core/7.0.0_foo@1.0.0", true),
            Some(("@babel/core".into(), "7.0.0".into()))
        );
        assert_eq!(
            pnpm_key("/is-number@7.0.0(x@1)", false),
            Some(("is-number".into(), "7.0.0".into()))
        );
        assert!(is_installed_manifest(
            "app/node_modules/@types/node/package.json"
        ));
        assert!(is_installed_manifest("node_modules/lodash/package.json"));
        assert!(!is_installed_manifest(
            "node_modules/lodash/fp/package.json"
        ));
    }

    #[test]
    fn multibyte_descriptors() {
        assert_eq!(split_descriptor("é@1"), Some(("é", "1")));
        assert_eq!(split_descriptor(""), None);
        assert!(parse_yarn_lock("\"é\":\n  version \"1\"\n").is_err());
        assert!(parse_pnpm_lock("lockfileVersion: '9.0'\npackages:\n  'é': {}\n").is_ok());
    }

    #[test]
    fn hostile_lockfiles() {
        let deep = format!("{}{}", "{\"packages\":".repeat(200), "}".repeat(200));
        assert!(parse_package_lock(&deep).is_err());
        assert!(parse_package_lock("{\"packages\": [1]}").is_err());
        assert!(
            parse_package_lock(
                "{\"lockfileVersion\": 2, \"packages\": {\"node_modules/a\": {\"version\": "
            )
            .is_err()
        );
        assert!(parse_pnpm_lock("packages: [").is_err());
        assert!(parse_yarn_lock("foo@1:\n  version \"1\"\n garbage").is_ok());
        assert!(parse_yarn_lock("not a header\n").is_err());
    }
}
