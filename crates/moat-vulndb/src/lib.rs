//! moat's vulnerability database and matcher.
//!
//! OSV records are imported into an immutable snapshot file ([`store`]), looked up by (ecosystem,
//! package name), and matched against an inventory with each ecosystem's own version ordering
//! ([`version`]) and OSV's range semantics ([`matcher`]). Every finding says exactly which range or
//! version-list entry matched and which comparisons were made, so a verdict can be checked by hand.
//! Severities come from the records themselves (GHSA, OSV) or, for records without one (Debian,
//! Alpine, Go), from NVD and CVE JSON 5 records joined by CVE id ([`cve`], [`severity`]).
#![forbid(unsafe_code)]

pub mod coverage;
pub mod cve;
pub mod ecosystem;
pub mod explain;
pub mod feeds;
pub mod ignore;
pub mod import;
pub mod matcher;
pub mod osv;
pub mod remediation;
pub mod scan;
pub mod severity;
pub mod store;
pub mod update;
pub mod version;
pub mod vex;

pub use scan::{ScanResult, scan};
pub use store::{DbError, Snapshot};
