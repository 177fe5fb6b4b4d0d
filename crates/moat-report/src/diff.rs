//! Comparing two reports: what a change fixed, what it introduced, what stayed. The workshop's first
//! exercise asks for exactly this comparison of a vulnerable and a hardened Dockerfile.

use std::collections::BTreeMap;

use moat_model::{Finding, FindingKind, Severity};

use crate::Report;

/// Findings are matched on what they are about and why, not where: line numbers and file names change
/// between two versions of a Dockerfile; the rule, the package it concerns and the cause do not. The
/// cause is what the finding names: for a package finding, the package (its purl without qualifiers: an
/// SBOM read back may spell `Jinja2` as `jinja2`); for a file inside an image, the path; for an object
/// (a Kubernetes resource) or a field, those; otherwise the message, which states the cause of a
/// Dockerfile finding (`DL3066` on `USER root` and on `USER app` are two causes, not one finding that
/// stayed).
fn identity(f: &Finding) -> (String, String, String, String, String) {
    let package = f
        .package
        .as_ref()
        .map(|p| {
            let mut purl = p.purl.clone();
            purl.qualifiers.clear();
            purl.subpath = None;
            purl.to_string().to_ascii_lowercase()
        })
        .unwrap_or_default();
    let cause = if f.package.is_some() {
        String::new()
    } else if f.kind == FindingKind::Dockerfile {
        f.message.clone()
    } else if let Some(o) = &f.location.object
        && !matches!(f.kind, FindingKind::ImageConfig | FindingKind::Secret)
    {
        o.clone()
    } else if f.location.field.is_none() {
        // An image's file (`/usr/bin/su`), else the message (`sets User root`).
        f.location.file.clone().unwrap_or_else(|| f.message.clone())
    } else {
        String::new()
    };
    (
        f.kind.as_str().to_string(),
        f.id.clone(),
        package,
        f.location.field.clone().unwrap_or_default(),
        cause,
    )
}

/// What a report judges, from its target kind (`dockerfile+kubernetes`, `oci`, `sbom`) and its findings.
fn subjects(r: &Report) -> std::collections::BTreeSet<&'static str> {
    let mut s = std::collections::BTreeSet::new();
    for k in r.target.kind.split('+') {
        match k {
            "dockerfile" => {
                s.insert("a Dockerfile");
            }
            "kubernetes" => {
                s.insert("Kubernetes manifests");
            }
            "image" | "oci" | "oci-archive" | "docker-archive" | "dir" | "registry" | "docker"
            | "podman" | "sbom" => {
                s.insert("an image");
            }
            _ => {}
        }
    }
    for f in &r.findings {
        s.insert(match f.kind {
            FindingKind::Dockerfile => "a Dockerfile",
            FindingKind::Kubernetes | FindingKind::Policy => "Kubernetes manifests",
            FindingKind::Vulnerability | FindingKind::ImageConfig | FindingKind::Secret => {
                "an image"
            }
            FindingKind::Runtime => "runtime events",
        });
    }
    s
}

/// Why two reports cannot be compared meaningfully, when they judge different things (a Dockerfile
/// lint and an image scan): everything of one is "fixed", everything of the other "new".
pub fn unrelated(before: &Report, after: &Report) -> Option<String> {
    let (b, a) = (subjects(before), subjects(after));
    if b.is_empty() || a.is_empty() || !b.is_disjoint(&a) {
        return None;
    }
    let list =
        |s: &std::collections::BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(" and ");
    Some(format!(
        "the reports judge different things: `{}` is about {}, `{}` about {}; every finding of the first shows as fixed and every finding of the second as new, which says nothing about a change. Compare two reports of the same kind (two lints of a Dockerfile, two scans of an image)",
        before.target.name,
        list(&b),
        after.target.name,
        list(&a)
    ))
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
    if let Some(why) = unrelated(before, after) {
        out.push_str(&format!("> **Warning:** {}.\n\n", cell(&why)));
    }
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

    fn m(id: &str, line: u32, message: &str) -> Finding {
        let mut x = f(id, line);
        x.message = message.into();
        x
    }

    #[test]
    fn a_rule_raised_for_another_cause_is_not_unchanged() {
        let t = |n: &str, kind: &str| TargetInfo {
            name: n.into(),
            kind: kind.into(),
        };
        let a = Report::new(
            t("a", "dockerfile"),
            vec![
                m(
                    "DL3066",
                    6,
                    "Non-numeric user-id root may not be resolvable",
                ),
                m("DL3057", 1, "HEALTHCHECK instruction missing"),
            ],
        );
        let b = Report::new(
            t("b", "dockerfile"),
            vec![
                m("DL3066", 8, "Non-numeric user-id app may not be resolvable"),
                m("DL3057", 1, "HEALTHCHECK instruction missing"),
            ],
        );
        let d = compare(&a, &b);
        let msgs = |v: &[&Finding]| v.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
        assert_eq!(
            msgs(&d.fixed),
            ["Non-numeric user-id root may not be resolvable"]
        );
        assert_eq!(
            msgs(&d.new),
            ["Non-numeric user-id app may not be resolvable"]
        );
        assert_eq!(msgs(&d.unchanged), ["HEALTHCHECK instruction missing"]);
        // The same cause on another line (lines added above it) is unchanged.
        let moved = Report::new(
            t("c", "dockerfile"),
            vec![m(
                "DL3066",
                12,
                "Non-numeric user-id root may not be resolvable",
            )],
        );
        assert_eq!(compare(&a, &moved).unchanged.len(), 1);
        // An image file is its path; the layer it is in may change with every build.
        let mut x = Finding::new(
            "MOAT-IMG-005",
            FindingKind::ImageConfig,
            Severity::Medium,
            "s",
        );
        x.location.file = Some("/usr/bin/su".into());
        x.location.layer = Some("sha256:1".into());
        let mut y = x.clone();
        y.location.layer = Some("sha256:2".into());
        y.message = "/usr/bin/su is setuid (mode 4755), another build".into();
        let (i1, i2) = (
            Report::new(t("img:1", "oci"), vec![x]),
            Report::new(t("img:2", "oci"), vec![y]),
        );
        assert_eq!(compare(&i1, &i2).unchanged.len(), 1);
        assert_eq!(unrelated(&i1, &i2), None);
        assert_eq!(unrelated(&a, &b), None);
        let why = unrelated(&a, &i2).expect("a Dockerfile lint and an image scan");
        assert!(
            why.starts_with("the reports judge different things: `a` is about a Dockerfile, `img:2` about an image"),
            "{why}"
        );
        assert!(to_markdown(&a, &i2).contains("> **Warning:** the reports judge different things"));
        // Two lints of several inputs with a Dockerfile in common are related.
        let both = Report::new(t("2 inputs", "dockerfile+kubernetes"), vec![]);
        assert_eq!(unrelated(&both, &a), None);
    }
}
