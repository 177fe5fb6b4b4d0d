//! Continuous re-evaluation: when the server's vulnerability database snapshot changes (`moat db
//! update`/`import` on the server's DB, seen at start and by a periodic check, or `POST
//! /api/v1/db/reload`), the stored SBOMs are matched again against the new snapshot without pulling
//! any image.
//!
//! Delta-driven (Clair's `UpdateDiff` + `AffectedManifests`): every (ecosystem, name) key of the
//! snapshot has a fingerprint of its records; the keys whose fingerprint changed since the last
//! evaluated snapshot are looked up in the package → image index (`package.vkey`, `image_package`),
//! and only those packages of those images are matched again. Per image, in one transaction: the
//! package's new findings are inserted (with the snapshot digest that produced them), vanished ones
//! are resolved (`resolved_snapshot`), the verdict is judged again by the gate policy, and
//! `finding.new` / `image.verdict.changed` go to the outbox in the same transaction. A full re-match
//! (`mode=full`) does the same for every stored package.
//!
//! The run is a job on the `reeval` lane, so the worker pool claims push scans first; images are
//! committed in small batches so a push verdict never waits long for the write lock. The baseline
//! (fingerprints, snapshot digest) is only advanced after every image was committed: a run killed
//! half-way is redone from the same baseline, and the outbox dedupe keys keep it from alerting twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moat_model::{Finding, FindingKind, Inventory, OsRelease, Package};
use moat_vulndb::Snapshot;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use crate::pipeline::gate::{Decision, GateInput, GatePolicy, SignatureStatus};
use crate::store::images::severity_rank;
use crate::store::queue::{self, LANE_REEVAL, NewJob};
use crate::store::{Store, StoreError, Tx, new_id, now_ms, outbox, verdicts};

/// Finding source of vulnerabilities the server matched (shared with the push pipeline).
pub use crate::pipeline::record::SOURCE_SERVER;
/// Concurrency key of re-evaluation jobs: one run at a time, whatever the number of replicas.
pub const CONCURRENCY_KEY: &str = "reeval:db";
/// Images committed per transaction.
pub const BATCH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ReevalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("vulnerability database: {0}")]
    Db(String),
}

/// `delta` (only the keys whose advisories changed) or `full` (every stored package).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Delta,
    Full,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "delta" => Some(Mode::Delta),
            "full" => Some(Mode::Full),
            _ => None,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub snapshot: String,
    pub previous: Option<String>,
    pub mode: String,
    /// (ecosystem, name) keys whose records changed (all stored keys for a full run).
    pub changed_keys: usize,
    /// Stored keys skipped because the snapshot has no record of their ecosystem.
    pub uncovered_keys: usize,
    /// Images that hold a package of a changed key.
    pub images: usize,
    /// Distinct stored packages matched again.
    pub packages: usize,
    pub new_findings: usize,
    pub resolved_findings: usize,
    /// Open findings whose stored text was rewritten.
    pub updated_findings: usize,
    pub verdicts_changed: usize,
    pub elapsed_ms: i64,
    /// Where the time went (ms): fingerprints, lookup, matching, writing, baseline.
    pub phases_ms: BTreeMap<String, i64>,
}

/// Remediation plans for an image's open findings (what `GET /api/v1/images/{digest}/remediation` serves and
/// the dashboard's image page shows): moat-vulndb's planner over the advisories of the server's snapshot.
pub struct Remediation {
    pub plans: Vec<moat_vulndb::remediation::PackagePlan>,
    /// The snapshot the advisories came from; None when the database could not be opened.
    pub snapshot: Option<String>,
    /// Why the plan fell back to the findings' own fixed versions.
    pub warning: Option<String>,
}

/// Plans `findings` against the snapshot at `db`. A database that does not open is not an error: the plan
/// then compares each finding's own fixed versions and says so; a lookup that fails in an open database is.
pub async fn remediation(db: &Path, findings: Vec<Finding>) -> Result<Remediation, ReevalError> {
    let snap = match snapshot(db) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Remediation {
                plans: moat_vulndb::remediation::plan(&findings, &[]),
                snapshot: None,
                warning: Some(format!(
                    "{e}; the plan compares each finding's own fixed versions instead of re-matching the advisories"
                )),
            });
        }
    };
    let digest = snap.meta().digest.clone();
    let plans = tokio::task::spawn_blocking(move || {
        let mut records = Vec::new();
        for (e, n) in moat_vulndb::remediation::lookup_keys(&findings) {
            records.extend(
                snap.lookup(&e, &n)
                    .map_err(|e| ReevalError::Db(e.to_string()))?,
            );
        }
        Ok::<_, ReevalError>(moat_vulndb::remediation::plan(&findings, &records))
    })
    .await
    .map_err(|e| ReevalError::Db(e.to_string()))??;
    Ok(Remediation {
        plans,
        snapshot: Some(digest),
        warning: None,
    })
}

/// The server's snapshot, reopened when the file changed (a `moat db import` renames a new file
/// over the old one).
pub fn snapshot(db: &Path) -> Result<Arc<Snapshot>, ReevalError> {
    Snapshot::open_shared(db).map_err(|e| ReevalError::Db(e.to_string()))
}

/// Fingerprint of every (ecosystem, name) key: SHA-256 over the records naming it, by id.
pub fn fingerprints(snap: &Snapshot) -> Result<BTreeMap<String, String>, ReevalError> {
    let mut by_key: BTreeMap<String, Sha256> = BTreeMap::new();
    let mut recs = snap.all().map_err(|e| ReevalError::Db(e.to_string()))?;
    recs.sort_by(|a, b| a.id.cmp(&b.id));
    for r in &recs {
        let body = serde_json::to_vec(r).map_err(|e| ReevalError::Db(e.to_string()))?;
        let mut keys = BTreeSet::new();
        for a in &r.affected {
            keys.insert(crate::store::query::vkey(
                &a.package.ecosystem,
                &a.package.name,
            ));
        }
        for k in keys {
            let h = by_key.entry(k).or_default();
            h.update((body.len() as u64).to_le_bytes());
            h.update(&body);
        }
    }
    Ok(by_key
        .into_iter()
        .map(|(k, h)| (k, hex::encode(h.finalize())))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Stored packages.

/// The OS release a package row was stored with (`debian 12`).
fn os_of(s: &str) -> Option<OsRelease> {
    let mut it = s.split_whitespace();
    let id = it.next()?.to_string();
    let version_id = it.next().map(str::to_string);
    Some(OsRelease {
        id,
        version_id,
        version_codename: None,
        pretty_name: None,
    })
}

struct StoredPkg {
    id: String,
    purl: String,
    package: Package,
    os: Option<OsRelease>,
}

/// The findings of one package against the snapshot (the same matcher and grouping as `moat scan`).
fn match_package(snap: &Snapshot, p: &StoredPkg) -> Result<Vec<Finding>, ReevalError> {
    let inv = Inventory {
        os: p.os.clone(),
        packages: vec![p.package.clone()],
        ..Inventory::default()
    };
    Ok(moat_vulndb::scan(snap, &inv)
        .map_err(|e| ReevalError::Db(e.to_string()))?
        .findings)
}

fn marks(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// digest → its packages under the given keys, and those packages. The packages are read once each
/// (by key, from `package`), the image → package pairs without the package data: joining the data in
/// would copy each package's JSON once per image holding it (1.5 M rows for 10,000 images).
async fn affected(
    store: &Store,
    keys: &[String],
) -> Result<(BTreeMap<String, Vec<String>>, HashMap<String, StoredPkg>), ReevalError> {
    let mut by_image: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pkgs: HashMap<String, StoredPkg> = HashMap::new();
    for chunk in keys.chunks(500) {
        let sql = format!(
            "SELECT p.id, p.purl, p.os, p.data FROM package p WHERE p.vkey IN ({})",
            marks(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            q = q.bind(k.as_str());
        }
        for r in q.fetch_all(store.pool()).await.map_err(StoreError::from)? {
            let id: String = r.try_get(0).map_err(StoreError::from)?;
            let data: String = r.try_get(3).map_err(StoreError::from)?;
            let package: Package = serde_json::from_str(&data)
                .map_err(|e| StoreError::Corrupt(format!("package {id}: {e}")))?;
            let os: String = r.try_get(2).map_err(StoreError::from)?;
            pkgs.insert(
                id.clone(),
                StoredPkg {
                    id,
                    purl: r.try_get(1).map_err(StoreError::from)?,
                    package,
                    os: os_of(&os),
                },
            );
        }
        let sql = format!(
            "SELECT ip.digest, ip.package_id FROM image_package ip \
             JOIN package p ON p.id = ip.package_id WHERE p.vkey IN ({})",
            marks(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            q = q.bind(k.as_str());
        }
        for r in q.fetch_all(store.pool()).await.map_err(StoreError::from)? {
            let digest: String = r.try_get(0).map_err(StoreError::from)?;
            by_image
                .entry(digest)
                .or_default()
                .push(r.try_get(1).map_err(StoreError::from)?);
        }
    }
    Ok((by_image, pkgs))
}

// ---------------------------------------------------------------------------------------------
// Per image.

/// A matched finding and its stored JSON (serialized once per package, shared by every image).
type Matched = (Finding, String);

/// Whether a finding can change a verdict of `policy` (the conditions of `GatePolicy::judge`).
fn gate_relevant(policy: &GatePolicy, id: &str, severity: i64, fixable: bool) -> bool {
    let c = &policy.config;
    c.deny_severity
        .is_some_and(|m| severity >= severity_rank(m) && (fixable || !c.only_fixable))
        || c.deny_ids.iter().any(|d| d == id)
}

#[derive(Default)]
struct ImageDelta {
    new: usize,
    /// Open findings whose stored text changed (e.g. a fix hint that now names a newer version).
    updated: usize,
    resolved: usize,
    verdict_changed: bool,
}

/// Judges one image again from every open finding and records the verdict (and its event when the
/// decision changed).
#[allow(clippy::too_many_arguments)]
async fn judge(
    tx: &mut Tx,
    digest: &str,
    snapshot: &str,
    policy: &GatePolicy,
    current: &str,
    repository: &Option<String>,
    tag: &Option<String>,
    user: &Option<String>,
    signature: &Option<String>,
    d: &mut ImageDelta,
) -> Result<(), StoreError> {
    let findings: Vec<Finding> =
        sqlx::query("SELECT data FROM finding WHERE digest = $1 AND resolved_ms IS NULL")
            .bind(digest)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| {
                let s: String = r.try_get(0)?;
                serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("finding: {e}")))
            })
            .collect::<Result<_, StoreError>>()?;
    // The image configuration is known for images the server scanned itself.
    let has_config = sqlx::query("SELECT 1 FROM report WHERE digest = $1 AND kind = 'moat.scan'")
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    let sig = match signature.as_deref() {
        Some("signed") | Some("verified") => SignatureStatus::Verified,
        Some("unsigned") => SignatureStatus::Unsigned {
            reason: "no signature by a trusted key".into(),
        },
        Some("invalid") => SignatureStatus::Unsigned {
            reason: "invalid signature".into(),
        },
        Some(other) if other.starts_with("error") => SignatureStatus::Error {
            reason: other.to_string(),
        },
        _ => SignatureStatus::NotChecked,
    };
    let verdict = policy.judge(&GateInput {
        findings: &findings,
        user: user.as_deref(),
        has_config,
        signature: &sig,
    });
    let latest = sqlx::query(
        "SELECT decision, reasons FROM verdict WHERE digest = $1 ORDER BY decided_ms DESC, id DESC LIMIT 1",
    )
    .bind(digest)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| Ok::<_, sqlx::Error>((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
    .transpose()?;
    let reasons = serde_json::to_string(&verdict.reasons).unwrap_or_default();
    // A new history entry only when the decision or its reasons changed.
    if latest.as_ref() != Some(&(verdict.decision.as_str().to_string(), reasons)) {
        verdicts::record(
            tx,
            digest,
            verdict.decision.as_str(),
            &verdict.reasons,
            &verdict.policy,
            Some(snapshot),
        )
        .await?;
        if current != verdict.decision.as_str() {
            d.verdict_changed = true;
            outbox::insert(
                tx,
                "image.verdict.changed",
                digest,
                &json!({
                    "digest": digest, "repository": repository, "tag": tag,
                    "from": current, "to": verdict.decision.as_str(),
                    "reasons": verdict.reasons, "policy": verdict.policy,
                    "snapshot": snapshot, "cause": "reevaluation",
                }),
                Some(&format!(
                    "image.verdict.changed:{digest}:{snapshot}:{}",
                    verdict.decision.as_str()
                )),
            )
            .await?;
        }
    }
    Ok(())
}

/// Applies the new findings of `purls` (package key → findings) to one image, re-judges it and
/// writes the events, in `tx`.
async fn apply_image(
    tx: &mut Tx,
    digest: &str,
    fresh: &[(&str, &[Matched])],
    snapshot: &str,
    policy: &GatePolicy,
    aliases_seen: &mut HashSet<(String, String)>,
) -> Result<ImageDelta, StoreError> {
    let mut d = ImageDelta::default();
    let now = now_ms();
    let purls: Vec<&str> = fresh.iter().map(|(p, _)| *p).collect();
    // The open vulnerability findings of these packages, from any source (an uploaded report's or
    // the server's own): the new snapshot decides for all of them.
    let mut open: HashMap<(String, String), (String, String, i64, i64)> = HashMap::new();
    for chunk in purls.chunks(200) {
        let sql = format!(
            "SELECT vuln_id, package_key, source, data, severity, fixable FROM finding WHERE digest = $1 AND kind = 'vulnerability' \
             AND resolved_ms IS NULL AND package_key IN ({})",
            marks(2, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(digest);
        for p in chunk {
            q = q.bind(*p);
        }
        for r in q.fetch_all(&mut **tx).await? {
            open.insert(
                (r.try_get(0)?, r.try_get(1)?),
                (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?),
            );
        }
    }
    let mut new_findings: Vec<&Finding> = Vec::new();
    let mut keep: HashSet<(String, String)> = HashSet::new();
    // New rows, written below in multi-row statements (one round trip per chunk).
    #[allow(clippy::type_complexity)]
    let mut inserts: Vec<(
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        String,
    )> = Vec::new();
    let mut aliases: Vec<(String, String)> = Vec::new();
    // Open findings whose stored text changed (source, id, package, severity, fixable, data).
    #[allow(clippy::type_complexity)]
    let mut updates: Vec<(String, String, String, i64, i64, String)> = Vec::new();
    let relevant = |id: &str, sev: i64, fixable: i64| gate_relevant(policy, id, sev, fixable != 0);
    let mut gate_changed = false;
    for (purl, findings) in fresh {
        for (f, data) in findings.iter() {
            let key = (f.id.clone(), purl.to_string());
            if !keep.insert(key.clone()) {
                continue;
            }
            let fixable = f
                .vulnerability
                .as_ref()
                .is_some_and(|v| !v.fixed_versions.is_empty()) as i64;
            let sev = severity_rank(f.severity);
            match open.get(&key) {
                Some((source, old, old_sev, old_fix)) => {
                    if old != data {
                        if (*old_sev, *old_fix) != (sev, fixable)
                            && (relevant(&f.id, *old_sev, *old_fix)
                                || relevant(&f.id, sev, fixable))
                        {
                            gate_changed = true;
                        }
                        updates.push((
                            source.clone(),
                            key.0.clone(),
                            key.1.clone(),
                            sev,
                            fixable,
                            data.clone(),
                        ));
                    }
                }
                None => {
                    gate_changed |= relevant(&f.id, sev, fixable);
                    inserts.push((
                        key.0.clone(),
                        key.1.clone(),
                        sev,
                        fixable,
                        f.package.as_ref().map(|p| p.name.clone()),
                        f.package.as_ref().map(|p| p.version.clone()),
                        data.clone(),
                    ));
                    for alias in std::iter::once(&f.id).chain(&f.aliases) {
                        if aliases_seen.insert((alias.clone(), f.id.clone())) {
                            aliases.push((alias.clone(), f.id.clone()));
                        }
                    }
                    new_findings.push(f);
                }
            }
        }
    }
    for chunk in inserts.chunks(50) {
        let mut sql = String::from(
            "INSERT INTO finding (digest, vuln_id, package_key, source, kind, severity, fixable, \
             package_name, package_version, data, first_seen_ms, snapshot_digest) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 7;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, ${}, $2, 'vulnerability', ${}, ${}, ${}, ${}, ${}, $3, $4)",
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11
            ));
        }
        sql.push_str(
            " ON CONFLICT (digest, source, vuln_id, package_key) DO UPDATE SET severity = excluded.severity, \
             fixable = excluded.fixable, data = excluded.data, resolved_ms = NULL, resolved_snapshot = NULL, \
             first_seen_ms = excluded.first_seen_ms, snapshot_digest = excluded.snapshot_digest",
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(digest)
            .bind(SOURCE_SERVER)
            .bind(now)
            .bind(snapshot);
        for (id, pkg, sev, fixable, name, version, data) in chunk {
            q = q
                .bind(id.as_str())
                .bind(pkg.as_str())
                .bind(*sev)
                .bind(*fixable)
                .bind(name.as_deref())
                .bind(version.as_deref())
                .bind(data.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in aliases.chunks(200) {
        let sql = format!(
            "INSERT INTO vuln_alias (alias, vuln_id) VALUES {} ON CONFLICT (alias, vuln_id) DO NOTHING",
            (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (a, v) in chunk {
            q = q.bind(a.as_str()).bind(v.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    // Changed texts: an upsert on rows that exist (the conflict path always runs), many per statement;
    // first sight and snapshot stay those of the row.
    for chunk in updates.chunks(50) {
        let mut sql = String::from(
            "INSERT INTO finding (digest, vuln_id, package_key, source, kind, severity, fixable, \
             data, first_seen_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = 3 + i * 6;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, ${}, ${}, 'vulnerability', ${}, ${}, ${}, $2)",
                b,
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        sql.push_str(
            " ON CONFLICT (digest, source, vuln_id, package_key) DO UPDATE SET data = excluded.data, \
             severity = excluded.severity, fixable = excluded.fixable",
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(digest).bind(now);
        for (source, id, pkg, sev, fixable, data) in chunk {
            q = q
                .bind(id.as_str())
                .bind(pkg.as_str())
                .bind(source.as_str())
                .bind(*sev)
                .bind(*fixable)
                .bind(data.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    d.updated = updates.len();
    // Vanished findings, resolved per source in multi-row statements.
    let mut gone: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for ((id, pkg), (source, _, sev, fixable)) in &open {
        if keep.contains(&(id.clone(), pkg.clone())) {
            continue;
        }
        gate_changed |= relevant(id, *sev, *fixable);
        gone.entry(source.as_str())
            .or_default()
            .push((id.as_str(), pkg.as_str()));
        d.resolved += 1;
    }
    for (source, rows) in &gone {
        for chunk in rows.chunks(200) {
            let sql = format!(
                "UPDATE finding SET resolved_ms = $1, resolved_snapshot = $2 WHERE digest = $3 AND source = $4 \
                 AND (vuln_id, package_key) IN (VALUES {})",
                (0..chunk.len())
                    .map(|i| format!("(${}, ${})", 5 + 2 * i, 6 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(now)
                .bind(snapshot)
                .bind(digest)
                .bind(*source);
            for (id, pkg) in chunk {
                q = q.bind(*id).bind(*pkg);
            }
            q.execute(&mut **tx).await?;
        }
    }
    d.new = new_findings.len();
    let art = sqlx::query(
        "SELECT repository, tag, config_user, signature, verdict FROM artifact WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(art) = art else {
        return Ok(d);
    };
    let repository: Option<String> = art.try_get(0)?;
    let tag: Option<String> = art.try_get(1)?;
    let user: Option<String> = art.try_get(2)?;
    let signature: Option<String> = art.try_get(3)?;
    let current: String = art.try_get(4)?;
    // A pending image whose scan is queued or running is left to that scan; one that nobody is
    // scanning (an uploaded report with its SBOM) is judged here, against this snapshot.
    let pending = current == Decision::Pending.as_str();
    let scanning = pending
        && sqlx::query(
            "SELECT 1 FROM job WHERE concurrency_key = $1 AND state IN ('queued', 'running')",
        )
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    // Findings that cannot change what the gate decides (below its severity, unfixed when only
    // fixable ones count) leave the verdict as it is: judged images are judged again only when a
    // gate-relevant finding appeared, went or changed.
    if !scanning && (pending || gate_changed) {
        judge(
            tx,
            digest,
            snapshot,
            policy,
            &current,
            &repository,
            &tag,
            &user,
            &signature,
            &mut d,
        )
        .await?;
    }
    // `finding.new` is for images that had been judged: a first judgement reports its findings
    // through the verdict, not as news.
    let events: Vec<(String, String)> = if pending {
        Vec::new()
    } else {
        new_findings
            .iter()
            .map(|f| {
                let purl = f
                    .package
                    .as_ref()
                    .map(|p| p.purl.to_string())
                    .unwrap_or_default();
                let payload = json!({
                    "digest": digest, "repository": repository, "tag": tag,
                    "snapshot": snapshot, "finding": crate::pipeline::record::finding_json(f),
                    "cause": "reevaluation",
                });
                (
                    payload.to_string(),
                    format!("finding.new:{digest}:{}:{purl}:{snapshot}", f.id),
                )
            })
            .collect()
    };
    // The same rows `outbox::insert` writes, many per statement.
    for chunk in events.chunks(100) {
        let sql = format!(
            "INSERT INTO outbox (id, created_ms, event_type, subject, payload, dedupe_key, state, attempts) \
             VALUES {} ON CONFLICT (dedupe_key) DO NOTHING",
            (0..chunk.len())
                .map(|i| format!(
                    "(${}, $1, 'finding.new', $2, ${}, ${}, 'pending', 0)",
                    3 * i + 3,
                    3 * i + 4,
                    3 * i + 5
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(digest);
        for (payload, key) in chunk {
            q = q.bind(new_id()).bind(payload.as_str()).bind(key.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// One run.

async fn state(store: &Store, name: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT value FROM server_state WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?,
    )
}

async fn set_state(tx: &mut Tx, name: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO server_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The snapshot digest the stored findings were last evaluated against.
pub async fn evaluated_snapshot(store: &Store) -> Result<Option<String>, StoreError> {
    state(store, "reeval.snapshot").await
}

/// Re-evaluates the stored SBOMs against the snapshot at `db`.
pub async fn run(
    store: &Store,
    db: &Path,
    policy: &GatePolicy,
    mode: Mode,
) -> Result<Outcome, ReevalError> {
    let started = now_ms();
    let mut phases: BTreeMap<String, i64> = BTreeMap::new();
    let mut mark = started;
    let mut phase = |name: &str| {
        let t = now_ms();
        phases.insert(name.to_string(), t - mark);
        mark = t;
    };
    let snap = snapshot(db)?;
    let digest = snap.meta().digest.clone();
    let previous = evaluated_snapshot(store).await?;
    let fps = {
        let s = snap.clone();
        tokio::task::spawn_blocking(move || fingerprints(&s))
            .await
            .map_err(|e| ReevalError::Db(format!("fingerprints: {e}")))??
    };
    // The stored keys (distinct) and the baseline fingerprints.
    let stored: Vec<String> = sqlx::query("SELECT DISTINCT vkey FROM package")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    let base: HashMap<String, String> = sqlx::query("SELECT vkey, fingerprint FROM advisory_key")
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)?;
    // No baseline yet: every stored package is judged once against this snapshot.
    let full = mode == Mode::Full || previous.is_none();
    let changed: BTreeSet<String> = fps
        .iter()
        .filter(|(k, v)| base.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(base.keys().filter(|k| !fps.contains_key(*k)).cloned())
        .collect();
    // Stored keys as written (either form), selected by their normalized form.
    let keys: Vec<String> = if full {
        stored.clone()
    } else {
        stored
            .iter()
            .filter(|k| changed.contains(&crate::store::query::normalize_vkey(k)))
            .cloned()
            .collect()
    };
    // A key whose ecosystem the snapshot has no record of is left alone: a database that does not
    // cover an ecosystem must never resolve findings a better-covered scan reported.
    let covered: HashSet<&str> = snap.meta().ecosystems.keys().map(String::as_str).collect();
    let (keys, uncovered): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| {
        let k = crate::store::query::normalize_vkey(k);
        k.split('\u{1f}')
            .next()
            .is_some_and(|e| covered.contains(e))
    });
    phase("fingerprints");
    let (by_image, pkgs) = affected(store, &keys).await?;
    phase("lookup");
    // Match each distinct package once (images share base layers, so packages).
    // package id -> (purl, findings)
    let fresh: HashMap<String, (String, Vec<Matched>)> = {
        let s = snap.clone();
        let list: Vec<StoredPkg> = pkgs.into_values().collect();
        tokio::task::spawn_blocking(move || {
            list.iter()
                .map(|p| {
                    let f: Vec<Matched> = match_package(&s, p)?
                        .into_iter()
                        .filter(|f| f.kind == FindingKind::Vulnerability)
                        .map(|f| {
                            let data = serde_json::to_string(&f)
                                .map_err(|e| ReevalError::Db(e.to_string()))?;
                            Ok((f, data))
                        })
                        .collect::<Result<_, ReevalError>>()?;
                    Ok((p.id.clone(), (p.purl.clone(), f)))
                })
                .collect::<Result<HashMap<String, (String, Vec<Matched>)>, ReevalError>>()
        })
        .await
        .map_err(|e| ReevalError::Db(format!("matching: {e}")))??
    };
    phase("matching");
    let mut out = Outcome {
        snapshot: digest.clone(),
        previous: previous.clone(),
        mode: if full { "full".into() } else { "delta".into() },
        changed_keys: keys.len(),
        uncovered_keys: uncovered.len(),
        images: by_image.len(),
        packages: fresh.len(),
        ..Outcome::default()
    };
    let images: Vec<(&String, &Vec<String>)> = by_image.iter().collect();
    // (alias, id) pairs already written in this run: every image shares the same advisories.
    let mut aliases_seen: HashSet<(String, String)> = HashSet::new();
    for batch in images.chunks(BATCH) {
        let mut tx = store.begin().await?;
        for (img, ids) in batch {
            let per: Vec<(&str, &[Matched])> = ids
                .iter()
                .filter_map(|id| fresh.get(id.as_str()))
                .map(|(purl, f)| (purl.as_str(), f.as_slice()))
                .collect();
            let d = apply_image(&mut tx, img, &per, &digest, policy, &mut aliases_seen).await?;
            out.new_findings += d.new;
            out.resolved_findings += d.resolved;
            out.updated_findings += d.updated;
            out.verdicts_changed += d.verdict_changed as usize;
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    phase("writing");
    // Advance the baseline only now that every image is committed.
    let mut tx = store.begin().await?;
    for k in base.keys().filter(|k| !fps.contains_key(*k)) {
        sqlx::query("DELETE FROM advisory_key WHERE vkey = $1")
            .bind(k)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    }
    for (k, v) in &fps {
        if base.get(k) == Some(v) {
            continue;
        }
        sqlx::query(
            "INSERT INTO advisory_key (vkey, fingerprint) VALUES ($1, $2) \
             ON CONFLICT (vkey) DO UPDATE SET fingerprint = excluded.fingerprint",
        )
        .bind(k)
        .bind(v)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    }
    set_state(&mut tx, "reeval.snapshot", &digest).await?;
    sqlx::query(
        "UPDATE artifact SET snapshot_digest = $1 WHERE digest IN (SELECT digest FROM sbom)",
    )
    .bind(&digest)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let finished = now_ms();
    sqlx::query(
        "INSERT INTO db_snapshot (digest, records, loaded_ms, evaluated_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (digest) DO UPDATE SET evaluated_ms = excluded.evaluated_ms",
    )
    .bind(&digest)
    .bind(snap.meta().records as i64)
    .bind(started)
    .bind(finished)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    phase("baseline");
    out.phases_ms = phases;
    out.elapsed_ms = finished - started;
    sqlx::query(
        "INSERT INTO reeval_run (id, snapshot_digest, previous_digest, mode, changed_keys, images, packages, \
         new_findings, resolved_findings, verdicts_changed, started_ms, finished_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id())
    .bind(&digest)
    .bind(previous.as_deref())
    .bind(&out.mode)
    .bind(out.changed_keys as i64)
    .bind(out.images as i64)
    .bind(out.packages as i64)
    .bind(out.new_findings as i64)
    .bind(out.resolved_findings as i64)
    .bind(out.verdicts_changed as i64)
    .bind(started)
    .bind(finished)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(out)
}

/// The last runs, newest first.
pub async fn runs(store: &Store, limit: i64) -> Result<Vec<Value>, StoreError> {
    let rows = sqlx::query(
        "SELECT snapshot_digest, previous_digest, mode, changed_keys, images, packages, new_findings, \
         resolved_findings, verdicts_changed, started_ms, finished_ms FROM reeval_run \
         ORDER BY finished_ms DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(json!({
                "snapshot": r.try_get::<String, _>(0)?,
                "previous": r.try_get::<Option<String>, _>(1)?,
                "mode": r.try_get::<String, _>(2)?,
                "changed_keys": r.try_get::<i64, _>(3)?,
                "images": r.try_get::<i64, _>(4)?,
                "packages": r.try_get::<i64, _>(5)?,
                "new_findings": r.try_get::<i64, _>(6)?,
                "resolved_findings": r.try_get::<i64, _>(7)?,
                "verdicts_changed": r.try_get::<i64, _>(8)?,
                "started": r.try_get::<i64, _>(9)?,
                "finished": r.try_get::<i64, _>(10)?,
            }))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Jobs.

/// Enqueues a run on the `reeval` lane. `dedupe` (e.g. the snapshot digest seen by the watcher)
/// makes replicas that noticed the same change enqueue it once.
pub async fn enqueue(
    store: &Store,
    mode: Mode,
    cause: &str,
    dedupe: Option<String>,
) -> Result<Option<String>, StoreError> {
    let mut job = NewJob::new(
        LANE_REEVAL,
        CONCURRENCY_KEY,
        json!({"kind": "reeval", "mode": mode, "cause": cause}),
    );
    job.dedupe_key = dedupe;
    let mut tx = store.begin().await?;
    let id = queue::enqueue(&mut tx, &job).await?;
    tx.commit().await?;
    crate::worker::wake();
    Ok(id)
}

/// The job handler of the `reeval` lane (registered with the worker pool).
pub fn handler(db: PathBuf, policy: Arc<GatePolicy>) -> crate::worker::Handler {
    Arc::new(
        move |st: crate::AppState, job: queue::Job, worker: String| {
            let (db, policy) = (db.clone(), policy.clone());
            Box::pin(async move {
                let mode = job
                    .payload
                    .get("mode")
                    .and_then(Value::as_str)
                    .and_then(Mode::parse)
                    .unwrap_or(Mode::Delta);
                let out = run(&st.store, &db, &policy, mode)
                    .await
                    .map_err(|e| crate::pipeline::scan::JobError::new(e.to_string()))?;
                eprintln!(
                    "moat server: re-evaluation ({}) against {}: {} keys, {} images, {} new and {} resolved findings, {} verdicts changed, {} ms",
                    out.mode,
                    out.snapshot,
                    out.changed_keys,
                    out.images,
                    out.new_findings,
                    out.resolved_findings,
                    out.verdicts_changed,
                    out.elapsed_ms
                );
                st.store.complete_job(&job.id, &worker).await?;
                Ok(())
            })
        },
    )
}

/// Watches the server's snapshot: at start and every `every`, a snapshot whose digest differs from
/// the one last evaluated enqueues a delta run (once per digest across replicas).
pub fn spawn_watcher(store: Store, db: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Option<moat_vulndb::store::SnapshotVersion> = None;
        loop {
            let k = moat_vulndb::store::snapshot_version(&db);
            if k.is_some() && k != seen {
                match snapshot(&db) {
                    Ok(s) => {
                        let d = s.meta().digest.clone();
                        match evaluated_snapshot(&store).await {
                            Ok(prev) if prev.as_deref() != Some(d.as_str()) => {
                                if let Err(e) = enqueue(
                                    &store,
                                    Mode::Delta,
                                    "snapshot changed",
                                    // Once per digest and file version: a snapshot that comes back
                                    // to an earlier digest later is evaluated again.
                                    Some(format!(
                                        "reeval:auto:{d}:{}",
                                        k.as_ref()
                                            .and_then(|k| k.2)
                                            .and_then(|t| t
                                                .duration_since(std::time::UNIX_EPOCH)
                                                .ok())
                                            .map_or(0, |t| t.as_nanos())
                                    )),
                                )
                                .await
                                {
                                    eprintln!("moat server: cannot enqueue re-evaluation: {e}");
                                } else {
                                    seen = k;
                                }
                            }
                            Ok(_) => seen = k,
                            Err(e) => eprintln!("moat server: re-evaluation check: {e}"),
                        }
                    }
                    Err(e) => eprintln!("moat server: re-evaluation check: {e}"),
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
