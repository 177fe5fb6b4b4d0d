use std::collections::BTreeMap;

use moat_model::{Finding, MOAT_VERSION, Severity, TargetInfo};
use serde::{Deserialize, Serialize};

/// The identifier of moat's JSON report format; bumped on incompatible changes.
pub const REPORT_SCHEMA: &str = "moat.report/v1";

/// moat's JSON report: the target, the findings (sorted), counts, and the facts needed to reproduce the
/// verdict (the tool version, the vulnerability database digest where one was used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub moat_version: String,
    pub target: TargetInfo,
    /// Facts that pin the verdict: `db_digest`, `pss_version`, `policies`... Sorted by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Inputs that could not be judged at all (a file that is not a Dockerfile, broken YAML): the
    /// rest of the inputs are still reported, and the command exits 2 because of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InputFailure>,
    /// Per ecosystem of the target's packages, what the vulnerability database holds for it (a scan
    /// that finds nothing where the database knows nothing must say so; each uncovered ecosystem is
    /// also a line of `warnings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<Coverage>,
}

/// The vulnerability database's coverage of one ecosystem of the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The OSV ecosystem (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// Packages of the target in it.
    pub packages: usize,
    /// Records the database holds for it.
    pub records: usize,
    /// The newest record's `modified` date, when the database knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    pub covered: bool,
}

/// One input that could not be read or parsed, with where the problem is when that is known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InputFailure {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What is wrong, without the file and position (they are the fields above).
    pub message: String,
}

impl InputFailure {
    /// `file:line:col` (as much of it as is known), for tables and messages.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

impl std::fmt::Display for InputFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

/// Counts of unsuppressed findings per severity, plus the suppressed ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub suppressed: usize,
}

impl Report {
    /// Builds a report with findings sorted into their deterministic order.
    pub fn new(target: TargetInfo, mut findings: Vec<Finding>) -> Self {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut summary = Summary::default();
        for f in &findings {
            if f.suppressed.is_some() {
                summary.suppressed += 1;
            } else {
                summary.total += 1;
                *summary.by_severity.entry(f.severity).or_default() += 1;
            }
        }
        Report {
            schema: REPORT_SCHEMA.to_string(),
            moat_version: MOAT_VERSION.to_string(),
            target,
            metadata: BTreeMap::new(),
            summary,
            findings,
            warnings: Vec::new(),
            errors: Vec::new(),
            coverage: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
