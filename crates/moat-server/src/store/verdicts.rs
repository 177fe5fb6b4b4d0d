//! Verdicts: an append-only history per digest, and the current decision on the artifact row.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, Tx, new_id, now_ms};

/// `allow`, `block` or `pending` (never judged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictRow {
    pub digest: String,
    pub decision: String,
    pub reasons: Vec<String>,
    pub policy: String,
    /// The vulnerability DB snapshot the findings were matched against, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    pub decided_at: i64,
}

/// Checks a decision string.
pub fn valid_decision(d: &str) -> bool {
    matches!(d, "allow" | "block" | "pending")
}

/// Records a verdict for `digest` (the artifact row must exist) and returns the previous decision.
pub async fn record(
    tx: &mut Tx,
    digest: &str,
    decision: &str,
    reasons: &[String],
    policy: &str,
    snapshot: Option<&str>,
) -> Result<Option<String>, StoreError> {
    if !valid_decision(decision) {
        return Err(StoreError::Invalid(format!(
            "verdict decision {decision:?}: expected allow, block or pending"
        )));
    }
    let prev = sqlx::query("SELECT verdict FROM artifact WHERE digest = $1")
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    let Some(prev) = prev else {
        return Err(StoreError::Invalid(format!(
            "no stored image {digest} to give a verdict"
        )));
    };
    let now = now_ms();
    let reasons_json = serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO verdict (id, digest, decision, reasons, policy, snapshot_digest, decided_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(digest)
    .bind(decision)
    .bind(reasons_json)
    .bind(policy)
    .bind(snapshot)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE artifact SET verdict = $1, verdict_ms = $2 WHERE digest = $3")
        .bind(decision)
        .bind(now)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    Ok(Some(prev))
}

fn row_to_verdict(r: &sqlx::any::AnyRow) -> Result<VerdictRow, StoreError> {
    let reasons: String = r.try_get(2)?;
    Ok(VerdictRow {
        digest: r.try_get(0)?,
        decision: r.try_get(1)?,
        reasons: serde_json::from_str(&reasons)
            .map_err(|e| StoreError::Corrupt(format!("verdict reasons: {e}")))?,
        policy: r.try_get(3)?,
        snapshot: r.try_get(4)?,
        decided_at: r.try_get(5)?,
    })
}

impl Store {
    /// The latest verdict of a digest; `pending` (no reasons) when the image is stored but unjudged;
    /// None when the server never saw it.
    pub async fn verdict(&self, digest: &str) -> Result<Option<VerdictRow>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, decision, reasons, policy, snapshot_digest, decided_ms FROM verdict \
             WHERE digest = $1 ORDER BY decided_ms DESC, id DESC LIMIT 1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = row {
            return Ok(Some(row_to_verdict(&r)?));
        }
        let art = sqlx::query("SELECT first_seen_ms FROM artifact WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        art.map(|r| {
            Ok(VerdictRow {
                digest: digest.to_string(),
                decision: "pending".into(),
                reasons: vec!["not judged yet".into()],
                policy: String::new(),
                snapshot: None,
                decided_at: r.try_get(0)?,
            })
        })
        .transpose()
    }

    /// Every verdict of a digest, newest first.
    pub async fn verdict_history(&self, digest: &str) -> Result<Vec<VerdictRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest, decision, reasons, policy, snapshot_digest, decided_ms FROM verdict \
             WHERE digest = $1 ORDER BY decided_ms DESC, id DESC",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_verdict).collect()
    }
}
