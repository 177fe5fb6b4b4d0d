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
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
