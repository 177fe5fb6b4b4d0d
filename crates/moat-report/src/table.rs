use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use moat_model::Finding;

use crate::Report;

/// A human-readable table of findings, worst first within each location, with a one-line summary,
/// at the terminal's width ([`crate::table_width`]).
pub fn to_table(report: &Report) -> String {
    to_table_at(report, crate::table_width())
}

/// [`to_table`] at `width` columns; cells wrap at word boundaries.
pub fn to_table_at(report: &Report, width: u16) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} ({})\n",
        report.target.name, report.target.kind
    ));
    let shown: Vec<&Finding> = report.findings.iter().collect();
    if shown.is_empty() {
        out.push_str("No findings.\n");
    } else {
        let header = ["Severity", "ID", "Where", "Finding"];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for f in shown {
            let sev = match &f.suppressed {
                Some(_) => format!("{} (suppressed)", f.severity),
                None => f.severity.to_string(),
            };
            let mut what = f.title.clone();
            if !f.message.is_empty() && f.message != f.title {
                what.push('\n');
                what.push_str(&f.message);
            }
            if let Some(fix) = &f.fix {
                what.push_str("\nfix: ");
                what.push_str(fix);
            }
            rows.push(vec![
                sev,
                f.id.clone(),
                crate::width::break_paths(&location(f), 32),
                what,
            ]);
        }
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width)
            .set_header(header.to_vec());
        crate::width::fit_columns(&mut t, &header, &rows, width, &[2, 3]);
        for r in rows {
            t.add_row(r);
        }
        out.push_str(&t.to_string());
        out.push('\n');
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
    for e in &report.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

fn location(f: &Finding) -> String {
    let l = &f.location;
    let mut s = String::new();
    if let Some(p) = &f.package {
        s.push_str(&format!("{} {}", p.name, p.version));
    }
    if let Some(file) = &l.file {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(file);
        if let Some(line) = l.line {
            s.push_str(&format!(":{line}"));
            if let Some(col) = l.column {
                s.push_str(&format!(":{col}"));
            }
        }
    }
    if let Some(field) = &l.field {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(field);
    }
    if s.is_empty()
        && let Some(o) = &l.object
    {
        s.push_str(o);
    }
    s
}
