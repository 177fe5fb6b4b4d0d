//! `moat db import|status|update`: the local vulnerability database (an immutable snapshot that many
//! scans read at once; replaced atomically, so a failed import or update leaves the old one usable).

use std::io::IsTerminal;
use std::path::PathBuf;

use moat_report::Verdict;
use moat_vulndb::feeds::{DEFAULT_CVE_LIST, DEFAULT_NVD_MIRROR};
use moat_vulndb::update::{DEFAULT_ECOSYSTEMS, DEFAULT_MIRROR, Plan};
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
    /// Download OSV.dev bulk exports (<mirror>/<Ecosystem>/all.zip), NVD's JSON 2.0 feeds and the CVE list (severities), and import them.
    Update {
        /// Ecosystems to fetch (repeatable). Default: Alpine, Debian, Ubuntu, Go, PyPI, npm, crates.io, Maven, RubyGems, NuGet, Packagist.
        #[arg(long = "ecosystem", value_name = "ECOSYSTEM")]
        ecosystems: Vec<String>,
        /// Base URL of the OSV exports.
        #[arg(long, env = "MOAT_OSV_MIRROR", default_value = DEFAULT_MIRROR)]
        mirror: String,
        /// Base URL of NVD's JSON 2.0 feeds (<URL>/nvdcve-2.0-<feed>.json.gz); `none` skips NVD.
        #[arg(long, env = "MOAT_NVD_MIRROR", default_value = DEFAULT_NVD_MIRROR, value_name = "URL")]
        nvd_mirror: String,
        /// NVD feeds to fetch (repeatable): a year or `modified`. Default: every year from 2002, then `modified`.
        #[arg(long = "nvd-feed", value_name = "FEED")]
        nvd_feeds: Vec<String>,
        /// URL of a zip of CVE JSON 5 records (the CVE list, e.g. a cvelistV5 release's *_all_CVEs_at_midnight.zip.zip); `none` skips it.
        #[arg(long, env = "MOAT_CVE_MIRROR", default_value = DEFAULT_CVE_LIST, value_name = "URL")]
        cve_mirror: String,
    },
}

/// A mirror setting: `none` (or `off`, empty) means the source is not fetched.
fn source(url: &str) -> Option<String> {
    let u = url.trim();
    (!matches!(u.to_ascii_lowercase().as_str(), "" | "none" | "off")).then(|| u.to_string())
}

/// The plan of `moat db update` (and of a first run): OSV exports of `ecos` from `mirror`, NVD
/// feeds from `nvd_mirror` (`feeds`, or the defaults), the CVE list from `cve_list`.
pub fn plan(
    mirror: &str,
    ecos: Vec<String>,
    nvd_mirror: &str,
    feeds: Vec<String>,
    cve_list: &str,
) -> Plan {
    let mut plan = Plan::with_defaults(mirror, ecos);
    match (source(nvd_mirror), plan.nvd.as_mut()) {
        (Some(m), Some(nvd)) => {
            nvd.mirror = m;
            if !feeds.is_empty() {
                nvd.feeds = feeds;
            }
        }
        _ => plan.nvd = None,
    }
    plan.cve_list = source(cve_list);
    plan
}

/// What the progress bar calls a download: the ecosystem of an OSV export, else the file name.
fn label(url: &str) -> &str {
    let mut parts = url.rsplit('/');
    match parts.next() {
        Some("all.zip") => parts.next().unwrap_or(url),
        Some(name) if !name.is_empty() => name,
        _ => url,
    }
}

/// `moat db update`'s download (with its progress bar on a terminal): every export and feed
/// fetched and checked complete before a new snapshot replaces the old one.
pub fn update_with_progress(
    db: &std::path::Path,
    plan: &Plan,
) -> Result<
    (moat_vulndb::store::Meta, moat_vulndb::update::Fetched),
    moat_vulndb::update::UpdateError,
> {
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let total = plan.downloads();
    let mut current = String::new();
    let mut n = 0usize;
    let mut progress = |url: &str, done: u64, size: Option<u64>| {
        if let Some(b) = &bar {
            if current != url {
                current = url.to_string();
                n += 1;
                b.set_prefix(format!("[{n}/{total}]"));
                b.set_message(label(url).to_string());
            }
            b.set_length(size.unwrap_or(done));
            b.set_position(done);
        }
    };
    let result = moat_vulndb::update::update(db, plan, &mut progress);
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
    let env_or = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let mirror = env_or("MOAT_OSV_MIRROR", DEFAULT_MIRROR);
    let ecos: Vec<String> = DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect();
    let plan = plan(
        &mirror,
        ecos,
        &env_or("MOAT_NVD_MIRROR", DEFAULT_NVD_MIRROR),
        Vec::new(),
        &env_or("MOAT_CVE_MIRROR", DEFAULT_CVE_LIST),
    );
    eprintln!(
        "moat: no vulnerability database at {}: downloading it first (`moat db update`, from {mirror}{}{}; --offline skips)",
        db.display(),
        plan.nvd
            .as_ref()
            .map(|n| format!(", NVD feeds from {}", n.mirror))
            .unwrap_or_default(),
        plan.cve_list
            .as_ref()
            .map(|u| format!(", the CVE list from {u}"))
            .unwrap_or_default(),
    );
    if let Err(e) = std::fs::create_dir_all(db) {
        eprintln!(
            "moat: cannot create {}: {e}: vulnerabilities will not be checked",
            db.display()
        );
        return FirstRun::Missing;
    }
    let t = std::time::Instant::now();
    match update_with_progress(db, &plan) {
        Ok((meta, fetched)) => {
            eprintln!(
                "moat: downloaded {} records from {} ecosystem export(s) and {} CVE ratings in {:.1}s into {}, digest {}",
                meta.records,
                plan.ecosystems.len(),
                fetched.ratings,
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
        DbCommand::Update {
            ecosystems,
            mirror,
            nvd_mirror,
            nvd_feeds,
            cve_mirror,
        } => {
            let ecos: Vec<String> = if ecosystems.is_empty() {
                DEFAULT_ECOSYSTEMS.iter().map(|s| s.to_string()).collect()
            } else {
                ecosystems
            };
            let plan = plan(&mirror, ecos, &nvd_mirror, nvd_feeds, &cve_mirror);
            let t = std::time::Instant::now();
            let (meta, fetched) = update_with_progress(&db, &plan)
                .map_err(|e| InputError(format!("update failed, database unchanged: {e}")))?;
            if let Some(first) = fetched.warnings.first() {
                eprintln!(
                    "moat: warning: {} records skipped (first: {first})",
                    fetched.warnings.len(),
                );
            }
            crate::outln!(
                "updated {}: {} records from {} ecosystem export(s), {} CVE ratings from {} NVD feed(s){} in {:.1}s, digest {}",
                db.display(),
                meta.records,
                plan.ecosystems.len(),
                fetched.ratings,
                plan.nvd.as_ref().map_or(0, |n| n.feeds.len()),
                if plan.cve_list.is_some() {
                    " and the CVE list"
                } else {
                    ""
                },
                t.elapsed().as_secs_f64(),
                meta.digest
            );
        }
    }
    Ok(Verdict::Pass)
}
