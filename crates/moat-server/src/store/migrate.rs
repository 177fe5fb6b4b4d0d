//! Embedded, versioned, forward-only migrations: one SQL file per version and backend, applied in order
//! inside a transaction each, recorded with a checksum so an edited past migration is refused.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Backend, Store, StoreError, now_ms};

/// The core schema uses portable types only, so one text serves both backends.
const CORE: &str = include_str!("../../migrations/0001_core.sql");
const LAYERS: &str = include_str!("../../migrations/0002_layers.sql");
const DELIVERY: &str = include_str!("../../migrations/0003_delivery.sql");
const REEVAL: &str = include_str!("../../migrations/0004_reeval.sql");

/// (version, name, SQLite text, PostgreSQL text). Append only; a version whose DDL must differ per
/// backend names two files.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (1, "core", CORE, CORE),
    (2, "layers", LAYERS, LAYERS),
    (3, "delivery", DELIVERY, DELIVERY),
    (4, "reeval", REEVAL, REEVAL),
    (
        6,
        "alert_dedupe",
        include_str!("../../migrations/0006_alert_dedupe_sqlite.sql"),
        include_str!("../../migrations/0006_alert_dedupe_postgres.sql"),
    ),
];

/// Splits a migration into statements at `;` line ends (the files hold no procedural code).
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

pub(super) async fn run(store: &Store) -> Result<usize, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS moat_migration (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await?;
    let mut applied = 0;
    for &(version, name, lite, pg) in MIGRATIONS {
        let sql = match store.backend() {
            Backend::Sqlite => lite,
            Backend::Postgres => pg,
        };
        let sum = hex::encode(Sha256::digest(sql.as_bytes()));
        let mut tx = store.begin().await?;
        // PostgreSQL: concurrent replicas starting at once migrate one after the other.
        if store.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7406)")
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT checksum FROM moat_migration WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            let have: String = row.try_get(0)?;
            if have != sum {
                return Err(StoreError::Migration(format!(
                    "migration {version} ({name}) differs from the one applied to this store"
                )));
            }
            continue;
        }
        for st in statements(sql) {
            sqlx::query(sqlx::AssertSqlSafe(st))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration(format!("migration {version} ({name}): {e}")))?;
        }
        sqlx::query(
            "INSERT INTO moat_migration (version, name, checksum, applied_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(version)
        .bind(name)
        .bind(sum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        applied += 1;
    }
    Ok(applied)
}

/// The highest applied version.
pub async fn version(store: &Store) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM moat_migration")
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get(0)?)
}
