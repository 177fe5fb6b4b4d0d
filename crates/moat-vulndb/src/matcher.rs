//! OSV matching semantics: `ECOSYSTEM` and `SEMVER` ranges (events sorted in the ecosystem's
//! ordering; `introduced`, `fixed`, `last_affected`, `limit`), explicit `versions` lists, `GIT`
//! ranges skipped (no commit to compare), withdrawn records never matching. Every outcome, match or
//! not, carries the entry and the comparison that decided it.

use std::cmp::Ordering;

use moat_model::MatchReason;

use crate::ecosystem::{Query, normalize_ecosystem, normalize_name};
use crate::osv::{Affected, Range, Record};
use crate::version::Scheme;

/// How one `affected` entry judged one package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub affected: bool,
    /// `range` or `versions` (or `none` when the entry has nothing comparable).
    pub by: String,
    pub entry: String,
    pub comparison: String,
    /// Versions that fix it (the `fixed` event closing the matching range; for a version-list
    /// match, every `fixed` event above the installed version).
    pub fixed: Vec<String>,
}

/// The judgement of one record for one package.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Index of the `affected` entry.
    pub affected_index: usize,
    pub outcome: Outcome,
}

fn is_zero(v: &str) -> bool {
    v == "0"
}

/// Orders range events: `introduced=0` first, then by version; at one version, `introduced` first.
fn sort_events(range: &Range, scheme: Scheme) -> Vec<(&'static str, &str)> {
    let mut ev: Vec<(&'static str, &str)> = range
        .events
        .iter()
        .map(|e| e.kind_value())
        .filter(|(k, _)| *k != "empty")
        .collect();
    ev.sort_by(|a, b| {
        let za = a.0 == "introduced" && is_zero(a.1);
        let zb = b.0 == "introduced" && is_zero(b.1);
        match (za, zb) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => scheme
                .compare(a.1, b.1)
                .then_with(|| (a.0 != "introduced").cmp(&(b.0 != "introduced"))),
        }
    });
    ev
}

/// Evaluates one range for `version`.
pub fn eval_range(range: &Range, version: &str, scheme: Scheme) -> Outcome {
    let ev = sort_events(range, scheme);
    let entry = range.describe();
    let cmp = |v: &str| {
        if is_zero(v) {
            Ordering::Greater
        } else {
            scheme.compare(version, v)
        }
    };
    let limits: Vec<&str> = ev
        .iter()
        .filter(|(k, _)| *k == "limit")
        .map(|(_, v)| *v)
        .collect();
    let mut affected = false;
    let mut opened: Option<&str> = None;
    let mut closed: Option<(&str, &str)> = None;
    for (k, v) in &ev {
        match *k {
            "introduced" if cmp(v) != Ordering::Less => {
                affected = true;
                opened = Some(v);
                closed = None;
            }
            "fixed" if cmp(v) != Ordering::Less => {
                affected = false;
                closed = Some(("fixed", v));
            }
            "last_affected" if cmp(v) == Ordering::Greater => {
                affected = false;
                closed = Some(("last_affected", v));
            }
            _ => {}
        }
    }
    let mut out = Outcome {
        affected,
        by: "range".into(),
        entry,
        comparison: String::new(),
        fixed: Vec::new(),
    };
    if affected && !limits.is_empty() && !limits.iter().any(|l| cmp(l) == Ordering::Less) {
        out.affected = false;
        out.comparison = format!("{version} >= limit {}", limits.join(", "));
        return out;
    }
    if affected {
        let intro = opened.unwrap_or("0");
        // The event closing the range that matched: the first fixed/last_affected above the version.
        let next = ev
            .iter()
            .find(|(k, v)| matches!(*k, "fixed" | "last_affected") && cmp(v) == Ordering::Less);
        let next_last = ev
            .iter()
            .find(|(k, v)| *k == "last_affected" && cmp(v) != Ordering::Greater);
        out.comparison = match (next, next_last) {
            (Some(("fixed", f)), _) => {
                out.fixed.push(f.to_string());
                format!("{version} >= {intro} and < {f} (fixed)")
            }
            (_, Some((_, l))) => format!("{version} >= {intro} and <= {l} (last affected; no fix)"),
            _ => format!("{version} >= {intro}, no fixed version"),
        };
        if intro == "0" {
            out.comparison =
                out.comparison
                    .replacen(&format!("{version} >= 0 and "), &format!("{version} "), 1);
        }
    } else {
        out.comparison = match (closed, ev.iter().find(|(k, _)| *k == "introduced")) {
            (Some((k, v)), _) => {
                if k == "fixed" {
                    format!("{version} >= {v} (fixed)")
                } else {
                    format!("{version} > {v} (last affected)")
                }
            }
            (None, Some((_, i))) => format!("{version} < {i} (introduced)"),
            (None, None) => "range has no introduced event".into(),
        };
    }
    out
}

/// Evaluates one `affected` entry for `version`.
pub fn eval_affected(a: &Affected, q: &Query) -> Outcome {
    let version = q.version.as_str();
    let listed = a
        .versions
        .iter()
        .find(|v| v.as_str() == version || q.scheme.compare(v, version) == Ordering::Equal);
    let mut notes = Vec::new();
    let mut first_no: Option<Outcome> = None;
    for r in &a.ranges {
        let scheme = match r.kind.as_str() {
            "ECOSYSTEM" => q.scheme,
            "SEMVER" => {
                if q.scheme == Scheme::Go {
                    Scheme::Go
                } else {
                    Scheme::Semver
                }
            }
            other => {
                notes.push(format!("{other} range skipped (no commit to compare)"));
                continue;
            }
        };
        let o = eval_range(r, version, scheme);
        if o.affected {
            return o;
        }
        if first_no.is_none() {
            first_no = Some(o);
        }
    }
    if let Some(v) = listed {
        // Fixed versions above the installed one, from the ranges, so a list match still says where to go.
        let mut fixed: Vec<String> = a
            .ranges
            .iter()
            .flat_map(|r| r.events.iter().filter_map(|e| e.fixed.clone()))
            .filter(|f| q.scheme.compare(f, version) == Ordering::Greater)
            .collect();
        fixed.sort_by(|x, y| q.scheme.compare(x, y));
        fixed.dedup();
        return Outcome {
            affected: true,
            by: "versions".into(),
            entry: format!("versions list ({} entries) contains {v}", a.versions.len()),
            comparison: format!("{version} == {v}"),
            fixed,
        };
    }
    match first_no {
        Some(mut o) => {
            if !a.versions.is_empty() {
                o.comparison.push_str(&format!(
                    "; not in the versions list ({} entries)",
                    a.versions.len()
                ));
            }
            o
        }
        None => Outcome {
            affected: false,
            by: if a.versions.is_empty() {
                "none".into()
            } else {
                "versions".into()
            },
            entry: if a.versions.is_empty() {
                if notes.is_empty() {
                    "no ranges or versions".into()
                } else {
                    notes.join("; ")
                }
            } else {
                format!("versions list ({} entries)", a.versions.len())
            },
            comparison: format!("{version} not listed"),
            fixed: Vec::new(),
        },
    }
}

/// Whether an `affected` entry is about the queried package.
pub fn applies(a: &Affected, q: &Query) -> bool {
    let e = normalize_ecosystem(&a.package.ecosystem);
    e == q.ecosystem && normalize_name(&e, &a.package.name) == normalize_name(&q.ecosystem, &q.name)
}

/// Judges one record for one package: one evaluation per `affected` entry naming the package.
pub fn evaluate(record: &Record, q: &Query) -> Vec<Evaluation> {
    record
        .affected
        .iter()
        .enumerate()
        .filter(|(_, a)| applies(a, q))
        .map(|(i, a)| Evaluation {
            affected_index: i,
            outcome: eval_affected(a, q),
        })
        .collect()
}

/// The first matching evaluation of a live (not withdrawn) record, if any.
pub fn first_match(record: &Record, q: &Query) -> Option<Evaluation> {
    if record.withdrawn.is_some() {
        return None;
    }
    evaluate(record, q).into_iter().find(|e| e.outcome.affected)
}

/// The model's match reason for an outcome.
pub fn reason(q: &Query, o: &Outcome) -> MatchReason {
    MatchReason {
        ecosystem: q.ecosystem.clone(),
        queried_name: q.name.clone(),
        by: o.by.clone(),
        entry: o.entry.clone(),
        comparison: o.comparison.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::Event;

    fn range(kind: &str, ev: &[(&str, &str)]) -> Range {
        Range {
            kind: kind.into(),
            events: ev
                .iter()
                .map(|(k, v)| {
                    let mut e = Event::default();
                    let v = Some(v.to_string());
                    match *k {
                        "introduced" => e.introduced = v,
                        "fixed" => e.fixed = v,
                        "last_affected" => e.last_affected = v,
                        _ => e.limit = v,
                    }
                    e
                })
                .collect(),
        }
    }

    #[test]
    fn ranges() {
        let r = range(
            "SEMVER",
            &[
                ("introduced", "0"),
                ("fixed", "1.18.6"),
                ("introduced", "1.19.0-0"),
                ("fixed", "1.19.1"),
            ],
        );
        assert!(eval_range(&r, "1.18.5", Scheme::Go).affected);
        assert!(!eval_range(&r, "1.18.6", Scheme::Go).affected);
        assert!(eval_range(&r, "go1.19.0", Scheme::Go).affected);
        let o = eval_range(&r, "1.19.0", Scheme::Go);
        assert_eq!(o.fixed, vec!["1.19.1".to_string()]);
        assert!(!eval_range(&r, "1.19.1", Scheme::Go).affected);
        let r = range(
            "ECOSYSTEM",
            &[("introduced", "1.0"), ("last_affected", "1.4")],
        );
        assert!(eval_range(&r, "1.4", Scheme::Pep440).affected);
        assert!(!eval_range(&r, "1.4.1", Scheme::Pep440).affected);
        assert!(!eval_range(&r, "0.9", Scheme::Pep440).affected);
        let r = range("ECOSYSTEM", &[("introduced", "0"), ("limit", "2.0")]);
        assert!(eval_range(&r, "1.0", Scheme::Semver).affected);
        assert!(!eval_range(&r, "2.0", Scheme::Semver).affected);
    }
}
