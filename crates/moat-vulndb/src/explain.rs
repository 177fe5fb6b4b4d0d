//! `moat explain ID TARGET`: for one advisory (or any alias of it), every package of the target it
//! was checked against, and why it did or did not match: the range or list entry and the comparison.

use moat_model::Inventory;
use serde::Serialize;

use crate::ecosystem::{family, normalize_ecosystem, normalize_name, query_for};
use crate::matcher::{applies, eval_affected};
use crate::store::{DbError, Snapshot};

#[derive(Debug, Clone, Serialize)]
pub struct RecordInfo {
    pub id: String,
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// `ecosystem/name` of every affected entry.
    pub affects: Vec<String>,
}

/// One package judged by one record entry.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub record: String,
    pub purl: String,
    pub ecosystem: String,
    pub queried_name: String,
    pub version: String,
    pub matched: bool,
    pub by: String,
    pub entry: String,
    pub comparison: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<String>,
    /// Set when the record is withdrawn: it would match, but is never reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A package with the record's package name but another ecosystem or release: not checked, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NearMiss {
    pub record: String,
    pub purl: String,
    pub looked_up_as: String,
    pub record_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub id: String,
    pub records: Vec<RecordInfo>,
    pub checks: Vec<Check>,
    pub near_misses: Vec<NearMiss>,
    /// Packages the record says nothing about (other names), counted.
    pub unrelated_packages: usize,
    /// Packages with no advisory ecosystem, with the reason.
    pub unmatchable: Vec<String>,
}

/// Explains `id` against `inv`. `Ok(None)` when no record has that id or alias.
pub fn explain(snap: &Snapshot, id: &str, inv: &Inventory) -> Result<Option<Explanation>, DbError> {
    let records = snap.by_id(id)?;
    if records.is_empty() {
        return Ok(None);
    }
    let mut ex = Explanation {
        id: id.to_string(),
        records: Vec::new(),
        checks: Vec::new(),
        near_misses: Vec::new(),
        unrelated_packages: 0,
        unmatchable: Vec::new(),
    };
    for r in &records {
        ex.records.push(RecordInfo {
            id: r.id.clone(),
            aliases: r.aliases.clone(),
            withdrawn: r.withdrawn.clone(),
            affects: r
                .affected
                .iter()
                .map(|a| format!("{}/{}", a.package.ecosystem, a.package.name))
                .collect(),
        });
    }
    for pkg in &inv.packages {
        let q = match query_for(pkg, inv.os.as_ref()) {
            Ok(q) => q,
            Err(e) => {
                ex.unmatchable.push(format!("{}: {}", pkg.purl, e.0));
                continue;
            }
        };
        let mut related = false;
        for r in &records {
            let mut checked = false;
            for a in r.affected.iter().filter(|a| applies(a, &q)) {
                checked = true;
                let o = eval_affected(a, &q);
                ex.checks.push(Check {
                    record: r.id.clone(),
                    purl: pkg.purl.to_string(),
                    ecosystem: q.ecosystem.clone(),
                    queried_name: q.name.clone(),
                    version: q.version.clone(),
                    matched: o.affected && r.withdrawn.is_none(),
                    by: o.by,
                    entry: o.entry,
                    comparison: o.comparison,
                    fixed: o.fixed,
                    note: r
                        .withdrawn
                        .as_ref()
                        .map(|w| format!("record withdrawn {w}: never reported")),
                });
            }
            if checked {
                related = true;
                continue;
            }
            let same_name: Vec<String> = r
                .affected
                .iter()
                .filter(|a| {
                    let e = normalize_ecosystem(&a.package.ecosystem);
                    family(&e) == family(&q.ecosystem)
                        && normalize_name(&e, &a.package.name)
                            == normalize_name(&q.ecosystem, &q.name)
                })
                .map(|a| format!("{}/{}", a.package.ecosystem, a.package.name))
                .collect();
            if !same_name.is_empty() {
                related = true;
                ex.near_misses.push(NearMiss {
                    record: r.id.clone(),
                    purl: pkg.purl.to_string(),
                    looked_up_as: format!("{}/{}", q.ecosystem, q.name),
                    record_names: same_name,
                });
            }
        }
        if !related {
            ex.unrelated_packages += 1;
        }
    }
    Ok(Some(ex))
}

impl Explanation {
    /// The text `moat explain` prints.
    pub fn to_text(&self, target: &str) -> String {
        let mut s = String::new();
        for r in &self.records {
            s.push_str(&r.id);
            if !r.aliases.is_empty() {
                s.push_str(&format!(" (aliases: {})", r.aliases.join(", ")));
            }
            if let Some(w) = &r.withdrawn {
                s.push_str(&format!(" [withdrawn {w}]"));
            }
            s.push_str(&format!(
                "\n  affects: {}\n",
                if r.affects.is_empty() {
                    "nothing".to_string()
                } else {
                    r.affects.join(", ")
                }
            ));
        }
        s.push_str(&format!("\nChecked against {target}:\n"));
        if self.checks.is_empty() {
            s.push_str("  no package of the target is named by these records\n");
        }
        for c in &self.checks {
            s.push_str(&format!(
                "  {} {}: {} {} (as {}/{} {})\n    {}: {}\n    {}\n",
                if c.matched { "MATCH   " } else { "no match" },
                c.purl,
                c.record,
                if c.matched {
                    "applies"
                } else {
                    "does not apply"
                },
                c.ecosystem,
                c.queried_name,
                c.version,
                c.by,
                c.entry,
                c.comparison
            ));
            if !c.fixed.is_empty() {
                s.push_str(&format!("    fixed in: {}\n", c.fixed.join(", ")));
            }
            if let Some(n) = &c.note {
                s.push_str(&format!("    note: {n}\n"));
            }
        }
        for n in &self.near_misses {
            s.push_str(&format!(
                "  not checked {}: looked up as {}, but {} names only {}\n",
                n.purl,
                n.looked_up_as,
                n.record,
                n.record_names.join(", ")
            ));
        }
        s.push_str(&format!(
            "  {} other package(s) are not named by these records\n",
            self.unrelated_packages
        ));
        if !self.unmatchable.is_empty() {
            s.push_str(&format!(
                "  {} package(s) have no advisory ecosystem:\n",
                self.unmatchable.len()
            ));
            for u in self.unmatchable.iter().take(20) {
                s.push_str(&format!("    {u}\n"));
            }
        }
        s
    }
}
