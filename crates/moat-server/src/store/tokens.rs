//! API tokens: 256-bit random secrets shown once; only their SHA-256 is stored, with scopes.

use std::fmt;

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, StoreError, new_id, now_ms};

/// What a token may do. `admin` implies the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, StoreError> {
        match s.trim() {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(StoreError::Invalid(format!(
                "unknown scope {other:?}: expected ingest, read or admin"
            ))),
        }
    }

    /// Parses a comma-separated list (`ingest,read`).
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, StoreError> {
        let mut v: Vec<Scope> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Scope::parse)
            .collect::<Result<_, _>>()?;
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(StoreError::Invalid(
                "no scope given: expected ingest, read and/or admin".into(),
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl TokenInfo {
    pub fn allows(&self, s: Scope) -> bool {
        self.scopes.contains(&s) || self.scopes.contains(&Scope::Admin)
    }
}

/// The prefix of every secret, so a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "moat_";

/// SHA-256 of a secret, hex: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Creates a token; returns it and its secret (shown once, never stored).
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &[Scope],
    ) -> Result<(TokenInfo, String), StoreError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| StoreError::Invalid(format!("no OS randomness for a token: {e}")))?;
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(raw));
        let info = self
            .insert_token(name, scopes, &hash_secret(&secret))
            .await?;
        Ok((info, secret))
    }

    /// Registers a secret chosen outside (the bootstrap token of an unattended deployment), idempotently:
    /// the same secret again keeps its row; its scopes are updated.
    pub async fn ensure_token(
        &self,
        name: &str,
        secret: &str,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StoreError> {
        if secret.trim().len() < 16 {
            return Err(StoreError::Invalid(
                "a bootstrap token must be at least 16 characters".into(),
            ));
        }
        let hash = hash_secret(secret);
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT id FROM token WHERE hash = $1")
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match row {
            Some(r) => {
                let id: String = r.try_get(0)?;
                sqlx::query("UPDATE token SET scopes = $1, revoked_ms = NULL WHERE id = $2")
                    .bind(scopes_text(scopes))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO token (id, name, hash, scopes, created_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&id)
                .bind(name)
                .bind(&hash)
                .bind(scopes_text(scopes))
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        tx.commit().await?;
        Ok(TokenInfo {
            id,
            name: name.to_string(),
            scopes: scopes.to_vec(),
        })
    }

    async fn insert_token(
        &self,
        name: &str,
        scopes: &[Scope],
        hash: &str,
    ) -> Result<TokenInfo, StoreError> {
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO token (id, name, hash, scopes, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(hash)
        .bind(scopes_text(scopes))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(TokenInfo {
            id,
            name: name.to_string(),
            scopes: scopes.to_vec(),
        })
    }

    /// The token whose secret this is, unless unknown or revoked.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, scopes FROM token WHERE hash = $1 AND revoked_ms IS NULL",
        )
        .bind(hash_secret(secret))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let scopes: String = r.try_get(2)?;
            Ok(TokenInfo {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                scopes: Scope::parse_list(&scopes)
                    .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
            })
        })
        .transpose()
    }

    /// Whether a token id exists and is not revoked (ends dashboard sessions of revoked tokens).
    pub async fn token_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM token WHERE id = $1 AND revoked_ms IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Revokes a token by id; false if there was none.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE token SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Every token (without secrets): id, name, scopes, created, revoked.
    pub async fn list_tokens(&self) -> Result<Vec<(TokenInfo, i64, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_ms, revoked_ms FROM token ORDER BY created_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let scopes: String = r.try_get(2)?;
                Ok((
                    TokenInfo {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        scopes: Scope::parse_list(&scopes)
                            .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
                    },
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }
}
