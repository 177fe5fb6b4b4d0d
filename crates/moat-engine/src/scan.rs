//! The scan pipeline: target → inventory (+ image-configuration checks in the same pass) →
//! vulnerability matching → severity filter → `--ignore-unfixed` → `.moatignore` → OpenVEX → gate →
//! report with the metadata that pins the verdict.

use std::path::{Path, PathBuf};

use moat_image::{OpenOptions, Target};
use moat_model::{Finding, Inventory, Severity};
use moat_report::{Gate, Report, Verdict};
use moat_vulndb::ignore::IgnoreFile;
use moat_vulndb::vex::VexDocument;
use moat_vulndb::{DbError, Snapshot};

/// What to judge. Both by default, as a user of an image scanner expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanners {
    /// Known vulnerabilities of OS and language packages.
    pub vuln: bool,
    /// Image-configuration checks (the same as `moat lint IMAGE`).
    pub config: bool,
}

impl Default for Scanners {
    fn default() -> Self {
        Scanners {
            vuln: true,
            config: true,
        }
    }
}

/// Where accepted risks come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IgnoreChoice {
    /// `./.moatignore` of the working directory when it exists (the CLI's default).
    #[default]
    WorkingDirectory,
    /// This file; it must exist.
    File(PathBuf),
    /// No ignore file (an API call that did not send one).
    None,
}

/// Which vulnerability database a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbChoice {
    pub path: PathBuf,
    /// The user named this path (`--db`): a missing database there is their mistake, not a first run.
    pub explicit: bool,
}

impl DbChoice {
    /// `--db PATH` when given, else the default location (`$MOAT_DB`, else the user's cache).
    pub fn from_flag(path: Option<PathBuf>) -> DbChoice {
        match path {
            Some(path) => DbChoice {
                path,
                explicit: true,
            },
            None => DbChoice {
                path: moat_vulndb::store::default_dir(),
                explicit: false,
            },
        }
    }
}

/// One scan, as flags or an API call describe it.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// A target as users write it: `oci:DIR[:TAG]`, `docker-archive:FILE`, `dir:PATH`,
    /// `registry:HOST/REPO[:TAG|@DIGEST]`, `sbom:FILE`, or a bare path.
    pub target: String,
    /// The platform to pick from a multi-platform index (`linux/amd64`).
    pub platform: String,
    /// Plain HTTP to the registry the target names.
    pub insecure_registry: bool,
    /// Draw a progress bar on standard error while reading the image.
    pub progress: bool,
    pub scanners: Scanners,
    /// Only report these severities (empty: all).
    pub severities: Vec<Severity>,
    /// Leave out vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
    pub ignore: IgnoreChoice,
    /// OpenVEX documents.
    pub vex: Vec<PathBuf>,
    pub db: DbChoice,
    /// The gate: findings at or above this severity make the verdict [`Verdict::Fail`].
    pub fail_on: Option<Severity>,
    /// UNKNOWN findings (no severity source rated them) trip the gate at any `fail_on` level. Off by
    /// default (UNKNOWN sorts lowest, as in Trivy); the report then warns how many were not gated.
    pub fail_on_unknown: bool,
    /// A database last written more than this many days ago is reported as stale (0: never).
    pub db_max_age_days: u32,
    /// The day ignore-file expiries are judged against (`YYYY-MM-DD`); `None`: today (UTC).
    pub today: Option<String>,
}

impl ScanRequest {
    /// A request with the CLI's defaults for everything but the target.
    pub fn new(target: impl Into<String>) -> ScanRequest {
        ScanRequest {
            target: target.into(),
            platform: "linux/amd64".into(),
            insecure_registry: false,
            progress: false,
            scanners: Scanners::default(),
            severities: Vec::new(),
            ignore_unfixed: false,
            ignore: IgnoreChoice::default(),
            vex: Vec::new(),
            db: DbChoice::from_flag(None),
            fail_on: None,
            fail_on_unknown: false,
            db_max_age_days: DEFAULT_DB_MAX_AGE_DAYS,
            today: None,
        }
    }
}

/// Days after which a database is reported as stale when the request does not say.
pub const DEFAULT_DB_MAX_AGE_DAYS: u32 = 7;

/// The id of the finding for an OS release past its end of life.
pub const EOL_FINDING: &str = "MOAT-OS-EOL";

/// Something a scan met that did not stop it. Each is also one line of the report's `warnings`
/// (its `Display`), in the order they arose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A cataloger's problem that did not stop the inventory (an unparseable lockfile).
    Inventory(String),
    /// Packages with no advisory ecosystem, not looked up: how many, and the first few with why.
    Unmatchable { count: usize, examples: Vec<String> },
    /// A `.moatignore` entry that expired or names nothing.
    Ignore(String),
    /// The vulnerability scanner did not run: there is no database at `path`.
    DbMissing { path: PathBuf, message: String },
    /// The database holds no record for an ecosystem of the target: its packages were not checked.
    Uncovered {
        ecosystem: String,
        packages: usize,
        message: String,
    },
    /// The database was last written `days` ago, more than the allowed age.
    DbStale {
        days: i64,
        written: String,
        max_days: u32,
    },
    /// Findings no source rated (UNKNOWN) that the `--fail-on` level does not gate.
    UnknownNotGated { count: usize, fail_on: Severity },
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diagnostic::Inventory(s) | Diagnostic::Ignore(s) => f.write_str(s),
            Diagnostic::Unmatchable { count, examples } => write!(
                f,
                "{count} package(s) have no advisory ecosystem and were not checked for vulnerabilities (see `moat explain`): {}",
                examples.join("; ")
            ),
            Diagnostic::DbMissing { message, .. } => {
                write!(f, "vulnerabilities not checked: {message}")
            }
            Diagnostic::Uncovered { message, .. } => f.write_str(message),
            Diagnostic::DbStale {
                days,
                written,
                max_days,
            } => write!(
                f,
                "the vulnerability database was written {days} days ago ({written}), more than {max_days}: advisories published since are missing; run `moat db update`"
            ),
            Diagnostic::UnknownNotGated { count, fail_on } => write!(
                f,
                "{count} vulnerability finding(s) have no severity from any source (UNKNOWN) and do not trip --fail-on {}; --fail-on-unknown makes them fail the gate",
                fail_on.as_str().to_lowercase()
            ),
        }
    }
}

/// Which input an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputSource {
    /// The target string itself (bad syntax).
    Target,
    /// Reading the target (image, tree, registry, SBOM document).
    Image,
    IgnoreFile(PathBuf),
    Vex(PathBuf),
    Database(PathBuf),
}

/// Why a scan could not give a verdict. Every variant is exit 2 on the command line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The user's input is wrong or unreadable; the message names the file, layer, line or field.
    #[error("{message}")]
    Input {
        source_of: InputSource,
        message: String,
    },
    /// `--fail-on` was given but the vulnerability scanner cannot run: failing closed, since a gate
    /// that cannot judge must not pass. `--scanners config` is the explicit config-only gate.
    #[error(
        "--fail-on given but vulnerabilities cannot be checked: {reason}; get the database with `moat db update` (or `moat db import PATH`), or gate on the image-configuration checks only with `--scanners config`"
    )]
    VulnScannerUnavailable { db: PathBuf, reason: String },
    /// The database broke while being read.
    #[error("reading {}: {error}", path.display())]
    Database { path: PathBuf, error: DbError },
}

impl ScanError {
    fn input(source_of: InputSource, e: impl std::fmt::Display) -> ScanError {
        ScanError::Input {
            source_of,
            message: e.to_string(),
        }
    }
}

/// What a scan produced.
#[derive(Debug)]
pub struct ScanOutcome {
    /// The report, findings sorted, warnings and metadata filled in.
    pub report: Report,
    /// The inventory the findings are about (CycloneDX output embeds it).
    pub inventory: Inventory,
    /// The gate's judgement of the report's findings.
    pub verdict: Verdict,
    /// What the scan met, typed; `report.warnings` holds the same in words.
    pub diagnostics: Vec<Diagnostic>,
    /// The image configuration (its `User`, labels, history), for image targets; `moat server`'s
    /// gate judges the configured user from it.
    pub image_config: Option<moat_image::ImageConfig>,
}

impl ScanOutcome {
    /// Whether the vulnerability scanner ran against a database.
    pub fn vulnerabilities_checked(&self) -> bool {
        self.report.metadata.contains_key("db_digest")
    }
}

/// Runs one scan.
pub fn scan(req: &ScanRequest) -> Result<ScanOutcome, ScanError> {
    scan_with_cache(req, None)
}

/// The scope layer-cache entries are recorded under: what this engine selects from a layer (the
/// catalogers' files, plus the image-configuration checks' when `config` runs) in this moat version.
pub fn layer_cache_scope(scanners: &Scanners) -> String {
    format!(
        "moat-engine/{}/catalog{}",
        moat_model::MOAT_VERSION,
        if scanners.config { "+config" } else { "" }
    )
}

/// Runs one scan, replaying layers already in `cache` instead of reading them (`moat server`'s layer
/// cache; see `moat_image::cache`). The cache's scope must be [`layer_cache_scope`] of the request.
pub fn scan_with_cache(
    req: &ScanRequest,
    cache: Option<moat_image::LayerCacheHandle>,
) -> Result<ScanOutcome, ScanError> {
    let target =
        Target::parse(&req.target).map_err(|e| ScanError::input(InputSource::Target, e))?;
    let opts = OpenOptions {
        platform: req.platform.clone(),
        insecure_registry: req.insecure_registry,
        progress: req.progress,
        layer_cache: cache,
        ..OpenOptions::default()
    };
    // Exceptions are read first: a broken ignore or VEX file is a usage error before any work.
    let ignore = load_ignore(&req.ignore)?;
    let vex = req
        .vex
        .iter()
        .map(|p| VexDocument::load(p).map_err(|e| ScanError::input(InputSource::Vex(p.clone()), e)))
        .collect::<Result<Vec<_>, _>>()?;

    // One pass over the image: the catalogers' files and the configuration checks' files together.
    let mut findings: Vec<Finding> = Vec::new();
    let (inv, image_config) = read_target(
        &req.target,
        &target,
        &opts,
        req.scanners.config,
        &mut findings,
    )?;
    let mut diagnostics: Vec<Diagnostic> = inv
        .warnings
        .iter()
        .cloned()
        .map(Diagnostic::Inventory)
        .collect();
    let mut digest = None;
    let mut missing = None;
    let mut coverage = Vec::new();
    let today = req
        .today
        .clone()
        .unwrap_or_else(moat_vulndb::coverage::today);
    if req.scanners.vuln {
        findings.extend(eol_finding(&inv, &today));
        match Snapshot::open_shared(&req.db.path) {
            Ok(snap) => {
                let result =
                    moat_vulndb::scan(&snap, &inv).map_err(|error| ScanError::Database {
                        path: snap.path().to_path_buf(),
                        error,
                    })?;
                let meta = snap.meta();
                digest = Some(meta.digest.clone());
                findings.extend(result.findings);
                for c in moat_vulndb::coverage::coverage(meta, &result.ecosystems) {
                    if !c.covered {
                        diagnostics.push(Diagnostic::Uncovered {
                            ecosystem: c.ecosystem.clone(),
                            packages: c.packages,
                            message: moat_vulndb::coverage::uncovered_warning(&c, meta),
                        });
                    }
                    coverage.push(moat_report::Coverage {
                        ecosystem: c.ecosystem,
                        packages: c.packages,
                        records: c.records,
                        newest: c.newest,
                        covered: c.covered,
                    });
                }
                if req.db_max_age_days > 0
                    && let Some(days) =
                        moat_vulndb::coverage::days_between(&meta.created_at, &today)
                    && days > i64::from(req.db_max_age_days)
                {
                    diagnostics.push(Diagnostic::DbStale {
                        days,
                        written: meta.created_at.clone(),
                        max_days: req.db_max_age_days,
                    });
                }
                if !result.unmatchable.is_empty() {
                    diagnostics.push(Diagnostic::Unmatchable {
                        count: result.unmatchable.len(),
                        examples: result.unmatchable.iter().take(3).cloned().collect(),
                    });
                }
            }
            Err(DbError::Missing(_)) if req.fail_on.is_some() => {
                return Err(ScanError::VulnScannerUnavailable {
                    db: req.db.path.clone(),
                    reason: format!("no vulnerability database at {}", req.db.path.display()),
                });
            }
            Err(e @ DbError::Missing(_)) => {
                missing = Some(Diagnostic::DbMissing {
                    path: req.db.path.clone(),
                    message: e.to_string(),
                })
            }
            Err(e) => {
                return Err(ScanError::input(
                    InputSource::Database(req.db.path.clone()),
                    e,
                ));
            }
        }
    }
    apply_filters(req, ignore.as_ref(), &vex, &mut findings, &mut diagnostics);
    diagnostics.extend(missing);
    if let Some(level) = req.fail_on
        && !req.fail_on_unknown
        && level > Severity::Unknown
    {
        let count = findings
            .iter()
            .filter(|f| {
                f.kind == moat_model::FindingKind::Vulnerability
                    && f.suppressed.is_none()
                    && f.severity == Severity::Unknown
            })
            .count();
        if count > 0 {
            diagnostics.push(Diagnostic::UnknownNotGated {
                count,
                fail_on: level,
            });
        }
    }
    let verdict = Gate::new(req.fail_on)
        .with_unknown(req.fail_on_unknown)
        .judge(&findings);
    let mut report = Report::new(inv.target.clone(), findings);
    report.coverage = coverage;
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
    if diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::DbMissing { .. }))
    {
        report
            .metadata
            .insert("vulnerabilities".into(), "not checked".into());
    }
    report.warnings = diagnostics.iter().map(ToString::to_string).collect();
    Ok(ScanOutcome {
        report,
        inventory: inv,
        verdict,
        diagnostics,
        image_config,
    })
}

/// The finding for an OS release past its end of life (the embedded table of
/// `moat_vulndb::coverage::EOL`, with its source): no more security updates means no advisory will
/// ever list what is found in it from then on.
fn eol_finding(inv: &Inventory, today: &str) -> Option<Finding> {
    let os = inv.os.as_ref()?;
    let e = moat_vulndb::coverage::eol_of(os)?;
    let past = moat_vulndb::coverage::days_between(e.eol, today)?;
    if past <= 0 {
        return None;
    }
    let mut f = Finding::new(
        EOL_FINDING,
        moat_model::FindingKind::ImageConfig,
        Severity::High,
        format!(
            "{} {} ({}) is past its end of life",
            os.id, e.release, e.name
        ),
    );
    f.message = format!(
        "{} {} gets no security updates since {} ({past} days ago): vulnerabilities found in it from then on are never fixed, and advisory data for it stops",
        os.id, e.release, e.eol
    );
    f.why = Some(format!(
        "end of life {} for {} {} per {}",
        e.eol, os.id, e.release, e.source
    ));
    f.fix = Some(format!("rebuild on a supported {} release", os.id));
    f.location.object = Some(inv.target.name.clone());
    f.location.file = Some("etc/os-release".into());
    f.references = e.source.split(" and ").map(String::from).collect();
    Some(f)
}

fn load_ignore(choice: &IgnoreChoice) -> Result<Option<IgnoreFile>, ScanError> {
    let load = |p: &Path| {
        IgnoreFile::load(p)
            .map_err(|e| ScanError::input(InputSource::IgnoreFile(p.to_path_buf()), e))
    };
    match choice {
        IgnoreChoice::File(p) => load(p).map(Some),
        IgnoreChoice::WorkingDirectory => {
            let p = Path::new(".moatignore");
            if p.is_file() {
                load(p).map(Some)
            } else {
                Ok(None)
            }
        }
        IgnoreChoice::None => Ok(None),
    }
}

/// The inventory of the target, with the image-configuration findings of the same pass.
fn read_target(
    name: &str,
    target: &Target,
    opts: &OpenOptions,
    config_checks: bool,
    findings: &mut Vec<Finding>,
) -> Result<(Inventory, Option<moat_image::ImageConfig>), ScanError> {
    let bad = |e: &dyn std::fmt::Display| ScanError::input(InputSource::Image, e);
    if let Target::Sbom(_) = target {
        return moat_sbom::sbom_of(target, opts)
            .map(|inv| (inv, None))
            .map_err(|e| bad(&e));
    }
    let image = moat_image::Image::open(target, opts).map_err(|e| bad(&e))?;
    let also = |m: &moat_image::FileMeta| {
        if config_checks {
            moat_lint::image::wants(m)
        } else {
            moat_image::Select::Skip
        }
    };
    let (inv, view) = moat_sbom::catalog_with(&image, &also).map_err(|e| bad(&e))?;
    if config_checks {
        findings.extend(moat_lint::image::check_image(name, image.config(), &view));
    }
    Ok((inv, image.config().cloned()))
}

/// `--severity`, `--ignore-unfixed`, `.moatignore`, OpenVEX, in that order (Trivy's `pkg/result`
/// filter order: what is not shown is never suppressed).
fn apply_filters(
    req: &ScanRequest,
    ignore: Option<&IgnoreFile>,
    vex: &[VexDocument],
    findings: &mut Vec<Finding>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if !req.severities.is_empty() {
        findings.retain(|f| req.severities.contains(&f.severity));
    }
    if req.ignore_unfixed {
        findings.retain(|f| {
            f.vulnerability
                .as_ref()
                .is_none_or(|v| !v.fixed_versions.is_empty())
        });
    }
    if let Some(ig) = ignore {
        let today = req.today.clone().unwrap_or_else(moat_vulndb::ignore::today);
        diagnostics.extend(
            ig.apply(findings, &today)
                .into_iter()
                .map(Diagnostic::Ignore),
        );
    }
    for v in vex {
        v.apply(findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_target_is_an_input_error_about_the_target() {
        let e = scan(&ScanRequest::new("nosuchkind:x")).expect_err("bad target");
        assert!(
            matches!(
                e,
                ScanError::Input {
                    source_of: InputSource::Target | InputSource::Image,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn fail_on_without_a_database_fails_closed() {
        let d = tempfile::tempdir().expect("tmp");
        let mut req = ScanRequest::new(format!("dir:{}", d.path().display()));
        req.db = DbChoice {
            path: d.path().join("no-db"),
            explicit: true,
        };
        req.ignore = IgnoreChoice::None;
        req.fail_on = Some(Severity::High);
        let e = scan(&req).expect_err("must not pass without a database");
        assert!(
            matches!(e, ScanError::VulnScannerUnavailable { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("moat db update"), "{e}");
        // Config checks only: the explicit way to gate without vulnerabilities.
        req.scanners.vuln = false;
        assert!(scan(&req).is_ok());
    }

    /// A Debian rootfs (`VERSION_ID`) with one installed package, and a database holding one
    /// Debian 11 advisory for it.
    fn debian_tree(version: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().join("rootfs");
        std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(
            root.join("etc/os-release"),
            format!("ID=debian\nVERSION_ID=\"{version}\"\nPRETTY_NAME=\"Debian {version}\"\n"),
        )
        .expect("os-release");
        std::fs::write(
            root.join("var/lib/dpkg/status"),
            "Package: gzip\nStatus: install ok installed\nVersion: 1.10-4\nArchitecture: amd64\n\n",
        )
        .expect("status");
        let osv = d.path().join("osv");
        std::fs::create_dir_all(&osv).expect("mkdir");
        std::fs::write(
            osv.join("DSA-5122-1.json"),
            r#"{"id":"DSA-5122-1","modified":"2022-05-01T00:00:00Z","upstream":["CVE-2022-1271"],
               "affected":[{"package":{"ecosystem":"Debian:11","name":"gzip"},
               "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.10-4+deb11u1"}]}]}]}"#,
        )
        .expect("record");
        let db = d.path().join("db");
        moat_vulndb::update::import_paths(&db, &[osv.as_path()], true).expect("import");
        (d, root, db)
    }

    fn request(root: &Path, db: &Path) -> ScanRequest {
        let mut req = ScanRequest::new(format!("dir:{}", root.display()));
        req.db = DbChoice {
            path: db.to_path_buf(),
            explicit: true,
        };
        req.ignore = IgnoreChoice::None;
        req.scanners.config = false;
        req
    }

    #[test]
    fn an_ecosystem_the_database_lacks_is_a_warning_not_a_clean_report() {
        let (_d, root, db) = debian_tree("12");
        let out = scan(&request(&root, &db)).expect("scan");
        assert!(out.report.findings.is_empty(), "{:?}", out.report.findings);
        let c = &out.report.coverage;
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].ecosystem.as_str(), c[0].records, c[0].covered),
            ("Debian:12", 0, false)
        );
        assert!(
            out.report
                .warnings
                .iter()
                .any(|w| w.contains("no Debian:12 records") && w.contains("Debian:11")),
            "{:?}",
            out.report.warnings
        );
        // Debian 11: covered, with the record count and the newest record's date.
        let (_d, root, db) = debian_tree("11");
        let mut req = request(&root, &db);
        req.today = Some("2026-01-01".into());
        let out = scan(&req).expect("scan");
        let c = &out.report.coverage[0];
        assert_eq!(
            (c.ecosystem.as_str(), c.records, c.covered),
            ("Debian:11", 1, true)
        );
        assert_eq!(c.newest.as_deref(), Some("2022-05-01T00:00:00Z"));
        assert!(!out.report.warnings.iter().any(|w| w.contains("no Debian")));
    }

    #[test]
    fn an_os_past_its_end_of_life_is_a_finding_and_an_old_database_warns() {
        let (_d, root, db) = debian_tree("11");
        let mut req = request(&root, &db);
        // Before bullseye's end of LTS (2026-08-31): no finding.
        req.today = Some("2026-08-31".into());
        let out = scan(&req).expect("scan");
        assert!(!out.report.findings.iter().any(|f| f.id == EOL_FINDING));
        // After it: a HIGH finding naming the date and its source; and the database, written
        // today, is now more than 7 days old.
        let later = moat_vulndb::coverage::day_number("2026-09-01")
            .expect("date")
            .max(
                moat_vulndb::coverage::day_number(&moat_vulndb::coverage::today()).expect("today")
                    + 8,
            );
        let (y, m, d) = moat_vulndb::store::civil_from_days(later);
        req.today = Some(format!("{y:04}-{m:02}-{d:02}"));
        let out = scan(&req).expect("scan");
        let eol = out
            .report
            .findings
            .iter()
            .find(|f| f.id == EOL_FINDING)
            .expect("EOL finding");
        assert_eq!(eol.severity, Severity::High);
        assert!(eol.message.contains("2026-08-31"), "{}", eol.message);
        assert!(
            eol.references
                .iter()
                .any(|r| r.contains("wiki.debian.org/LTS"))
        );
        assert!(
            out.diagnostics
                .iter()
                .any(|d| matches!(d, Diagnostic::DbStale { max_days: 7, .. })),
            "{:?}",
            out.diagnostics
        );
        req.db_max_age_days = 0;
        let out = scan(&req).expect("scan");
        assert!(
            !out.diagnostics
                .iter()
                .any(|d| matches!(d, Diagnostic::DbStale { .. }))
        );
    }

    #[test]
    fn unknown_findings_pass_a_high_gate_with_a_warning_unless_fail_on_unknown() {
        let (_d, root, db) = debian_tree("11");
        let mut req = request(&root, &db);
        req.today = Some("2026-01-01".into());
        req.fail_on = Some(Severity::High);
        let out = scan(&req).expect("scan");
        // CVE-2022-1271 has no rating in this database: UNKNOWN, and it says so.
        let f = &out.report.findings[0];
        assert_eq!(
            (f.id.as_str(), f.severity),
            ("CVE-2022-1271", Severity::Unknown)
        );
        assert_eq!(
            f.vulnerability
                .as_ref()
                .and_then(|v| v.rating.as_ref())
                .map(|r| r.source.as_str()),
            Some("none")
        );
        assert_eq!(out.verdict, Verdict::Pass);
        assert!(
            out.diagnostics
                .iter()
                .any(|d| matches!(d, Diagnostic::UnknownNotGated { count: 1, .. }))
        );
        req.fail_on_unknown = true;
        assert_eq!(scan(&req).expect("scan").verdict, Verdict::Fail);
    }

    #[test]
    fn a_missing_database_is_a_typed_diagnostic_and_the_report_says_not_checked() {
        let d = tempfile::tempdir().expect("tmp");
        let mut req = ScanRequest::new(format!("dir:{}", d.path().display()));
        req.db = DbChoice {
            path: d.path().join("no-db"),
            explicit: true,
        };
        req.ignore = IgnoreChoice::None;
        let out = scan(&req).expect("scan");
        assert!(
            out.diagnostics
                .iter()
                .any(|x| matches!(x, Diagnostic::DbMissing { .. })),
            "{:?}",
            out.diagnostics
        );
        assert!(!out.vulnerabilities_checked());
        assert_eq!(
            out.report
                .metadata
                .get("vulnerabilities")
                .map(String::as_str),
            Some("not checked")
        );
        assert_eq!(out.verdict, Verdict::Pass);
    }
}
