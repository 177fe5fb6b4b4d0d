use serde::{Deserialize, Serialize};

use crate::{Purl, Severity};

/// Which judge produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Vulnerability,
    Dockerfile,
    ImageConfig,
    Kubernetes,
    Policy,
    Runtime,
    Secret,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Dockerfile => "dockerfile",
            FindingKind::ImageConfig => "image-config",
            FindingKind::Kubernetes => "kubernetes",
            FindingKind::Policy => "policy",
            FindingKind::Runtime => "runtime",
            FindingKind::Secret => "secret",
        }
    }
}

/// Where a finding is. Every field is optional because judges see different inputs: a Dockerfile rule
/// has a file, line and column; a Kubernetes rule a document and a field path; a vulnerability a layer
/// and the package database file.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    /// 0-based index of the document in a multi-document YAML file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<u32>,
    /// A field path inside a structured document: `spec.containers[0].securityContext.privileged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The object a finding is about (`Deployment/default/web`, a Dockerfile stage, a container id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The image layer digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// The package a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    pub purl: Purl,
}

/// A CVSS score as a source rated it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`.
    pub version: String,
    pub vector: String,
    pub score: f64,
}

/// Why an advisory matched a package: the exact range or list entry and the comparison made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchReason {
    /// The OSV ecosystem the package was looked up in (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// The name it was looked up by (the source package for Debian).
    pub queried_name: String,
    /// `range` or `versions`.
    pub by: String,
    /// The range or list entry, e.g. `ECOSYSTEM introduced=0 fixed=2.36-9+deb12u4`.
    pub entry: String,
    /// The comparisons made, e.g. `2.36-9+deb12u1 >= 0 and < 2.36-9+deb12u4`.
    pub comparison: String,
}

/// Details that only vulnerability findings carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub installed_version: String,
    pub ecosystem: String,
    #[serde(default)]
    pub fixed_versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cvss: Vec<Cvss>,
    /// Where the severity came from: `cvss-v3`, `source`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    pub matched: MatchReason,
    /// Every advisory record that matched (a finding merges aliases; this keeps each record's id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<AdvisoryRecord>,
    /// Who rated the severity, from which record, with which vector; or why nobody did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<SeverityRating>,
    /// Every place the package was found (one finding per package and vulnerability, whatever the
    /// number of files that hold the package). Empty in reports written before moat listed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// The lowest version of the package that clears every vulnerability finding of it in the same
    /// report (each record's own fix is in `records[].fixed_versions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

/// Where a vulnerability's severity came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeverityRating {
    /// `nvd`, `cna`, `adp` (CVE JSON 5 containers), `ghsa`, `osv`, or `none` (no source rated it:
    /// the severity is UNKNOWN).
    pub source: String,
    /// The record that gave the rating: `CVE-2022-0778` (NVD / CVE list), `GHSA-…`, an OSV id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub record: String,
    /// Who rated, as the source names them (`nvd@nist.gov`, `openssl`, `CISA-ADP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The CVSS vector, when the rating is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// How it was chosen, in words (`highest of the CVEs DSA-5343-1 fixes: …`, `no severity in
    /// OSV, NVD or the CVE list for …`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One advisory record behind a vulnerability finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryRecord {
    pub id: String,
    /// Where the record came from: the OSV ecosystem of the entry that matched (`Debian:11`, `Go`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_versions: Vec<String>,
    /// The range or list entry and comparison of this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchReason>,
}

/// One judgement, from any judge. Reports and gates only ever see this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule id (`DL3008`, `MOAT-DF-001`, `privileged`) or advisory id (`CVE-2023-1234`, `DSA-5000-1`).
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub kind: FindingKind,
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: String,
    /// The specific message for this occurrence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageRef>,
    /// Why this finding exists: the evidence, in words a reviewer can check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// How to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<Vulnerability>,
    /// Suppressed by an ignore file or VEX statement, with the reason; still reported, never counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

impl Finding {
    pub fn new(
        id: impl Into<String>,
        kind: FindingKind,
        severity: Severity,
        title: impl Into<String>,
    ) -> Self {
        Finding {
            id: id.into(),
            aliases: Vec::new(),
            kind,
            severity,
            title: title.into(),
            message: String::new(),
            location: Location::default(),
            package: None,
            why: None,
            fix: None,
            references: Vec::new(),
            vulnerability: None,
            suppressed: None,
        }
    }

    /// Deterministic order for reports: by location, then severity (worst first), then id.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            self.kind,
            &self.location.file,
            self.location.document,
            self.location.line,
            self.location.column,
            self.package.as_ref().map(|p| (&p.name, &p.version)),
            std::cmp::Reverse(self.severity),
            &self.id,
            &self.location.field,
        )
    }
}
