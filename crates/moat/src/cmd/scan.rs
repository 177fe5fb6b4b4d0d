//! `moat scan TARGET`: the inventory of any target `moat sbom` reads (or `sbom:FILE`), matched
//! against the local vulnerability database; `.moatignore` and OpenVEX exceptions applied; reported
//! as a table, moat's JSON, SARIF or CycloneDX with vulnerabilities; `--fail-on` gates CI.
//!
//! Without a database the scan still runs (the inventory and any other checks) and says in one line
//! how to get one.

use std::path::PathBuf;

use anyhow::Context;
use moat_image::{OpenOptions, Target};
use moat_model::{Finding, Severity};
use moat_report::{Report, Verdict};
use moat_vulndb::ignore::IgnoreFile;
use moat_vulndb::vex::VexDocument;
use moat_vulndb::{DbError, Snapshot};

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
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let target = Target::parse(&a.target).map_err(|e| InputError(e.to_string()))?;
    let opts = OpenOptions {
        platform: a.platform.clone(),
        insecure_registry: a.insecure_registry,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..OpenOptions::default()
    };
    // Exceptions are read first: a broken ignore or VEX file is a usage error before any work.
    let ignore = match &a.ignorefile {
        Some(p) => Some(IgnoreFile::load(p).map_err(|e| InputError(e.to_string()))?),
        None => {
            let p = PathBuf::from(".moatignore");
            if p.is_file() {
                Some(IgnoreFile::load(&p).map_err(|e| InputError(e.to_string()))?)
            } else {
                None
            }
        }
    };
    let vex = a
        .vex
        .iter()
        .map(|p| VexDocument::load(p).map_err(|e| InputError(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;

    // One pass over the image: the catalogers' files and the configuration checks' files together.
    let config_checks = a.scanners.contains(&Scanner::Config);
    let mut findings: Vec<Finding> = Vec::new();
    let inv = match &target {
        Target::Sbom(_) => {
            moat_sbom::sbom_of(&target, &opts).map_err(|e| InputError(e.to_string()))?
        }
        _ => {
            let image =
                moat_image::Image::open(&target, &opts).map_err(|e| InputError(e.to_string()))?;
            let also = |m: &moat_image::FileMeta| {
                if config_checks {
                    moat_lint::image::wants(m)
                } else {
                    moat_image::Select::Skip
                }
            };
            let (inv, view) =
                moat_sbom::catalog_with(&image, &also).map_err(|e| InputError(e.to_string()))?;
            if config_checks {
                findings.extend(moat_lint::image::check_image(
                    &a.target,
                    image.config(),
                    &view,
                ));
            }
            inv
        }
    };
    let db_dir = a.db.clone().unwrap_or_else(moat_vulndb::store::default_dir);
    let mut warnings = inv.warnings.clone();
    let mut digest = None;
    let mut missing_db: Option<String> = None;
    let vuln = a.scanners.contains(&Scanner::Vuln);
    match Snapshot::open(&db_dir) {
        _ if !vuln => {}
        Ok(snap) => {
            let result = moat_vulndb::scan(&snap, &inv)
                .with_context(|| format!("reading {}", snap.path().display()))?;
            digest = Some(snap.meta().digest.clone());
            findings.extend(result.findings);
            if !result.unmatchable.is_empty() {
                warnings.push(format!(
                    "{} package(s) have no advisory ecosystem and were not checked for vulnerabilities (see `moat explain`): {}",
                    result.unmatchable.len(),
                    result.unmatchable.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ));
            }
        }
        Err(e @ DbError::Missing(_)) => {
            missing_db = Some(format!("vulnerabilities not checked: {e}"));
        }
        Err(e) => return Err(InputError(e.to_string()).into()),
    }
    if !a.severity.is_empty() {
        findings.retain(|f| a.severity.contains(&f.severity));
    }
    if a.ignore_unfixed {
        findings.retain(|f| {
            f.vulnerability
                .as_ref()
                .is_none_or(|v| !v.fixed_versions.is_empty())
        });
    }
    if let Some(ig) = &ignore {
        let w = ig.apply(&mut findings, &moat_vulndb::ignore::today());
        for x in &w {
            eprintln!("moat: warning: {x}");
        }
        warnings.extend(w);
    }
    for v in &vex {
        v.apply(&mut findings);
    }
    let verdict = a.gate.gate().judge(&findings);
    let mut report = Report::new(inv.target.clone(), findings);
    if let Some(d) = digest {
        report.metadata.insert("db_digest".into(), d);
    }
    report
        .metadata
        .insert("packages".into(), inv.packages.len().to_string());
    if let Some(os) = &inv.os {
        report.metadata.insert(
            "os".into(),
            format!("{} {}", os.id, os.version_id.clone().unwrap_or_default())
                .trim()
                .to_string(),
        );
    }
    let format = a.format.unwrap_or(if a.out.is_terminal() {
        ScanFormat::Table
    } else {
        ScanFormat::Json
    });
    if let Some(m) = missing_db {
        // One line: in the table when the table goes to a terminal, else on stderr.
        if !(format == ScanFormat::Table && a.out.is_terminal()) {
            eprintln!("moat: {m}");
        }
        report
            .metadata
            .insert("vulnerabilities".into(), "not checked".into());
        warnings.push(m);
    }
    report.warnings = warnings;
    let text = match format {
        ScanFormat::Table => moat_report::to_vuln_table(&report),
        ScanFormat::Json => report.to_json(),
        ScanFormat::Sarif => moat_report::to_sarif(&report),
        ScanFormat::Cyclonedx => moat_sbom::format::cyclonedx::to_string(
            &inv,
            &report.findings,
            &moat_sbom::format::WriteOptions::default(),
        ),
    };
    a.out.write(&text)?;
    Ok(verdict)
}
