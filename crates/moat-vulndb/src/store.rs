//! The snapshot: one immutable file that any number of processes read at once, without locks.
//!
//! Layout (little-endian):
//! ```text
//! "MOATVDB1" | u64 meta_len | meta JSON | body
//! body = records (each zstd-compressed slim OSV JSON, sorted by id)
//!      | CVE ratings (each zstd-compressed JSON of one source's rating of one CVE, from NVD or
//!        CVE JSON 5 records; sorted by CVE id)
//!      | record table (u64 offset, u32 length per record)
//!      | key index   (sorted "ecosystem\0name" → record numbers)
//!      | id index    (sorted id, alias and upstream id → record numbers)
//!      | rating table (u64 offset, u32 length per rating)   — absent in snapshots before ratings
//!      | rating index (sorted CVE id → rating numbers)
//! ```
//! The meta JSON holds the section offsets, counts, sources, import times and the digest: the
//! SHA-256 of the body, which depends on the records only, so the same data always gives the same
//! digest whatever the import time. A new snapshot is written beside the old one and renamed over
//! it, so readers see either the old or the new file, never half of one, and a failed import leaves
//! the old snapshot in place.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cve::CveRating;
use crate::ecosystem::{key, normalize_ecosystem};
use crate::osv::Record;

const MAGIC: &[u8; 8] = b"MOATVDB1";
/// The file name of the snapshot inside the database directory.
pub const SNAPSHOT_FILE: &str = "vulns.moatdb";
/// A record larger than this (compressed) is refused as hostile.
const MAX_RECORD: u32 = 16 << 20;
/// The record table and both indexes are read into memory: a snapshot claiming more than this for
/// them is refused before anything is allocated (OSV.dev's full data needs well under 256 MiB).
pub const MAX_INDEX_BYTES: u64 = 2 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "no vulnerability database at {0}: run `moat db update` (downloads OSV.dev exports) or `moat db import PATH` (OSV JSON tree or all.zip)"
    )]
    Missing(PathBuf),
    #[error("{path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One imported source, as `moat db status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The path or URL imported.
    pub source: String,
    pub records: usize,
    /// RFC 3339, UTC.
    pub imported_at: String,
}

/// The snapshot's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    /// `sha256:<hex>` of the body.
    pub digest: String,
    pub records: usize,
    pub withdrawn: usize,
    /// Records per ecosystem (a record affecting two ecosystems counts in both).
    pub ecosystems: BTreeMap<String, usize>,
    pub sources: Vec<SourceInfo>,
    pub created_at: String,
    /// The newest `modified` date of the records per ecosystem (RFC 3339 as the records give it).
    /// Empty in snapshots written before moat kept it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub newest: BTreeMap<String, String>,
    /// CVE ratings (one per CVE and rating source) from NVD and CVE JSON 5 records.
    #[serde(default)]
    pub ratings: usize,
    /// Distinct CVE ids with at least one rating.
    #[serde(default)]
    pub rated_cves: usize,
    table_off: u64,
    keys_off: u64,
    ids_off: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rtable_off: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rids_off: Option<u64>,
    body_len: u64,
}

/// An open snapshot.
pub struct Snapshot {
    path: PathBuf,
    file: File,
    body_start: u64,
    meta: Meta,
    table: Vec<(u64, u32)>,
    keys: Vec<(String, Vec<u32>)>,
    ids: Vec<(String, Vec<u32>)>,
    rtable: Vec<(u64, u32)>,
    rids: Vec<(String, Vec<u32>)>,
}

/// The database directory: `--db`, else `MOAT_DB`, else `$XDG_CACHE_HOME/moat/db` or `~/.cache/moat/db`.
pub fn default_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("MOAT_DB").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("moat").join("db")
}

/// The snapshot file for a `--db` path: a directory holds [`SNAPSHOT_FILE`]; a file is the snapshot.
pub fn snapshot_path(db: &Path) -> PathBuf {
    if db.extension().is_some_and(|e| e == "moatdb") {
        db.to_path_buf()
    } else {
        db.join(SNAPSHOT_FILE)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let s = self.b.get(self.i..self.i + 4)?;
        self.i += 4;
        Some(u32::from_le_bytes(s.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let s = self.b.get(self.i..self.i + 8)?;
        self.i += 8;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        String::from_utf8(s.to_vec()).ok()
    }
}

fn parse_index(b: &[u8], records: usize) -> Option<Vec<(String, Vec<u32>)>> {
    let mut r = Reader { b, i: 0 };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(b.len() / 8));
    for _ in 0..n {
        let k = r.str()?;
        let m = r.u32()? as usize;
        if m > records {
            return None;
        }
        // Capacity from what the bytes can hold, not from what the count claims.
        let mut v = Vec::with_capacity(m.min(b.len().saturating_sub(r.i) / 4));
        for _ in 0..m {
            let x = r.u32()?;
            if x as usize >= records {
                return None;
            }
            v.push(x);
        }
        out.push((k, v));
    }
    Some(out)
}

fn write_index(out: &mut Vec<u8>, idx: &BTreeMap<String, Vec<u32>>) {
    out.extend_from_slice(&(idx.len() as u32).to_le_bytes());
    for (k, v) in idx {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Which file a database's snapshot is, as far as a reader can tell without reading it: its path, length
/// and modification time. An import renames a new file over the old one, which changes it.
pub type SnapshotVersion = (PathBuf, u64, Option<std::time::SystemTime>);

/// The [`SnapshotVersion`] of the snapshot at `db`; None when there is none.
pub fn snapshot_version(db: &Path) -> Option<SnapshotVersion> {
    let p = snapshot_path(db);
    std::fs::metadata(&p)
        .ok()
        .map(|m| (p, m.len(), m.modified().ok()))
}

impl Snapshot {
    /// The snapshot at `db`, opened once per process while its file is the same (path, length, mtime):
    /// a long-running server scans every pushed image with one opened index instead of reading it again
    /// per scan. An import replaces the file by rename, so the next call opens the new one.
    pub fn open_shared(db: &Path) -> Result<std::sync::Arc<Snapshot>, DbError> {
        static SHARED: std::sync::Mutex<Option<(SnapshotVersion, std::sync::Arc<Snapshot>)>> =
            std::sync::Mutex::new(None);
        let key = snapshot_version(db);
        if let (Some(k), Ok(g)) = (&key, SHARED.lock())
            && let Some((have, s)) = g.as_ref()
            && have == k
        {
            return Ok(s.clone());
        }
        let s = std::sync::Arc::new(Snapshot::open(db)?);
        if let (Some(k), Ok(mut g)) = (key, SHARED.lock()) {
            *g = Some((k, s.clone()));
        }
        Ok(s)
    }

    /// Opens the snapshot of a database directory (or snapshot file).
    pub fn open(db: &Path) -> Result<Snapshot, DbError> {
        let path = snapshot_path(db);
        // A snapshot the user named is theirs to link; inside the database directory no link is
        // followed, and only a regular file is opened (a FIFO there would block forever).
        let follow = if path == db {
            moat_fsio::Follow::Always
        } else {
            moat_fsio::Follow::Never
        };
        let mut file = match moat_fsio::open_regular(&path, follow) {
            Ok(f) => f,
            Err(moat_fsio::FsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(DbError::Missing(db.to_path_buf()));
            }
            Err(e) => {
                return Err(DbError::Corrupt {
                    path: path.clone(),
                    msg: e.to_string(),
                });
            }
        };
        let corrupt = |msg: &str| DbError::Corrupt {
            path: path.clone(),
            msg: msg.to_string(),
        };
        let mut head = [0u8; 16];
        file.read_exact(&mut head)
            .map_err(|_| corrupt("not a moat vulnerability database (too short)"))?;
        if &head[..8] != MAGIC {
            return Err(corrupt("not a moat vulnerability database (bad magic)"));
        }
        let meta_len =
            u64::from_le_bytes(head[8..16].try_into().map_err(|_| corrupt("bad header"))?);
        if meta_len > 64 << 20 {
            return Err(corrupt("header too large"));
        }
        let mut mb = vec![0u8; meta_len as usize];
        file.read_exact(&mut mb)
            .map_err(|_| corrupt("truncated header"))?;
        let meta: Meta =
            serde_json::from_slice(&mb).map_err(|e| corrupt(&format!("bad header: {e}")))?;
        let body_start = 16 + meta_len;
        let size = file.metadata().map_err(io(&path))?.len();
        // Without a rating section (older snapshots) the id index runs to the end of the body.
        let (rtable_off, rids_off) = match (meta.rtable_off, meta.rids_off) {
            (Some(t), Some(i)) => (t, i),
            (None, None) => (meta.body_len, meta.body_len),
            _ => return Err(corrupt("inconsistent rating sections")),
        };
        // Every size in the header is checked against the file's real length (with checked
        // arithmetic) before anything is allocated from it.
        if body_start.checked_add(meta.body_len) != Some(size) || meta.table_off > meta.body_len {
            return Err(corrupt("truncated or inconsistent sections"));
        }
        if meta.body_len - meta.table_off > MAX_INDEX_BYTES {
            return Err(corrupt(&format!(
                "record table and indexes claim {} bytes, over the {MAX_INDEX_BYTES}-byte limit",
                meta.body_len - meta.table_off
            )));
        }
        if meta.table_off > meta.keys_off
            || meta.keys_off > meta.ids_off
            || meta.ids_off > rtable_off
            || rtable_off > rids_off
            || rids_off > meta.body_len
        {
            return Err(corrupt("truncated or inconsistent sections"));
        }
        if meta.body_len - meta.table_off > MAX_INDEX_BYTES {
            return Err(corrupt(&format!(
                "record table and indexes claim {} bytes, over the {MAX_INDEX_BYTES}-byte limit",
                meta.body_len - meta.table_off
            )));
        }
        let mut rest = vec![0u8; (meta.body_len - meta.table_off) as usize];
        file.read_exact_at(&mut rest, body_start + meta.table_off)
            .map_err(io(&path))?;
        let tlen = (meta.keys_off - meta.table_off) as usize;
        let klen = (meta.ids_off - meta.keys_off) as usize;
        let ilen = (rtable_off - meta.ids_off) as usize;
        let rtlen = (rids_off - rtable_off) as usize;
        if meta.records.checked_mul(12) != Some(tlen) {
            return Err(corrupt("record table size mismatch"));
        }
        let mut table = Vec::with_capacity(meta.records);
        let mut r = Reader {
            b: &rest[..tlen],
            i: 0,
        };
        for _ in 0..meta.records {
            let (Some(o), Some(l)) = (r.u64(), r.u32()) else {
                return Err(corrupt("bad record table"));
            };
            if o.checked_add(l as u64)
                .is_none_or(|end| end > meta.table_off)
                || l > MAX_RECORD
            {
                return Err(corrupt("record outside the data section"));
            }
            table.push((o, l));
        }
        let keys = parse_index(&rest[tlen..tlen + klen], meta.records)
            .ok_or_else(|| corrupt("bad key index"))?;
        let ids = parse_index(&rest[tlen + klen..tlen + klen + ilen], meta.records)
            .ok_or_else(|| corrupt("bad id index"))?;
        let rstart = tlen + klen + ilen;
        if meta.ratings.checked_mul(12) != Some(rtlen) {
            return Err(corrupt("rating table size mismatch"));
        }
        let mut rtable = Vec::with_capacity(meta.ratings);
        let mut r = Reader {
            b: &rest[rstart..rstart + rtlen],
            i: 0,
        };
        for _ in 0..meta.ratings {
            let (Some(o), Some(l)) = (r.u64(), r.u32()) else {
                return Err(corrupt("bad rating table"));
            };
            if o.checked_add(l as u64)
                .is_none_or(|end| end > meta.table_off)
                || l > MAX_RECORD
            {
                return Err(corrupt("rating outside the data section"));
            }
            rtable.push((o, l));
        }
        let rids = if meta.rids_off.is_some() {
            parse_index(&rest[rstart + rtlen..], meta.ratings)
                .ok_or_else(|| corrupt("bad rating index"))?
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            path,
            file,
            body_start,
            meta,
            table,
            keys,
            ids,
            rtable,
            rids,
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and decompresses one blob of the data section.
    fn blob(&self, what: &str, n: u32, entry: Option<&(u64, u32)>) -> Result<Vec<u8>, DbError> {
        let corrupt = |msg: String| DbError::Corrupt {
            path: self.path.clone(),
            msg,
        };
        let &(off, len) = entry.ok_or_else(|| corrupt(format!("no {what} {n}")))?;
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, self.body_start + off)
            .map_err(io(&self.path))?;
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(&buf[..])
            .and_then(|d| d.take(64 << 20).read_to_end(&mut json))
            .map_err(|e| corrupt(format!("{what} {n}: {e}")))?;
        Ok(json)
    }

    /// Reads record number `n`.
    pub fn record(&self, n: u32) -> Result<Record, DbError> {
        let json = self.blob("record", n, self.table.get(n as usize))?;
        Record::from_json(&json).map_err(|e| DbError::Corrupt {
            path: self.path.clone(),
            msg: format!("record {n}: {e}"),
        })
    }

    /// Reads rating number `n`.
    fn rating(&self, n: u32) -> Result<CveRating, DbError> {
        let json = self.blob("rating", n, self.rtable.get(n as usize))?;
        serde_json::from_slice(&json).map_err(|e| DbError::Corrupt {
            path: self.path.clone(),
            msg: format!("rating {n}: {e}"),
        })
    }

    /// Every source's rating of `cve` (NVD, the CNA, ADPs), as imported.
    pub fn ratings(&self, cve: &str) -> Result<Vec<CveRating>, DbError> {
        Self::find(&self.rids, cve)
            .into_iter()
            .map(|n| self.rating(n))
            .collect()
    }

    /// All ratings (used to merge an import into the current snapshot).
    pub fn all_ratings(&self) -> Result<Vec<CveRating>, DbError> {
        (0..self.rtable.len() as u32)
            .map(|n| self.rating(n))
            .collect()
    }

    fn find(idx: &[(String, Vec<u32>)], k: &str) -> Vec<u32> {
        match idx.binary_search_by(|(x, _)| x.as_str().cmp(k)) {
            Ok(i) => idx[i].1.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// Every record with an `affected` entry for (ecosystem, name).
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, DbError> {
        Self::find(&self.keys, &key(ecosystem, name))
            .into_iter()
            .map(|n| self.record(n))
            .collect()
    }

    /// Records whose id, alias or upstream id is `id`.
    pub fn by_id(&self, id: &str) -> Result<Vec<Record>, DbError> {
        Self::find(&self.ids, id)
            .into_iter()
            .map(|n| self.record(n))
            .collect()
    }

    /// All records, in id order (used to merge an import into the current snapshot).
    pub fn all(&self) -> Result<Vec<Record>, DbError> {
        (0..self.table.len() as u32)
            .map(|n| self.record(n))
            .collect()
    }

    /// Number of distinct (ecosystem, name) keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

/// RFC 3339 UTC timestamp of now, without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let s = secs % 86400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes a snapshot of `records` into `db` (a directory, created if needed), atomically replacing
/// any previous one. Records with the same id: the last one wins.
pub fn write(db: &Path, records: Vec<Record>, sources: Vec<SourceInfo>) -> Result<Meta, DbError> {
    write_with(db, records, Vec::new(), sources)
}

/// [`write`] with CVE ratings. Ratings of one CVE by the same source and provider: the last wins.
pub fn write_with(
    db: &Path,
    records: Vec<Record>,
    ratings: Vec<CveRating>,
    sources: Vec<SourceInfo>,
) -> Result<Meta, DbError> {
    let path = snapshot_path(db);
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // The directory must be this user's and not writable by others: another user must not be able
    // to plant or swap files in it.
    moat_fsio::check_private_dir(&dir).map_err(|e| DbError::Corrupt {
        path: dir.clone(),
        msg: match e {
            moat_fsio::FsError::UnsafeDir { why, .. } => why,
            other => other.to_string(),
        },
    })?;
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for r in records {
        by_id.insert(r.id.clone(), r);
    }
    let mut body = Vec::new();
    let mut table = Vec::with_capacity(by_id.len());
    let mut keys: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut ids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut ecosystems: BTreeMap<String, usize> = BTreeMap::new();
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    let mut withdrawn = 0;
    for (n, r) in by_id.values().enumerate() {
        let n = n as u32;
        let json = serde_json::to_vec(r).map_err(|e| DbError::Corrupt {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let z = zstd::bulk::compress(&json, 9).map_err(io(&path))?;
        table.push((body.len() as u64, z.len() as u32));
        body.extend_from_slice(&z);
        if r.withdrawn.is_some() {
            withdrawn += 1;
        }
        let mut ecos = std::collections::BTreeSet::new();
        for a in &r.affected {
            if a.package.ecosystem.is_empty() || a.package.name.is_empty() {
                continue;
            }
            let k = key(&a.package.ecosystem, &a.package.name);
            let v = keys.entry(k).or_default();
            if v.last() != Some(&n) {
                v.push(n);
            }
            ecos.insert(normalize_ecosystem(&a.package.ecosystem));
        }
        for e in ecos {
            if let Some(m) = r.modified.as_deref().or(r.published.as_deref()) {
                let n = newest.entry(e.clone()).or_default();
                if m > n.as_str() {
                    *n = m.to_string();
                }
            }
            *ecosystems.entry(e).or_default() += 1;
        }
        // Upstream ids too: `moat explain CVE-…` finds the DSA that fixes it.
        for id in std::iter::once(&r.id).chain(&r.aliases).chain(&r.upstream) {
            let v = ids.entry(id.clone()).or_default();
            if v.last() != Some(&n) {
                v.push(n);
            }
        }
    }
    let mut by_rater: BTreeMap<(String, String, String), CveRating> = BTreeMap::new();
    for r in ratings {
        by_rater.insert((r.cve.clone(), r.source.clone(), r.provider.clone()), r);
    }
    let mut rtable = Vec::with_capacity(by_rater.len());
    let mut rids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (n, r) in by_rater.values().enumerate() {
        let json = serde_json::to_vec(r).map_err(|e| DbError::Corrupt {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let z = zstd::bulk::compress(&json, 9).map_err(io(&path))?;
        rtable.push((body.len() as u64, z.len() as u32));
        body.extend_from_slice(&z);
        rids.entry(r.cve.clone()).or_default().push(n as u32);
    }
    let table_off = body.len() as u64;
    for (o, l) in &table {
        body.extend_from_slice(&o.to_le_bytes());
        body.extend_from_slice(&l.to_le_bytes());
    }
    let keys_off = body.len() as u64;
    write_index(&mut body, &keys);
    let ids_off = body.len() as u64;
    write_index(&mut body, &ids);
    let rtable_off = body.len() as u64;
    for (o, l) in &rtable {
        body.extend_from_slice(&o.to_le_bytes());
        body.extend_from_slice(&l.to_le_bytes());
    }
    let rids_off = body.len() as u64;
    write_index(&mut body, &rids);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    let meta = Meta {
        format: "moat-vulndb/1".into(),
        digest,
        records: table.len(),
        withdrawn,
        ecosystems,
        sources,
        created_at: now_rfc3339(),
        newest,
        ratings: rtable.len(),
        rated_cves: rids.len(),
        table_off,
        keys_off,
        ids_off,
        rtable_off: Some(rtable_off),
        rids_off: Some(rids_off),
        body_len: body.len() as u64,
    };
    let mb = serde_json::to_vec(&meta).map_err(|e| DbError::Corrupt {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    // An exclusive temporary file under a random name (O_EXCL | O_NOFOLLOW: a link planted beside
    // the snapshot is never written through), renamed over the snapshot; dropped on failure.
    let fs_err = |e: moat_fsio::FsError| DbError::Corrupt {
        path: path.clone(),
        msg: e.to_string(),
    };
    let mut f = moat_fsio::AtomicFile::create(&path, 0o644).map_err(fs_err)?;
    f.write_all(MAGIC)
        .and_then(|_| f.write_all(&(mb.len() as u64).to_le_bytes()))
        .and_then(|_| f.write_all(&mb))
        .and_then(|_| f.write_all(&body))
        .map_err(io(&path))?;
    f.commit().map_err(fs_err)?;
    Ok(meta)
}
