use std::collections::BTreeMap;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use moat_model::{Finding, FindingKind};

use crate::Report;

/// Vulnerability findings as a table grouped by package (worst first within a package), with the
/// installed and fixed versions; other findings follow in the general table layout.
pub fn to_vuln_table(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} ({})\n",
        report.target.name, report.target.kind
    ));
    if let Some(d) = report.metadata.get("db_digest") {
        out.push_str(&format!("vulnerability database {d}\n"));
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
        } else {
            "No vulnerabilities found.\n"
        });
    } else {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(160)
            .set_header(vec![
                "Package",
                "Installed",
                "Vulnerability",
                "Severity",
                "Fixed in",
                "Title",
            ]);
        for ((name, version), mut fs) in by_pkg {
            fs.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
            for (i, f) in fs.iter().enumerate() {
                let sev = match &f.suppressed {
                    Some(_) => format!("{} (suppressed)", f.severity),
                    None => f.severity.to_string(),
                };
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
                let (n, v) = if i == 0 {
                    (name.clone(), version.clone())
                } else {
                    (String::new(), String::new())
                };
                t.add_row(vec![
                    n,
                    v,
                    f.id.clone(),
                    sev,
                    fixed,
                    f.title.chars().take(80).collect(),
                ]);
            }
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    if !others.is_empty() {
        let mut rest = report.clone();
        rest.findings = others;
        // The general table repeats the target line; the vulnerability table already printed it.
        let t = crate::to_table(&rest);
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
