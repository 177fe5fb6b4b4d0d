//! Severity of a record: from its CVSS vectors (v4, v3.x, v2: score and level computed with the
//! `cvss` crate) or, without one, the source's own rating (`Ubuntu` priorities, GitHub's
//! `database_specific.severity`). Debian and Alpine records usually carry neither: a record aliased
//! to them in the same finding may rate it; else the CVE ratings imported from NVD and CVE JSON 5
//! records ([`from_cves`]); else UNKNOWN, with a note saying so.

use std::str::FromStr;

use moat_model::{Cvss, Severity, SeverityRating};

use crate::cve::CveRating;
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

/// A rating from a CVE source, with the CVE it is about.
#[derive(Debug, Clone)]
pub struct CveChoice {
    pub severity: Severity,
    pub rating: SeverityRating,
}

fn source_rank(source: &str) -> u8 {
    match source {
        "nvd" => 3,
        "cna" => 2,
        _ => 1,
    }
}

/// The rating of one CVE from its imported ratings: NVD's CVSS first (what the scanners users compare
/// against show), then the CNA's CVSS, then an ADP's CVSS (CISA), then the CNA's or an ADP's words.
pub fn rate_cve(cve: &str, ratings: &[CveRating]) -> Option<CveChoice> {
    let mut best: Option<(u8, u8, &CveRating, Severity, Option<&crate::cve::CvssScore>)> = None;
    for r in ratings.iter().filter(|r| r.cve == cve) {
        let Some((sev, c)) = r.severity() else {
            continue;
        };
        // CVSS beats words; then the source's rank.
        let key = (u8::from(c.is_some()), source_rank(&r.source));
        if best.as_ref().is_none_or(|b| key > (b.0, b.1)) {
            best = Some((key.0, key.1, r, sev, c));
        }
    }
    let (_, _, r, severity, c) = best?;
    Some(CveChoice {
        severity,
        rating: SeverityRating {
            source: r.source.clone(),
            record: cve.to_string(),
            provider: Some(r.provider.clone()),
            vector: c.map(|c| c.vector.clone()),
            score: c.map(|c| c.score),
            note: String::new(),
        },
    })
}

/// Describes a CVE choice in a few words: `CVE-2022-0778 HIGH 7.5 (nvd)`.
pub fn describe(c: &CveChoice) -> String {
    match c.rating.score {
        Some(s) => format!(
            "{} {} {s:.1} ({})",
            c.rating.record, c.severity, c.rating.source
        ),
        None => format!("{} {} ({})", c.rating.record, c.severity, c.rating.source),
    }
}

/// The severity of a finding whose records rate nothing themselves, from the CVE ratings: the CVE
/// ids the records are (`aliases`) first; else, for an advisory that fixes CVEs (`upstream`, as
/// Debian's DSA/DLA list them), the highest severity among those CVEs, saying which it was.
/// `lookup` returns the imported ratings of one CVE id.
pub fn from_cves(
    records: &[&str],
    aliases: &[String],
    upstream: &[String],
    lookup: &mut dyn FnMut(&str) -> Vec<CveRating>,
) -> (Severity, SeverityRating) {
    let mut rated = |ids: &[String]| -> (Vec<CveChoice>, Vec<String>) {
        let mut yes = Vec::new();
        let mut no = Vec::new();
        for id in ids {
            match rate_cve(id, &lookup(id)) {
                Some(c) => yes.push(c),
                None => no.push(id.clone()),
            }
        }
        (yes, no)
    };
    let pick = |mut yes: Vec<CveChoice>| -> Option<CveChoice> {
        yes.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| {
                    b.rating
                        .score
                        .partial_cmp(&a.rating.score)
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .then_with(|| a.rating.record.cmp(&b.rating.record))
        });
        yes.into_iter().next()
    };
    let own: Vec<String> = aliases
        .iter()
        .filter(|a| a.starts_with("CVE-"))
        .cloned()
        .collect();
    let (yes, no_own) = rated(&own);
    if let Some(mut c) = pick(yes) {
        c.rating.note = format!(
            "{} rates none of {}; {} rated by {}",
            "the OSV record",
            records.join(", "),
            c.rating.record,
            c.rating
                .provider
                .clone()
                .unwrap_or_else(|| c.rating.source.clone())
        );
        return (c.severity, c.rating);
    }
    let ups: Vec<String> = upstream
        .iter()
        .filter(|u| u.starts_with("CVE-") && !own.contains(u))
        .cloned()
        .collect();
    let (yes, no_up) = rated(&ups);
    let all: Vec<String> = yes.iter().map(describe).collect();
    if let Some(mut c) = pick(yes) {
        let mut note = format!(
            "highest of the CVEs {} fixes: {}",
            records.join(", "),
            all.join("; ")
        );
        if !no_up.is_empty() {
            note.push_str(&format!("; no rating for {}", no_up.join(", ")));
        }
        c.rating.note = note;
        return (c.severity, c.rating);
    }
    let unrated: Vec<String> = no_own.into_iter().chain(no_up).collect();
    let note = if unrated.is_empty() {
        format!(
            "no severity: {} carries none and names no CVE to take one from",
            records.join(", ")
        )
    } else {
        format!(
            "no severity: {} carries none, and the database has no NVD or CVE JSON 5 rating for {} (import them with `moat db import`)",
            records.join(", "),
            unrated.join(", ")
        )
    };
    (
        Severity::Unknown,
        SeverityRating {
            source: "none".into(),
            note,
            ..SeverityRating::default()
        },
    )
}

/// The label of an OSV record's own rating: `ghsa` for GitHub's records, else `osv`.
pub fn osv_source(record_id: &str) -> &'static str {
    if record_id.starts_with("GHSA-") {
        "ghsa"
    } else {
        "osv"
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
