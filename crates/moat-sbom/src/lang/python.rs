//! Python: installed distributions (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO` or a `*.egg-info`
//! file), pinned `requirements*.txt`, `poetry.lock`, `Pipfile.lock`, `uv.lock`.

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::Package;
use serde_json::Value;

use super::{MAX_TEXT, base, dedup, is_file_within, parent, python_package, text};
use crate::{CatalogError, Cataloger, Context};

fn select(yes: bool) -> Select {
    if yes { Select::Content } else { Select::Skip }
}

fn bad(why: impl Into<String>) -> CatalogError {
    CatalogError::Invalid(why.into())
}

/// Installed distributions, as pip, setuptools and distro packages leave them in site-packages.
pub struct Installed;

impl Cataloger for Installed {
    fn name(&self) -> &'static str {
        "python-installed"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let p = &m.path;
        let b = base(p);
        let dir = base(parent(p));
        let yes = (b == "METADATA" && dir.ends_with(".dist-info"))
            || (b == "PKG-INFO" && dir.ends_with(".egg-info"))
            || (b.ends_with(".egg-info") && !dir.ends_with(".egg-info"));
        select(yes && is_file_within(m, 16 << 20))
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_metadata(&text(file)?)
    }
}

/// Core metadata (RFC 822 style headers up to the first blank line).
pub fn parse_metadata(s: &str) -> Result<Vec<Package>, CatalogError> {
    let (mut name, mut version, mut license, mut expression) = (None, None, None, None);
    let mut classifiers = Vec::new();
    for line in s.lines() {
        if line.trim().is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => name = Some(v),
            "Version" => version = Some(v),
            "License" if !v.is_empty() && v != "UNKNOWN" && v.len() < 200 => license = Some(v),
            "License-Expression" => expression = Some(v),
            "Classifier" => {
                if let Some(l) = v.strip_prefix("License :: OSI Approved :: ") {
                    classifiers.push(l.to_string());
                }
            }
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(bad("no Name or Version header"));
    };
    if name.is_empty() || version.is_empty() {
        return Err(bad("empty Name or Version header"));
    }
    let mut p = python_package(name, version);
    if let Some(l) = expression.or(license) {
        p.licenses.push(l.to_string());
    } else {
        p.licenses = classifiers;
    }
    Ok(vec![p])
}

/// `requirements*.txt`: only exact pins (`==`, `===`) name a version that was installed.
pub struct Requirements;

impl Cataloger for Requirements {
    fn name(&self) -> &'static str {
        "python-requirements"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let b = base(&m.path);
        select(
            is_file_within(m, 16 << 20)
                && b.ends_with(".txt")
                && b.contains("requirements")
                && !m.path.contains("site-packages/"),
        )
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_requirements(&text(file)?)
    }
}

pub fn parse_requirements(s: &str) -> Result<Vec<Package>, CatalogError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let lines: Vec<&str> = s.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        // A comment starts at `#` at the line start or after whitespace.
        // A comment starts at `#` (URLs keep theirs: `#egg=` fragments are not comments).
        let line = match raw.find('#') {
            Some(at) if !raw[..at].contains("://") => &raw[..at],
            _ => raw,
        };
        if let Some(cont) = line.trim_end().strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            if i + 1 < lines.len() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let req = std::mem::take(&mut logical);
        if let Some(p) = requirement(&req) {
            out.push(p);
        }
    }
    dedup(&mut out);
    Ok(out)
}

/// One requirement specifier, if it pins a version: `name[extras]==1.0 ; marker --hash=...`.
fn requirement(line: &str) -> Option<Package> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('-') || line.contains("://") {
        return None;
    }
    let line = line.split(';').next()?;
    // Per-requirement options (`--hash=...`, `--global-option`) follow the specifier.
    let line = line.split(" -").next()?.trim();
    let (name_part, rest) = match line.find(['=', '<', '>', '!', '~', ' ', '[', '(']) {
        Some(at) => (&line[..at], &line[at..]),
        None => return None,
    };
    let name = name_part.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return None;
    }
    let rest = match rest.trim_start().strip_prefix('[') {
        Some(r) => r.split_once(']')?.1,
        None => rest,
    };
    let spec = rest.trim().trim_start_matches('(').trim_end_matches(')');
    // A single exact pin; ranges (`>=1,<2`) say nothing about what is installed.
    if spec.contains(',') {
        return None;
    }
    // Bounds (`>=`, `~=`) say what may be installed, not what is: they make no package.
    let version = spec
        .strip_prefix("===")
        .or_else(|| spec.strip_prefix("=="))?
        .trim();
    if version.is_empty()
        || version.contains(['*', '$', '{'])
        || version.contains(char::is_whitespace)
    {
        return None;
    }
    Some(python_package(name, version))
}

fn toml_doc(s: &str) -> Result<toml::Table, CatalogError> {
    s.parse::<toml::Table>()
        .map_err(|e| bad(format!("invalid TOML: {}", e.message())))
}

fn toml_packages(doc: &toml::Table) -> Result<&[toml::Value], CatalogError> {
    match doc.get("package") {
        None => Ok(&[]),
        Some(toml::Value::Array(a)) => Ok(a),
        Some(_) => Err(bad("field \"package\" is not an array of tables")),
    }
}

/// `poetry.lock`: every `[[package]]` (dev and optional groups included: they are installed).
pub struct PoetryLock;

impl Cataloger for PoetryLock {
    fn name(&self) -> &'static str {
        "poetry-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(is_file_within(m, MAX_TEXT) && base(&m.path) == "poetry.lock")
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_toml_lock(&text(file)?, false)
    }
}

/// `uv.lock`: every `[[package]]` with a version (the project itself included, as uv records it;
/// editable and virtual sources are the user's own code and skipped).
pub struct UvLock;

impl Cataloger for UvLock {
    fn name(&self) -> &'static str {
        "uv-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(is_file_within(m, MAX_TEXT) && base(&m.path) == "uv.lock")
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_toml_lock(&text(file)?, true)
    }
}

pub fn parse_poetry_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    parse_toml_lock(s, false)
}

pub fn parse_uv_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    parse_toml_lock(s, true)
}

fn parse_toml_lock(s: &str, uv: bool) -> Result<Vec<Package>, CatalogError> {
    let doc = toml_doc(s)?;
    let mut out = Vec::new();
    let mut direct = std::collections::BTreeSet::new();
    for (i, pkg) in toml_packages(&doc)?.iter().enumerate() {
        let t = pkg
            .as_table()
            .ok_or_else(|| bad(format!("package[{i}] is not a table")))?;
        let name = t
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| bad(format!("package[{i}] has no name")))?;
        let Some(version) = t.get("version").and_then(toml::Value::as_str) else {
            if uv {
                continue; // uv leaves dynamic versions of local projects out
            }
            return Err(bad(format!("package {name:?} has no version")));
        };
        if uv
            && let Some(src) = t.get("source").and_then(toml::Value::as_table)
            && (src.contains_key("editable") || src.contains_key("virtual"))
        {
            // The project itself and its local members: the user's code, not a PyPI release.
            // What they depend on (in any group) is direct.
            if src
                .get("editable")
                .or(src.get("virtual"))
                .and_then(toml::Value::as_str)
                == Some(".")
            {
                direct.extend(uv_dependency_names(t));
            }
            continue;
        }
        out.push(python_package(name, version));
    }
    if uv && !direct.is_empty() {
        for p in &mut out {
            p.direct = Some(direct.contains(&super::pep503(&p.name)));
        }
    }
    dedup(&mut out);
    Ok(out)
}

/// PEP 503 names in a uv package's `dependencies`, `optional-dependencies` and `dev-dependencies`.
fn uv_dependency_names(t: &toml::Table) -> Vec<String> {
    let names = |v: &toml::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("name").and_then(toml::Value::as_str))
            .map(super::pep503)
            .collect()
    };
    let mut out = t.get("dependencies").map(names).unwrap_or_default();
    for groups in ["optional-dependencies", "dev-dependencies"] {
        if let Some(g) = t.get(groups).and_then(toml::Value::as_table) {
            out.extend(g.values().flat_map(names));
        }
    }
    out
}

/// `pylock.toml` / `pylock.<name>.toml` (PEP 751): `[[packages]]` with exact versions.
pub struct PyLock;

impl Cataloger for PyLock {
    fn name(&self) -> &'static str {
        "pylock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let b = base(&m.path);
        select(is_file_within(m, MAX_TEXT) && b.starts_with("pylock.") && b.ends_with(".toml"))
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_pylock(&text(file)?)
    }
}

pub fn parse_pylock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let doc = toml_doc(s)?;
    let pkgs = match doc.get("packages") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err(bad("field \"packages\" is not an array of tables")),
    };
    let mut out = Vec::new();
    for (i, pkg) in pkgs.iter().enumerate() {
        let t = pkg
            .as_table()
            .ok_or_else(|| bad(format!("packages[{i}] is not a table")))?;
        let name = t
            .get("name")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| bad(format!("packages[{i}] has no name")))?;
        // A package from a directory or VCS may have no version: nothing to match.
        if let Some(version) = t.get("version").and_then(toml::Value::as_str) {
            out.push(python_package(name, version));
        }
    }
    dedup(&mut out);
    Ok(out)
}

/// `Pipfile.lock`: `default` and `develop` sections, versions as `==x`.
pub struct PipfileLock;

impl Cataloger for PipfileLock {
    fn name(&self) -> &'static str {
        "pipfile-lock"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        select(is_file_within(m, MAX_TEXT) && base(&m.path) == "Pipfile.lock")
    }
    fn catalog(&self, file: &FileEntry, _: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        parse_pipfile_lock(&text(file)?)
    }
}

pub fn parse_pipfile_lock(s: &str) -> Result<Vec<Package>, CatalogError> {
    let doc: Value = serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let mut out = Vec::new();
    for section in ["default", "develop"] {
        let Some(deps) = doc.get(section) else {
            continue;
        };
        let deps = deps
            .as_object()
            .ok_or_else(|| bad(format!("field {section:?} is not an object")))?;
        for (name, dep) in deps {
            let Some(v) = dep.get("version").and_then(Value::as_str) else {
                continue;
            };
            if let Some(v) = v.strip_prefix("==") {
                out.push(python_package(name, v));
            }
        }
    }
    dedup(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_lines() {
        let got = parse_requirements("requests==2.19.1 --hash=sha256:x\nFlask[async] == 2.0.0 ; python_version>'3'\nfoo>=1\n# c\nbar===1.0 # pinned\n").unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [("requests", "2.19.1"), ("Flask", "2.0.0"), ("bar", "1.0")]
        );
    }

    #[test]
    fn uv_direct_dependencies() {
        let lock = "version = 1\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"Flask\" }]\n[package.dev-dependencies]\ndev = [{ name = \"pytest\" }]\n[[package]]\nname = \"flask\"\nversion = \"3.0.0\"\n[[package]]\nname = \"pytest\"\nversion = \"8.0.0\"\n[[package]]\nname = \"click\"\nversion = \"8.1.7\"\n";
        let got: Vec<_> = parse_uv_lock(lock)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.direct))
            .collect();
        assert_eq!(
            got,
            [
                ("flask".into(), Some(true)),
                ("pytest".into(), Some(true)),
                ("click".into(), Some(false))
            ]
        );
    }

    #[test]
    fn metadata_headers() {
        let p = parse_metadata(
            "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\nLicense: BSD\n\nName: no\n",
        )
        .unwrap();
        assert_eq!(p[0].purl.to_string(), "pkg:pypi/jinja2@2.10");
        assert_eq!(p[0].licenses, ["BSD"]);
        assert!(parse_metadata("garbage").is_err());
        assert!(parse_poetry_lock("[[package]]\nname = 1").is_err());
        assert!(parse_uv_lock("package = 3").is_err());
    }
}
