//! Remediation plans: per package, the **lowest version that clears every finding** of that package,
//! judged by re-running the matcher over every advisory record of the package at each candidate
//! version (not the lowest fixed version of one record: two records of one CVE can close at
//! different versions, and one record can reopen a later range).
//!
//! Candidates are the `fixed` events of every `ECOSYSTEM`/`SEMVER` range of every live record naming
//! the package, above the installed version, in the package's own ecosystem ordering (dpkg, apk,
//! rpm, PEP 440, SemVer, Go, Maven). The first candidate at which no record behind any fixable finding
//! still matches is the target. Findings that no candidate clears (no fixed version anywhere, only a
//! `last_affected`, a version list without a fix) are left open and listed with the reason; records
//! that match the target version although they were not findings (a range the upgrade enters) are
//! listed as `introduces`, so the plan never hides what an upgrade brings in.
//!
//! Pure: findings and records in, a plan out; no database access.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use moat_model::{Finding, FindingKind, Location};
use serde::{Deserialize, Serialize};

use crate::ecosystem::Query;
use crate::matcher::{applies, first_match};
use crate::osv::Record;
use crate::version::Scheme;

/// One finding the plan cannot clear, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFinding {
    pub id: String,
    pub reason: String,
}

/// What to do about one package (one ecosystem name at one installed version; for OS packages the
/// source package, which every binary package built from it follows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagePlan {
    /// The OSV ecosystem (`Debian:12`, `npm`, `PyPI`).
    pub ecosystem: String,
    /// The name the advisories use (the source package for Debian).
    pub name: String,
    /// The installed packages this covers (binary package names, purls).
    pub packages: Vec<String>,
    pub installed_version: String,
    /// The version ordering used (`dpkg`, `pep440`, `semver`...).
    pub ordering: String,
    /// The lowest version that clears every fixable finding; None when none has a fix.
    pub target_version: Option<String>,
    /// Finding ids the target clears.
    pub clears: Vec<String>,
    /// Findings the target leaves open.
    pub left_open: Vec<OpenFinding>,
    /// Records that match the target version but were not findings at the installed version.
    pub introduces: Vec<String>,
    /// Each record's own lowest fix above the installed version (what a per-record answer would say).
    pub record_fixes: BTreeMap<String, String>,
    /// Where the package was found (layer, file), one entry per distinct place.
    pub locations: Vec<Location>,
    /// The highest severity among the findings (for ordering plans).
    pub severity: moat_model::Severity,
    /// How the findings were judged at candidate versions: `records` (every record re-matched) or
    /// `fixed-versions` (records not available: each finding's own fixed versions were compared).
    pub basis: String,
}

/// One package's findings, grouped.
struct Group<'a> {
    q: Query,
    findings: Vec<&'a Finding>,
}

fn group_key(f: &Finding) -> Option<(String, String, String)> {
    let v = f.vulnerability.as_ref()?;
    let eco = if v.matched.ecosystem.is_empty() {
        v.ecosystem.clone()
    } else {
        v.matched.ecosystem.clone()
    };
    let name = if v.matched.queried_name.is_empty() {
        f.package.as_ref()?.name.clone()
    } else {
        v.matched.queried_name.clone()
    };
    Some((eco, name, v.installed_version.clone()))
}

/// Ids of the records behind a finding (its own id and aliases when the records are not listed).
fn record_ids(f: &Finding) -> Vec<String> {
    let listed: Vec<String> = f
        .vulnerability
        .as_ref()
        .map(|v| v.records.iter().map(|r| r.id.clone()).collect())
        .unwrap_or_default();
    if listed.is_empty() {
        std::iter::once(f.id.clone())
            .chain(f.aliases.iter().cloned())
            .collect()
    } else {
        listed
    }
}

fn at(q: &Query, version: &str) -> Query {
    Query {
        version: version.to_string(),
        ..q.clone()
    }
}

/// The `fixed` events of the comparable ranges of the entries of `r` that name the package.
fn fixes_of(r: &Record, q: &Query) -> Vec<String> {
    r.affected
        .iter()
        .filter(|a| applies(a, q))
        .flat_map(|a| a.ranges.iter())
        .filter(|rg| matches!(rg.kind.as_str(), "ECOSYSTEM" | "SEMVER"))
        .flat_map(|rg| rg.events.iter().filter_map(|e| e.fixed.clone()))
        .filter(|f| !f.is_empty() && f != "0")
        .collect()
}

fn sort_dedup(v: &mut Vec<String>, s: Scheme) {
    v.sort_by(|a, b| s.compare(a, b).then_with(|| a.cmp(b)));
    v.dedup_by(|a, b| s.compare(a, b) == Ordering::Equal);
}

/// The plan for every package with vulnerability findings, worst first. `advisories` are the records
/// to judge with (typically every record the snapshot has for each package: `Snapshot::lookup`);
/// records that do not name a finding's package are ignored.
pub fn plan(findings: &[Finding], advisories: &[Record]) -> Vec<PackagePlan> {
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    for f in findings {
        if f.kind != FindingKind::Vulnerability || f.suppressed.is_some() {
            continue;
        }
        let Some(k) = group_key(f) else { continue };
        let scheme = Scheme::for_ecosystem(&k.0);
        groups
            .entry(k.clone())
            .or_insert_with(|| Group {
                q: Query {
                    ecosystem: k.0.clone(),
                    name: k.1.clone(),
                    version: k.2.clone(),
                    scheme,
                },
                findings: Vec::new(),
            })
            .findings
            .push(f);
    }
    let mut out: Vec<PackagePlan> = groups
        .into_values()
        .map(|g| plan_one(&g, advisories))
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.ecosystem.cmp(&b.ecosystem))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn plan_one(g: &Group, advisories: &[Record]) -> PackagePlan {
    let q = &g.q;
    let s = q.scheme;
    // The live records naming this package.
    let records: Vec<&Record> = advisories
        .iter()
        .filter(|r| r.withdrawn.is_none() && r.affected.iter().any(|a| applies(a, q)))
        .collect();
    let by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), *r)).collect();
    // Findings (deduplicated by id: one package found in two files is one finding to clear).
    let mut ids: Vec<String> = Vec::new();
    let mut behind: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let mut own_fixes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all_records = true;
    let mut packages = BTreeSet::new();
    let mut locations: Vec<Location> = Vec::new();
    let mut severity = moat_model::Severity::Unknown;
    for f in &g.findings {
        if let Some(p) = &f.package {
            packages.insert(p.purl.to_string());
        }
        for l in std::iter::once(&f.location) {
            if (l.file.is_some() || l.layer.is_some()) && !locations.contains(l) {
                locations.push(l.clone());
            }
        }
        severity = severity.max(f.severity);
        if ids.contains(&f.id) {
            continue;
        }
        ids.push(f.id.clone());
        let recs: Vec<&Record> = record_ids(f)
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        if recs.is_empty() {
            all_records = false;
        }
        behind.insert(f.id.clone(), recs);
        own_fixes.insert(
            f.id.clone(),
            f.vulnerability
                .as_ref()
                .map(|v| v.fixed_versions.clone())
                .unwrap_or_default(),
        );
    }
    // Is finding `id` still there at version `v`?
    let affected_at = |id: &str, v: &str| -> bool {
        let recs = &behind[id];
        if recs.is_empty() {
            // No record to re-match: each fixed version closes the range of one record behind the
            // finding, so it is cleared once `v` reaches the highest of them.
            let fixes = &own_fixes[id];
            return match fixes.iter().max_by(|a, b| s.compare(a, b)) {
                Some(top) => s.compare(v, top) == Ordering::Less,
                None => true,
            };
        }
        let qv = at(q, v);
        recs.iter().any(|r| first_match(r, &qv).is_some())
    };
    // Candidates: every fix above the installed version, from every record of the package and from
    // the findings themselves.
    let mut cands: Vec<String> = records.iter().flat_map(|r| fixes_of(r, q)).collect();
    cands.extend(own_fixes.values().flatten().cloned());
    cands.retain(|c| s.compare(c, &q.version) == Ordering::Greater);
    sort_dedup(&mut cands, s);
    // Which findings some candidate clears; the others stay open whatever the upgrade.
    let cleared_by: BTreeMap<&str, Vec<usize>> = ids
        .iter()
        .map(|id| {
            (
                id.as_str(),
                cands
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !affected_at(id, c))
                    .map(|(i, _)| i)
                    .collect(),
            )
        })
        .collect();
    let fixable: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !cleared_by[id].is_empty())
        .collect();
    // The first candidate clearing every fixable finding; if no single one does (a later range
    // reopens one), the lowest candidate clearing the most.
    let target: Option<usize> = if fixable.is_empty() {
        None
    } else {
        (0..cands.len())
            .find(|&i| fixable.iter().all(|id| cleared_by[id].contains(&i)))
            .or_else(|| {
                (0..cands.len()).max_by_key(|&i| {
                    (
                        fixable
                            .iter()
                            .filter(|id| cleared_by[*id].contains(&i))
                            .count(),
                        std::cmp::Reverse(i),
                    )
                })
            })
    };
    let mut clears = Vec::new();
    let mut left_open = Vec::new();
    for id in &ids {
        let cleared = target.is_some_and(|t| cleared_by[id.as_str()].contains(&t));
        if cleared {
            clears.push(id.clone());
        } else if cleared_by[id.as_str()].is_empty() {
            let has_fix =
                behind[id].iter().any(|r| !fixes_of(r, q).is_empty()) || !own_fixes[id].is_empty();
            left_open.push(OpenFinding {
                id: id.clone(),
                reason: if has_fix {
                    format!(
                        "no fixed version above {} clears it (a later range is still affected)",
                        q.version
                    )
                } else {
                    "no fixed version".to_string()
                },
            });
        } else {
            left_open.push(OpenFinding {
                id: id.clone(),
                reason: format!(
                    "cleared only at versions where another finding is open ({})",
                    cleared_by[id.as_str()]
                        .iter()
                        .map(|&i| cands[i].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let target_version = target.map(|t| cands[t].clone());
    // Records matching the target that were not behind any finding.
    let known: BTreeSet<&str> = behind.values().flatten().map(|r| r.id.as_str()).collect();
    let introduces = match &target_version {
        Some(t) => {
            let qt = at(q, t);
            records
                .iter()
                .filter(|r| !known.contains(r.id.as_str()))
                .filter(|r| first_match(r, &qt).is_some())
                .map(|r| r.id.clone())
                .collect()
        }
        None => Vec::new(),
    };
    let record_fixes = behind
        .values()
        .flatten()
        .filter_map(|r| {
            let mut f = fixes_of(r, q);
            f.retain(|c| s.compare(c, &q.version) == Ordering::Greater);
            sort_dedup(&mut f, s);
            f.into_iter().next().map(|v| (r.id.clone(), v))
        })
        .collect();
    PackagePlan {
        ecosystem: q.ecosystem.clone(),
        name: q.name.clone(),
        packages: packages.into_iter().collect(),
        installed_version: q.version.clone(),
        ordering: s.name().to_string(),
        target_version,
        clears,
        left_open,
        introduces,
        record_fixes,
        locations,
        severity,
        basis: if all_records {
            "records".into()
        } else {
            "fixed-versions".into()
        },
    }
}

/// The (ecosystem, name) keys whose records a plan for `findings` needs (for `Snapshot::lookup`).
pub fn lookup_keys(findings: &[Finding]) -> Vec<(String, String)> {
    let mut out: BTreeSet<(String, String)> = BTreeSet::new();
    for f in findings {
        if f.kind == FindingKind::Vulnerability
            && let Some((e, n, _)) = group_key(f)
        {
            out.insert((e, n));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Snapshot, write};
    use moat_model::{Inventory, OsRelease, Package, PackageKind, SourcePackage};
    use std::path::PathBuf;

    /// `../shared/data/osv/<rel>`; a visible skip where `../shared` is missing, a failure in CI.
    fn osv_dir(rel: &str) -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/osv")
            .join(rel);
        if p.exists() {
            return Some(p);
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("required test input missing in CI: {}", p.display());
        }
        eprintln!("SKIPPED: {} is missing", p.display());
        None
    }

    /// Every record in `dir` naming `name` in `ecosystem` (exact, case-insensitive for PyPI).
    fn records(dir: &str, ecosystem_prefix: &str, name: &str) -> Option<Vec<Record>> {
        let d = osv_dir(dir)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&d).expect("read osv dir") {
            let p = e.expect("entry").path();
            let bytes = std::fs::read(&p).expect("read record");
            // Cheap prefilter before parsing.
            if !String::from_utf8_lossy(&bytes)
                .to_ascii_lowercase()
                .contains(&format!("\"{}\"", name.to_ascii_lowercase()))
            {
                continue;
            }
            let r = Record::from_json(&bytes).expect("valid OSV");
            if r.affected.iter().any(|a| {
                a.package.ecosystem.starts_with(ecosystem_prefix)
                    && a.package.name.eq_ignore_ascii_case(name)
            }) {
                out.push(r);
            }
        }
        assert!(!out.is_empty(), "no {name} records in {dir}");
        Some(out)
    }

    /// Scans one package against a snapshot of `recs` with the real matcher.
    fn scan_one(recs: &[Record], pkg: Package, os: Option<OsRelease>) -> Vec<Finding> {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), recs.to_vec(), Vec::new()).expect("write snapshot");
        let snap = Snapshot::open(dir.path()).expect("open snapshot");
        let inv = Inventory {
            os,
            packages: vec![pkg],
            ..Inventory::default()
        };
        let r = crate::scan(&snap, &inv).expect("scan");
        assert!(!r.findings.is_empty());
        r.findings
    }

    fn pkg(purl: &str) -> Package {
        crate::ecosystem::package_from_purl(purl.parse().expect("purl"), None, None)
    }

    #[test]
    fn lodash_needs_4_18_0_not_the_lowest_fix_of_one_record() {
        let Some(recs) = records("npm", "npm", "lodash") else {
            return;
        };
        let mut p = pkg("pkg:npm/lodash@4.17.15");
        p.path = Some("app/node_modules/lodash/package.json".into());
        p.layer = Some("sha256:abc".into());
        let findings = scan_one(&recs, p, None);
        // CVE-2021-23337: RETIREJS-lodash-074d77e9 closes at 4.17.21, RETIREJS-lodash-42b94605 only at
        // 4.18.0. The finding's lowest fixed version is 4.17.21, where it is still reported.
        let cve = findings
            .iter()
            .find(|f| f.id == "CVE-2021-23337" || f.aliases.iter().any(|a| a == "CVE-2021-23337"))
            .expect("CVE-2021-23337 found");
        assert_eq!(
            cve.vulnerability.as_ref().expect("vuln").fixed_versions[0],
            "4.17.21"
        );
        let plans = plan(&findings, &recs);
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.target_version.as_deref(), Some("4.18.0"), "{p:#?}");
        assert_eq!(p.ordering, "semver");
        assert!(p.left_open.is_empty(), "{:?}", p.left_open);
        assert_eq!(p.clears.len(), findings.len());
        assert!(p.clears.contains(&cve.id));
        assert_eq!(
            p.record_fixes
                .get("RETIREJS-lodash-074d77e9")
                .map(String::as_str),
            Some("4.17.21")
        );
        assert_eq!(
            p.record_fixes
                .get("RETIREJS-lodash-42b94605")
                .map(String::as_str),
            Some("4.18.0")
        );
        assert_eq!(
            p.locations[0].file.as_deref(),
            Some("app/node_modules/lodash/package.json")
        );
        assert_eq!(p.locations[0].layer.as_deref(), Some("sha256:abc"));
        // Re-scanning at the target confirms it: nothing of lodash left.
        let at_target = {
            let dir = tempfile::tempdir().expect("tempdir");
            write(dir.path(), recs.clone(), Vec::new()).expect("write");
            let snap = Snapshot::open(dir.path()).expect("open");
            let inv = Inventory {
                packages: vec![pkg("pkg:npm/lodash@4.18.0")],
                ..Inventory::default()
            };
            crate::scan(&snap, &inv).expect("scan").findings
        };
        assert!(at_target.is_empty(), "{at_target:?}");
    }

    #[test]
    fn urllib3_uses_pep440_order() {
        let Some(recs) = records("PyPI", "PyPI", "urllib3") else {
            return;
        };
        let findings = scan_one(&recs, pkg("pkg:pypi/urllib3@1.24.1"), None);
        let plans = plan(&findings, &recs);
        let p = &plans[0];
        // 1.26.18 > 1.26.5 in PEP 440 (a string comparison would pick 1.26.5); the 2.0.x fixes are
        // for the 2.0 line, which 1.26.18 is not in.
        assert_eq!(p.target_version.as_deref(), Some("1.26.18"), "{p:#?}");
        assert_eq!(p.ordering, "pep440");
        assert!(p.introduces.is_empty(), "{:?}", p.introduces);
        assert!(p.left_open.is_empty(), "{:?}", p.left_open);
    }

    #[test]
    fn debian_source_package_in_dpkg_order_with_what_stays_open() {
        let Some(recs) = records("Debian", "Debian:11", "mediawiki") else {
            return;
        };
        let mut p = pkg("pkg:deb/debian/mediawiki@1:1.35.4-1~deb11u1?distro=debian-11");
        p.kind = PackageKind::Deb;
        p.source = Some(SourcePackage {
            name: "mediawiki".into(),
            version: "1:1.35.4-1~deb11u1".into(),
        });
        let findings = scan_one(&recs, p, None);
        let plans = plan(&findings, &recs);
        let p = &plans[0];
        assert_eq!(p.ordering, "dpkg");
        assert_eq!(p.ecosystem, "Debian:11");
        // The highest fix among the DSAs affecting 1:1.35.4-1~deb11u1, in dpkg order (~ before
        // nothing before +): every record is judged at it.
        let t = p.target_version.clone().expect("a target");
        let q = Query {
            ecosystem: "Debian:11".into(),
            name: "mediawiki".into(),
            version: t.clone(),
            scheme: Scheme::Dpkg,
        };
        for f in &findings {
            for r in &f.vulnerability.as_ref().expect("vuln").records {
                let rec = recs.iter().find(|x| x.id == r.id).expect("record");
                assert!(
                    first_match(rec, &q).is_none() || p.left_open.iter().any(|o| o.id == f.id),
                    "{} still matches at {t}",
                    r.id
                );
            }
        }
        // No lower candidate would do: at every fix below the target some finding remains.
        for (id, fix) in &p.record_fixes {
            if Scheme::Dpkg.compare(fix, &t) == Ordering::Less {
                let q = Query {
                    version: fix.clone(),
                    ..q.clone()
                };
                assert!(
                    findings.iter().any(|f| f
                        .vulnerability
                        .as_ref()
                        .expect("v")
                        .records
                        .iter()
                        .any(|r| first_match(
                            recs.iter().find(|x| x.id == r.id).expect("rec"),
                            &q
                        )
                        .is_some())),
                    "{id}'s fix {fix} would already clear everything"
                );
            }
        }
    }

    #[test]
    fn a_record_without_a_fix_is_left_open() {
        // A real record made unfixed: the same Debian record with its `fixed` event removed.
        let Some(mut recs) = records("Debian", "Debian:11", "expat") else {
            return;
        };
        let victim = recs[0].id.clone();
        for a in &mut recs[0].affected {
            for r in &mut a.ranges {
                r.events.retain(|e| e.fixed.is_none());
            }
        }
        let mut p = pkg("pkg:deb/debian/libexpat1@2.2.10-2?distro=debian-11");
        p.source = Some(SourcePackage {
            name: "expat".into(),
            version: "2.2.10-2".into(),
        });
        let findings = scan_one(&recs, p, None);
        let plans = plan(&findings, &recs);
        let p = &plans[0];
        let open: Vec<&str> = p.left_open.iter().map(|o| o.id.as_str()).collect();
        let victim_finding = findings
            .iter()
            .find(|f| {
                f.vulnerability
                    .as_ref()
                    .is_some_and(|v| v.records.iter().any(|r| r.id == victim))
            })
            .expect("the unfixed record is a finding");
        assert_eq!(open, vec![victim_finding.id.as_str()], "{p:#?}");
        assert_eq!(p.left_open[0].reason, "no fixed version");
        assert!(p.target_version.is_some());
        assert_eq!(p.clears.len() + 1, {
            let mut ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
            ids.dedup();
            ids.len()
        });
        assert_eq!(
            p.packages,
            vec!["pkg:deb/debian/libexpat1@2.2.10-2?distro=debian-11"]
        );
    }

    #[test]
    fn without_records_each_findings_fixed_versions_decide() {
        let Some(recs) = records("npm", "npm", "lodash") else {
            return;
        };
        let findings = scan_one(&recs, pkg("pkg:npm/lodash@4.17.15"), None);
        let plans = plan(&findings, &[]);
        let p = &plans[0];
        assert_eq!(p.basis, "fixed-versions");
        // Each finding's fixed versions close one record each: CVE-2021-23337 lists 4.17.21 and
        // 4.18.0, so only 4.18.0 clears it; the plan says it was not judged on records.
        assert_eq!(p.target_version.as_deref(), Some("4.18.0"));
        assert_eq!(
            lookup_keys(&findings),
            vec![("npm".to_string(), "lodash".to_string())]
        );
    }
}
