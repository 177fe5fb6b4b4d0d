//! Severity of a record: from its CVSS vectors (v4, v3.x, v2: score and level computed with the
//! `cvss` crate) or, without one, the source's own rating (`Ubuntu` priorities, GitHub's
//! `database_specific.severity`). Debian and Alpine records usually carry neither: UNKNOWN, unless a
//! record aliased to them in the same finding rates it.

use std::str::FromStr;

use moat_model::{Cvss, Severity};

use crate::osv::{Record, SeverityEntry};

/// A record's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub severity: Severity,
    pub cvss: Vec<Cvss>,
    /// `cvss-v4`, `cvss-v3`, `cvss-v2`, `source`, or `None` when unrated.
    pub source: Option<String>,
}

fn level(s: cvss::Severity) -> Severity {
    match s {
        cvss::Severity::None => Severity::Unknown,
        cvss::Severity::Low => Severity::Low,
        cvss::Severity::Medium => Severity::Medium,
        cvss::Severity::High => Severity::High,
        cvss::Severity::Critical => Severity::Critical,
    }
}

/// Parses one OSV severity entry's CVSS vector.
pub fn parse_cvss(e: &SeverityEntry) -> Option<(Cvss, Severity, u8)> {
    let rank = match e.kind.as_str() {
        "CVSS_V4" => 3,
        "CVSS_V3" => 2,
        "CVSS_V2" => 1,
        _ => return None,
    };
    let c = cvss::Cvss::from_str(e.score.trim()).ok()?;
    let score = c.score();
    let sev = if rank == 1 {
        // CVSS v2 has no "critical": Low < 4, Medium < 7, High.
        if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Unknown
        }
    } else {
        level(c.severity())
    };
    Some((
        Cvss {
            version: e.kind.clone(),
            vector: e.score.trim().to_string(),
            score,
        },
        sev,
        rank,
    ))
}

/// Rates a record (the per-package severity of the matched `affected` entry first, when present).
pub fn rate(record: &Record, affected: Option<usize>) -> Rating {
    let per_pkg = affected
        .and_then(|i| record.affected.get(i))
        .map(|a| a.severity.as_slice())
        .unwrap_or(&[]);
    let entries: Vec<&SeverityEntry> = per_pkg.iter().chain(record.severity.iter()).collect();
    let mut cvss = Vec::new();
    let mut best: Option<(u8, Severity)> = None;
    for e in &entries {
        if let Some((c, sev, rank)) = parse_cvss(e) {
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, sev));
            }
            if !cvss.contains(&c) {
                cvss.push(c);
            }
        }
    }
    if let Some((rank, severity)) = best {
        let source = match rank {
            3 => "cvss-v4",
            2 => "cvss-v3",
            _ => "cvss-v2",
        };
        return Rating {
            severity,
            cvss,
            source: Some(source.into()),
        };
    }
    // The source's own words.
    let words = entries
        .iter()
        .filter(|e| !e.kind.starts_with("CVSS"))
        .map(|e| e.score.as_str())
        .chain(record.source_severity.as_ref().map(|s| s.severity.as_str()));
    for w in words {
        if let Ok(s) = w.parse::<Severity>() {
            return Rating {
                severity: s,
                cvss,
                source: Some("source".into()),
            };
        }
    }
    Rating {
        severity: Severity::Unknown,
        cvss,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_words() {
        let e = SeverityEntry {
            kind: "CVSS_V3".into(),
            score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
        };
        let (c, s, _) = parse_cvss(&e).expect("v3");
        assert_eq!((c.score, s), (9.8, Severity::Critical));
        let e = SeverityEntry {
            kind: "CVSS_V2".into(),
            score: "AV:N/AC:L/Au:N/C:P/I:P/A:P".into(),
        };
        let (c, s, _) = parse_cvss(&e).expect("v2");
        assert_eq!((c.score, s), (7.5, Severity::High));
        let e = SeverityEntry {
            kind: "CVSS_V4".into(),
            score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N".into(),
        };
        assert_eq!(parse_cvss(&e).map(|x| x.1), Some(Severity::Critical));
    }
}
