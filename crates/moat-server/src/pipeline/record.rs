//! Storing one finished scan, in one transaction: the image, its report, its SBOM and package index,
//! its findings (with history), its verdict (judged by the gate policy) and the outbox events
//! (`image.scanned`, `image.verdict.changed`) that alert rules watch. Either all of it is committed or
//! none of it, so an alert is never sent for a scan that was not stored, nor lost for one that was.

use moat_model::{Finding, FindingKind, Inventory};
use serde_json::{Value, json};
use sqlx::Row;

use super::gate::{Decision, GateInput, GatePolicy, GateVerdict, SignatureStatus};
use crate::store::images::{self, ImageMeta};
use crate::store::{StoreError, Tx, content_digest, new_id, now_ms, outbox, verdicts};

/// Finding source of vulnerabilities matched by the server (re-evaluation replaces exactly these).
pub const SOURCE_SERVER: &str = "server";
/// Finding source of the image-configuration checks of a server scan.
pub const SOURCE_IMAGE: &str = "image";

/// A finding as events carry it (what alert rules match: `id`, `severity`, `fixable`, `aliases`).
pub fn finding_json(f: &Finding) -> Value {
    let v = f.vulnerability.as_ref();
    json!({
        "id": f.id,
        "kind": f.kind.as_str(),
        "severity": f.severity.as_str(),
        "title": f.title,
        "aliases": f.aliases,
        "fixable": v.is_some_and(|v| !v.fixed_versions.is_empty()),
        "fixed_versions": v.map(|v| v.fixed_versions.clone()).unwrap_or_default(),
        "package": f.package.as_ref().map(|p| p.name.clone()),
        "version": f.package.as_ref().map(|p| p.version.clone()),
        "purl": f.package.as_ref().map(|p| p.purl.to_string()),
        "layer": f.location.layer.clone(),
        "file": f.location.file.clone(),
    })
}

/// What [`record_scan`] stored.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub verdict: GateVerdict,
    /// The decision before this scan (`pending` for a first scan).
    pub previous: String,
    /// Findings that were not open before.
    pub new_findings: usize,
}

/// Stores a server scan of the image `meta` describes and judges it.
#[allow(clippy::too_many_arguments)]
pub async fn record_scan(
    tx: &mut Tx,
    meta: &ImageMeta,
    report: &moat_report::Report,
    inventory: &Inventory,
    has_config: bool,
    policy: &GatePolicy,
    signature: &SignatureStatus,
    extra: &Value,
) -> Result<Recorded, StoreError> {
    let digest = meta.digest.as_str();
    let snapshot = report.metadata.get("db_digest").map(String::as_str);
    images::upsert_artifact(tx, meta).await?;
    let body = serde_json::to_vec(report).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let text = String::from_utf8(body.clone()).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sqlx::query(
        "INSERT INTO report (id, content_digest, kind, digest, target, body, received_ms) \
         VALUES ($1, $2, 'moat.scan', $3, $4, $5, $6) ON CONFLICT (content_digest) DO NOTHING",
    )
    .bind(new_id())
    .bind(content_digest(&body))
    .bind(digest)
    .bind(&report.target.name)
    .bind(text)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    // The SBOM and the package → image index (re-evaluation and "which images have CVE-X").
    crate::store::query::index_inventory(tx, digest, inventory).await?;
    sqlx::query("UPDATE artifact SET snapshot_digest = $1 WHERE digest = $2")
        .bind(snapshot)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    let (vulns, other): (Vec<Finding>, Vec<Finding>) = report
        .findings
        .iter()
        .cloned()
        .partition(|f| f.kind == FindingKind::Vulnerability);
    let new_v = images::replace_findings(tx, digest, SOURCE_SERVER, &vulns, snapshot).await?;
    let new_o = images::replace_findings(tx, digest, SOURCE_IMAGE, &other, snapshot).await?;

    let verdict = policy.judge(&GateInput {
        findings: &report.findings,
        user: meta.user.as_deref(),
        has_config,
        signature,
    });
    let previous = verdicts::record(
        tx,
        digest,
        verdict.decision.as_str(),
        &verdict.reasons,
        &verdict.policy,
        snapshot,
    )
    .await?
    .unwrap_or_else(|| "pending".into());

    let live: Vec<Value> = report
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .map(finding_json)
        .collect();
    let mut payload = json!({
        "digest": digest,
        "repository": meta.repository,
        "tag": meta.tag,
        "verdict": verdict.decision.as_str(),
        "reasons": verdict.reasons,
        "snapshot": snapshot,
        "packages": inventory.packages.len(),
        "summary": report.summary,
        "findings": live,
    });
    merge(&mut payload, extra);
    // One `image.scanned` per digest: a second scan of the same image (a manual rescan) is not a
    // second push alert.
    outbox::insert(
        tx,
        "image.scanned",
        digest,
        &payload,
        Some(&format!("image.scanned:{digest}")),
    )
    .await?;
    if previous != verdict.decision.as_str() {
        let mut p = json!({
            "digest": digest,
            "repository": meta.repository,
            "tag": meta.tag,
            "from": previous,
            "to": verdict.decision.as_str(),
            "reasons": verdict.reasons,
            "policy": verdict.policy,
            "snapshot": snapshot,
        });
        merge(&mut p, extra);
        outbox::insert(tx, "image.verdict.changed", digest, &p, None).await?;
    }
    // `finding.new` is the re-evaluation event (docs/server.md): a finding that appears on an image
    // that had already been judged. A first scan reports its findings in `image.scanned`.
    if previous != Decision::Pending.as_str() {
        for f in new_v.iter().chain(&new_o) {
            let mut p = json!({
                "digest": digest,
                "repository": meta.repository,
                "tag": meta.tag,
                "snapshot": snapshot,
                "finding": finding_json(f),
            });
            merge(&mut p, extra);
            let key = format!(
                "finding.new:{digest}:{}:{}:{}",
                f.id,
                f.package
                    .as_ref()
                    .map(|p| p.purl.to_string())
                    .unwrap_or_default(),
                snapshot.unwrap_or("")
            );
            outbox::insert(tx, "finding.new", digest, &p, Some(&key)).await?;
        }
    }
    update_indexes(tx, digest).await?;
    Ok(Recorded {
        verdict,
        previous,
        new_findings: new_v.len() + new_o.len(),
    })
}

fn merge(into: &mut Value, extra: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), extra.as_object()) {
        for (k, v) in b {
            a.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// Judges every index that lists `digest` as a platform: `block` when any judged platform blocks,
/// `allow` when every platform allows, unchanged (pending) while some are not judged yet.
pub async fn update_indexes(tx: &mut Tx, digest: &str) -> Result<(), StoreError> {
    let parents: Vec<String> =
        sqlx::query("SELECT index_digest FROM index_platform WHERE digest = $1")
            .bind(digest)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    for parent in parents {
        update_indexes_of(tx, &parent).await?;
    }
    Ok(())
}

/// Judges one index from its platforms' verdicts (see [`update_indexes`]).
pub async fn update_indexes_of(tx: &mut Tx, parent: &str) -> Result<(), StoreError> {
    {
        let rows = sqlx::query(
            "SELECT ip.platform, ip.digest, COALESCE(a.verdict, 'pending') FROM index_platform ip \
             LEFT JOIN artifact a ON a.digest = ip.digest WHERE ip.index_digest = $1 ORDER BY ip.platform",
        )
        .bind(parent)
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut reasons = Vec::new();
        let mut pending = false;
        for r in &rows {
            let platform: String = r.try_get(0)?;
            let child: String = r.try_get(1)?;
            let d: String = r.try_get(2)?;
            match d.as_str() {
                "block" => reasons.push(format!("platform {platform} ({child}) is blocked")),
                "allow" => {}
                _ => pending = true,
            }
        }
        let decision = if !reasons.is_empty() {
            Decision::Block
        } else if pending {
            return Ok(());
        } else {
            Decision::Allow
        };
        let current = sqlx::query("SELECT verdict FROM artifact WHERE digest = $1")
            .bind(parent)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?;
        if current.as_deref() == Some(decision.as_str()) {
            return Ok(());
        }
        let prev = verdicts::record(
            tx,
            parent,
            decision.as_str(),
            &reasons,
            "index: the worst verdict of its platforms",
            None,
        )
        .await?
        .unwrap_or_else(|| "pending".into());
        let repo = sqlx::query("SELECT repository, tag FROM artifact WHERE digest = $1")
            .bind(parent)
            .fetch_one(&mut **tx)
            .await?;
        let p = json!({
            "digest": parent,
            "repository": repo.try_get::<Option<String>, _>(0)?,
            "tag": repo.try_get::<Option<String>, _>(1)?,
            "from": prev,
            "to": decision.as_str(),
            "reasons": reasons,
            "policy": "index: the worst verdict of its platforms",
        });
        outbox::insert(tx, "image.verdict.changed", parent, &p, None).await?;
    }
    Ok(())
}

/// Records why an image is still not judged (a failed pull), without touching an earlier decision:
/// only an image whose current verdict is `pending` gets the reason (the verdict stays pending; a
/// failed scan is never a pass).
pub async fn record_failure(tx: &mut Tx, digest: &str, reason: &str) -> Result<(), StoreError> {
    let current = sqlx::query("SELECT verdict FROM artifact WHERE digest = $1")
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    if current.as_deref() == Some("pending") {
        verdicts::record(
            tx,
            digest,
            "pending",
            &[reason.to_string()],
            "scan not completed",
            None,
        )
        .await?;
    }
    Ok(())
}
