use moat_model::{Finding, Severity};

/// The CI gate every moat command shares: exit 1 when any unsuppressed finding is at or above
/// `--fail-on`. Without `--fail-on`, findings never fail the run (exit 0), as with Trivy's default.
///
/// A finding no source rated is `UNKNOWN`, which sorts lowest: by default it trips only
/// `--fail-on unknown`. `fail_on_unknown` (`moat scan --fail-on-unknown`) makes an UNKNOWN finding
/// trip any `--fail-on` level, for gates that must not pass what nobody rated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gate {
    pub fail_on: Option<Severity>,
    pub fail_on_unknown: bool,
}

/// The outcome of a run, which maps one-to-one onto moat's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: ran, nothing at or above the gate.
    Pass,
    /// Exit 1: at least one finding at or above the gate.
    Fail,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
        }
    }
}

impl Gate {
    pub fn new(fail_on: Option<Severity>) -> Self {
        Gate {
            fail_on,
            fail_on_unknown: false,
        }
    }

    /// This gate, with UNKNOWN findings tripping it at any level (when a level is given).
    pub fn with_unknown(mut self, yes: bool) -> Self {
        self.fail_on_unknown = yes;
        self
    }

    /// Whether one finding trips the gate. Suppressed findings never do.
    pub fn trips(&self, f: &Finding) -> bool {
        match self.fail_on {
            Some(min) => {
                f.suppressed.is_none()
                    && (f.severity >= min
                        || (self.fail_on_unknown && f.severity == Severity::Unknown))
            }
            None => false,
        }
    }

    pub fn judge<'a>(&self, findings: impl IntoIterator<Item = &'a Finding>) -> Verdict {
        if findings.into_iter().any(|f| self.trips(f)) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_model::FindingKind;

    #[test]
    fn gate_counts_only_unsuppressed_findings_at_or_above() {
        let high = Finding::new("X", FindingKind::Dockerfile, Severity::High, "x");
        let low = Finding::new("Y", FindingKind::Dockerfile, Severity::Low, "y");
        let mut muted = high.clone();
        muted.suppressed = Some("accepted risk".into());
        let gate = Gate::new(Some(Severity::High));
        assert_eq!(gate.judge([&low]), Verdict::Pass);
        assert_eq!(gate.judge([&low, &high]), Verdict::Fail);
        assert_eq!(gate.judge([&muted]), Verdict::Pass);
        assert_eq!(Gate::new(None).judge([&high]), Verdict::Pass);
        assert_eq!(
            Gate::new(Some(Severity::Unknown)).judge([&low]),
            Verdict::Fail
        );
        // UNKNOWN passes a HIGH gate by default, and trips it with fail_on_unknown.
        let unrated = Finding::new("DSA-1", FindingKind::Vulnerability, Severity::Unknown, "u");
        assert_eq!(gate.judge([&unrated]), Verdict::Pass);
        assert_eq!(gate.with_unknown(true).judge([&unrated]), Verdict::Fail);
        assert_eq!(
            Gate::new(None).with_unknown(true).judge([&unrated]),
            Verdict::Pass
        );
    }
}
