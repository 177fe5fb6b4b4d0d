//! Comparing two reports: what a change fixed, what it introduced, what stayed. The workshop's first
//! exercise asks for exactly this comparison of a vulnerable and a hardened Dockerfile.

use std::collections::BTreeMap;

use moat_model::{Finding, Severity};

use crate::Report;

/// Findings are matched on what they are about, not where: line numbers and file names change between
/// two versions of a Dockerfile, the rule and the package it concerns do not.
fn identity(f: &Finding) -> (String, String, String, String) {
    (
        f.kind.as_str().to_string(),
        f.id.clone(),
        // The purl without qualifiers names a package the same way in every report: an SBOM read back
        // may spell `Jinja2` as `jinja2`, the purl is the same.
        f.package
            .as_ref()
            .map(|p| {
                let mut purl = p.purl.clone();
                purl.qualifiers.clear();
                purl.subpath = None;
                purl.to_string().to_ascii_lowercase()
            })
            .unwrap_or_default(),
        f.location.field.clone().unwrap_or_default(),
    )
}

/// The three-way split of two reports' unsuppressed findings.
#[derive(Debug, Default)]
pub struct ReportDiff<'a> {
    pub fixed: Vec<&'a Finding>,
    pub new: Vec<&'a Finding>,
    pub unchanged: Vec<&'a Finding>,
}

/// Compares `before` with `after`, counting repeated findings (two `chmod 777` lines fixed to one is one
/// fixed, one unchanged).
pub fn compare<'a>(before: &'a Report, after: &'a Report) -> ReportDiff<'a> {
    let mut pool: BTreeMap<_, Vec<&Finding>> = BTreeMap::new();
    for f in before.findings.iter().filter(|f| f.suppressed.is_none()) {
        pool.entry(identity(f)).or_default().push(f);
    }
    let mut d = ReportDiff::default();
    for f in after.findings.iter().filter(|f| f.suppressed.is_none()) {
        match pool.get_mut(&identity(f)).and_then(|v| {
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        }) {
            Some(_) => d.unchanged.push(f),
            None => d.new.push(f),
        }
    }
    d.fixed = pool.into_values().flatten().collect();
    d.fixed.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    d
}

fn counts(fs: &[&Finding]) -> String {
    let mut c: BTreeMap<Severity, usize> = BTreeMap::new();
    for f in fs {
        *c.entry(f.severity).or_default() += 1;
    }
    if c.is_empty() {
        return "0".into();
    }
    let parts: Vec<String> = c
        .iter()
        .rev()
        .map(|(s, n)| format!("{n} {}", s.as_str().to_lowercase()))
        .collect();
    format!("{} ({})", fs.len(), parts.join(", "))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn section(out: &mut String, title: &str, fs: &[&Finding]) {
    out.push_str(&format!("\n## {title} ({})\n\n", fs.len()));
    if fs.is_empty() {
        out.push_str("None.\n");
        return;
    }
    out.push_str("| Severity | ID | Where | Finding |\n|---|---|---|---|\n");
    for f in fs {
        let mut at = String::new();
        if let Some(p) = &f.package {
            at = format!("{} {}", p.name, p.version);
        } else if let Some(file) = &f.location.file {
            at = match f.location.line {
                Some(l) => format!("{file}:{l}"),
                None => file.clone(),
            };
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.severity,
            cell(&f.id),
            cell(&at),
            cell(if f.message.is_empty() {
                &f.title
            } else {
                &f.message
            })
        ));
    }
}

/// A Markdown comparison report of two JSON reports.
pub fn to_markdown(before: &Report, after: &Report) -> String {
    let d = compare(before, after);
    let mut out = String::new();
    out.push_str(&format!(
        "# moat comparison: `{}` → `{}`\n\n",
        cell(&before.target.name),
        cell(&after.target.name)
    ));
    out.push_str("| | findings |\n|---|---|\n");
    let before_all: Vec<&Finding> = before
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .collect();
    let after_all: Vec<&Finding> = after
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .collect();
    out.push_str(&format!("| before | {} |\n", counts(&before_all)));
    out.push_str(&format!("| after | {} |\n", counts(&after_all)));
    out.push_str(&format!("| fixed | {} |\n", counts(&d.fixed)));
    out.push_str(&format!("| new | {} |\n", counts(&d.new)));
    out.push_str(&format!("| unchanged | {} |\n", counts(&d.unchanged)));
    section(&mut out, "Fixed", &d.fixed);
    section(&mut out, "New", &d.new);
    section(&mut out, "Unchanged", &d.unchanged);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_model::{FindingKind, TargetInfo};

    fn f(id: &str, line: u32) -> Finding {
        let mut x = Finding::new(id, FindingKind::Dockerfile, Severity::High, id);
        x.location.line = Some(line);
        x
    }

    #[test]
    fn splits_fixed_new_unchanged_by_identity_not_line() {
        let t = |n: &str| TargetInfo {
            name: n.into(),
            kind: "file".into(),
        };
        let a = Report::new(
            t("a"),
            vec![f("DL3002", 3), f("MOAT-001", 4), f("MOAT-001", 9)],
        );
        let b = Report::new(t("b"), vec![f("MOAT-001", 20), f("DL3008", 2)]);
        let d = compare(&a, &b);
        assert_eq!(
            d.fixed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["DL3002", "MOAT-001"]
        );
        assert_eq!(
            d.new.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["DL3008"]
        );
        assert_eq!(d.unchanged.len(), 1);
        let md = to_markdown(&a, &b);
        assert!(md.contains("## Fixed (2)"), "{md}");
        assert!(md.contains("| new | 1 (1 high) |"), "{md}");
    }
}
