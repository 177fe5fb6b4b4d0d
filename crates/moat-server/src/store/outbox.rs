//! The outbox: every event that may lead to an alert is written in the same transaction as the change
//! that caused it, then claimed by exactly one dispatcher (same lease scheme as jobs), so an alert
//! survives a crash and is handed over once whatever the number of replicas.

use serde_json::Value;
use sqlx::Row;

use super::{Backend, Store, StoreError, Tx, new_id, now_ms};

/// One event waiting for delivery.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: String,
    pub event_type: String,
    pub subject: String,
    pub payload: Value,
    pub created_ms: i64,
    /// Claims so far, including this one.
    pub attempts: i64,
}

/// Writes an event in the caller's transaction. With a dedupe key, a second event with the same key is
/// dropped (false).
pub async fn insert(
    tx: &mut Tx,
    event_type: &str,
    subject: &str,
    payload: &Value,
    dedupe_key: Option<&str>,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(payload)
        .map_err(|e| StoreError::Invalid(format!("outbox payload: {e}")))?;
    let n = sqlx::query(
        "INSERT INTO outbox (id, created_ms, event_type, subject, payload, dedupe_key, state, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(new_id())
    .bind(now_ms())
    .bind(event_type)
    .bind(subject)
    .bind(body)
    .bind(dedupe_key)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Marks a claimed event handled, in the transaction that wrote its deliveries. False when the claim
/// was lost (expired and taken by another dispatcher): roll back.
pub async fn done_tx(tx: &mut Tx, id: &str, owner: &str) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE outbox SET state = 'done', done_ms = $1, lease_owner = NULL, lease_until_ms = NULL \
         WHERE id = $2 AND state = 'claimed' AND lease_owner = $3",
    )
    .bind(now_ms())
    .bind(id)
    .bind(owner)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

const CLAIM_PG: &str = "UPDATE outbox SET state = 'claimed', lease_owner = $1, lease_until_ms = $2, \
     attempts = attempts + 1 WHERE id IN (SELECT o.id FROM outbox o \
       WHERE o.state = 'pending' OR (o.state = 'claimed' AND o.lease_until_ms < $3) \
       ORDER BY o.created_ms, o.id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, event_type, subject, payload, created_ms, attempts";

const CLAIM_SQLITE: &str = "UPDATE outbox SET state = 'claimed', lease_owner = $1, lease_until_ms = $2, \
     attempts = attempts + 1 WHERE id IN (SELECT o.id FROM outbox o \
       WHERE o.state = 'pending' OR (o.state = 'claimed' AND o.lease_until_ms < $3) \
       ORDER BY o.created_ms, o.id LIMIT $4) \
     RETURNING id, event_type, subject, payload, created_ms, attempts";

impl Store {
    /// Claims up to `limit` pending events (oldest first) for `owner`, leased for `lease_ms`.
    pub async fn claim_outbox(
        &self,
        owner: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let now = now_ms();
        let sql = match self.backend {
            Backend::Postgres => CLAIM_PG,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(now + lease_ms.max(1))
            .bind(now)
            .bind(limit.max(1))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = rows
            .into_iter()
            .map(|r| {
                let payload: String = r.try_get(3)?;
                Ok(OutboxEvent {
                    id: r.try_get(0)?,
                    event_type: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
                    created_ms: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// Marks a claimed event handled (see [`done_tx`]).
    pub async fn outbox_done(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ok = done_tx(&mut tx, id, owner).await?;
        tx.commit().await?;
        Ok(ok)
    }

    /// Pending (unclaimed or claimed, not done) events.
    pub async fn outbox_pending(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE state <> 'done'")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get(0)?)
    }

    /// Events of one type about one subject, oldest first (tests and the dashboard).
    pub async fn outbox_events(
        &self,
        event_type: &str,
        subject: Option<&str>,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_type, subject, payload, created_ms, attempts FROM outbox \
             WHERE event_type = $1 AND ($2 IS NULL OR subject = $2) ORDER BY created_ms, id",
        )
        .bind(event_type)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let payload: String = r.try_get(3)?;
                Ok(OutboxEvent {
                    id: r.try_get(0)?,
                    event_type: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
                    created_ms: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                })
            })
            .collect()
    }
}
