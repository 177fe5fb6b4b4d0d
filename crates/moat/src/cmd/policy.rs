//! `moat policy`: policy as code. `policy test DIR` runs Kyverno's test format (`kyverno-test.yaml`)
//! with moat's engine and compares every expected result.
//!
//! Flags → [`PolicyTestRequest`] → [`moat_engine::policy::test`] → render.

use std::path::PathBuf;

use moat_engine::policy::{PolicyDiagnostic, PolicyTestRequest};
use moat_policy::test_runner::TestReport;
use moat_report::Verdict;

use crate::common::OutputArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Run Kyverno tests (every kyverno-test.yaml below DIR): expected vs actual per policy, rule and
    /// resource. Exit 1 on any mismatch, 2 when a test cannot be read.
    Test(TestArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFormat {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// A directory holding kyverno-test.yaml files (searched recursively), or one test file.
    pub dir: PathBuf,
    /// Report format. Default: table on a terminal, json otherwise.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<TestFormat>,
    /// Exit 2 when any policy uses a feature moat does not evaluate (listed on stderr as
    /// `unsupported: <feature>: <policy>/<rule>`), instead of reporting those rules as skipped.
    #[arg(long)]
    pub fail_on_unsupported: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    match a.cmd {
        Sub::Test(t) => test(t),
    }
}

fn table(report: &TestReport) -> String {
    let header = [
        "POLICY", "RULE", "KIND", "RESOURCE", "EXPECTED", "ACTUAL", "OK",
    ];
    let rows: Vec<[String; 7]> = report
        .rows
        .iter()
        .map(|r| {
            [
                r.policy.clone(),
                r.rule.clone(),
                r.kind.clone(),
                r.resource.clone(),
                r.expected.clone(),
                r.actual.clone(),
                if r.ok { "ok".into() } else { "MISMATCH".into() },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.len());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(&r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out.push_str(&format!("\n{}\n", summary(report)));
    for r in report.rows.iter().filter(|r| !r.ok) {
        out.push_str(&format!(
            "mismatch: {} {} {}/{}: {}\n",
            r.test_file, r.policy, r.rule, r.resource, r.message
        ));
    }
    out
}

/// The one-line summary: results, as expected, mismatched, skipped-unsupported.
fn summary(report: &TestReport) -> String {
    let bad = report.mismatches();
    format!(
        "{} results, {} as expected, {} mismatched, {} skipped-unsupported ({} unsupported features)",
        report.rows.len(),
        report.rows.len() - bad,
        bad,
        report.skipped_unsupported(),
        report.unsupported.len()
    )
}

/// Flags → [`PolicyTestRequest`] → [`moat_engine::policy::test`] → render.
fn test(a: TestArgs) -> anyhow::Result<Verdict> {
    let outcome = moat_engine::policy::test(&PolicyTestRequest {
        path: a.dir.clone(),
        fail_on_unsupported: a.fail_on_unsupported,
    })?;
    let report = &outcome.report;
    let format = a.format.unwrap_or(if a.out.is_terminal() {
        TestFormat::Table
    } else {
        TestFormat::Json
    });
    let text = match format {
        TestFormat::Json => serde_json::to_string_pretty(&report.rows)? + "\n",
        TestFormat::Table => table(report),
    };
    a.out.write(&text)?;
    // Named at load time, one line per rule: never silently dropped.
    for d in &outcome.diagnostics {
        if let PolicyDiagnostic::Unsupported(u) = d {
            if u.rule.is_empty() || u.rule == u.policy {
                eprintln!("unsupported: {}: {}", u.reason, u.policy);
            } else {
                eprintln!("unsupported: {}: {}/{}", u.reason, u.policy, u.rule);
            }
        }
    }
    if format == TestFormat::Json {
        eprintln!("{}", summary(report));
    }
    Ok(outcome.verdict()?)
}
