//! The server's layer cache (table `layer_cache`, migration 0002): what each layer adds and removes,
//! recorded by `moat_image` while the layer was read and stored after its digests were verified, keyed
//! by the engine's selection scope and the layer's diff_id. A push that shares its base layers with
//! stored images reads only its new layers.
//!
//! `moat_image` calls the cache from the blocking thread that reads the image, so the store is reached
//! through the runtime handle; a store error is a miss (get) or nothing stored (put): the cache never
//! changes a result, only what has to be read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moat_image::{LayerCache, LayerCacheHandle, LayerChanges};
use sqlx::Row;

use crate::store::{Store, now_ms};

/// One scan's view of the cache, counting what it served.
pub struct StoreLayerCache {
    store: Store,
    rt: tokio::runtime::Handle,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stored: AtomicU64,
}

impl StoreLayerCache {
    pub fn new(store: Store, rt: tokio::runtime::Handle) -> Arc<StoreLayerCache> {
        Arc::new(StoreLayerCache {
            store,
            rt,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stored: AtomicU64::new(0),
        })
    }

    /// The handle the engine takes, under the engine's scope for `scanners`.
    pub fn handle(self: &Arc<Self>, scanners: &moat_engine::Scanners) -> LayerCacheHandle {
        LayerCacheHandle::new(self.clone(), moat_engine::layer_cache_scope(scanners))
    }
}

impl LayerCache for StoreLayerCache {
    fn get(&self, key: &str) -> Option<LayerChanges> {
        let store = self.store.clone();
        let k = key.to_string();
        let found = self.rt.block_on(async move {
            let row = sqlx::query("SELECT changes FROM layer_cache WHERE layer_digest = $1")
                .bind(&k)
                .fetch_optional(store.pool())
                .await
                .ok()??;
            let text: String = row.try_get(0).ok()?;
            let changes: LayerChanges = serde_json::from_str(&text).ok()?;
            let _ = sqlx::query("UPDATE layer_cache SET used_ms = $1 WHERE layer_digest = $2")
                .bind(now_ms())
                .bind(&k)
                .execute(store.pool())
                .await;
            Some(changes)
        });
        let c = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn put(&self, key: &str, changes: &LayerChanges) {
        let Ok(text) = serde_json::to_string(changes) else {
            return;
        };
        let store = self.store.clone();
        let k = key.to_string();
        let diff_id = key.rsplit('/').next().map(str::to_string);
        let entries = changes.ops.len() as i64;
        let bytes = changes.content_bytes() as i64;
        let ok = self.rt.block_on(async move {
            let now = now_ms();
            sqlx::query(
                "INSERT INTO layer_cache (layer_digest, diff_id, changes, entries, bytes, created_ms, used_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (layer_digest) DO NOTHING",
            )
            .bind(&k)
            .bind(diff_id)
            .bind(text)
            .bind(entries)
            .bind(bytes)
            .bind(now)
            .execute(store.pool())
            .await
            .is_ok()
        });
        if ok {
            self.stored.fetch_add(1, Ordering::Relaxed);
        }
    }
}
