//! View models: what each page shows, already read from the store. Pages render only these, so the
//! HTML layer never runs a query and every field it prints goes through maud's escaping.

use std::collections::BTreeMap;

/// Severity names by the store's integer (moat_model::Severity order, UNKNOWN = 0 .. CRITICAL = 5).
pub const SEVERITIES: [&str; 6] = ["UNKNOWN", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// The name of a stored severity integer (out-of-range values read as UNKNOWN).
pub fn severity_name(n: i64) -> &'static str {
    usize::try_from(n)
        .ok()
        .and_then(|i| SEVERITIES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// Open findings of one image (or of everything) per severity, worst last (index = severity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeverityCounts(pub [i64; 6]);

impl SeverityCounts {
    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }
    pub fn get(&self, sev: usize) -> i64 {
        self.0.get(sev).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// allow / block / pending -> images.
    pub verdicts: BTreeMap<String, i64>,
    pub images: i64,
    /// Open vulnerability findings by severity: (with a fix, without).
    pub fixable: SeverityCounts,
    pub unfixable: SeverityCounts,
    /// (day start, unix ms; open findings at the end of that day), oldest first.
    pub trend: Vec<(i64, i64)>,
    pub urgent: Vec<UrgentImage>,
    pub alerts: Vec<AlertRow>,
    pub denials: Vec<AdmissionRow>,
    /// Alert-rule delivery status, from the delivery records: (rule id, state) -> alerts.
    pub delivery: Vec<(String, String, i64)>,
    pub alert_count: i64,
    pub denial_count: i64,
    /// When the portfolio figures (verdicts, findings, trend, most urgent) were computed, unix ms.
    pub computed_ms: i64,
}

#[derive(Debug, Clone)]
pub struct UrgentImage {
    pub digest: String,
    pub repository: String,
    pub tag: String,
    pub counts: SeverityCounts,
    pub workloads: i64,
    pub score: i64,
}

/// One row of the image list.
#[derive(Debug, Clone, Default)]
pub struct ImageRow {
    pub digest: String,
    pub repository: String,
    pub tag: String,
    pub os: String,
    pub packages: i64,
    pub counts: SeverityCounts,
    pub verdict: String,
    pub signature: String,
    pub last_scanned_ms: i64,
    pub snapshot: String,
}

/// The image list's query, as parsed from the URL (validated: unknown sorts fall back to the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    pub q: String,
    pub verdict: String,
    pub sort: String,
    pub desc: bool,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ImageList {
    pub query: ImageQuery,
    pub rows: Vec<ImageRow>,
    pub total: i64,
}

/// A vulnerability finding on an image.
#[derive(Debug, Clone, Default)]
pub struct FindingRow {
    pub id: String,
    pub aliases: Vec<String>,
    pub severity: String,
    pub title: String,
    pub package: String,
    pub version: String,
    pub fixed_versions: Vec<String>,
    pub kind: String,
    pub message: String,
    pub fix: String,
    pub layer: String,
}

/// Findings of one package and the version that clears all of them.
#[derive(Debug, Clone, Default)]
pub struct PackageFindings {
    pub package: String,
    pub version: String,
    pub findings: Vec<FindingRow>,
    /// The lowest version that clears every finding of the package, or None when some have no fix.
    pub remediation: Option<String>,
    /// Findings the remediation leaves open (no fixed version).
    pub left_open: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VerdictRow {
    pub decision: String,
    pub reasons: Vec<String>,
    pub policy: String,
    pub snapshot: String,
    pub decided_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct WorkloadRow {
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub container: String,
    pub source: String,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct PackageRow {
    pub name: String,
    pub version: String,
    pub kind: String,
    pub purl: String,
}

#[derive(Debug, Clone, Default)]
pub struct ImageDetail {
    pub row: ImageRow,
    pub arch: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub packages: Vec<PackageRow>,
    pub by_package: Vec<PackageFindings>,
    pub checks: Vec<FindingRow>,
    pub verdicts: Vec<VerdictRow>,
    pub workloads: Vec<WorkloadRow>,
    pub alerts: Vec<AlertRow>,
}

#[derive(Debug, Clone, Default)]
pub struct AffectedRow {
    pub digest: String,
    pub repository: String,
    pub tag: String,
    pub package: String,
    pub version: String,
    pub fixed_versions: Vec<String>,
    pub severity: String,
    pub why: String,
    pub matched: String,
}

#[derive(Debug, Clone, Default)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub title: String,
    pub details: String,
    /// (source, severity or score/vector).
    pub severities: Vec<(String, String)>,
    pub references: Vec<String>,
    pub fixed_versions: Vec<String>,
    pub affected: Vec<AffectedRow>,
    pub workloads: Vec<(String, WorkloadRow)>,
}

/// A runtime alert as listed.
#[derive(Debug, Clone, Default)]
pub struct AlertRow {
    pub id: String,
    pub ts_ms: i64,
    pub rule: String,
    pub priority: String,
    pub namespace: String,
    pub pod: String,
    pub container_id: String,
    pub image: String,
    pub digest: String,
    pub output: String,
}

/// One alert with everything the sensor recorded.
#[derive(Debug, Clone, Default)]
pub struct AlertDetail {
    pub row: AlertRow,
    pub source: String,
    pub hostname: String,
    pub cmdline: String,
    /// The process and its ancestors, the process first: (name, command line or exe).
    pub tree: Vec<(String, String)>,
    pub mitre: Vec<String>,
    pub tags: Vec<String>,
    pub response: String,
    pub container: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub priority: String,
    pub rule: String,
    pub namespace: String,
    pub pod: String,
    pub image: String,
    pub mitre: String,
    pub page: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub query: AlertQuery,
    pub rows: Vec<AlertRow>,
    pub total: i64,
    pub rules: Vec<String>,
    pub namespaces: Vec<String>,
    /// Alerts of rules tagged `container` (container runtime threats), by rule.
    pub container_threats: Vec<(String, i64)>,
    /// Alerts of rules tagged `process` (anomalous process execution), by rule.
    pub process_anomalies: Vec<(String, i64)>,
    /// Network connections by remote address.
    pub connections: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct AdmissionRow {
    pub id: String,
    pub ts_ms: i64,
    pub allowed: bool,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub images: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Admission {
    pub rows: Vec<AdmissionRow>,
    /// Denials by rule (the reason's leading rule id).
    pub by_rule: Vec<(String, i64)>,
    /// namespace -> (allowed, denied).
    pub by_namespace: Vec<(String, i64, i64)>,
}
