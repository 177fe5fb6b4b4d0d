//! Matching an inventory against a snapshot: one finding per (package, vulnerability), carrying every
//! matching record's id, the installed version, the ecosystem, fixed versions, CVSS, where the
//! severity came from, every place the package was found, the package's remediation version and why
//! it matched.
//!
//! The finding's id is the CVE (else the GHSA id) the records are about, so users find it where they
//! search; the OSV record ids (`PYSEC-…`, `DSA-…`) stay in `aliases` and `vulnerability.records`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use moat_model::{
    AdvisoryRecord, Finding, FindingKind, Inventory, Location, Package, PackageRef, Severity,
    SeverityRating, Vulnerability,
};

use crate::cve::CveRating;
use crate::ecosystem::{Query, query_for};
use crate::matcher::{Outcome, first_match, reason};
use crate::osv::Record;
use crate::severity::{Rating, from_cves, osv_source, rate};
use crate::store::{DbError, Snapshot};

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub findings: Vec<Finding>,
    /// Packages that could not be looked up, with the reason (`pkg:deb/... : no distro`).
    pub unmatchable: Vec<String>,
    /// Packages looked up.
    pub queried: usize,
    /// Packages looked up per OSV ecosystem (`Debian:12`: 88), for the coverage report.
    pub ecosystems: BTreeMap<String, usize>,
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
    let mut ratings: HashMap<String, Vec<CveRating>> = HashMap::new();
    let mut rating_error: Option<DbError> = None;
    for pkg in &inv.packages {
        let q = match query_for(pkg, inv.os.as_ref()) {
            Ok(q) => q,
            Err(e) => {
                out.unmatchable.push(format!("{}: {}", pkg.purl, e.0));
                continue;
            }
        };
        out.queried += 1;
        *out.ecosystems.entry(q.ecosystem.clone()).or_default() += 1;
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
        let mut lookup = |cve: &str| -> Vec<CveRating> {
            if let Some(r) = ratings.get(cve) {
                return r.clone();
            }
            let r = match snap.ratings(cve) {
                Ok(r) => r,
                Err(e) => {
                    rating_error.get_or_insert(e);
                    Vec::new()
                }
            };
            ratings.insert(cve.to_string(), r.clone());
            r
        };
        out.findings.extend(group(pkg, &q, hits, &mut lookup));
    }
    // A broken rating section fails the scan: a severity silently missing would pass a gate.
    if let Some(e) = rating_error {
        return Err(e);
    }
    out.findings = merge_same(std::mem::take(&mut out.findings));
    let mut advisories: Vec<Record> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for recs in cache.values() {
        for r in recs.iter() {
            if seen.insert(r.id.clone()) {
                advisories.push(r.clone());
            }
        }
    }
    let plans = crate::remediation::plan(&out.findings, &advisories);
    for f in &mut out.findings {
        let Some(v) = f.vulnerability.as_mut() else {
            continue;
        };
        let plan = plans.iter().find(|p| {
            p.ecosystem == v.matched.ecosystem
                && p.name == v.matched.queried_name
                && p.installed_version == v.installed_version
        });
        if let Some(target) = plan.and_then(|p| p.target_version.clone()) {
            let own = if v.fixed_versions.is_empty() {
                "no fix of its own".to_string()
            } else {
                format!(
                    "this advisory alone: fixed in {}",
                    v.fixed_versions.join(", ")
                )
            };
            f.fix = Some(format!(
                "upgrade {} to {target} or later (clears every finding of {} {}; {own})",
                v.matched.queried_name, v.matched.queried_name, v.installed_version
            ));
            v.remediation = Some(target);
        }
    }
    Ok(out)
}

/// One finding per (package, vulnerability): the same package found in two files (two
/// `node_modules` copies of one lodash release) is one finding listing both places, and two
/// advisories of one CVE for one package are one finding listing both records.
fn merge_same(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for f in findings {
        let key = (
            f.package
                .as_ref()
                .map(|p| p.purl.to_string())
                .unwrap_or_default(),
            f.id.clone(),
        );
        let Some(&i) = at.get(&key) else {
            at.insert(key, out.len());
            out.push(f);
            continue;
        };
        let into = &mut out[i];
        into.severity = into.severity.max(f.severity);
        for a in f.aliases {
            if !into.aliases.contains(&a) {
                into.aliases.push(a);
            }
        }
        into.aliases.sort();
        if let (Some(v), Some(w)) = (into.vulnerability.as_mut(), f.vulnerability) {
            for l in w.locations {
                if !v.locations.contains(&l) {
                    v.locations.push(l);
                }
            }
            for r in w.records {
                if !v.records.iter().any(|x| x.id == r.id) {
                    v.records.push(r);
                }
            }
            v.records.sort_by(|a, b| a.id.cmp(&b.id));
            for x in w.fixed_versions {
                if !v.fixed_versions.contains(&x) {
                    v.fixed_versions.push(x);
                }
            }
            let rank = |r: &Option<SeverityRating>| r.as_ref().is_some_and(|r| r.source != "none");
            if !rank(&v.rating) && rank(&w.rating) {
                v.rating = w.rating;
                v.severity_source = w.severity_source;
            }
        }
    }
    out
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
fn group(
    pkg: &Package,
    q: &Query,
    hits: Vec<Hit>,
    lookup: &mut dyn FnMut(&str) -> Vec<CveRating>,
) -> Vec<Finding> {
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
        .map(|members| {
            finding(
                pkg,
                q,
                members.iter().map(|&i| &hits[i]).collect(),
                &mut *lookup,
            )
        })
        .collect()
}

/// The id users search by: a CVE the records are (a record id or alias), else a GHSA id, else the
/// CVE whose rating an advisory that fixes several (`upstream`) took, else its only CVE, else the
/// OSV record's own id.
fn display_id(
    record_ids: &[&str],
    aliases: &BTreeSet<String>,
    upstream: &BTreeSet<String>,
    rated: Option<&str>,
    fallback: &str,
) -> String {
    let same: Vec<&str> = record_ids
        .iter()
        .copied()
        .chain(aliases.iter().map(String::as_str))
        .collect();
    for prefix in ["CVE-", "GHSA-"] {
        if let Some(id) = same.iter().filter(|i| i.starts_with(prefix)).min() {
            return id.to_string();
        }
    }
    let cves: Vec<&String> = upstream.iter().filter(|u| u.starts_with("CVE-")).collect();
    if let Some(r) = rated.filter(|r| cves.iter().any(|c| c.as_str() == *r)) {
        return r.to_string();
    }
    if cves.len() == 1 {
        return cves[0].clone();
    }
    fallback.to_string()
}

fn finding(
    pkg: &Package,
    q: &Query,
    members: Vec<&Hit>,
    lookup: &mut dyn FnMut(&str) -> Vec<CveRating>,
) -> Finding {
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
    // Ids of the same vulnerability (record ids and aliases) and the CVEs an advisory fixes.
    let mut same: BTreeSet<String> = BTreeSet::new();
    let mut upstream: BTreeSet<String> = BTreeSet::new();
    for h in &members {
        same.extend(h.record.aliases.iter().cloned());
        upstream.extend(h.record.upstream.iter().cloned());
    }
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
    // Who rated it: the OSV record that did (GitHub's GHSA, or another OSV source); else the CVE
    // ratings from NVD and the CVE list.
    let (severity, rating) = match best.source.as_deref() {
        Some(kind) => {
            let rater = members
                .iter()
                .filter(|h| h.rating.source.is_some())
                .max_by_key(|h| (h.rating.severity, h.record.id == id))
                .map(|h| h.record.id.clone())
                .unwrap_or_else(|| id.clone());
            let top = best
                .cvss
                .iter()
                .max_by_key(|c| match c.version.as_str() {
                    "CVSS_V4" => 3,
                    "CVSS_V3" => 2,
                    _ => 1,
                })
                .filter(|_| kind.starts_with("cvss"));
            (
                best.severity,
                SeverityRating {
                    source: osv_source(&rater).to_string(),
                    record: rater.clone(),
                    provider: None,
                    vector: top.map(|c| c.vector.clone()),
                    score: top.map(|c| c.score),
                    note: if kind.starts_with("cvss") {
                        format!("{rater} carries a {kind} vector")
                    } else {
                        format!("{rater} rates it in words")
                    },
                },
            )
        }
        None => {
            let same_v: Vec<String> = ids
                .iter()
                .map(|s| s.to_string())
                .chain(same.iter().cloned())
                .collect();
            let up: Vec<String> = upstream.iter().cloned().collect();
            from_cves(&ids, &same_v, &up, lookup)
        }
    };
    let mut cvss = best.cvss.clone();
    if let (Some(v), Some(score)) = (&rating.vector, rating.score)
        && !cvss.iter().any(|c| &c.vector == v)
    {
        let version = if v.starts_with("CVSS:4") {
            "CVSS_V4"
        } else if v.starts_with("CVSS:3") {
            "CVSS_V3"
        } else {
            "CVSS_V2"
        };
        cvss.push(moat_model::Cvss {
            version: version.into(),
            vector: v.clone(),
            score,
        });
    }
    let shown = display_id(
        &ids,
        &same,
        &upstream,
        (rating.source != "none").then_some(rating.record.as_str()),
        &id,
    );
    let mut aliases: BTreeSet<String> = BTreeSet::new();
    aliases.extend(ids.iter().map(|s| s.to_string()));
    aliases.extend(same.iter().cloned());
    aliases.extend(upstream.iter().cloned());
    aliases.remove(&shown);
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
    let mut f = Finding::new(shown, FindingKind::Vulnerability, severity, title);
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
        severity_source: Some(rating.source.clone()),
        published: lead.record.published.clone(),
        modified: lead.record.modified.clone(),
        matched: reason(q, &lead.outcome),
        records,
        rating: Some(rating),
        locations: vec![f.location.clone()],
        remediation: None,
    });
    f
}
