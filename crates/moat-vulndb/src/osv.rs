//! The OSV schema (<https://ossf.github.io/osv-schema/>), reduced to what matching, severity and
//! reports use. Unknown fields are ignored so newer schema versions still import; `database_specific`
//! and `ecosystem_specific` are read only where a documented rating lives.

use serde::{Deserialize, Serialize};

/// One OSV record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Withdrawn records stay in the database (so `explain` can say so) but never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Ids of the same vulnerability in other databases: merged into one finding per package.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    /// Upstream vulnerabilities this record derives from (a DSA's CVEs): shown, never merged on.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub upstream: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityEntry>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub affected: Vec<Affected>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub references: Vec<Reference>,
    /// Only the source's own rating is kept (`database_specific.severity`, as GitHub writes it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "source_rating",
        rename = "database_specific"
    )]
    pub source_severity: Option<SourceRating>,
}

/// The source's own rating, kept from `database_specific.severity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRating {
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityEntry {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`...
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PackageId {
    #[serde(default)]
    pub ecosystem: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Affected {
    #[serde(default)]
    pub package: PackageId,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ranges: Vec<Range>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub versions: Vec<String>,
    /// Per-package severity (OSV 1.5+).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub events: Vec<Event>,
}

/// One range event: exactly one field is set in valid data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl Event {
    /// `introduced=1.2`, as reports and `explain` print it.
    pub fn describe(&self) -> String {
        let (k, v) = self.kind_value();
        format!("{k}={v}")
    }

    pub fn kind_value(&self) -> (&'static str, &str) {
        if let Some(v) = &self.introduced {
            ("introduced", v)
        } else if let Some(v) = &self.fixed {
            ("fixed", v)
        } else if let Some(v) = &self.last_affected {
            ("last_affected", v)
        } else if let Some(v) = &self.limit {
            ("limit", v)
        } else {
            ("empty", "")
        }
    }
}

impl Range {
    pub fn describe(&self) -> String {
        let ev: Vec<String> = self.events.iter().map(Event::describe).collect();
        format!("{} {}", self.kind, ev.join(" "))
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads `database_specific.severity` when it is a string; anything else there is the source's
/// business and is ignored.
fn source_rating<'de, D>(d: D) -> Result<Option<SourceRating>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.as_ref()
        .and_then(|v| v.get("severity"))
        .and_then(|s| s.as_str())
        .map(|s| SourceRating {
            severity: s.to_string(),
        }))
}

impl Record {
    /// Parses one OSV JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Record, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Drops what moat never reads, so the snapshot stays small: long details are cut, references
    /// capped.
    pub fn slim(mut self) -> Record {
        if self
            .summary
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
        {
            self.details = None;
        }
        if let Some(d) = &mut self.details
            && d.len() > 400
        {
            let mut cut = 400;
            while !d.is_char_boundary(cut) {
                cut -= 1;
            }
            d.truncate(cut);
            d.push('…');
        }
        self.references.truncate(8);
        self
    }

    /// A one-line title.
    pub fn title(&self) -> String {
        if let Some(s) = self.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            return s.trim().to_string();
        }
        if let Some(d) = &self.details {
            let line = d.lines().next().unwrap_or("").trim();
            if !line.is_empty() {
                let mut t: String = line.chars().take(120).collect();
                if line.chars().count() > 120 {
                    t.push('…');
                }
                return t;
            }
        }
        self.id.clone()
    }
}
