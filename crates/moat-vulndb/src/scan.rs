//! Matching an inventory against a snapshot: one finding per (package, alias group), carrying every
//! matching record's id, the installed version, the ecosystem, fixed versions, CVSS and why it
//! matched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use moat_model::{
    AdvisoryRecord, Finding, FindingKind, Inventory, Location, Package, PackageRef, Severity,
    Vulnerability,
};

use crate::ecosystem::{Query, query_for};
use crate::matcher::{Outcome, first_match, reason};
use crate::osv::Record;
use crate::severity::{Rating, rate};
use crate::store::{DbError, Snapshot};

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub findings: Vec<Finding>,
    /// Packages that could not be looked up, with the reason (`pkg:deb/... : no distro`).
    pub unmatchable: Vec<String>,
    /// Packages looked up.
    pub queried: usize,
}

/// A record that matched one package.
struct Hit {
    record: Record,
    outcome: Outcome,
    rating: Rating,
    affected_index: usize,
}

/// Matches every package of `inv` against the snapshot.
pub fn scan(snap: &Snapshot, inv: &Inventory) -> Result<ScanResult, DbError> {
    let mut out = ScanResult::default();
    let mut cache: HashMap<(String, String), std::rc::Rc<Vec<Record>>> = HashMap::new();
    for pkg in &inv.packages {
        let q = match query_for(pkg, inv.os.as_ref()) {
            Ok(q) => q,
            Err(e) => {
                out.unmatchable.push(format!("{}: {}", pkg.purl, e.0));
                continue;
            }
        };
        out.queried += 1;
        let k = (q.ecosystem.clone(), q.name.clone());
        let records = match cache.get(&k) {
            Some(r) => r.clone(),
            None => {
                let r = std::rc::Rc::new(snap.lookup(&q.ecosystem, &q.name)?);
                cache.insert(k, r.clone());
                r
            }
        };
        let hits: Vec<Hit> = records
            .iter()
            .filter_map(|r| {
                first_match(r, &q).map(|e| Hit {
                    rating: rate(r, Some(e.affected_index)),
                    record: r.clone(),
                    outcome: e.outcome,
                    affected_index: e.affected_index,
                })
            })
            .collect();
        out.findings.extend(group(pkg, &q, hits));
    }
    Ok(out)
}

/// The preferred id of a group: a CVE record, then GHSA, then the first by name.
fn primary(ids: &[&str]) -> String {
    let rank = |id: &str| {
        if id.starts_with("CVE-") {
            0
        } else if id.starts_with("GHSA-") {
            1
        } else {
            2
        }
    };
    ids.iter()
        .min_by_key(|id| (rank(id), id.to_string()))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Merges the hits of one package into alias groups (records sharing an id or alias).
fn group(pkg: &Package, q: &Query, hits: Vec<Hit>) -> Vec<Finding> {
    let n = hits.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut c = x;
        while p[c] != r {
            let next = p[c];
            p[c] = r;
            c = next;
        }
        r
    }
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, h) in hits.iter().enumerate() {
        for id in std::iter::once(&h.record.id).chain(&h.record.aliases) {
            match owner.get(id.as_str()) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    owner.insert(id, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups
        .into_values()
        .map(|members| finding(pkg, q, members.iter().map(|&i| &hits[i]).collect()))
        .collect()
}

fn finding(pkg: &Package, q: &Query, members: Vec<&Hit>) -> Finding {
    let ids: Vec<&str> = members.iter().map(|h| h.record.id.as_str()).collect();
    let id = primary(&ids);
    let Some(lead) = members
        .iter()
        .find(|h| h.record.id == id)
        .or(members.first())
        .copied()
    else {
        // A group always has a member; an empty one yields an empty finding rather than a panic.
        return Finding::new(id, FindingKind::Vulnerability, Severity::Unknown, "");
    };
    let mut aliases: BTreeSet<String> = BTreeSet::new();
    for h in &members {
        aliases.insert(h.record.id.clone());
        aliases.extend(h.record.aliases.iter().cloned());
        aliases.extend(h.record.upstream.iter().cloned());
    }
    aliases.remove(&id);
    // The worst rating among the records: a Debian record without one takes its alias's.
    let best = members
        .iter()
        .max_by_key(|h| {
            (
                h.rating.source.is_some(),
                h.rating.severity,
                h.record.id == id,
            )
        })
        .map(|h| h.rating.clone())
        .unwrap_or(Rating {
            severity: Severity::Unknown,
            cvss: Vec::new(),
            source: None,
        });
    let mut cvss = Vec::new();
    for h in &members {
        for c in &h.rating.cvss {
            if !cvss.contains(c) {
                cvss.push(c.clone());
            }
        }
    }
    let mut fixed: Vec<String> = Vec::new();
    for h in &members {
        for f in &h.outcome.fixed {
            if !fixed.contains(f) {
                fixed.push(f.clone());
            }
        }
    }
    fixed.sort_by(|a, b| q.scheme.compare(a, b));
    let records = members
        .iter()
        .map(|h| AdvisoryRecord {
            id: h.record.id.clone(),
            source: h
                .record
                .affected
                .get(h.affected_index)
                .map(|a| a.package.ecosystem.clone())
                .unwrap_or_else(|| q.ecosystem.clone()),
            fixed_versions: h.outcome.fixed.clone(),
            matched: Some(reason(q, &h.outcome)),
        })
        .collect::<Vec<_>>();
    let mut records = records;
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let title = lead.record.title();
    let mut f = Finding::new(id.clone(), FindingKind::Vulnerability, best.severity, title);
    f.aliases = aliases.into_iter().collect();
    f.message = match fixed.first() {
        Some(v) => format!("{} {} is affected; fixed in {v}", pkg.name, pkg.version),
        None => format!("{} {} is affected; no fixed version", pkg.name, pkg.version),
    };
    f.location = Location {
        file: pkg.path.clone(),
        layer: pkg.layer.clone(),
        ..Location::default()
    };
    f.package = Some(PackageRef {
        name: pkg.name.clone(),
        version: pkg.version.clone(),
        purl: pkg.purl.clone(),
    });
    f.why = Some(format!(
        "{} {} ({} {} in {}): {}: {}",
        lead.record.id,
        lead.outcome.entry,
        q.name,
        q.version,
        q.ecosystem,
        lead.outcome.by,
        lead.outcome.comparison
    ));
    f.fix = fixed
        .first()
        .map(|v| format!("upgrade {} to {v} or later", q.name));
    f.references = lead
        .record
        .references
        .iter()
        .take(5)
        .map(|r| r.url.clone())
        .collect();
    f.vulnerability = Some(Vulnerability {
        installed_version: q.version.clone(),
        ecosystem: q.ecosystem.clone(),
        fixed_versions: fixed,
        cvss,
        severity_source: best.source.clone(),
        published: lead.record.published.clone(),
        modified: lead.record.modified.clone(),
        matched: reason(q, &lead.outcome),
        records,
        ..Default::default()
    });
    f
}
