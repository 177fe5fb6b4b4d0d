//! Go module and toolchain versions: SemVer with a leading `v` (modules) or `go` (toolchains, as Go
//! binaries record them) that advisories omit; pseudo-versions (`v0.0.0-20220906165146-f3363e06e74c`)
//! order by their timestamped pre-release; `+incompatible` is build metadata and ignored.

use std::cmp::Ordering;

/// `go1.21.0` → `1.21.0`; module versions keep their `v`, which the SemVer ordering ignores.
fn canonical(v: &str) -> &str {
    v.strip_prefix("go").unwrap_or(v)
}

/// Compares two Go versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    super::semver::compare(canonical(a), canonical(b))
}
