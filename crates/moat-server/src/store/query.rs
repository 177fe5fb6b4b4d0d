//! Read queries behind `GET /api/v1/images`, `/images/{digest}` and `/advisories/{id}`: every
//! filter and sort is backed by an index (migrations 0001 and 0004), every list is bounded, and
//! "which images have CVE-X" is an index walk (alias → primary id → open findings → images →
//! workloads), never a scan of findings or SBOMs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreError};

/// The sorts `GET /api/v1/images` offers, each on an indexed column.
pub const SORTS: &[(&str, &str)] = &[
    ("scanned", "a.last_scanned_ms"),
    ("first_seen", "a.first_seen_ms"),
    ("repository", "a.repository"),
];

/// Largest page.
pub const MAX_LIMIT: i64 = 500;

/// `GET /api/v1/images` query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageFilter {
    /// Exact repository (`team-a/payments`).
    pub repository: Option<String>,
    pub tag: Option<String>,
    /// `allow`, `block` or `pending`.
    pub verdict: Option<String>,
    /// Only images with an open finding at or above this severity.
    pub severity: Option<String>,
    /// Only images with an open finding of this id or alias.
    pub vuln: Option<String>,
    /// Only images with a package of this name.
    pub package: Option<String>,
    /// `scanned` (default), `first_seen`, `repository`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// 1..=500, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Severity name → the stored rank.
pub fn severity_from_name(s: &str) -> Option<i64> {
    Some(match s.to_ascii_uppercase().as_str() {
        "UNKNOWN" => 0,
        "INFO" | "NONE" => 1,
        "LOW" => 2,
        "MEDIUM" => 3,
        "HIGH" => 4,
        "CRITICAL" => 5,
        _ => return None,
    })
}

/// The stored rank → severity name.
pub fn severity_name(n: i64) -> &'static str {
    match n {
        5 => "CRITICAL",
        4 => "HIGH",
        3 => "MEDIUM",
        2 => "LOW",
        1 => "INFO",
        _ => "UNKNOWN",
    }
}

fn s(r: &AnyRow, i: usize) -> Result<Option<String>, StoreError> {
    Ok(r.try_get::<Option<String>, _>(i)?)
}

fn n(r: &AnyRow, i: usize) -> Result<i64, StoreError> {
    Ok(r.try_get::<Option<i64>, _>(i)?.unwrap_or(0))
}

fn parse(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Ids an advisory is known by: the id itself and every primary id it is an alias of.
pub async fn resolve_ids(store: &Store, id: &str) -> Result<Vec<String>, StoreError> {
    let mut ids = vec![id.to_string()];
    for r in sqlx::query("SELECT vuln_id FROM vuln_alias WHERE alias = $1 ORDER BY vuln_id")
        .bind(id)
        .fetch_all(store.pool())
        .await?
    {
        let v: String = r.try_get(0)?;
        if !ids.contains(&v) {
            ids.push(v);
        }
    }
    Ok(ids)
}

fn marks(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Open-finding counts per severity for each digest.
async fn counts(
    store: &Store,
    digests: &[String],
) -> Result<BTreeMap<String, BTreeMap<&'static str, i64>>, StoreError> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, i64>> = BTreeMap::new();
    for chunk in digests.chunks(200) {
        let sql = format!(
            "SELECT digest, severity, CAST(COUNT(*) AS BIGINT) FROM finding \
             WHERE digest IN ({}) AND resolved_ms IS NULL AND kind = 'vulnerability' GROUP BY digest, severity",
            marks(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind(d.as_str());
        }
        for r in q.fetch_all(store.pool()).await? {
            let d: String = r.try_get(0)?;
            *out.entry(d)
                .or_default()
                .entry(severity_name(n(&r, 1)?))
                .or_default() += n(&r, 2)?;
        }
    }
    Ok(out)
}

/// One page of images.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePage {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// The offset of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<i64>,
    pub images: Vec<Value>,
}

/// `GET /api/v1/images`.
pub async fn list_images(store: &Store, f: &ImageFilter) -> Result<ImagePage, StoreError> {
    let col = match f.sort.as_deref() {
        None => "a.last_scanned_ms",
        Some(k) => SORTS
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "sort {k:?}: expected one of {}",
                    SORTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            })?,
    };
    let dir = match f.order.as_deref() {
        None | Some("desc") => "DESC",
        Some("asc") => "ASC",
        Some(o) => {
            return Err(StoreError::Invalid(format!(
                "order {o:?}: expected asc or desc"
            )));
        }
    };
    let limit = f.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(StoreError::Invalid(format!(
            "limit {limit}: expected 1..={MAX_LIMIT}"
        )));
    }
    let offset = f.offset.unwrap_or(0);
    if offset < 0 {
        return Err(StoreError::Invalid(format!(
            "offset {offset}: expected 0 or more"
        )));
    }
    let mut wh = vec!["a.deleted_ms IS NULL".to_string()];
    let mut binds: Vec<Value> = Vec::new();
    let mut bind = |v: Value| {
        binds.push(v);
        binds.len()
    };
    if let Some(r) = &f.repository {
        wh.push(format!("a.repository = ${}", bind(json!(r))));
    }
    if let Some(t) = &f.tag {
        wh.push(format!("a.tag = ${}", bind(json!(t))));
    }
    if let Some(v) = &f.verdict {
        if !super::verdicts::valid_decision(v) {
            return Err(StoreError::Invalid(format!(
                "verdict {v:?}: expected allow, block or pending"
            )));
        }
        wh.push(format!("a.verdict = ${}", bind(json!(v))));
    }
    if let Some(sev) = &f.severity {
        let rank = severity_from_name(sev).ok_or_else(|| {
            StoreError::Invalid(format!(
                "severity {sev:?}: expected UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL"
            ))
        })?;
        wh.push(format!(
            "EXISTS (SELECT 1 FROM finding f WHERE f.digest = a.digest AND f.resolved_ms IS NULL \
             AND f.kind = 'vulnerability' AND f.severity >= ${})",
            bind(json!(rank))
        ));
    }
    if let Some(v) = &f.vuln {
        let i = bind(json!(v));
        wh.push(format!(
            "a.digest IN (SELECT f.digest FROM finding f WHERE f.resolved_ms IS NULL AND \
             (f.vuln_id = ${i} OR f.vuln_id IN (SELECT va.vuln_id FROM vuln_alias va WHERE va.alias = ${i})))"
        ));
    }
    if let Some(p) = &f.package {
        wh.push(format!(
            "a.digest IN (SELECT ip.digest FROM package p JOIN image_package ip ON ip.package_id = p.id \
             WHERE p.name = ${})",
            bind(json!(p))
        ));
    }
    let wh = wh.join(" AND ");
    let bind_all = |sql: String| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = match b {
                Value::Number(x) => q.bind(x.as_i64().unwrap_or(0)),
                other => q.bind(other.as_str().unwrap_or("").to_string()),
            };
        }
        q
    };
    let total = n(
        &bind_all(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM artifact a WHERE {wh}"
        ))
        .fetch_one(store.pool())
        .await?,
        0,
    )?;
    let rows = bind_all(format!(
        "SELECT a.digest, a.repository, a.tag, a.media_type, a.os, a.arch, a.package_count, a.verdict, \
         a.verdict_ms, a.signature, a.snapshot_digest, a.first_seen_ms, a.last_scanned_ms \
         FROM artifact a WHERE {wh} ORDER BY {col} {dir}, a.digest {dir} LIMIT {limit} OFFSET {offset}"
    ))
    .fetch_all(store.pool())
    .await?;
    let digests: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    let c = counts(store, &digests).await?;
    let mut images = Vec::with_capacity(rows.len());
    for r in &rows {
        let d: String = r.try_get(0)?;
        images.push(json!({
            "digest": d,
            "repository": s(r, 1)?,
            "tag": s(r, 2)?,
            "media_type": s(r, 3)?,
            "os": s(r, 4)?,
            "arch": s(r, 5)?,
            "packages": n(r, 6)?,
            "verdict": s(r, 7)?,
            "verdict_at": r.try_get::<Option<i64>, _>(8)?,
            "signature": s(r, 9)?,
            "snapshot": s(r, 10)?,
            "first_seen": n(r, 11)?,
            "last_scanned": n(r, 12)?,
            "vulnerabilities": c.get(&d).cloned().unwrap_or_default(),
        }));
    }
    let next_offset = (offset + (images.len() as i64) < total).then_some(offset + limit);
    Ok(ImagePage {
        total,
        limit,
        offset,
        next_offset,
        images,
    })
}

/// The workloads an image runs in (admission and runtime reports), newest first.
pub async fn workloads_of(store: &Store, digests: &[String]) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for chunk in digests.chunks(200) {
        let sql = format!(
            "SELECT cluster, namespace, workload, pod, container, image, digest, source, last_seen_ms \
             FROM workload_image WHERE digest IN ({}) ORDER BY last_seen_ms DESC LIMIT 1000",
            marks(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind(d.as_str());
        }
        for r in q.fetch_all(store.pool()).await? {
            out.push(json!({
                "cluster": s(&r, 0)?, "namespace": s(&r, 1)?, "workload": s(&r, 2)?,
                "pod": s(&r, 3)?, "container": s(&r, 4)?, "image": s(&r, 5)?,
                "digest": s(&r, 6)?, "source": s(&r, 7)?, "last_seen": n(&r, 8)?,
            }));
        }
    }
    Ok(out)
}

/// A stored package of one image, as the SBOM section lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredPackage {
    pub name: String,
    pub version: String,
    pub purl: String,
    /// The advisory index key (`Debian:12` + NUL + source name), or the purl type for packages no
    /// advisory ecosystem covers.
    #[serde(skip)]
    pub vkey: String,
    /// The package as the SBOM described it (kind, source package, file, layer, licenses).
    pub data: Value,
}

/// The packages of an image from the package index.
pub async fn packages_of(store: &Store, digest: &str) -> Result<Vec<StoredPackage>, StoreError> {
    let rows = sqlx::query(
        "SELECT p.name, p.version, p.purl, p.vkey, p.data FROM image_package ip \
         JOIN package p ON p.id = ip.package_id WHERE ip.digest = $1 ORDER BY p.name, p.version, p.purl",
    )
    .bind(digest)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredPackage {
                name: r.try_get(0)?,
                version: r.try_get(1)?,
                purl: r.try_get(2)?,
                vkey: r.try_get(3)?,
                data: parse(&r.try_get::<String, _>(4)?, "package")?,
            })
        })
        .collect()
}

/// `GET /api/v1/images/{digest}`: None when the server never saw the digest.
pub async fn image_detail(store: &Store, digest: &str) -> Result<Option<Value>, StoreError> {
    let Some(a) = sqlx::query(
        "SELECT digest, repository, tag, media_type, os, arch, config_user, labels, signature, package_count, \
         verdict, verdict_ms, snapshot_digest, first_seen_ms, last_scanned_ms, deleted_ms FROM artifact WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let tags: Vec<Value> = sqlx::query(
        "SELECT repository, tag, updated_ms FROM tag WHERE digest = $1 ORDER BY repository, tag",
    )
    .bind(digest)
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| Ok(json!({"repository": s(r, 0)?, "tag": s(r, 1)?, "updated": n(r, 2)?})))
    .collect::<Result<_, StoreError>>()?;
    let sbom = sqlx::query("SELECT format, created_ms FROM sbom WHERE digest = $1")
        .bind(digest)
        .fetch_optional(store.pool())
        .await?;
    let packages = packages_of(store, digest).await?;
    let sbom = match sbom {
        Some(r) => json!({
            "format": s(&r, 0)?,
            "created": n(&r, 1)?,
            "packages": packages,
        }),
        None => Value::Null,
    };
    let mut vulns = Vec::new();
    let mut checks = Vec::new();
    let mut resolved = Vec::new();
    for r in sqlx::query(
        "SELECT kind, source, data, first_seen_ms, snapshot_digest, resolved_ms, resolved_snapshot \
         FROM finding WHERE digest = $1 ORDER BY severity DESC, vuln_id, package_key",
    )
    .bind(digest)
    .fetch_all(store.pool())
    .await?
    {
        let kind: String = r.try_get(0)?;
        let entry = json!({
            "finding": parse(&r.try_get::<String, _>(2)?, "finding")?,
            "source": s(&r, 1)?,
            "first_seen": n(&r, 3)?,
            "snapshot": s(&r, 4)?,
            "resolved": r.try_get::<Option<i64>, _>(5)?,
            "resolved_snapshot": s(&r, 6)?,
        });
        if r.try_get::<Option<i64>, _>(5)?.is_some() {
            resolved.push(entry);
        } else if kind == "vulnerability" {
            vulns.push(entry);
        } else {
            checks.push(entry);
        }
    }
    let labels: Value = parse(&s(&a, 7)?.unwrap_or_else(|| "{}".into()), "artifact labels")?;
    let verdict = store.verdict(digest).await?;
    let history = store.verdict_history(digest).await?;
    let workloads = workloads_of(store, &[digest.to_string()]).await?;
    let c = counts(store, &[digest.to_string()]).await?;
    Ok(Some(json!({
        "digest": s(&a, 0)?,
        "repository": s(&a, 1)?,
        "tag": s(&a, 2)?,
        "tags": tags,
        "media_type": s(&a, 3)?,
        "os": s(&a, 4)?,
        "arch": s(&a, 5)?,
        "user": s(&a, 6)?,
        "labels": labels,
        "signature": s(&a, 8)?.map_or(json!({"status": "not-checked"}), |st| json!({"status": st})),
        "packages": n(&a, 9)?,
        "snapshot": s(&a, 12)?,
        "first_seen": n(&a, 13)?,
        "last_scanned": n(&a, 14)?,
        "deleted": a.try_get::<Option<i64>, _>(15)?,
        "verdict": verdict,
        "verdict_history": history,
        "vulnerabilities": c.get(digest).cloned().unwrap_or_default(),
        "findings": vulns,
        "config_checks": checks,
        "resolved_findings": resolved,
        "sbom": sbom,
        "workloads": workloads,
    })))
}

/// One package of an image that has an open finding of the advisory.
#[derive(Debug, Clone, Serialize)]
pub struct AdvisoryPackage {
    /// The finding's vulnerability id (the primary id the alias resolved to).
    pub finding: String,
    pub severity: &'static str,
    pub fixable: bool,
    pub name: Option<String>,
    pub version: Option<String>,
    pub purl: String,
    pub first_seen: i64,
    pub snapshot: Option<String>,
}

/// One image of an advisory's answer (field order is the API's).
#[derive(Debug, Clone, Serialize)]
pub struct AdvisoryImage {
    pub digest: String,
    pub packages: Vec<AdvisoryPackage>,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub verdict: Option<String>,
}

/// `GET /api/v1/advisories/{id}`, serialized as is (typed, so an answer of thousands of images
/// is not built as a tree of JSON values first).
#[derive(Debug, Clone, Serialize)]
pub struct Advisory {
    pub id: String,
    pub ids: Vec<String>,
    pub aliases: Vec<String>,
    pub title: String,
    pub severity: &'static str,
    pub image_count: usize,
    /// More finding rows matched than `limit`.
    pub truncated: bool,
    pub images: Vec<AdvisoryImage>,
    pub repositories: Vec<String>,
    pub workloads: Vec<Value>,
    pub namespaces: Vec<String>,
}

/// `GET /api/v1/advisories/{id}`: every image with an open finding of the advisory (by its id or any
/// alias) and every workload running one of them, images by digest and each image's packages by
/// package key. `limit` bounds the finding rows read. None when no stored image has it.
pub async fn advisory(store: &Store, id: &str, limit: i64) -> Result<Option<Advisory>, StoreError> {
    let ids = resolve_ids(store, id).await?;
    let sql = format!(
        "SELECT f.digest, a.repository, a.tag, a.verdict, f.vuln_id, f.severity, f.fixable, f.package_name, \
         f.package_version, f.package_key, f.first_seen_ms, f.snapshot_digest \
         FROM finding f JOIN artifact a ON a.digest = f.digest \
         WHERE f.vuln_id IN ({}) AND f.resolved_ms IS NULL AND a.deleted_ms IS NULL \
         ORDER BY f.digest, f.package_key LIMIT {}",
        marks(1, ids.len()),
        limit + 1
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for i in &ids {
        q = q.bind(i.as_str());
    }
    let rows = q.fetch_all(store.pool()).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let truncated = rows.len() as i64 > limit;
    // Rows come ordered by digest: consecutive rows of one digest are one image.
    let mut images: Vec<AdvisoryImage> = Vec::new();
    let mut aliases: Vec<String> = Vec::new();
    let mut severity = 0;
    for r in rows.iter().take(limit as usize) {
        let digest: String = r.try_get(0)?;
        let vid: String = r.try_get(4)?;
        let sev = n(r, 5)?;
        severity = severity.max(sev);
        let pkg = AdvisoryPackage {
            severity: severity_name(sev),
            fixable: n(r, 6)? != 0,
            name: s(r, 7)?,
            version: s(r, 8)?,
            purl: r.try_get(9)?,
            first_seen: n(r, 10)?,
            snapshot: s(r, 11)?,
            finding: vid,
        };
        if !aliases.contains(&pkg.finding) {
            aliases.push(pkg.finding.clone());
        }
        let (repository, tag, verdict) = (s(r, 1)?, s(r, 2)?, s(r, 3)?);
        match images.last_mut() {
            Some(last) if last.digest == digest => {
                last.packages.push(pkg);
                (last.repository, last.tag, last.verdict) = (repository, tag, verdict);
            }
            _ => images.push(AdvisoryImage {
                digest,
                packages: vec![pkg],
                repository,
                tag,
                verdict,
            }),
        }
    }
    // Title and aliases from one finding of each id (not from every row: an answer can list
    // thousands of images).
    let mut title = String::new();
    for vid in aliases.clone() {
        if let Some(r) = sqlx::query(
            "SELECT data FROM finding WHERE vuln_id = $1 AND resolved_ms IS NULL LIMIT 1",
        )
        .bind(&vid)
        .fetch_optional(store.pool())
        .await?
        {
            let data = parse(&r.try_get::<String, _>(0)?, "finding")?;
            if title.is_empty() {
                title = data
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
            }
            for al in data
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
            {
                if !aliases.contains(&al) {
                    aliases.push(al);
                }
            }
        }
    }
    // The API's order whatever the backend's collation.
    images.sort_by(|a, b| a.digest.cmp(&b.digest));
    let digests: Vec<String> = images.iter().map(|i| i.digest.clone()).collect();
    let workloads = workloads_of(store, &digests).await?;
    let mut repositories: Vec<String> =
        images.iter().filter_map(|i| i.repository.clone()).collect();
    repositories.sort();
    repositories.dedup();
    let mut namespaces: Vec<String> = workloads
        .iter()
        .filter_map(|w| w["namespace"].as_str().map(str::to_string))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    Ok(Some(Advisory {
        id: id.to_string(),
        ids,
        aliases,
        title,
        severity: severity_name(severity),
        image_count: images.len(),
        truncated,
        images,
        repositories,
        workloads,
        namespaces,
    }))
}

/// The advisory index key of a package as stored (`package.vkey`, `advisory_key.vkey`): the
/// snapshot's (ecosystem, name) key with its NUL separator replaced by U+001F, because PostgreSQL
/// text cannot hold NUL.
pub fn vkey(ecosystem: &str, name: &str) -> String {
    normalize_vkey(&moat_vulndb::ecosystem::key(ecosystem, name))
}

/// A stored key in the form [`vkey`] writes (rows written with the snapshot's NUL form read the same).
pub fn normalize_vkey(k: &str) -> String {
    k.replace('\u{0}', "\u{1f}")
}

/// Stores an image's SBOM and fills the package → image index that re-evaluation and "which images
/// have CVE-X" read: one `package` row per (purl, OS release), shared by every image holding it;
/// `image_package` replaced for the image. The artifact row must exist.
pub async fn index_inventory(
    tx: &mut super::Tx,
    digest: &str,
    inv: &moat_model::Inventory,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(inv).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query(
        "INSERT INTO sbom (digest, format, inventory, created_ms) VALUES ($1, 'moat.inventory', $2, $3) \
         ON CONFLICT (digest) DO UPDATE SET format = excluded.format, inventory = excluded.inventory, \
         created_ms = excluded.created_ms",
    )
    .bind(digest)
    .bind(body)
    .bind(super::now_ms())
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM image_package WHERE digest = $1")
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    let os = inv
        .os
        .as_ref()
        .map(|o| format!("{} {}", o.id, o.version_id.clone().unwrap_or_default()))
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for p in &inv.packages {
        let purl = p.purl.to_string();
        let id = super::content_digest(format!("{purl}\u{0}{os}").as_bytes());
        if !seen.insert(id.clone()) {
            continue;
        }
        let key = match moat_vulndb::ecosystem::query_for(p, inv.os.as_ref()) {
            Ok(q) => vkey(&q.ecosystem, &q.name),
            Err(_) => format!("{}\u{1f}{}", p.purl.ty, p.name),
        };
        let data = serde_json::to_string(p).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO package (id, vkey, purl, name, version, os, data) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(key)
        .bind(&purl)
        .bind(&p.name)
        .bind(&p.version)
        .bind(&os)
        .bind(data)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO image_package (digest, package_id) VALUES ($1, $2) ON CONFLICT (digest, package_id) DO NOTHING",
        )
        .bind(digest)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE artifact SET package_count = $1 WHERE digest = $2")
        .bind(seen.len() as i64)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
