//! The job queue, in the store: the database is the queue, so many replicas on one PostgreSQL share it
//! with no other infrastructure. Jobs have a lane (push scans before re-evaluation), a priority, a
//! concurrency key (the image digest: never two running at once, enforced by a partial unique index),
//! an optional dedupe key (a registry event id: enqueued once), and a lease renewed by heartbeats; a
//! lease that expires (a worker killed mid-job) makes the job claimable again.

use serde_json::Value;
use sqlx::Row;

use super::{Backend, Store, StoreError, Tx, new_id, now_ms};

/// Push scans (registry and Harbor): claimed first, by their own workers.
pub const LANE_PUSH: &str = "push";
/// Scans asked for by a user or an API call.
pub const LANE_MANUAL: &str = "manual";
/// Background re-evaluation of stored SBOMs.
pub const LANE_REEVAL: &str = "reeval";

/// The default priority of a lane (higher first inside a lane).
pub fn lane_priority(lane: &str) -> i64 {
    match lane {
        LANE_PUSH => 100,
        LANE_MANUAL => 50,
        LANE_REEVAL => 10,
        _ => 0,
    }
}

/// Attempts before a job is marked `dead` with its last error.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub lane: String,
    pub priority: i64,
    pub concurrency_key: String,
    pub dedupe_key: Option<String>,
    pub payload: Value,
    pub run_after_ms: i64,
    pub max_attempts: i64,
}

impl NewJob {
    /// A job in `lane` with the lane's priority, runnable now.
    pub fn new(lane: &str, concurrency_key: impl Into<String>, payload: Value) -> NewJob {
        NewJob {
            lane: lane.to_string(),
            priority: lane_priority(lane),
            concurrency_key: concurrency_key.into(),
            dedupe_key: None,
            payload,
            run_after_ms: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> NewJob {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub lane: String,
    pub concurrency_key: String,
    pub payload: Value,
    /// Including this one.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Queue depth of one lane, for /metrics and autoscaling.
#[derive(Debug, Clone, Default)]
pub struct LaneDepth {
    pub lane: String,
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
    /// Age of the oldest queued job, ms (0 when none).
    pub oldest_age_ms: i64,
}

/// Enqueues a job in the caller's transaction. `None` when a job with the same dedupe key exists
/// (a retried registry event).
pub async fn enqueue(tx: &mut Tx, job: &NewJob) -> Result<Option<String>, StoreError> {
    let id = new_id();
    let now = now_ms();
    let payload = serde_json::to_string(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("job payload: {e}")))?;
    let n = sqlx::query(
        "INSERT INTO job (id, lane, priority, concurrency_key, dedupe_key, payload, state, run_after_ms, \
         attempts, max_attempts, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, 0, $8, $9, $9) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&id)
    .bind(&job.lane)
    .bind(job.priority)
    .bind(&job.concurrency_key)
    .bind(job.dedupe_key.as_deref())
    .bind(payload)
    .bind(job.run_after_ms)
    .bind(job.max_attempts.max(1))
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((n > 0).then_some(id))
}

/// Completes a claimed job in the transaction that stores its results. False when this worker no longer
/// holds the lease (it expired and another worker took the job): the caller must roll back.
pub async fn complete(tx: &mut Tx, job_id: &str, worker: &str) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE job SET state = 'done', lease_owner = NULL, lease_until_ms = NULL, updated_ms = $1 \
         WHERE id = $2 AND state = 'running' AND lease_owner = $3",
    )
    .bind(now_ms())
    .bind(job_id)
    .bind(worker)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

const CLAIM_PG: &str = "UPDATE job SET state = 'running', lease_owner = $1, lease_until_ms = $2, \
     attempts = attempts + 1, updated_ms = $3 \
     WHERE id = (SELECT j.id FROM job j WHERE j.lane = $4 AND j.run_after_ms <= $3 \
       AND (j.state = 'queued' OR (j.state = 'running' AND j.lease_until_ms < $3)) \
       AND NOT EXISTS (SELECT 1 FROM job r WHERE r.concurrency_key = j.concurrency_key \
                       AND r.state = 'running' AND r.id <> j.id) \
       ORDER BY j.priority DESC, j.created_ms, j.id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, lane, concurrency_key, payload, attempts, max_attempts";

const CLAIM_SQLITE: &str = "UPDATE job SET state = 'running', lease_owner = $1, lease_until_ms = $2, \
     attempts = attempts + 1, updated_ms = $3 \
     WHERE id = (SELECT j.id FROM job j WHERE j.lane = $4 AND j.run_after_ms <= $3 \
       AND (j.state = 'queued' OR (j.state = 'running' AND j.lease_until_ms < $3)) \
       AND NOT EXISTS (SELECT 1 FROM job r WHERE r.concurrency_key = j.concurrency_key \
                       AND r.state = 'running' AND r.id <> j.id) \
       ORDER BY j.priority DESC, j.created_ms, j.id LIMIT 1) \
     RETURNING id, lane, concurrency_key, payload, attempts, max_attempts";

impl Store {
    /// Claims the next runnable job of `lane` for `worker`, leased for `lease_ms`.
    ///
    /// A job whose key is already running (a different job for the same digest, or a stale lease being
    /// reclaimed by someone else) is skipped. Two PostgreSQL claimers racing for two jobs of one key are
    /// stopped by the partial unique index: the loser gets a uniqueness error, treated as "try again".
    pub async fn claim(
        &self,
        lane: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        for _ in 0..3 {
            let now = now_ms();
            let sql = match self.backend {
                Backend::Postgres => CLAIM_PG,
                Backend::Sqlite => CLAIM_SQLITE,
            };
            let mut tx = self.begin().await?;
            let res = sqlx::query(sql)
                .bind(worker)
                .bind(now + lease_ms.max(1))
                .bind(now)
                .bind(lane)
                .fetch_optional(&mut *tx)
                .await;
            let row = match res {
                Ok(r) => r,
                Err(e) => {
                    let e = StoreError::from(e);
                    if e.is_unique_violation() {
                        continue;
                    }
                    return Err(e);
                }
            };
            let Some(row) = row else {
                tx.commit().await?;
                return Ok(None);
            };
            let payload: String = row.try_get(3)?;
            let job = Job {
                id: row.try_get(0)?,
                lane: row.try_get(1)?,
                concurrency_key: row.try_get(2)?,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
                attempts: row.try_get(4)?,
                max_attempts: row.try_get(5)?,
            };
            tx.commit().await?;
            return Ok(Some(job));
        }
        Ok(None)
    }

    /// Renews a lease; false when the worker lost it (stop, and do not commit results).
    pub async fn heartbeat(
        &self,
        job_id: &str,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE job SET lease_until_ms = $1, updated_ms = $2 \
             WHERE id = $3 AND state = 'running' AND lease_owner = $4",
        )
        .bind(now + lease_ms.max(1))
        .bind(now)
        .bind(job_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Completes a job with no results to store (see [`complete`] for the transactional form).
    pub async fn complete_job(&self, job_id: &str, worker: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ok = complete(&mut tx, job_id, worker).await?;
        tx.commit().await?;
        Ok(ok)
    }

    /// Gives a job back after a failure: queued again at `run_after_ms`, or `dead` (with the error) once
    /// it has used its attempts. Returns the new state.
    pub async fn retry(
        &self,
        job_id: &str,
        worker: &str,
        run_after_ms: i64,
        error: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE job SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
             lease_owner = NULL, lease_until_ms = NULL, run_after_ms = $1, last_error = $2, updated_ms = $3 \
             WHERE id = $4 AND state = 'running' AND lease_owner = $5 RETURNING state",
        )
        .bind(run_after_ms)
        .bind(error)
        .bind(now_ms())
        .bind(job_id)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .transpose()
    }

    /// The state, attempts and last error of a job.
    pub async fn job_state(
        &self,
        job_id: &str,
    ) -> Result<Option<(String, i64, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT state, attempts, last_error FROM job WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    /// Queue depth per lane.
    pub async fn queue_depth(&self) -> Result<Vec<LaneDepth>, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT lane, \
               CAST(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(COALESCE(MIN(CASE WHEN state = 'queued' THEN created_ms END), $1) AS BIGINT) \
             FROM job WHERE state <> 'done' GROUP BY lane ORDER BY lane",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let oldest: i64 = r.try_get(4)?;
                Ok(LaneDepth {
                    lane: r.try_get(0)?,
                    queued: r.try_get(1)?,
                    running: r.try_get(2)?,
                    dead: r.try_get(3)?,
                    oldest_age_ms: (now - oldest).max(0),
                })
            })
            .collect()
    }
}
