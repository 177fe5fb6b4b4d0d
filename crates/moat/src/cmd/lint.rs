//! `moat lint PATH... | -`: build-time checks. Every input is classified first — a Dockerfile, a
//! Kubernetes manifest (YAML/JSON), or an image target — and dispatched to the judge for its kind; the
//! findings of all inputs go into one report.
//!
//! Flags → [`LintRequest`] → [`moat_engine::lint::lint`] → render; the pipeline lives in
//! `moat-engine`, which `moat server` can call too.

use std::path::PathBuf;

use moat_engine::lint::{LintConfig, LintDiagnostic, LintRequest};
use moat_report::Verdict;

use crate::common::{GateArgs, InputError, OutputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dockerfiles, directories to search for them (Dockerfile, Containerfile, *.Dockerfile,
    /// *.dockerfile, Dockerfile.*), Kubernetes manifests, `-` for standard input, or images
    /// (oci:, oci-archive:, docker-archive:, registry:, docker:, podman:, dir: for a root file
    /// system) for the image-configuration checks.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// List every rule (id, aliases, severity, description, fix) instead of linting.
    #[arg(long)]
    pub list_rules: bool,
    /// Output format. Default: table on a terminal, json otherwise.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// A hadolint configuration file (default: .hadolint.yaml in the current directory, then
    /// ~/.config/hadolint.yaml, then ~/.hadolint.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ignore a rule (repeatable), as hadolint's --ignore.
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Only allow base images from this registry (repeatable), as hadolint's --trusted-registry.
    #[arg(long = "trusted-registry", value_name = "REGISTRY")]
    pub trusted_registries: Vec<String>,
    #[command(flatten)]
    pub kube: super::lint_kube::KubeArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub gate: GateArgs,
}

impl Args {
    /// The engine's request for these flags.
    pub fn request(&self) -> LintRequest {
        LintRequest {
            inputs: self.paths.clone(),
            config: match &self.config {
                Some(c) => LintConfig::File(c.clone()),
                None => LintConfig::Discover,
            },
            ignore: self.ignore.clone(),
            trusted_registries: self.trusted_registries.clone(),
            kube: self.kube.request(),
            fail_on: self.gate.fail_on,
        }
    }

    /// The one default every moat report shares: a table for people, JSON for pipes and files.
    fn output_format(&self) -> Format {
        self.format.unwrap_or(if self.out.is_terminal() {
            Format::Table
        } else {
            Format::Json
        })
    }
}

fn list_rules(a: &Args) -> anyhow::Result<Verdict> {
    let text = match a.output_format() {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "severity_mapping": {"error": "HIGH", "warning": "MEDIUM", "info": "LOW", "style": "INFO"},
                "rules": moat_lint::RULES
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .chain(super::lint_kube::rules_json()?)
                    .collect::<Vec<_>>(),
            }))?;
            s.push('\n');
            s
        }
        _ => {
            let mut s = String::from(
                "Severity mapping for hadolint levels: error → HIGH, warning → MEDIUM, info → LOW, style → INFO.\n\n",
            );
            for r in moat_lint::RULES {
                let al = if r.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.aliases.join(", "))
                };
                s.push_str(&format!(
                    "{}{al} [{}] {}\n    why: {}\n    fix: {}\n",
                    r.id, r.severity, r.title, r.why, r.fix
                ));
            }
            s.push_str(&super::lint_kube::rules_text());
            s
        }
    };
    a.out.write(&text)?;
    Ok(Verdict::Pass)
}

/// Flags → [`LintRequest`] → [`moat_engine::lint::lint`] → render.
pub fn run(a: Args) -> anyhow::Result<Verdict> {
    if a.list_rules {
        return list_rules(&a);
    }
    let outcome = moat_engine::lint::lint(&a.request())?;
    // Warnings as they arose; the inputs that failed after the report.
    for d in &outcome.diagnostics {
        if !matches!(d, LintDiagnostic::Input(_)) {
            eprintln!("moat: warning: {d}");
        }
    }
    let report = &outcome.report;
    let text = match a.output_format() {
        Format::Table => moat_report::to_table(report),
        Format::Json => report.to_json(),
        Format::Sarif => moat_report::to_sarif(report),
    };
    a.out.write(&text)?;
    if !report.errors.is_empty() {
        // Fail closed: a gate cannot pass inputs it could not read, whatever the other findings say.
        for e in &report.errors {
            eprintln!("moat: error: {e}");
        }
        return Err(InputError(format!(
            "{} of {} inputs could not be linted (listed as errors in the report)",
            report.errors.len(),
            outcome.inputs
        ))
        .into());
    }
    Ok(outcome.verdict)
}
