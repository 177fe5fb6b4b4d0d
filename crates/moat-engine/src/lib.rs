//! moat's engine layer: the composition of the capability crates that both front-ends run.
//!
//! The CLI (`moat scan`) and the security center (`moat server`) build the same typed request, make
//! the same single call, and get the same typed outcome back: a report, the inventory behind it, the
//! gate's verdict and diagnostics a caller can branch on (not sentences to match). Rendering stays
//! with the caller.

#![forbid(unsafe_code)]

pub mod lint;
pub mod policy;
pub mod scan;

pub use scan::{
    DbChoice, Diagnostic, IgnoreChoice, InputSource, ScanError, ScanOutcome, ScanRequest, Scanners,
    layer_cache_scope, scan, scan_with_cache,
};
