use std::collections::BTreeMap;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use moat_model::{Finding, FindingKind, Location};

use crate::Report;

/// Vulnerability findings as a table grouped by package (worst first within a package): the CVE (or
/// GHSA) id first with the advisory records beside it, the severity with who rated it, each record's
/// fixed version and the one version that clears every finding of the package, and every place the
/// package was found. Other findings follow in the general table layout. Drawn at the terminal's
/// width ([`crate::table_width`]).
pub fn to_vuln_table(report: &Report) -> String {
    to_vuln_table_at(report, crate::table_width())
}

fn place(l: &Location) -> Option<String> {
    match (&l.file, &l.layer) {
        (Some(f), Some(layer)) => Some(format!("{f} (layer {})", short_digest(layer))),
        (Some(f), None) => Some(f.clone()),
        (None, Some(layer)) => Some(format!("layer {}", short_digest(layer))),
        (None, None) => None,
    }
}

fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => d.to_string(),
    }
}

/// `CVE-2022-0778` and, beside it, the advisory records behind it that have other ids.
fn vuln_cell(f: &Finding) -> String {
    let mut s = f.id.clone();
    if let Some(v) = &f.vulnerability {
        let others: Vec<&str> = v
            .records
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| *id != f.id)
            .collect();
        if !others.is_empty() {
            s.push_str(&format!(" ({})", others.join(", ")));
        }
    }
    s
}

/// `HIGH 7.5 nvd`, `UNKNOWN (no source)`.
fn severity_cell(f: &Finding) -> String {
    let mut s = f.severity.to_string();
    if let Some(r) = f.vulnerability.as_ref().and_then(|v| v.rating.as_ref()) {
        if let Some(score) = r.score {
            s.push_str(&format!(" {score:.1}"));
        }
        if r.source == "none" {
            s.push_str(" (no source)");
        } else {
            s.push_str(&format!(" {}", r.source));
        }
    }
    if f.suppressed.is_some() {
        s.push_str(" (suppressed)");
    }
    s
}

/// [`to_vuln_table`] at `width` columns; cells wrap at word boundaries.
pub fn to_vuln_table_at(report: &Report, width: u16) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} ({})\n",
        report.target.name, report.target.kind
    ));
    if let Some(d) = report.metadata.get("db_digest") {
        out.push_str(&format!("vulnerability database {d}\n"));
    }
    for c in &report.coverage {
        let newest = c
            .newest
            .as_deref()
            .map(|n| format!(", newest {}", n.get(..10).unwrap_or(n)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}: {} package(s), {}{}\n",
            c.ecosystem,
            c.packages,
            if c.covered {
                format!("{} records{newest}", c.records)
            } else {
                "no records".to_string()
            },
            if c.covered { "" } else { " — NOT COVERED" },
        ));
    }
    let mut by_pkg: BTreeMap<(String, String), Vec<&Finding>> = BTreeMap::new();
    let mut others = Vec::new();
    for f in &report.findings {
        match (&f.kind, &f.package) {
            (FindingKind::Vulnerability, Some(p)) => by_pkg
                .entry((p.name.clone(), p.version.clone()))
                .or_default()
                .push(f),
            _ => others.push(f.clone()),
        }
    }
    if by_pkg.is_empty() {
        out.push_str(if report.metadata.contains_key("vulnerabilities") {
            "Vulnerabilities not checked (see the warning below).\n"
        } else if report.coverage.iter().any(|c| !c.covered) {
            "No vulnerabilities found in what the database covers (see the warnings below).\n"
        } else {
            "No vulnerabilities found.\n"
        });
    } else {
        let header = [
            "Package",
            "Installed",
            "Vulnerability",
            "Severity",
            "Fixed in",
            "Upgrade to",
            "Title",
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for ((name, version), mut fs) in by_pkg {
            fs.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
            // Every place the package was found, once, under its name.
            let mut places: Vec<String> = Vec::new();
            for f in &fs {
                let locs = f
                    .vulnerability
                    .as_ref()
                    .map(|v| v.locations.clone())
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| vec![f.location.clone()]);
                for l in &locs {
                    if let Some(p) = place(l)
                        && !places.contains(&p)
                    {
                        places.push(p);
                    }
                }
            }
            let upgrade = fs
                .iter()
                .find_map(|f| f.vulnerability.as_ref()?.remediation.clone())
                .unwrap_or_else(|| "no fix clears all".to_string());
            for (i, f) in fs.iter().enumerate() {
                let fixed = f
                    .vulnerability
                    .as_ref()
                    .map(|v| {
                        if v.fixed_versions.is_empty() {
                            "no fix".to_string()
                        } else {
                            v.fixed_versions.join(", ")
                        }
                    })
                    .unwrap_or_default();
                // Every place the package was found, once, on its first row.
                let mut title = f.title.clone();
                let (n, v, u) = if i == 0 {
                    for p in &places {
                        title.push_str("\nin ");
                        title.push_str(p);
                    }
                    (name.clone(), version.clone(), upgrade.clone())
                } else {
                    (String::new(), String::new(), String::new())
                };
                rows.push(vec![
                    n,
                    v,
                    vuln_cell(f),
                    severity_cell(f),
                    fixed,
                    u,
                    crate::width::break_paths(&title, 16),
                ]);
            }
        }
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width)
            .set_header(header.to_vec());
        crate::width::fit_columns(&mut t, &header, &rows, width, &[6]);
        for r in rows {
            t.add_row(r);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    if !others.is_empty() {
        let mut rest = report.clone();
        rest.findings = others;
        // The general table repeats the target line; the vulnerability table already printed it.
        let t = crate::to_table_at(&rest, width);
        out.push_str(t.split_once('\n').map_or(t.as_str(), |(_, body)| body));
        return out;
    }
    let counts: Vec<String> = report
        .summary
        .by_severity
        .iter()
        .rev()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    out.push_str(&format!(
        "Total: {}{}{}\n",
        report.summary.total,
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        },
        if report.summary.suppressed > 0 {
            format!(", {} suppressed", report.summary.suppressed)
        } else {
            String::new()
        }
    ));
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_model::{
        AdvisoryRecord, PackageRef, Severity, SeverityRating, TargetInfo, Vulnerability,
    };

    fn lodash(id: &str, record: &str, files: &[&str]) -> Finding {
        let mut f = Finding::new(
            id,
            FindingKind::Vulnerability,
            Severity::High,
            "Command Injection in lodash via the template function's variable option",
        );
        f.package = Some(PackageRef {
            name: "lodash".into(),
            version: "4.17.15".into(),
            purl: "pkg:npm/lodash@4.17.15".parse().expect("purl"),
        });
        f.location.file = Some(files[0].into());
        f.vulnerability = Some(Vulnerability {
            installed_version: "4.17.15".into(),
            fixed_versions: vec!["4.17.21".into()],
            records: vec![AdvisoryRecord {
                id: record.into(),
                source: "npm".into(),
                fixed_versions: vec!["4.17.21".into()],
                matched: None,
            }],
            rating: Some(SeverityRating {
                source: "ghsa".into(),
                record: "GHSA-35jh-r3h4-6jhm".into(),
                score: Some(7.2),
                ..SeverityRating::default()
            }),
            locations: files
                .iter()
                .map(|f| Location {
                    file: Some(f.to_string()),
                    ..Location::default()
                })
                .collect(),
            remediation: Some("4.18.0".into()),
            ..Vulnerability::default()
        });
        f
    }

    fn report(fs: Vec<Finding>) -> Report {
        Report::new(
            TargetInfo {
                name: "oci:app".into(),
                kind: "image".into(),
            },
            fs,
        )
    }

    #[test]
    fn cve_first_record_beside_one_row_with_every_location_and_the_upgrade() {
        let r = report(vec![lodash(
            "CVE-2021-23337",
            "RETIREJS-lodash-074d77e9",
            &[
                "srv/a/node_modules/lodash/package.json",
                "srv/b/node_modules/lodash/package.json",
            ],
        )]);
        let t = to_vuln_table_at(&r, 400);
        let row = t
            .lines()
            .find(|l| l.contains("CVE-2021-23337"))
            .expect("row");
        assert!(
            row.find("CVE-2021-23337") < row.find("RETIREJS-lodash-074d77e9"),
            "CVE first: {row}"
        );
        assert!(row.contains("HIGH 7.2 ghsa"), "{row}");
        assert!(row.contains("4.17.21") && row.contains("4.18.0"), "{row}");
        assert_eq!(t.matches("CVE-2021-23337").count(), 1, "one row: {t}");
        assert!(t.contains("in srv/a/") && t.contains("in srv/b/"), "{t}");
    }

    #[test]
    fn the_table_follows_the_width_and_wraps_between_words() {
        let r = report(vec![lodash(
            "CVE-2021-23337",
            "RETIREJS-lodash-074d77e9",
            &["srv/a/node_modules/lodash/package.json"],
        )]);
        for width in [60u16, 80, 120, 200] {
            let t = to_vuln_table_at(&r, width);
            for l in t
                .lines()
                .filter(|l| l.starts_with('│') || l.starts_with('┌'))
            {
                assert!(
                    l.chars().count() <= width as usize,
                    "{width}: {} columns: {l}",
                    l.chars().count()
                );
            }
            if width < 120 {
                continue;
            }
            // Every word is whole on some line: wrapped between words, never cut.
            for word in [
                "Injection",
                "template",
                "function's",
                "variable",
                "(RETIREJS-lodash-074d77e9)",
                "CVE-2021-23337",
            ] {
                assert!(t.contains(word), "{width}: {word} cut: {t}");
            }
        }
        let wide = to_vuln_table_at(&r, 200);
        assert!(
            wide.lines()
                .any(|l| l.contains("Command Injection in lodash via the template"))
        );
    }
}
