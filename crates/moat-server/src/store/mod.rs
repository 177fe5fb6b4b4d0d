//! The server's store: one SQL text for SQLite (the zero-set-up default) and PostgreSQL (many replicas),
//! through sqlx's `Any` driver. Only portable types cross it: BIGINT (unix ms, counts, 0/1 flags) and
//! TEXT (ids, JSON); the research probe showed `Any` cannot decode TIMESTAMPTZ/NUMERIC.
//!
//! Every write goes through [`Store::begin`]: on SQLite that is `BEGIN IMMEDIATE`, so concurrent writers
//! queue on the write lock (busy timeout) instead of failing when a read transaction tries to upgrade.

pub mod images;
pub mod migrate;
pub mod outbox;
pub mod query;
pub mod queue;

pub mod tokens;
pub mod verdicts;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor};

pub use tokens::{Scope, TokenInfo};

/// A write transaction (see [`Store::begin`]).
pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migration(String),
    #[error(
        "store URL {0:?}: expected sqlite:PATH, sqlite::memory: or postgres://USER@HOST:PORT/DB"
    )]
    Url(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the error is a uniqueness violation (a concurrent insert of the same key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => d.is_unique_violation(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The store handle; cheap to clone (a pool inside).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// `$XDG_DATA_HOME/moat/server.db`, else `~/.local/share/moat/server.db`.
pub fn default_sqlite_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("moat").join("server.db")
}

/// The default store URL (`sqlite:<default path>`).
pub fn default_url() -> String {
    format!("sqlite:{}", default_sqlite_path().display())
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A time-ordered id: 12 hex digits of unix ms, 4 of a process counter, 16 random.
pub fn new_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut r = [0u8; 8];
    // getrandom failing means no OS entropy; a counter-derived id is still unique in this process.
    if getrandom::fill(&mut r).is_err() {
        r = SEQ.load(Ordering::Relaxed).to_le_bytes();
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff;
    format!(
        "{:012x}{:04x}{}",
        now_ms() as u64 & 0xffff_ffff_ffff,
        seq,
        hex::encode(r)
    )
}

/// `sha256:<hex>` of bytes.
pub fn content_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Store {
    /// Opens (creating a SQLite file and its directory if needed) and migrates the store at `url`:
    /// `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:` or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let (backend, conn_url) = if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(StoreError::Url(url.to_string()));
            }
            if rest == ":memory:" {
                (Backend::Sqlite, "sqlite::memory:".to_string())
            } else {
                let path = Path::new(rest);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Invalid(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                (Backend::Sqlite, format!("sqlite://{rest}?mode=rwc"))
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let memory = conn_url == "sqlite::memory:";
        let opts = AnyPoolOptions::new()
            .max_connections(match (backend, memory) {
                // One connection holds an in-memory database; more would each see an empty one.
                (Backend::Sqlite, true) => 1,
                (Backend::Sqlite, false) => 8,
                (Backend::Postgres, _) => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. synchronous=FULL: a 2xx is only sent after
                        // the commit is on disk, so kill -9 or power loss cannot lose an acknowledged write.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    } else {
                        conn.execute("SET statement_timeout = '60s'").await?;
                    }
                    Ok(())
                })
            });
        let pool = opts.connect(&conn_url).await?;
        let store = Store { pool, backend };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite (takes the write lock up front), `BEGIN` on PostgreSQL.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Whether the store answers (for /readyz).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
