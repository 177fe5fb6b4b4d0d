//! A layer cache: what reading one layer did to the selected view (entries kept, with their content;
//! paths removed or hidden; whiteouts; links noted), recorded while the layer was read and stored only
//! after its stored digest and diff_id were verified. A later image that shares the layer (same
//! diff_id, same selection) replays it instead of reading the blob, so a push that shares its base
//! layers reads only its new ones.
//!
//! The cache is keyed by a caller scope (which selection the changes were recorded under: the same
//! selector must produce the same changes) and the layer's diff_id. The store behind it is the
//! caller's ([`LayerCache`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::view::FileMeta;

/// One change a layer made to the view, in stream order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LayerOp {
    /// An entry that is not a directory hides what lower layers had below its path.
    ClearDir { path: String },
    /// An entry the selector skipped replaces what lower layers had at its path.
    Remove { path: String },
    /// A whiteout of a path and everything below it.
    RemoveTree { path: String },
    /// A symbolic link (selected or not), for path resolution.
    NoteLink { path: String, target: String },
    /// A kept entry; `content_link` when a link was kept with its content wanted.
    Insert {
        meta: FileMeta,
        #[serde(default, with = "b64", skip_serializing_if = "Option::is_none")]
        content: Option<Vec<u8>>,
        #[serde(default)]
        content_link: bool,
    },
}

/// Everything one layer did, replayable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChanges {
    pub ops: Vec<LayerOp>,
}

impl LayerChanges {
    /// Bytes of file content kept.
    pub fn content_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|o| match o {
                LayerOp::Insert {
                    content: Some(c), ..
                } => c.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

/// Where layer changes are kept. `get` and `put` are called from the thread reading the image; a
/// failing store is a miss (`get` → None) or a no-op (`put`): the cache never changes a result.
pub trait LayerCache: Send + Sync {
    fn get(&self, key: &str) -> Option<LayerChanges>;
    fn put(&self, key: &str, changes: &LayerChanges);
}

/// A layer cache and the scope its entries are recorded under (part of every key).
#[derive(Clone)]
pub struct LayerCacheHandle {
    pub cache: Arc<dyn LayerCache>,
    pub scope: String,
}

impl LayerCacheHandle {
    pub fn new(cache: Arc<dyn LayerCache>, scope: impl Into<String>) -> LayerCacheHandle {
        LayerCacheHandle {
            cache,
            scope: scope.into(),
        }
    }

    /// `scope/diff_id`.
    pub fn key(&self, diff_id: &str) -> String {
        format!("{}/{diff_id}", self.scope)
    }
}

impl std::fmt::Debug for LayerCacheHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerCacheHandle")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
