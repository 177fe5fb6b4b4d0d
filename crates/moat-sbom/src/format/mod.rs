//! SBOM formats, one file each: CycloneDX 1.6 JSON, SPDX 2.3 JSON, moat's JSON inventory, a table;
//! and the reader of CycloneDX/SPDX/moat-inventory documents that `sbom:FILE` targets use.
//!
//! Every writer is deterministic: the same inventory always gives the same bytes. Serial numbers and
//! document namespaces are derived from a hash of the content; timestamps appear only when the caller
//! asks for one ([`WriteOptions::timestamp`]).

pub mod cyclonedx;
pub mod json;
pub mod read;
pub mod spdx;
pub mod table;

use std::collections::BTreeMap;

use moat_model::{Inventory, Package};
use sha2::{Digest, Sha256};

pub use read::{ReadError, read_sbom, read_sbom_from, read_sbom_str};

/// The output formats of `moat sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    CycloneDx,
    Spdx,
    Json,
    Table,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cyclonedx" | "cdx" | "cyclonedx-json" => Ok(Format::CycloneDx),
            "spdx" | "spdx-json" => Ok(Format::Spdx),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            other => Err(format!(
                "unknown SBOM format {other:?}: expected cyclonedx, spdx, json or table"
            )),
        }
    }
}

/// Options every writer shares.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// An RFC 3339 creation time to stamp into the document. `None` keeps the output reproducible: SPDX,
    /// which requires a time, then gets `SOURCE_DATE_EPOCH` if set, else the Unix epoch.
    pub timestamp: Option<String>,
}

/// Renders an inventory in a format.
pub fn write(inv: &Inventory, format: Format, opts: &WriteOptions) -> String {
    match format {
        Format::CycloneDx => cyclonedx::to_string(inv, &[], opts),
        Format::Spdx => spdx::to_string(inv, opts),
        Format::Json => json::to_string(inv),
        Format::Table => table::to_table(inv),
    }
}

/// A name-based UUID (RFC 4122 layout, version 5 bits) from SHA-256 of `data`: the same content gives
/// the same serial number, different content a different one.
pub fn content_uuid(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Stable, unique references for packages in inventory order: the purl, and for the rare second
/// package with the same purl (the same library at two paths) the purl plus `#path`.
pub fn package_refs(pkgs: &[Package]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    pkgs.iter()
        .map(|p| {
            let purl = p.purl.to_string();
            let n = seen.entry(purl.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                purl
            } else {
                match &p.path {
                    Some(path) => format!("{purl}#{path}:{n}"),
                    None => format!("{purl}#{n}"),
                }
            }
        })
        .collect()
}

/// A licence as recorded, if it already is a valid SPDX expression (listed identifiers, no deprecated
/// ones, case as listed): `MIT`, `GPL-2.0-or-later OR MIT`. Debian's `GPL-2+` is not, and stays a name.
pub fn spdx_expression(licence: &str) -> Option<&str> {
    let l = licence.trim();
    ::spdx::Expression::parse(l).ok().map(|_| l)
}

/// Splits an SPDX expression at its top-level `AND`s (not those inside parentheses), unwrapping each
/// part's outer parentheses.
pub fn split_top_level_and(expr: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b' ' if depth == 0 && expr[i..].starts_with(" AND ") => {
                parts.push(expr[start..i].to_string());
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(expr[start..].to_string());
    parts
        .into_iter()
        .map(|p| {
            let t = p.trim();
            let inner = t.strip_prefix('(').and_then(|x| x.strip_suffix(')'));
            match inner {
                // Only unwrap when the parentheses enclose the whole part.
                Some(x) if balanced(x) => x.trim().to_string(),
                _ => t.to_string(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn balanced(s: &str) -> bool {
    let mut d = 0i32;
    for c in s.chars() {
        match c {
            '(' => d += 1,
            ')' => {
                d -= 1;
                if d < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    d == 0
}

/// The creation time written when none was asked for: `SOURCE_DATE_EPOCH` (the reproducible-builds
/// convention), else the Unix epoch.
pub fn reproducible_time() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The current time, for `--timestamp`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_licences() {
        assert_eq!(spdx_expression("MIT"), Some("MIT"));
        assert_eq!(
            spdx_expression(" GPL-2.0-or-later OR MIT "),
            Some("GPL-2.0-or-later OR MIT")
        );
        assert_eq!(spdx_expression("GPL-2+"), None);
        assert_eq!(spdx_expression("public-domain"), None);
        assert_eq!(
            split_top_level_and("MIT AND (GPL-2.0-only AND BSD-3-Clause) AND LicenseRef-x"),
            vec!["MIT", "GPL-2.0-only AND BSD-3-Clause", "LicenseRef-x"]
        );
        assert_eq!(
            split_top_level_and("(MIT) OR (Zlib)"),
            vec!["(MIT) OR (Zlib)"]
        );
    }

    #[test]
    fn times_and_uuids() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        let u = content_uuid(b"x");
        assert_eq!(u, content_uuid(b"x"));
        assert_ne!(u, content_uuid(b"y"));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5");
    }
}
