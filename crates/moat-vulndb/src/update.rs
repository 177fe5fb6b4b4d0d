//! `moat db update`: downloads OSV.dev's bulk exports (`<mirror>/<Ecosystem>/all.zip`) and the
//! severity sources ([`crate::feeds`]: NVD's JSON 2.0 feeds, the CVE list's CVE JSON 5 records),
//! checks each is complete (length, gzip or zip integrity, at least one record), and only then
//! writes a new snapshot. Any failure leaves the current snapshot as it was.

use std::io::{Cursor, Read};
use std::path::Path;
use std::time::Duration;

use crate::feeds::{self, FeedError};
use crate::import::{Batch, ImportError, read_zip};
use crate::store::{self, DbError, Meta, Snapshot, SourceInfo};

/// OSV.dev's public bucket of bulk exports.
pub const DEFAULT_MIRROR: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// The ecosystems `moat db update` fetches when none are named: what moat's catalogers find.
pub const DEFAULT_ECOSYSTEMS: &[&str] = &[
    "Alpine",
    "Debian",
    "Ubuntu",
    "Go",
    "PyPI",
    "npm",
    "crates.io",
    "Maven",
    "RubyGems",
    "NuGet",
    "Packagist",
];
/// The largest export accepted (the biggest OSV.dev export is a few hundred MB).
pub const MAX_DOWNLOAD: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "cannot reach {url}: {msg} (offline? use `moat db import PATH` with an OSV export, or --mirror URL)"
    )]
    Unreachable { url: String, msg: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: download incomplete: {msg}")]
    Truncated { url: String, msg: String },
    /// A severity feed or archive that downloaded but does not read whole.
    #[error("{url}: {source}")]
    Feed {
        url: String,
        #[source]
        source: FeedError,
    },
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Progress of one download: (bytes so far, total if known).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

/// Downloads `url` into memory, refusing short or oversized bodies.
pub fn download(url: &str, progress: Progress<'_>) -> Result<Vec<u8>, UpdateError> {
    let unreachable = |e: ureq::Error| UpdateError::Unreachable {
        url: url.to_string(),
        msg: e.to_string(),
    };
    let resp = agent().get(url).call().map_err(unreachable)?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(UpdateError::Status {
            url: url.to_string(),
            status,
        });
    }
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if total.is_some_and(|t| t > MAX_DOWNLOAD) {
        return Err(UpdateError::Truncated {
            url: url.to_string(),
            msg: format!("larger than {MAX_DOWNLOAD} bytes"),
        });
    }
    let mut body = resp.into_body();
    let mut reader = body.as_reader().take(MAX_DOWNLOAD + 1);
    let mut buf = Vec::with_capacity(total.unwrap_or(1 << 20).min(256 << 20) as usize);
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(UpdateError::Truncated {
                    url: url.to_string(),
                    msg: e.to_string(),
                });
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        progress(url, buf.len() as u64, total);
    }
    if buf.len() as u64 > MAX_DOWNLOAD {
        return Err(UpdateError::Truncated {
            url: url.to_string(),
            msg: format!("larger than {MAX_DOWNLOAD} bytes"),
        });
    }
    if let Some(t) = total
        && t != buf.len() as u64
    {
        return Err(UpdateError::Truncated {
            url: url.to_string(),
            msg: format!("got {} of {t} bytes", buf.len()),
        });
    }
    Ok(buf)
}

/// The URL of an ecosystem's export (`crates.io` → `.../crates.io/all.zip`, spaces encoded).
pub fn export_url(mirror: &str, ecosystem: &str) -> String {
    let enc: String = ecosystem
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{}/{enc}/all.zip", mirror.trim_end_matches('/'))
}

/// NVD's JSON 2.0 feeds to fetch: `<mirror>/nvdcve-2.0-<feed>.json.gz` for each feed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvdFeeds {
    pub mirror: String,
    /// Years and `modified`, in the order read (a later feed's rating of a CVE wins).
    pub feeds: Vec<String>,
}

/// How one severity download is read and checked.
type ReadFeed = fn(&[u8]) -> Result<feeds::RatingBatch, FeedError>;

/// Everything one `moat db update` fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Base URL of the OSV exports.
    pub mirror: String,
    pub ecosystems: Vec<String>,
    /// `None`: NVD is not fetched.
    pub nvd: Option<NvdFeeds>,
    /// The URL of a zip of CVE JSON 5 records; `None`: the CVE list is not fetched.
    pub cve_list: Option<String>,
}

impl Plan {
    /// OSV exports of `ecosystems` from `mirror` and the default severity sources.
    pub fn with_defaults(mirror: &str, ecosystems: Vec<String>) -> Plan {
        let year = store::now_rfc3339()
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(feeds::FIRST_NVD_YEAR);
        Plan {
            mirror: mirror.to_string(),
            ecosystems,
            nvd: Some(NvdFeeds {
                mirror: feeds::DEFAULT_NVD_MIRROR.to_string(),
                feeds: feeds::default_nvd_feeds(year),
            }),
            cve_list: Some(feeds::DEFAULT_CVE_LIST.to_string()),
        }
    }

    /// How many downloads the plan makes.
    pub fn downloads(&self) -> usize {
        self.ecosystems.len()
            + self.nvd.as_ref().map_or(0, |n| n.feeds.len())
            + usize::from(self.cve_list.is_some())
    }
}

/// What an update fetched, beside the snapshot's own description.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Records skipped, each naming its source.
    pub warnings: Vec<String>,
    /// CVE ratings read from NVD feeds and the CVE list.
    pub ratings: usize,
    /// NVD and CVE JSON 5 records read.
    pub cve_records: usize,
}

/// Downloads everything `plan` names and writes a new snapshot: the current records and ratings,
/// replaced by id (by CVE and rater) with the downloaded ones. Nothing is written unless every
/// download was complete.
pub fn update(
    db: &Path,
    plan: &Plan,
    progress: Progress<'_>,
) -> Result<(Meta, Fetched), UpdateError> {
    let mut fresh = Vec::new();
    let mut fresh_ratings = Vec::new();
    let mut sources = Vec::new();
    let mut fetched = Fetched::default();
    for e in &plan.ecosystems {
        let url = export_url(&plan.mirror, e);
        let bytes = download(&url, progress)?;
        let mut batch = Batch::default();
        read_zip(Cursor::new(bytes), Path::new(&url), &mut batch)?;
        if batch.records.is_empty() {
            return Err(ImportError::Empty(url.clone().into()).into());
        }
        sources.push(SourceInfo {
            source: url,
            records: batch.records.len(),
            imported_at: store::now_rfc3339(),
        });
        fetched.warnings.extend(batch.warnings);
        fresh.extend(batch.records);
        fresh_ratings.extend(batch.ratings);
    }
    let mut severity_urls: Vec<(String, ReadFeed)> = Vec::new();
    if let Some(nvd) = &plan.nvd {
        for f in &nvd.feeds {
            severity_urls.push((feeds::nvd_feed_url(&nvd.mirror, f), feeds::read_nvd_feed));
        }
    }
    if let Some(url) = &plan.cve_list {
        severity_urls.push((url.clone(), feeds::read_cve_list));
    }
    for (url, read) in severity_urls {
        let bytes = download(&url, progress)?;
        let batch = read(&bytes).map_err(|source| UpdateError::Feed {
            url: url.clone(),
            source,
        })?;
        sources.push(SourceInfo {
            source: url.clone(),
            records: batch.records,
            imported_at: store::now_rfc3339(),
        });
        fetched
            .warnings
            .extend(batch.warnings.into_iter().map(|w| format!("{url}: {w}")));
        fetched.cve_records += batch.records;
        fetched.ratings += batch.ratings.len();
        fresh_ratings.extend(batch.ratings);
    }
    let (mut records, mut ratings, mut old_sources) = match Snapshot::open(db) {
        Ok(s) => (s.all()?, s.all_ratings()?, s.meta().sources.clone()),
        Err(DbError::Missing(_)) => (Vec::new(), Vec::new(), Vec::new()),
        Err(e) => return Err(e.into()),
    };
    old_sources.retain(|o| !sources.iter().any(|n| n.source == o.source));
    old_sources.extend(sources);
    records.extend(fresh);
    ratings.extend(fresh_ratings);
    Ok((
        store::write_with(db, records, ratings, old_sources)?,
        fetched,
    ))
}

/// Imports local paths (trees, records, zips) into the snapshot, merging by id.
pub fn import_paths(
    db: &Path,
    paths: &[&Path],
    replace: bool,
) -> Result<(Meta, Vec<String>), UpdateError> {
    let mut fresh = Vec::new();
    let mut fresh_ratings = Vec::new();
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    for p in paths {
        let batch = crate::import::read_path(p)?;
        let shown = std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string();
        sources.push(SourceInfo {
            source: shown,
            records: batch.records.len() + batch.cve_documents,
            imported_at: store::now_rfc3339(),
        });
        warnings.extend(batch.warnings);
        fresh.extend(batch.records);
        fresh_ratings.extend(batch.ratings);
    }
    let (mut records, mut ratings, mut old_sources) = if replace {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        match Snapshot::open(db) {
            Ok(s) => (s.all()?, s.all_ratings()?, s.meta().sources.clone()),
            Err(DbError::Missing(_)) => (Vec::new(), Vec::new(), Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    old_sources.retain(|o| !sources.iter().any(|n| n.source == o.source));
    old_sources.extend(sources);
    records.extend(fresh);
    ratings.extend(fresh_ratings);
    Ok((
        store::write_with(db, records, ratings, old_sources)?,
        warnings,
    ))
}
