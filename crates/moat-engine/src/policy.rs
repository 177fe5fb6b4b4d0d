//! Policy as code: Kyverno's test format (`kyverno-test.yaml`) run with moat's policy engine, every
//! expected result compared, and the verdict (mismatches fail; unreadable tests and, when asked,
//! unsupported features are errors).

use std::path::PathBuf;

use moat_policy::Unsupported;
use moat_policy::test_runner::TestReport;
use moat_report::Verdict;

/// One `policy test` run, as flags or an API call describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTestRequest {
    /// A directory searched recursively for `kyverno-test.yaml` files, or one test file.
    pub path: PathBuf,
    /// A policy feature moat does not evaluate is an error, not a skipped result.
    pub fail_on_unsupported: bool,
}

/// Why a test run gave no verdict. Every variant is exit 2 on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyTestError {
    /// The path cannot be read.
    #[error("{0}")]
    Path(String),
    /// Test files that could not be run (each message names its file); with no result at all,
    /// [`test`] returns this instead of an outcome, so no empty table can pass for a success.
    #[error("{}", .0.join("\n"))]
    Unreadable(Vec<String>),
    /// `fail_on_unsupported` and some policy uses a feature moat does not evaluate.
    #[error(
        "{features} unsupported policy features (--fail-on-unsupported); {skipped} results skipped-unsupported"
    )]
    Unsupported { features: usize, skipped: usize },
}

/// Something a test run met, typed; the CLI lists them on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyDiagnostic {
    /// A rule (or a whole policy) using a feature moat does not evaluate: its results are
    /// skipped-unsupported, never passed.
    Unsupported(Unsupported),
    /// A test file that could not be run.
    Unreadable(String),
}

/// What a test run produced.
#[derive(Debug)]
pub struct PolicyTestOutcome {
    /// Every expected result beside moat's.
    pub report: TestReport,
    pub diagnostics: Vec<PolicyDiagnostic>,
    fail_on_unsupported: bool,
}

impl PolicyTestOutcome {
    /// The verdict once the results are shown: an error for `--fail-on-unsupported` with an
    /// unsupported feature, then for unreadable test files; else Fail on any mismatch.
    pub fn verdict(&self) -> Result<Verdict, PolicyTestError> {
        let r = &self.report;
        if self.fail_on_unsupported && (!r.unsupported.is_empty() || r.skipped_unsupported() > 0) {
            return Err(PolicyTestError::Unsupported {
                features: r.unsupported.len(),
                skipped: r.skipped_unsupported(),
            });
        }
        if !r.errors.is_empty() {
            return Err(PolicyTestError::Unreadable(r.errors.clone()));
        }
        Ok(if r.mismatches() > 0 {
            Verdict::Fail
        } else {
            Verdict::Pass
        })
    }
}

/// Runs every test below the request's path.
pub fn test(req: &PolicyTestRequest) -> Result<PolicyTestOutcome, PolicyTestError> {
    let report = moat_policy::test_runner::run_dir(&req.path)
        .map_err(|e| PolicyTestError::Path(e.to_string()))?;
    // Nothing ran: the error alone.
    if report.rows.is_empty() && !report.errors.is_empty() {
        return Err(PolicyTestError::Unreadable(report.errors));
    }
    let diagnostics = report
        .unsupported
        .iter()
        .cloned()
        .map(PolicyDiagnostic::Unsupported)
        .chain(
            report
                .errors
                .iter()
                .cloned()
                .map(PolicyDiagnostic::Unreadable),
        )
        .collect();
    Ok(PolicyTestOutcome {
        report,
        diagnostics,
        fail_on_unsupported: req.fail_on_unsupported,
    })
}
