//! `moat db import|status|update`: the local vulnerability database (an immutable snapshot that many
//! scans read at once; replaced atomically, so a failed import or update leaves the old one usable).

use std::io::IsTerminal;
use std::path::PathBuf;

use moat_report::Verdict;
use moat_vulndb::update::{DEFAULT_ECOSYSTEMS, DEFAULT_MIRROR};
use moat_vulndb::{DbError, Snapshot};

use crate::common::InputError;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
    /// The database directory (default: $MOAT_DB, else $XDG_CACHE_HOME/moat/db or ~/.cache/moat/db).
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(clap::Subcommand, Debug)]
pub enum DbCommand {
    /// Import OSV records: JSON trees (<Ecosystem>/<ID>.json), single records, or OSV.dev all.zip exports.
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Start from an empty database instead of merging into the current one.
        #[arg(long)]
        replace: bool,
    },
    /// Show per-ecosystem record counts, sources with import times, and the snapshot digest.
    Status {
        /// Output format. Default: text on a terminal, json otherwise.
        #[arg(long, short = 'f', value_enum)]
        format: Option<StatusFormat>,
        /// Same as `--format json`.
        #[arg(long, hide = true)]
        json: bool,
    },
    /// Download OSV.dev bulk exports (<mirror>/<Ecosystem>/all.zip) and import them.
    Update {
        /// Ecosystems to fetch (repeatable). Default: Alpine, Debian, Ubuntu, Go, PyPI, npm, crates.io, Maven, RubyGems, NuGet, Packagist.
        #[arg(long = "ecosystem", value_name = "ECOSYSTEM")]
        ecosystems: Vec<String>,
        /// Base URL of the exports.
        #[arg(long, env = "MOAT_OSV_MIRROR", default_value = DEFAULT_MIRROR)]
        mirror: String,
    },
}

/// `moat db update`'s download (with its progress bar on a terminal): every export fetched and
/// checked complete before a new snapshot replaces the old one.
pub fn update_with_progress(
    db: &std::path::Path,
    mirror: &str,
    ecos: &[String],
) -> Result<(moat_vulndb::store::Meta, Vec<String>), moat_vulndb::update::UpdateError> {
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut progress = |url: &str, done: u64, total: Option<u64>| {
        if let Some(b) = &bar {
            b.set_message(url.rsplit('/').nth(1).unwrap_or(url).to_string());
            b.set_length(total.unwrap_or(done));
            b.set_position(done);
        }
    };
    let result = moat_vulndb::update::update(db, mirror, ecos, &mut progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result
}

/// Whether `--offline` or `MOAT_OFFLINE` (any value but empty, `0`, `false`) forbids downloads.
pub fn offline(flag: bool) -> bool {
    flag || std::env::var("MOAT_OFFLINE").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// What a first run did about a missing default database.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstRun {
    /// A database exists (or another location was named): nothing to do.
    NotNeeded,
    /// Downloaded into the default location.
    Downloaded,
    /// Not downloaded; the line already said why (first, before any scan output).
    Missing,
}

/// The first run of `moat scan` on a machine: when the default database does not exist (no
/// `--db`, no `MOAT_DB`), run `moat db update`'s download into it before scanning, unless offline.
/// The mirror is `MOAT_OSV_MIRROR` or OSV.dev. A failure says so at once and the scan goes on
/// without a database (so `--fail-on` then fails closed, exit 2).
pub fn first_run(explicit: bool, db: &std::path::Path, offline: bool) -> FirstRun {
    if explicit || std::env::var_os("MOAT_DB").is_some_and(|v| !v.is_empty()) {
        return FirstRun::NotNeeded;
    }
    match Snapshot::open(db) {
        Err(DbError::Missing(_)) => {}
        _ => return FirstRun::NotNeeded,
    }
    if offline {
        eprintln!(
            "moat: no vulnerability database at {} and offline (--offline / MOAT_OFFLINE): vulnerabilities will not be checked; `moat db update` or `moat db import PATH` gets one",
            db.display()
        );
        return FirstRun::Missing;
    }
    let mirror = std::env::var("MOAT_OSV_MIRROR")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string());
    let ecos: Vec<String> = DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect();
    eprintln!(
        "moat: no vulnerability database at {}: downloading it first (`moat db update`, from {mirror}; --offline skips)",
        db.display()
    );
    if let Err(e) = std::fs::create_dir_all(db) {
        eprintln!(
            "moat: cannot create {}: {e}: vulnerabilities will not be checked",
            db.display()
        );
        return FirstRun::Missing;
    }
    let t = std::time::Instant::now();
    match update_with_progress(db, &mirror, &ecos) {
        Ok((meta, _)) => {
            eprintln!(
                "moat: downloaded {} records from {} ecosystem export(s) in {:.1}s into {}, digest {}",
                meta.records,
                ecos.len(),
                t.elapsed().as_secs_f64(),
                db.display(),
                meta.digest
            );
            FirstRun::Downloaded
        }
        Err(e) => {
            eprintln!(
                "moat: the database download failed, vulnerabilities will not be checked: {e}"
            );
            FirstRun::Missing
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let db = a.db.clone().unwrap_or_else(moat_vulndb::store::default_dir);
    match a.command {
        DbCommand::Import { paths, replace } => {
            let t = std::time::Instant::now();
            let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
            let (meta, warnings) = moat_vulndb::update::import_paths(&db, &refs, replace)
                .map_err(|e| InputError(e.to_string()))?;
            for w in warnings.iter().take(20) {
                eprintln!("moat: warning: {w}");
            }
            if warnings.len() > 20 {
                eprintln!(
                    "moat: warning: {} more records skipped",
                    warnings.len() - 20
                );
            }
            crate::outln!(
                "imported into {}: {} records, {} ecosystems, {:.1}s, digest {}",
                db.display(),
                meta.records,
                meta.ecosystems.len(),
                t.elapsed().as_secs_f64(),
                meta.digest
            );
        }
        DbCommand::Status { format, json } => {
            let json = json
                || format.unwrap_or(if std::io::stdout().is_terminal() {
                    StatusFormat::Text
                } else {
                    StatusFormat::Json
                }) == StatusFormat::Json;
            let snap = Snapshot::open(&db).map_err(|e| match e {
                DbError::Missing(_) => InputError(e.to_string()),
                other => InputError(other.to_string()),
            })?;
            let m = snap.meta();
            if json {
                let v = serde_json::json!({
                    "path": snap.path().display().to_string(),
                    "digest": m.digest,
                    "records": m.records,
                    "withdrawn": m.withdrawn,
                    "created_at": m.created_at,
                    "ecosystems": m.ecosystems,
                    "newest": m.newest,
                    "cve_ratings": m.ratings,
                    "rated_cves": m.rated_cves,
                    "sources": m.sources,
                });
                crate::outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let size = std::fs::metadata(snap.path()).map(|m| m.len()).unwrap_or(0);
                crate::outln!("database  {}", snap.path().display());
                crate::outln!("digest    {}", m.digest);
                crate::outln!("written   {}", m.created_at);
                crate::outln!(
                    "records   {} ({} withdrawn), {} package keys, {:.1} MB",
                    m.records,
                    m.withdrawn,
                    snap.key_count(),
                    size as f64 / 1e6
                );
                crate::outln!(
                    "severities {} CVE ratings (NVD, CVE JSON 5) for {} CVEs",
                    m.ratings,
                    m.rated_cves
                );
                crate::outln!("ecosystems:");
                for (e, n) in &m.ecosystems {
                    match m.newest.get(e) {
                        Some(d) => {
                            crate::outln!("  {e:<28} {n:<8} newest {}", d.get(..10).unwrap_or(d))
                        }
                        None => crate::outln!("  {e:<28} {n}"),
                    }
                }
                crate::outln!("sources:");
                for s in &m.sources {
                    crate::outln!(
                        "  {}  {} records  imported {}",
                        s.source,
                        s.records,
                        s.imported_at
                    );
                }
            }
        }
        DbCommand::Update { ecosystems, mirror } => {
            let ecos: Vec<String> = if ecosystems.is_empty() {
                DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect()
            } else {
                ecosystems
            };
            let t = std::time::Instant::now();
            let (meta, warnings) = update_with_progress(&db, &mirror, &ecos)
                .map_err(|e| InputError(format!("update failed, database unchanged: {e}")))?;
            if !warnings.is_empty() {
                eprintln!(
                    "moat: warning: {} records skipped (first: {})",
                    warnings.len(),
                    warnings[0]
                );
            }
            crate::outln!(
                "updated {}: {} records from {} ecosystem export(s) in {:.1}s, digest {}",
                db.display(),
                meta.records,
                ecos.len(),
                t.elapsed().as_secs_f64(),
                meta.digest
            );
        }
    }
    Ok(Verdict::Pass)
}
