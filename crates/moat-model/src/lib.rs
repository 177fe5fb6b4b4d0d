//! The shared data model of moat.
//!
//! Every capability crate speaks these types and nothing else of another crate: analyzers produce
//! [`Package`]s in an [`Inventory`], judges (vulnerability matcher, linters, policy engine, runtime
//! rules) produce [`Finding`]s, and reports render them. Keeping the model small and boring is what
//! lets the crates stay independent.
#![forbid(unsafe_code)]

mod finding;
mod inventory;
mod package;
mod purl;
mod severity;

pub use finding::{
    AdvisoryRecord, Cvss, Finding, FindingKind, Location, MatchReason, PackageRef, SeverityRating,
    Vulnerability,
};
pub use inventory::{ImageInfo, Inventory, LayerInfo, OsRelease, TargetInfo};
pub use package::{Package, PackageKind, SourcePackage};
pub use purl::{Purl, PurlError};
pub use severity::{Severity, SeverityParseError};

/// The version of moat, stamped into every report so a verdict can be traced to the build that made it.
pub const MOAT_VERSION: &str = env!("CARGO_PKG_VERSION");
