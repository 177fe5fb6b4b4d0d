//! `moat scan TARGET`: the inventory of any target `moat sbom` reads (or `sbom:FILE`), matched
//! against the local vulnerability database; `.moatignore` and OpenVEX exceptions applied; reported
//! as a table, moat's JSON, SARIF or CycloneDX with vulnerabilities; `--fail-on` gates CI.
//!
//! Flags → [`ScanRequest`] → [`moat_engine::scan`] → render. The pipeline itself lives in
//! `moat-engine`, which `moat server` calls too.

use std::path::PathBuf;

use moat_engine::{DbChoice, Diagnostic, IgnoreChoice, ScanRequest, Scanners};
use moat_model::Severity;
use moat_report::Verdict;

use crate::common::{GateArgs, InputError, OutputArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

/// What `moat scan` judges. Both by default, as a user of an image scanner expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scanner {
    /// Known vulnerabilities in OS and language packages (the OSV database).
    Vuln,
    /// Image-configuration checks (root user, HEALTHCHECK, secrets in Env/history, setuid files,
    /// world-writable files, ADD in history, package caches) — the same as `moat lint IMAGE`.
    Config,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to scan: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, dir:PATH,
    /// registry:HOST/REPO[:TAG|@DIGEST], sbom:FILE (CycloneDX or SPDX JSON), or a bare path.
    pub target: String,
    /// Report format. Default: table on a terminal, json otherwise.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ScanFormat>,
    /// Only report these severities (comma-separated: critical,high,...).
    #[arg(long, value_delimiter = ',', value_name = "SEVERITY,...")]
    pub severity: Vec<Severity>,
    /// What to check (comma-separated): vuln, config. Default: both.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "vuln,config")]
    pub scanners: Vec<Scanner>,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Accepted risks (YAML: id, package/purl, reason, expires). Default: ./.moatignore if present.
    #[arg(long, value_name = "FILE")]
    pub ignorefile: Option<PathBuf>,
    /// OpenVEX documents: `not_affected` and `fixed` statements suppress findings.
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// The vulnerability database directory (default: $MOAT_DB, else ~/.cache/moat/db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The platform to pick from a multi-platform image index (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH", default_value = "linux/amd64")]
    pub platform: String,
    /// Allow plain HTTP to the registry (loopback test registries).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Let findings no source rated (UNKNOWN) fail --fail-on at any level. Default: they trip only
    /// `--fail-on unknown`, and the report warns how many a higher level let through.
    #[arg(long)]
    pub fail_on_unknown: bool,
    /// Warn when the vulnerability database was written more than DAYS days ago (0: never).
    #[arg(long, value_name = "DAYS", default_value_t = moat_engine::scan::DEFAULT_DB_MAX_AGE_DAYS)]
    pub db_max_age: u32,
    /// Never download: without a database, scan without one (default: a first run with no database
    /// at the default location downloads it, as `moat db update` does). Also MOAT_OFFLINE=1.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Upload the report to moat server at this URL (`https://moat.example:8080`), whatever the
    /// output format. Fails closed: a report the server did not store is exit 2.
    #[arg(long, value_name = "URL", requires = "token_file")]
    pub server: Option<String>,
    /// The token for --server (an `ingest` token from `moat server token create`): the file's
    /// first line.
    #[arg(long = "token-file", value_name = "FILE", requires = "server")]
    pub token_file: Option<PathBuf>,
}

impl Args {
    /// The engine's request for these flags.
    pub fn request(&self) -> ScanRequest {
        ScanRequest {
            target: self.target.clone(),
            platform: self.platform.clone(),
            insecure_registry: self.insecure_registry,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            scanners: Scanners {
                vuln: self.scanners.contains(&Scanner::Vuln),
                config: self.scanners.contains(&Scanner::Config),
            },
            severities: self.severity.clone(),
            ignore_unfixed: self.ignore_unfixed,
            ignore: match &self.ignorefile {
                Some(p) => IgnoreChoice::File(p.clone()),
                None => IgnoreChoice::WorkingDirectory,
            },
            vex: self.vex.clone(),
            db: DbChoice::from_flag(self.db.clone()),
            fail_on: self.gate.fail_on,
            fail_on_unknown: self.fail_on_unknown,
            db_max_age_days: self.db_max_age,
            today: None,
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    // The token is read before the scan: a missing file fails fast.
    let upload = match (&a.server, &a.token_file) {
        (Some(s), Some(f)) => Some((
            s.clone(),
            moat_server::client::read_token(f).map_err(InputError)?,
        )),
        _ => None,
    };
    let req = a.request();
    // First run: no database at the default location → download it before scanning (the message,
    // when it cannot be had, comes first, not after the report).
    let first = if req.scanners.vuln {
        crate::cmd::db::first_run(
            req.db.explicit,
            &req.db.path,
            crate::cmd::db::offline(a.offline),
        )
    } else {
        crate::cmd::db::FirstRun::NotNeeded
    };
    let spinner = reading_spinner(&req);
    let outcome = moat_engine::scan(&req);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let outcome = outcome?;
    let format = a.format.unwrap_or(if a.out.is_terminal() {
        ScanFormat::Table
    } else {
        ScanFormat::Json
    });
    for d in &outcome.diagnostics {
        match d {
            Diagnostic::Ignore(w) => eprintln!("moat: warning: {w}"),
            // One line: in the table when the table goes to a terminal, else on stderr.
            Diagnostic::DbMissing { .. }
                if first != crate::cmd::db::FirstRun::Missing
                    && !(format == ScanFormat::Table && a.out.is_terminal()) =>
            {
                eprintln!("moat: {d}")
            }
            _ => {}
        }
    }
    let report = &outcome.report;
    let text = match format {
        ScanFormat::Table => moat_report::to_vuln_table(report),
        ScanFormat::Json => report.to_json(),
        ScanFormat::Sarif => moat_report::to_sarif(report),
        ScanFormat::Cyclonedx => moat_sbom::format::cyclonedx::to_string(
            &outcome.inventory,
            &report.findings,
            &moat_sbom::format::WriteOptions::default(),
        ),
    };
    a.out.write(&text)?;
    if let Some((server, token)) = upload {
        let json = if format == ScanFormat::Json {
            text
        } else {
            report.to_json()
        };
        let up = moat_server::client::upload_report(
            &server,
            &token,
            json.as_bytes(),
            std::time::Duration::from_secs(120),
        )
        .map_err(|e| InputError(format!("upload failed: {e}")))?;
        eprintln!(
            "moat: report {} to {server} ({})",
            if up.duplicate {
                "already stored"
            } else {
                "stored"
            },
            up.digest
        );
    }
    Ok(outcome.verdict)
}

/// `sbom:` targets are one file: a spinner with the elapsed time on a terminal. Image targets get
/// their per-layer bar and `dir:` targets their walk's counts from moat-image.
fn reading_spinner(req: &ScanRequest) -> Option<indicatif::ProgressBar> {
    if !req.progress || !req.target.starts_with("sbom:") {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} reading {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(req.target.clone());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}
