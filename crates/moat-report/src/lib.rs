//! Turns findings into what people and CI read: a table, moat's JSON report, SARIF 2.1.0; and decides
//! the exit code with the `--fail-on` gate that every moat command shares.
//!
//! Formats live one per file so a new one is one new file. SBOM formats (CycloneDX, SPDX) live in
//! `moat-sbom`, next to the inventory they describe.

mod diff;
mod gate;
mod json;
mod sarif;
mod table;
mod vulns;
mod width;

pub use diff::{ReportDiff, compare, to_markdown, unrelated};
pub use gate::{Gate, Verdict};
pub use json::{Coverage, InputFailure, REPORT_SCHEMA, Report, Summary};
pub use sarif::to_sarif;
pub use table::{to_table, to_table_at};
pub use vulns::{to_vuln_table, to_vuln_table_at};
pub use width::{DEFAULT_WIDTH, table_width};
