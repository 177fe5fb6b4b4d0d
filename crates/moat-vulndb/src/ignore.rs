//! `.moatignore`: accepted risks, each with a reason and (ideally) an expiry date. An expired entry
//! stops suppressing and is reported, so an exception cannot silently outlive its review.
//!
//! ```yaml
//! - id: CVE-2023-4911          # advisory id or any alias
//!   package: glibc             # optional: package name (binary or source)
//!   purl: pkg:deb/debian/libc6 # optional: purl, version and qualifiers optional
//!   reason: not reachable, no setuid binaries in the image
//!   expires: 2025-06-30        # optional, YYYY-MM-DD (UTC); from that day on it no longer applies
//! ```
//! A mapping with an `ignore:` list is accepted too.

use std::path::Path;

use moat_model::{Finding, Purl};
use serde::Deserialize;

use crate::store::civil_from_days;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreEntry {
    pub id: String,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub purl: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    List(Vec<IgnoreEntry>),
    Map { ignore: Vec<IgnoreEntry> },
}

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
}

/// A loaded ignore file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreFile {
    pub path: String,
    pub entries: Vec<IgnoreEntry>,
}

/// Today's date as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

impl IgnoreFile {
    pub fn load(path: &Path) -> Result<IgnoreFile, IgnoreError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| IgnoreError::Invalid {
            path: name.clone(),
            msg: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    pub fn parse(text: &str, name: &str) -> Result<IgnoreFile, IgnoreError> {
        let invalid = |msg: String| IgnoreError::Invalid {
            path: name.to_string(),
            msg,
        };
        let entries = if text.trim().is_empty() {
            Vec::new()
        } else {
            match serde_saphyr::from_str::<File>(text) {
                Ok(File::List(v)) | Ok(File::Map { ignore: v }) => v,
                Err(e) => {
                    return Err(invalid(format!(
                        "not a list of {{id, package, purl, reason, expires}} entries: {e}"
                    )));
                }
            }
        };
        for (i, e) in entries.iter().enumerate() {
            if e.id.trim().is_empty() {
                return Err(invalid(format!("entry {}: empty id", i + 1)));
            }
            if let Some(x) = &e.expires
                && !valid_date(x)
            {
                return Err(invalid(format!(
                    "entry {} ({}): expires {x:?} is not a YYYY-MM-DD date",
                    i + 1,
                    e.id
                )));
            }
            if let Some(p) = &e.purl
                && p.parse::<Purl>().is_err()
            {
                return Err(invalid(format!(
                    "entry {} ({}): purl {p:?} is not a package URL",
                    i + 1,
                    e.id
                )));
            }
        }
        Ok(IgnoreFile {
            path: name.to_string(),
            entries,
        })
    }

    /// Marks matching findings suppressed; returns warnings for expired entries that matched.
    pub fn apply(&self, findings: &mut [Finding], today: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let expired = e.expires.as_deref().is_some_and(|x| x <= today);
            let mut hits = 0;
            for f in findings.iter_mut() {
                if f.suppressed.is_some() || !ids_of(f).any(|id| id == e.id) {
                    continue;
                }
                if let Some(pk) = &e.package {
                    let names = package_names(f);
                    if !names.iter().any(|n| n == pk) {
                        continue;
                    }
                }
                if let Some(p) = &e.purl {
                    let (Ok(want), Some(pkg)) = (p.parse::<Purl>(), &f.package) else {
                        continue;
                    };
                    if !purl_matches(&want, &pkg.purl) {
                        continue;
                    }
                }
                hits += 1;
                if !expired {
                    f.suppressed = Some(format!(
                        "{} entry {} ({}): {}",
                        self.path,
                        i + 1,
                        e.id,
                        e.reason.as_deref().unwrap_or("no reason given")
                    ));
                }
            }
            if expired {
                warnings.push(format!(
                    "{}: entry {} ({}) expired on {}: it no longer suppresses anything ({} finding(s) it would match are reported)",
                    self.path,
                    i + 1,
                    e.id,
                    e.expires.as_deref().unwrap_or(""),
                    hits
                ));
            }
        }
        warnings
    }
}

/// Every id a finding answers to: its id, aliases and the ids of its records.
pub fn ids_of(f: &Finding) -> impl Iterator<Item = &str> {
    std::iter::once(f.id.as_str())
        .chain(f.aliases.iter().map(String::as_str))
        .chain(
            f.vulnerability
                .iter()
                .flat_map(|v| v.records.iter().map(|r| r.id.as_str())),
        )
}

fn package_names(f: &Finding) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = &f.package {
        v.push(p.name.clone());
        v.push(p.purl.name.clone());
    }
    if let Some(vu) = &f.vulnerability {
        v.push(vu.matched.queried_name.clone());
    }
    v
}

/// `want` matches `have` when type, namespace and name agree, and the version too if `want` has one.
pub fn purl_matches(want: &Purl, have: &Purl) -> bool {
    want.ty == have.ty
        && want.namespace.as_deref().map(str::to_ascii_lowercase)
            == have.namespace.as_deref().map(str::to_ascii_lowercase)
        && want.name == have.name
        && want
            .version
            .as_ref()
            .is_none_or(|v| Some(v) == have.version.as_ref())
}
