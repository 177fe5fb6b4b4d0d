//! Java: archives (`.jar`, `.war`, `.ear`, and the same nested inside them) read through
//! `META-INF/maven/**/pom.properties`, falling back to `MANIFEST.MF` and then the file name;
//! `pom.xml` dependencies with literal (or same-file property) versions; `gradle.lockfile`.
//!
//! Archives are hostile: [`ArchiveLimits`] bounds the entries looked at, the bytes inflated and
//! the nesting depth, so a zip bomb costs a bounded amount of work and memory.

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read};
use std::sync::Mutex;

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::Package;

use super::{MAX_TEXT, base, dedup, is_file_within, maven_package, text};
use crate::{CatalogError, Cataloger, Context};

const ARCHIVE_EXT: [&str; 6] = [".jar", ".war", ".ear", ".jpi", ".hpi", ".par"];

fn is_archive_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    ARCHIVE_EXT.iter().any(|e| l.ends_with(e))
}

/// Bounds on reading one archive and everything nested in it.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Largest archive file selected from the image.
    pub max_archive: u64,
    /// Most zip entries examined across all nesting levels.
    pub max_entries: usize,
    /// Most bytes inflated across all nesting levels.
    pub max_inflated: u64,
    /// Deepest nesting of archives in archives (the file itself is depth 0).
    pub max_depth: usize,
    /// Most bytes of archives one scan reads.
    pub max_total: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_archive: 256 << 20,
            max_entries: 200_000,
            max_inflated: 512 << 20,
            max_depth: 4,
            max_total: 1 << 30,
        }
    }
}

/// Java archives. Archives are read whole, so the bytes selected per scan are capped
/// ([`ArchiveLimits::max_total`]); archives past the cap are not read.
#[derive(Default)]
pub struct Archives {
    pub limits: ArchiveLimits,
    /// Bytes selected so far and their paths (asked twice, answer the same).
    selected: Mutex<(u64, HashSet<String>)>,
}

impl Archives {
    pub fn new(limits: ArchiveLimits) -> Self {
        Archives {
            limits,
            selected: Mutex::default(),
        }
    }
}

impl Cataloger for Archives {
    fn name(&self) -> &'static str {
        "java-archive"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        if !is_file_within(m, self.limits.max_archive) || !is_archive_name(base(&m.path)) {
            return Select::Skip;
        }
        let mut sel = self.selected.lock().unwrap_or_else(|e| e.into_inner());
        if sel.1.contains(&m.path) {
            return Select::Content;
        }
        if sel.0 + m.size > self.limits.max_total {
            return Select::Skip;
        }
        sel.0 += m.size;
        sel.1.insert(m.path.clone());
        Select::Content
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_archive(
            base(&file.meta.path),
            file.content.as_deref().unwrap_or_default(),
            &self.limits,
        )
    }
}

struct Budget {
    entries: usize,
    inflated: u64,
}

/// Packages in one archive and the archives nested in it.
pub fn parse_archive(
    name: &str,
    data: &[u8],
    limits: &ArchiveLimits,
) -> Result<Vec<Package>, CatalogError> {
    let mut budget = Budget {
        entries: 0,
        inflated: 0,
    };
    let mut out = Vec::new();
    walk(name, data, 0, limits, &mut budget, &mut out)?;
    dedup(&mut out);
    Ok(out)
}

fn read_entry(
    entry: &mut zip::read::ZipFile<'_, Cursor<&[u8]>>,
    limits: &ArchiveLimits,
    budget: &mut Budget,
    path: &str,
) -> Result<Vec<u8>, CatalogError> {
    let left = limits.max_inflated.saturating_sub(budget.inflated);
    let mut buf = Vec::new();
    entry
        .take(left + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CatalogError::Invalid(format!("{path}: {e}")))?;
    budget.inflated += buf.len() as u64;
    if budget.inflated > limits.max_inflated {
        return Err(CatalogError::Invalid(format!(
            "{path}: archive inflates past {} bytes",
            limits.max_inflated
        )));
    }
    Ok(buf)
}

fn walk(
    name: &str,
    data: &[u8],
    depth: usize,
    limits: &ArchiveLimits,
    budget: &mut Budget,
    out: &mut Vec<Package>,
) -> Result<(), CatalogError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| CatalogError::Invalid(format!("{name}: not a readable zip: {e}")))?;
    let mut poms = Vec::new();
    let mut manifest = None;
    let mut nested = Vec::new();
    for i in 0..zip.len() {
        budget.entries += 1;
        if budget.entries > limits.max_entries {
            return Err(CatalogError::Invalid(format!(
                "{name}: more than {} zip entries",
                limits.max_entries
            )));
        }
        let mut entry = zip
            .by_index(i)
            .map_err(|e| CatalogError::Invalid(format!("{name}: entry {i}: {e}")))?;
        let path = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        if path.starts_with("META-INF/maven/") && path.ends_with("/pom.properties") {
            let b = read_entry(&mut entry, limits, budget, &path)?;
            poms.push(String::from_utf8_lossy(&b).into_owned());
        } else if path.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            let b = read_entry(&mut entry, limits, budget, &path)?;
            manifest = Some(String::from_utf8_lossy(&b).into_owned());
        } else if is_archive_name(&path) && entry.is_file() {
            if depth + 1 > limits.max_depth {
                return Err(CatalogError::Invalid(format!(
                    "{name}: archives nested deeper than {}",
                    limits.max_depth
                )));
            }
            let b = read_entry(&mut entry, limits, budget, &path)?;
            nested.push((path, b));
        }
    }
    let mut found = false;
    for p in &poms {
        if let Some(pkg) = pom_properties(p) {
            out.push(pkg);
            found = true;
        }
    }
    if !found
        && let Some(pkg) = manifest
            .as_deref()
            .and_then(|m| from_manifest(m, name))
            .or_else(|| from_file_name(name))
    {
        out.push(pkg);
    }
    for (path, bytes) in nested {
        walk(
            &format!("{name}:{path}"),
            &bytes,
            depth + 1,
            limits,
            budget,
            out,
        )?;
    }
    Ok(())
}

fn properties(s: &str) -> BTreeMap<&str, &str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn pom_properties(s: &str) -> Option<Package> {
    let p = properties(s);
    let (g, a, v) = (p.get("groupId")?, p.get("artifactId")?, p.get("version")?);
    if g.is_empty() || a.is_empty() || v.is_empty() {
        return None;
    }
    Some(maven_package(g, a, v))
}

/// MANIFEST.MF main attributes (continuation lines start with a space).
fn manifest_attrs(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in s.lines() {
        if line.trim().is_empty() {
            break; // end of the main section
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(k) = &last
                && let Some(v) = out.get_mut(k)
            {
                let v: &mut String = v;
                v.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    out
}

/// A package from the manifest's main attributes: the Maven group from `Implementation-Vendor-Id`,
/// else from the OSGi `Bundle-SymbolicName` (which is `group.artifact` when its last segment names
/// the artifact, as in `org.apache.commons.lang3` for commons-lang3, else the group itself, as in
/// `com.google.inject` for guice); the artifact from the file name, else `Implementation-Title`.
fn from_manifest(s: &str, file_name: &str) -> Option<Package> {
    let a = manifest_attrs(s);
    // The version the jar was released as: Implementation-Version, else the one in the file name
    // (as Maven names files), else the OSGi bundle version.
    let from_name = split_file_name(file_name).map(|(_, v)| v);
    let version = a
        .get("Implementation-Version")
        .cloned()
        .or(from_name)
        .or_else(|| a.get("Bundle-Version").cloned())
        .or_else(|| a.get("Specification-Version").cloned())?;
    let artifact = artifact_from_file_name(file_name)
        .or_else(|| a.get("Implementation-Title").map(|t| t.to_string()))
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))?;
    let group = match a.get("Implementation-Vendor-Id") {
        Some(g) => g.clone(),
        None => {
            let bsn = a.get("Bundle-SymbolicName")?.split(';').next()?.trim();
            match bsn.rsplit_once('.') {
                Some((g, last)) if artifact == last || artifact.ends_with(&format!("-{last}")) => {
                    g.to_string()
                }
                _ => bsn.to_string(),
            }
        }
    };
    if group.is_empty() {
        return None;
    }
    Some(maven_package(&group, &artifact, &version))
}

/// `commons-lang3-3.12.0.jar` → (`commons-lang3`, `3.12.0`).
fn split_file_name(file_name: &str) -> Option<(String, String)> {
    let stem = base(file_name.rsplit(':').next().unwrap_or(file_name));
    let stem = stem.rsplit_once('.')?.0;
    let at = stem
        .char_indices()
        .filter(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next()?;
    Some((stem[..at].to_string(), stem[at + 1..].to_string()))
}

fn artifact_from_file_name(file_name: &str) -> Option<String> {
    split_file_name(file_name).map(|(a, _)| a)
}

/// Without a group id no advisory can be matched reliably, so the name alone never makes a package.
fn from_file_name(_file_name: &str) -> Option<Package> {
    None
}

/// `pom.xml`: declared dependencies whose versions are literal or defined in the same file.
pub struct PomXml;

impl Cataloger for PomXml {
    fn name(&self) -> &'static str {
        "pom-xml"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        if is_file_within(m, 16 << 20) && base(&m.path) == "pom.xml" {
            Select::Content
        } else {
            Select::Skip
        }
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_pom_xml(&text(file)?)
    }
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
        .map(str::trim)
}

pub fn parse_pom_xml(s: &str) -> Result<Vec<Package>, CatalogError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(s, opts)
        .map_err(|e| CatalogError::Invalid(format!("invalid XML: {e}")))?;
    let project = doc.root_element();
    if !project.has_tag_name("project") {
        return Err(CatalogError::Invalid(
            "root element is not <project>".into(),
        ));
    }
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    if let Some(p) = project.children().find(|c| c.has_tag_name("properties")) {
        for c in p.children().filter(|c| c.is_element()) {
            props.insert(
                c.tag_name().name().to_string(),
                c.text().unwrap_or("").trim().to_string(),
            );
        }
    }
    let parent = project.children().find(|c| c.has_tag_name("parent"));
    let project_version =
        child_text(project, "version").or_else(|| parent.and_then(|p| child_text(p, "version")));
    let project_group =
        child_text(project, "groupId").or_else(|| parent.and_then(|p| child_text(p, "groupId")));
    if let Some(v) = project_version {
        props.insert("project.version".into(), v.into());
        props.insert("version".into(), v.into());
    }
    if let Some(g) = project_group {
        props.insert("project.groupId".into(), g.into());
    }
    let resolve = |v: &str| -> Option<String> {
        let mut v = v.to_string();
        for _ in 0..8 {
            let Some(start) = v.find("${") else {
                return Some(v);
            };
            let end = start + v[start..].find('}')?;
            let key = &v[start + 2..end];
            let value = props.get(key)?;
            v.replace_range(start..=end, value);
        }
        None
    };
    let mut out = Vec::new();
    // The project's dependencies and those of profiles active by default.
    let mut lists: Vec<roxmltree::Node<'_, '_>> = project
        .children()
        .filter(|c| c.has_tag_name("dependencies"))
        .collect();
    for profile in project
        .children()
        .filter(|c| c.has_tag_name("profiles"))
        .flat_map(|p| p.children().filter(|c| c.has_tag_name("profile")))
    {
        let active = profile
            .children()
            .find(|c| c.has_tag_name("activation"))
            .and_then(|a| child_text(a, "activeByDefault"))
            == Some("true");
        if active {
            lists.extend(
                profile
                    .children()
                    .filter(|c| c.has_tag_name("dependencies")),
            );
        }
    }
    for d in lists
        .iter()
        .flat_map(|l| l.children().filter(|c| c.has_tag_name("dependency")))
    {
        let (Some(g), Some(a)) = (child_text(d, "groupId"), child_text(d, "artifactId")) else {
            continue;
        };
        let Some(v) = child_text(d, "version").and_then(resolve) else {
            continue;
        };
        let (Some(g), Some(a)) = (resolve(g), resolve(a)) else {
            continue;
        };
        // `[1.0]` pins exactly; other ranges say nothing exact.
        let v = match v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(exact) if !exact.contains(',') => exact.trim().to_string(),
            _ => v,
        };
        if v.is_empty() || v.starts_with('[') || v.starts_with('(') {
            continue;
        }
        let mut p = maven_package(&g, &a, &v);
        p.direct = Some(true);
        out.push(p);
    }
    dedup(&mut out);
    Ok(out)
}

/// `gradle.lockfile` (and `buildscript-gradle.lockfile`): `group:artifact:version=configurations`.
pub struct GradleLock;

impl Cataloger for GradleLock {
    fn name(&self) -> &'static str {
        "gradle-lockfile"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        if is_file_within(m, MAX_TEXT) && base(&m.path).ends_with("gradle.lockfile") {
            Select::Content
        } else {
            Select::Skip
        }
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_gradle_lockfile(&text(file)?)
    }
}

pub fn parse_gradle_lockfile(s: &str) -> Result<Vec<Package>, CatalogError> {
    let mut out = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, line) in s.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("empty=") {
            continue;
        }
        let coords = line.split('=').next().unwrap_or(line);
        let parts: Vec<&str> = coords.split(':').collect();
        match parts.as_slice() {
            [g, a, v] if !g.is_empty() && !a.is_empty() && !v.is_empty() => {
                out.push(maven_package(g, a, v))
            }
            // A merge-conflict marker or other stray line: Gradle itself would refuse the file,
            // but the lines around it are still what was locked.
            _ => bad_lines.push(i + 1),
        }
    }
    if out.is_empty()
        && let Some(line) = bad_lines.first()
    {
        return Err(CatalogError::Line {
            line: *line,
            why: "expected group:artifact:version".into(),
        });
    }
    dedup(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_manifests() {
        assert_eq!(
            split_file_name("commons-lang3-3.12.0.jar"),
            Some(("commons-lang3".into(), "3.12.0".into()))
        );
        let m = "Manifest-Version: 1.0\nImplementation-Title: x\nImplementation-Version: 1.2\nImplementation-Vendor-Id: org.ex\n\nName: y\n";
        let p = from_manifest(m, "thing-1.2.jar").unwrap();
        assert_eq!(p.purl.to_string(), "pkg:maven/org.ex/thing@1.2");
        assert!(parse_gradle_lockfile("a:b\n").is_err());
        assert!(parse_pom_xml("<project><dependencies>").is_err());
    }
}
