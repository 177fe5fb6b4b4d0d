//! Go modules: `go.mod` (with `replace` applied and `// indirect` marking transitive modules), and
//! for modules older than Go 1.17, whose go.mod does not list every module, the `go.sum` beside it.
//! Compiled binaries are read in `binary.rs`.

use std::collections::BTreeMap;

use moat_image::{FileEntry, FileMeta, Select};
use moat_model::Package;

use super::{base, decode_text, go_package, is_file_within, parent, text};
use crate::{CatalogError, Cataloger, Context};

pub struct GoMod;

impl Cataloger for GoMod {
    fn name(&self) -> &'static str {
        "go-mod"
    }
    fn wants(&self, m: &FileMeta) -> Select {
        let b = base(&m.path);
        // Not the go.mod files of dependencies: vendored copies and the module cache (GOPATH/pkg/mod).
        let dep_copy = m.path.contains("vendor/") || m.path.contains("pkg/mod/");
        let yes = (b == "go.mod" || b == "go.sum") && is_file_within(m, 16 << 20) && !dep_copy;
        if yes { Select::Content } else { Select::Skip }
    }
    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError> {
        if base(&file.meta.path) != "go.mod" {
            return Ok(Vec::new()); // go.sum is read as go.mod's sibling
        }
        let dir = parent(&file.meta.path);
        let sum_path = if dir.is_empty() {
            "go.sum".to_string()
        } else {
            format!("{dir}/go.sum")
        };
        let sum = match ctx.view.get(&sum_path).and_then(|e| e.content.as_deref()) {
            Some(b) => Some(decode_text(b)?.into_owned()),
            None => None,
        };
        parse_go_mod(&text(file)?, sum.as_deref())
    }
}

/// A parsed go.mod: the modules it requires, after `replace`.
#[derive(Debug, Default)]
struct GoModFile {
    go: Option<String>,
    /// (module path, version, indirect), in file order
    require: Vec<(String, String, bool)>,
    /// (old path, old version if given) -> (new path, new version; none for a local directory)
    replace: Vec<(String, Option<String>, String, Option<String>)>,
}

/// Splits a go.mod line into tokens (quoted strings unquoted), dropping a trailing comment but
/// reporting whether it said `indirect`.
fn tokens(line: &str) -> (Vec<String>, bool) {
    let (code, comment) = match line.find("//") {
        Some(at) => (&line[..at], &line[at + 2..]),
        None => (line, ""),
    };
    let indirect = comment.split(';').any(|c| c.trim() == "indirect");
    let toks = code
        .split_whitespace()
        .map(|t| t.trim_matches('"').trim_matches('`').to_string())
        .collect();
    (toks, indirect)
}

fn parse_mod(s: &str) -> Result<GoModFile, CatalogError> {
    let mut out = GoModFile::default();
    let mut block: Option<String> = None;
    for (i, raw) in s.lines().enumerate() {
        let (mut toks, indirect) = tokens(raw);
        if toks.is_empty() {
            continue;
        }
        let verb = match &block {
            Some(b) => {
                if toks[0] == ")" {
                    block = None;
                    continue;
                }
                b.clone()
            }
            None => {
                let v = toks.remove(0);
                if toks.first().map(String::as_str) == Some("(") {
                    block = Some(v);
                    continue;
                }
                v
            }
        };
        let line = i + 1;
        match verb.as_str() {
            "go" => out.go = toks.first().cloned(),
            "require" => {
                let [path, version, ..] = toks.as_slice() else {
                    return Err(CatalogError::Line {
                        line,
                        why: "require needs a module path and a version".into(),
                    });
                };
                out.require.push((path.clone(), version.clone(), indirect));
            }
            "replace" => {
                let Some(arrow) = toks.iter().position(|t| t == "=>") else {
                    return Err(CatalogError::Line {
                        line,
                        why: "replace without =>".into(),
                    });
                };
                let (old, new) = toks.split_at(arrow);
                let new = &new[1..];
                let (Some(op), Some(np)) = (old.first(), new.first()) else {
                    return Err(CatalogError::Line {
                        line,
                        why: "replace needs a module on each side".into(),
                    });
                };
                out.replace.push((
                    op.clone(),
                    old.get(1).cloned(),
                    np.clone(),
                    new.get(1).cloned(),
                ));
            }
            "module" | "toolchain" | "exclude" | "retract" | "godebug" | "tool" | "ignore" => {}
            other => {
                return Err(CatalogError::Line {
                    line,
                    why: format!("unknown directive {other:?}"),
                });
            }
        }
    }
    Ok(out)
}

/// `go 1.16` and older: go.mod omits modules only needed by dependencies.
fn lists_all_modules(go: Option<&str>) -> bool {
    let Some(v) = go else { return false };
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 17)
}

pub fn parse_go_mod(s: &str, go_sum: Option<&str>) -> Result<Vec<Package>, CatalogError> {
    let m = parse_mod(s)?;
    let mut mods: Vec<(String, String, bool)> = Vec::new();
    for (path, version, indirect) in &m.require {
        // A replace applies to every version, or to the one it names.
        let rep = m
            .replace
            .iter()
            .rev()
            .find(|(op, ov, _, _)| op == path && ov.as_ref().is_none_or(|ov| ov == version));
        match rep {
            // A replacement by a local directory is the user's own code: no registry version to judge.
            Some((_, _, _, None)) => {}
            Some((_, _, np, Some(nv))) => mods.push((np.clone(), nv.clone(), *indirect)),
            None => mods.push((path.clone(), version.clone(), *indirect)),
        }
    }
    if !lists_all_modules(m.go.as_deref())
        && let Some(sum) = go_sum
    {
        let known: std::collections::BTreeSet<String> = m
            .require
            .iter()
            .map(|r| r.0.clone())
            .chain(mods.iter().map(|r| r.0.clone()))
            .collect();
        for (path, version) in parse_go_sum(sum) {
            if !known.contains(&path) {
                mods.push((path, version, true));
            }
        }
    }
    let mut out: Vec<Package> = mods
        .into_iter()
        .map(|(path, version, indirect)| {
            let mut p = go_package(&path, &version);
            p.direct = Some(!indirect);
            p
        })
        .collect();
    super::dedup(&mut out);
    Ok(out)
}

/// go.sum: the newest version of each module whose source (not only go.mod) was hashed.
pub fn parse_go_sum(s: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for line in s.lines() {
        let mut f = line.split_whitespace();
        let (Some(path), Some(version)) = (f.next(), f.next()) else {
            continue;
        };
        if version.ends_with("/go.mod") {
            continue;
        }
        let version = version.trim_end_matches("/go.mod");
        match out.get(path) {
            Some(v) if !semver_less(v, version) => {}
            _ => {
                out.insert(path.to_string(), version.to_string());
            }
        }
    }
    out
}

/// Orders Go module versions (`v1.2.3`, `v1.2.3-pre`, `+incompatible`) closely enough to pick the
/// newest of a go.sum's entries.
fn semver_less(a: &str, b: &str) -> bool {
    fn key(v: &str) -> (Vec<u64>, bool, String) {
        let v = v.trim_start_matches('v').trim_end_matches("+incompatible");
        let (core, pre) = v.split_once('-').unwrap_or((v, ""));
        let nums = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        (nums, pre.is_empty(), pre.to_string())
    }
    key(a) < key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mod_blocks_and_replace() {
        let s = "module example.com/m\n\ngo 1.21\n\nrequire (\n\tgithub.com/a/b v1.0.0\n\tgithub.com/c/d v0.0.0-20200101000000-abcdef123456 // indirect\n)\nrequire golang.org/x/e v0.1.0\nreplace github.com/a/b => github.com/a/b2 v1.1.0\nreplace golang.org/x/e => ./e\n";
        let got = parse_go_mod(s, None).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.direct))
            .collect();
        assert_eq!(
            names,
            [
                ("github.com/a/b2", "v1.1.0", Some(true)),
                (
                    "github.com/c/d",
                    "v0.0.0-20200101000000-abcdef123456",
                    Some(false)
                )
            ]
        );
        assert!(parse_go_mod("require (\n x\n)", None).is_err());
    }
}
